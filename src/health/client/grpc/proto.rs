//! The protobuf bytes of grpc.health.v1 (health.proto): encoding `HealthCheckRequest
//! { string service = 1; }` and reading `HealthCheckResponse { ServingStatus status = 1;
//! }`, plus the gRPC message prefix around them (gRPC over HTTP/2, "Length-Prefixed-
//! Message"). Hand-written: two fields do not need a protobuf library.

/// The length-prefixed message framing: compressed flag (1 byte), length (4, big-endian).
pub const PREFIX_LEN: usize = 5;

/// `HealthCheckRequest { service }` as one length-prefixed, uncompressed gRPC message.
/// An empty service is the default value and so is not written (proto3): the message
/// is then empty, which asks about the server as a whole.
pub fn request(service: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(service.len() + 6);
    if !service.is_empty() {
        body.push(0x0a); // field 1, wire type 2 (length-delimited)
        varint(&mut body, service.len() as u64);
        body.extend_from_slice(service.as_bytes());
    }
    let mut out = Vec::with_capacity(PREFIX_LEN + body.len());
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `bytes[*at]` (at most 10 bytes; the 10th may only hold bit 63).
fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The `status` of a `HealthCheckResponse` (the raw enum value; 0, UNKNOWN, when the
/// field is absent), or `None` if the bytes are not a protobuf message. Unknown fields
/// of every wire type but the deprecated groups are skipped; a repeated field 1 counts
/// by its last value, as protobuf parsers do.
pub fn response_status(msg: &[u8]) -> Option<i32> {
    let mut status = 0i32;
    let mut at = 0;
    while at < msg.len() {
        let key = read_varint(msg, &mut at)?;
        let (field, wire) = (key >> 3, key & 7);
        if field == 0 {
            return None;
        }
        match wire {
            0 => {
                let v = read_varint(msg, &mut at)?;
                if field == 1 {
                    // An enum is an int32 sent as a varint: keep the low 32 bits.
                    status = v as u32 as i32;
                }
            }
            1 => at = at.checked_add(8).filter(|&end| end <= msg.len())?,
            2 => {
                let len = usize::try_from(read_varint(msg, &mut at)?).ok()?;
                at = at.checked_add(len).filter(|&end| end <= msg.len())?;
            }
            5 => at = at.checked_add(4).filter(|&end| end <= msg.len())?,
            _ => return None,
        }
    }
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests() {
        assert_eq!(request(""), [0, 0, 0, 0, 0]);
        assert_eq!(request("svc"), [0, 0, 0, 0, 5, 0x0a, 3, b's', b'v', b'c']);
        let long = "s".repeat(200);
        let r = request(&long);
        assert_eq!(&r[..8], &[0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn responses() {
        assert_eq!(response_status(&[]), Some(0));
        assert_eq!(response_status(&[0x08, 0x01]), Some(1));
        assert_eq!(response_status(&[0x08, 0x02]), Some(2));
        // Unknown fields of each wire type around it; the last field 1 wins.
        let m = [
            0x12, 2, b'a', b'b', 0x08, 0x03, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x1d, 1, 2, 3, 4, 0x20,
            0x96, 0x01, 0x08, 0x01,
        ];
        assert_eq!(response_status(&m), Some(1));
        // A negative enum value is a 10-byte varint; its low 32 bits are the int32.
        let neg = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(response_status(&neg), Some(-1));
        // Not messages: truncation, groups, field 0, an endless varint.
        assert_eq!(response_status(&[0x08]), None);
        assert_eq!(response_status(&[0x12, 5, b'a']), None);
        assert_eq!(response_status(&[0x0b, 0x0c]), None);
        assert_eq!(response_status(&[0x00, 0x01]), None);
        assert_eq!(
            response_status(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]),
            None
        );
    }

    proptest! {
        #[test]
        fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = response_status(&bytes);
        }

        #[test]
        fn request_is_one_prefixed_message(service in "\\PC{0,300}") {
            let r = request(&service);
            let len = u32::from_be_bytes([r[1], r[2], r[3], r[4]]) as usize;
            prop_assert_eq!(r[0], 0);
            prop_assert_eq!(len, r.len() - PREFIX_LEN);
            prop_assert!(r.ends_with(service.as_bytes()));
        }
    }
}
