//! hyper's runtime traits over tokio: the byte stream (`hyper::rt::Read`/`Write`) and the
//! timer its header-read timeout needs. hyper-util has both, but pulls in far more than
//! these few lines; and this read path needs no `unsafe` (it copies through a small stack
//! buffer instead of handing hyper's uninitialised memory to tokio; the requests here are
//! a few hundred bytes).
//!
//! TCP and Unix connections are one enum, not a generic parameter, so hyper's connection
//! code is compiled once (a generic copy per stream type cost ~30 KiB of binary).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::ReadBufCursor;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// One accepted health connection.
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Forwards a method call to whichever stream is inside.
macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Tcp($s) => $e,
            Stream::Unix($s) => $e,
        }
    };
}

impl Stream {
    /// Resolves once the peer has sent something (or closed), without reading it.
    ///
    /// `readable()` alone is not enough: tokio may report a freshly registered socket as
    /// ready before anything arrived (its docs allow false positives), which would set up
    /// hyper, and its buffers, for every idle connection. A `MSG_PEEK` confirms; when it
    /// finds nothing, `try_io` clears the stale readiness and the wait goes on.
    pub async fn first_byte(&self) -> io::Result<()> {
        loop {
            each!(self, s => s.readable().await)?;
            match each!(self, s => s.try_io(Interest::READABLE, || peek(s.as_raw_fd()))) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }
}

/// One byte peeked, not consumed; EOF (0 bytes) counts as news too.
fn peek(fd: RawFd) -> io::Result<()> {
    use nix::sys::socket::{recv, MsgFlags};
    let mut byte = [0u8; 1];
    recv(fd, &mut byte, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT)
        .map(drop)
        .map_err(io::Error::from)
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; 2048];
        let want = buf.remaining().min(chunk.len());
        let mut rb = ReadBuf::new(&mut chunk[..want]);
        ready!(each!(self.get_mut(), s => Pin::new(s).poll_read(cx, &mut rb)))?;
        buf.put_slice(rb.filled());
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
}

/// tokio's timer for hyper (it needs one for `header_read_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Timer;

struct Sleep(Pin<Box<tokio::time::Sleep>>);

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for Sleep {}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(Box::pin(tokio::time::sleep_until(deadline.into()))))
    }
}
