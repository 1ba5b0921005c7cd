//! kai-init's own exit code from how the main child (or a failing `--pre` step) ended:
//! the child's code passes through, 128+N for a signal, and the `--success-code` remap.
//! Pure, so every rule is unit-tested without a process.

use crate::sys::status::Ended;

/// The code kai-init exits with: the child's code, 128+N for signal N (the shell's
/// convention, so `docker stop` of a TERM-killed child reads 143), and any code
/// listed with `--success-code` reported as 0.
pub fn exit_code(ended: Ended, success_codes: &[u8]) -> u8 {
    // A wait status holds codes 0..=255 and signals 1..=127; anything else (no kernel
    // reports it) reads as 255, never as a panic or a false 0.
    let code = match ended {
        Ended::Exited(code) => u8::try_from(code).ok(),
        Ended::Signaled(sig @ 1..=127) => u8::try_from(128 + sig).ok(),
        Ended::Signaled(_) => None,
    };
    let code = code.unwrap_or(u8::MAX);
    if success_codes.contains(&code) {
        0
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::status::{decode, WaitEvent};
    use proptest::prelude::*;

    #[test]
    fn codes_pass_through() {
        for code in [0, 1, 2, 42, 126, 127, 255] {
            assert_eq!(exit_code(Ended::Exited(code), &[]), code as u8);
        }
    }

    #[test]
    fn signals_become_128_plus_n() {
        assert_eq!(exit_code(Ended::Signaled(15), &[]), 143);
        assert_eq!(exit_code(Ended::Signaled(9), &[]), 137);
        assert_eq!(exit_code(Ended::Signaled(64), &[]), 192);
    }

    #[test]
    fn impossible_values_read_as_255_not_as_a_panic_or_success() {
        for ended in [
            Ended::Signaled(i32::MAX),
            Ended::Signaled(-128),
            Ended::Signaled(0),
            Ended::Exited(-1),
            Ended::Exited(256),
        ] {
            assert_eq!(exit_code(ended, &[]), 255, "{ended:?}");
        }
    }

    #[test]
    fn success_codes_remap_to_zero() {
        assert_eq!(exit_code(Ended::Signaled(15), &[143]), 0);
        assert_eq!(exit_code(Ended::Exited(143), &[143]), 0);
        assert_eq!(exit_code(Ended::Exited(1), &[143]), 1);
    }

    proptest! {
        /// Every i32 decodes as <sys/wait.h>'s layout says: the low 7 bits 0 is an exit
        /// with the code in bits 8..16, a low byte of 0x7f a stop, 0xffff a continue, and
        /// any other low 7 bits the signal (bit 7 is the core dump flag).
        #[test]
        fn decode_matches_the_wait_status_layout(raw in any::<i32>()) {
            let (low7, low8, high) = (raw & 0x7f, raw & 0xff, (raw >> 8) & 0xff);
            let want = if low7 == 0 {
                WaitEvent::Ended(Ended::Exited(high))
            } else if low8 == 0x7f {
                WaitEvent::Stopped(high)
            } else if low7 != 0x7f {
                WaitEvent::Ended(Ended::Signaled(low7))
            } else {
                WaitEvent::Continued
            };
            prop_assert_eq!(decode(raw), want);
            if let WaitEvent::Ended(ended) = decode(raw) {
                let code = exit_code(ended, &[]);
                prop_assert_eq!(i32::from(code), match ended {
                    Ended::Exited(c) => c,
                    Ended::Signaled(s) => 128 + s,
                });
            }
        }

        #[test]
        fn exit_code_never_panics_and_remaps_only_listed_codes(
            exited in any::<bool>(),
            // Uniform i32s would almost never reach the edges: small and extreme values too.
            n in prop_oneof![any::<i32>(), -300..300i32, i32::MIN..i32::MIN + 300, i32::MAX - 300..=i32::MAX],
            success in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let ended = if exited { Ended::Exited(n) } else { Ended::Signaled(n) };
            let plain = exit_code(ended, &[]);
            let real = if exited { (0..=255).contains(&n) } else { (1..=127).contains(&n) };
            if real {
                prop_assert_eq!(i32::from(plain), if exited { n } else { 128 + n });
            } else {
                prop_assert_eq!(plain, 255);
            }
            let remapped = exit_code(ended, &success);
            prop_assert_eq!(remapped, if success.contains(&plain) { 0 } else { plain });
        }
    }
}
