//! Reading a reply: the one way, however the socket is read (by the connection's task, by a
//! watcher on the embedder's thread, or by the task again after a big reply is handed over).
//!
//! [`Reader::read`] is fed a `recv` function (one non-blocking read into a buffer). It reads a
//! burst, finds where the reply ends with the framing's decoder, validates it, and says what it
//! found as a [`Verdict`] for the state machine. It knows nothing of the pool, so it is tested
//! with plain byte slices.
//!
//! Security note: the buffer never grows much past `maxResponseBytes`: reading pauses once the
//! body passes the limit, and the verdict then fails the connection.

use std::io;

use tokio::time::Instant;

use crate::error::PoolError;
use crate::framing::{fault_error, take_spare, Checked, Decoder, Framing, NotBlender, Reply, Scan};

/// What a connection's reader found, for the state machine (`State::on_read`).
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Nothing to act on yet. `stray`: bytes of something other than whitespace arrived, and
    /// the error to fail the connection with if no request was in flight.
    Pending { stray: Option<PoolError> },
    /// A complete reply (validated), and whether the stream is still in step for another.
    Reply { outcome: Result<Reply, PoolError>, reusable: bool },
    /// The peer closed its side with nothing of a reply received.
    Closed,
    /// The connection cannot go on: reset, EOF inside a reply, a reply too large or not an
    /// object.
    Failed(PoolError),
}

/// The receive side of a connection: the reply in progress, and when bytes last came.
#[derive(Debug)]
pub(crate) struct Reader {
    buf: Vec<u8>,
    scanner: Decoder,
    framing: Framing,
    limit: usize,
    /// When bytes last arrived: the reply timeout restarts from here.
    pub(crate) progress: Instant,
}

/// How one burst of reads ended.
enum Burst {
    /// The socket has nothing more for now (or the budget is spent).
    Data,
    /// The peer closed its side (possibly after sending bytes).
    Eof,
    /// The read failed (reset, ...).
    Failed(io::Error),
}

impl Reader {
    /// Least spare room offered to each read.
    const MIN_SPARE: usize = 16 * 1024;
    /// A reply past this size is big: its buffer is reserved up to the limit (see `reserve`).
    const BIG: usize = 1024 * 1024;
    /// The most address space reserved up front for one reply; past it the buffer doubles.
    const MAX_RESERVE: usize = 1024 * 1024 * 1024;
    /// Reservations from this size up are backed by huge pages where Linux allows it (see
    /// [`advise_huge_pages`]). Allocators map a block this big on its own (glibc from 32 MiB
    /// at most, musl from 128 KiB), so the advice only ever covers the reply's own pages.
    const HUGE_PAGES_FROM: usize = 32 * 1024 * 1024;

    pub(crate) fn new(framing: Framing, limit: usize) -> Self {
        Reader { buf: Vec::new(), scanner: Decoder::new(framing, limit), framing, limit, progress: Instant::now() }
    }

    /// Bytes of the reply in progress received so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Reads a burst with `recv` (one non-blocking read appended to the buffer, `Ok(0)` at end
    /// of stream), at most about `budget` bytes, and says what the bytes amount to. Also returns
    /// whether the socket was drained (a read came back short, or would block).
    pub(crate) fn read(
        &mut self,
        recv: impl FnMut(&mut Vec<u8>) -> io::Result<usize>,
        budget: usize,
    ) -> (Verdict, bool) {
        let before = self.buf.len();
        let (burst, drained) = self.fill(recv, budget);
        if self.buf.len() > before {
            self.progress = Instant::now();
        }
        (self.verdict(burst), drained)
    }

    /// Makes room for the next read. Returns the room offered.
    ///
    /// A small reply grows the buffer geometrically. Once a reply passes [`Self::BIG`], or as
    /// soon as a length prefix says how long it is, the buffer is reserved up to the limit (or
    /// the announced length) in one go, so that it never moves again: growing a 16 MB buffer
    /// to 32 MB is a 16 MB copy whenever the allocator serves it from its heap rather than by
    /// `mremap`, which glibc does once an earlier big reply was freed (its mmap threshold
    /// rises). Reserving is only address space: pages are touched as bytes arrive. A big reply
    /// takes the spare buffer of an earlier one when there is one ([`crate::framing::recycle`]):
    /// its pages are already there.
    fn reserve(&mut self) -> usize {
        let len = self.buf.len();
        if self.buf.capacity() - len < Self::MIN_SPARE {
            let doubled = len.max(Self::MIN_SPARE).min(self.limit.saturating_add(1)).max(Self::MIN_SPARE);
            let target = match self.scanner.expected_len() {
                Some(total) => total.max(len) + Self::MIN_SPARE,
                None if len >= Self::BIG => self.limit.saturating_add(1).min(Self::MAX_RESERVE).max(len + doubled),
                None => len + doubled,
            };
            if target >= Self::BIG {
                if let Some(mut spare) = take_spare(target) {
                    spare.extend_from_slice(&self.buf);
                    self.buf = spare;
                    return self.buf.capacity() - self.buf.len();
                }
            }
            // An allocator that cannot reserve that much address space still gets the doubling.
            if self.buf.try_reserve_exact(target - len).is_err() {
                self.buf.reserve(doubled);
            } else if target >= Self::HUGE_PAGES_FROM {
                advise_huge_pages(&mut self.buf);
            }
        }
        self.buf.capacity() - self.buf.len()
    }

    /// Reads until the socket is drained, the buffer passes the limit (an oversized reply is
    /// never buffered whole) or about `budget` bytes were read.
    ///
    /// A read that returns less than the room offered has drained the socket: it ends the burst
    /// without the extra `recv` returning `EAGAIN` that a read-until-`WouldBlock` loop pays per
    /// reply (a reader on tokio's readiness reports the short read as `WouldBlock` so that the
    /// readiness is cleared at once).
    fn fill(&mut self, mut recv: impl FnMut(&mut Vec<u8>) -> io::Result<usize>, budget: usize) -> (Burst, bool) {
        let start = self.buf.len();
        loop {
            let room = self.reserve();
            match recv(&mut self.buf) {
                Ok(0) => return (Burst::Eof, true),
                Ok(n) if n < room => return (Burst::Data, true),
                Ok(_) if self.buf.len() > self.limit || self.buf.len() - start >= budget => {
                    return (Burst::Data, false)
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (Burst::Data, true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Burst::Failed(e), true),
            }
        }
    }

    /// What the buffer amounts to after a burst that ended as `burst`.
    fn verdict(&mut self, burst: Burst) -> Verdict {
        let eof = match burst {
            Burst::Data => false,
            Burst::Eof => true,
            Burst::Failed(e) => return Verdict::Failed(PoolError::ConnectionClosed(format!("read failed: {e}"))),
        };
        match self.scanner.scan(&self.buf) {
            // A reply that arrived whole in one read can be over the limit too.
            Scan::Complete { start, end } if end - start > self.limit => {
                Verdict::Failed(PoolError::ResponseTooLarge { limit: self.limit })
            }
            Scan::Complete { start, end } => {
                crate::failpoint::hit(crate::failpoint::Failpoint::PanicOnReply);
                let checked = self.scanner.response();
                let (outcome, in_step) = self.take_reply(start, end, checked);
                if !in_step {
                    tracing::warn!(code = "ERR_INVALID_RESPONSE", "discarding connection: bytes followed the reply");
                }
                Verdict::Reply { reusable: outcome.is_ok() && in_step && !eof, outcome }
            }
            Scan::TooLarge(declared) => {
                tracing::debug!(declared, "reply length prefix over maxResponseBytes");
                Verdict::Failed(PoolError::ResponseTooLarge { limit: self.limit })
            }
            Scan::NotAnObject(at) => {
                Verdict::Failed(PoolError::invalid_response("Reply is not a JSON object", &self.buf[at..]))
            }
            // Found wrong before its end: the rest is never read, the connection goes. A reply
            // that was already past the limit there counts as too large.
            Scan::Invalid { at, .. } if at - self.scanner.body_start(at) >= self.limit => {
                Verdict::Failed(PoolError::ResponseTooLarge { limit: self.limit })
            }
            Scan::Invalid { at, fault } => {
                let start = self.scanner.body_start(at);
                Verdict::Failed(fault_error(fault, at - start, &self.buf[start..]))
            }
            Scan::Incomplete if self.body_len() > self.limit => {
                Verdict::Failed(PoolError::ResponseTooLarge { limit: self.limit })
            }
            Scan::Incomplete if eof => Verdict::Failed(PoolError::ConnectionClosed(format!(
                "Blender closed the connection after {} bytes of an incomplete reply",
                self.buf.len()
            ))),
            Scan::Incomplete => Verdict::Pending {
                stray: Some(PoolError::invalid_response(
                    format!("{} bytes arrived while no request was in flight", self.buf.len()),
                    &self.buf,
                )),
            },
            // Only whitespace: nothing of a reply has started. Dropped as it comes, so a peer
            // sending only whitespace cannot grow the buffer.
            Scan::Empty => {
                self.buf.clear();
                self.scanner.reset();
                if eof {
                    Verdict::Closed
                } else {
                    Verdict::Pending { stray: None }
                }
            }
        }
    }

    /// Bytes of the reply's body received so far: what the limit is measured against, leading
    /// whitespace and length prefix left out.
    fn body_len(&self) -> usize {
        self.buf.len() - self.scanner.body_start(self.buf.len())
    }

    /// Takes the complete reply `buf[start..end]` (valid JSON, found to be `checked`) out of
    /// the buffer, leaving it empty for the next one. Returns the reply text, and whether what
    /// followed it keeps the stream in step (nothing, or whitespace with bare-JSON framing).
    fn take_reply(
        &mut self,
        start: usize,
        end: usize,
        checked: Result<Checked, NotBlender>,
    ) -> (Result<Reply, PoolError>, bool) {
        let mut bytes = std::mem::take(&mut self.buf);
        self.scanner.reset();
        let in_step = self.framing.is_harmless_extra(&bytes[end..]);
        bytes.truncate(end);
        drop(bytes.drain(..start));
        // A big reply keeps its buffer's capacity (address space only), for whoever recycles it
        // ([`Reply::into_string`] gives it back); a small one's doubling is trimmed.
        if bytes.capacity() < Self::BIG && bytes.capacity() - bytes.len() > Self::MIN_SPARE.max(bytes.len() / 8) {
            bytes.shrink_to_fit();
        }
        let outcome = match checked {
            Ok(Checked { ascii }) => Ok(Reply::validated(bytes, ascii)),
            Err(not) => Err(PoolError::invalid_response(not.message(), &bytes)),
        };
        (outcome, in_step)
    }
}

/// Asks Linux to back a big reply buffer with transparent huge pages (`MADV_HUGEPAGE`; the
/// system default here is `madvise`, so nothing is huge unless asked).
///
/// Reading a reply into fresh memory costs a page fault per page touched. With 4 KiB pages a
/// 20 MB reply takes ~4,900 faults, measured at 8-17 ms to fill 20 MB in a fresh process on the
/// 2-vCPU VM, about half of the whole read; with 2 MiB pages 3-4 ms (10 runs each). There is no
/// safe way to give the advice.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages(buf: &mut Vec<u8>) {
    const HUGE: usize = 2 * 1024 * 1024;
    let start = buf.as_mut_ptr() as usize;
    let from = start.next_multiple_of(HUGE);
    let to = (start + buf.capacity()) & !(HUGE - 1);
    if to > from {
        // Safety: `[from, to)` lies inside `buf`'s allocation, mapped for as long as `buf`
        // lives. MADV_HUGEPAGE only changes how the kernel backs those pages: their contents
        // and validity stay as they are. If the kernel refuses (no THP), nothing changed.
        let _ = unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_HUGEPAGE) };
    }
}

/// Elsewhere there is nothing to ask for.
#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_buf: &mut Vec<u8>) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` to `r`, one read burst each (a chunk shorter than the room offered ends
    /// its burst, as a drained socket does), then end of stream if `eof`. Returns the verdicts.
    fn read_all(r: &mut Reader, chunks: &[&[u8]], eof: bool) -> Vec<Verdict> {
        let mut verdicts: Vec<Verdict> = chunks
            .iter()
            .map(|chunk| {
                let mut left = Some(*chunk);
                r.read(
                    |buf| match left.take() {
                        Some(c) => {
                            buf.extend_from_slice(c);
                            Ok(c.len())
                        }
                        None => Err(io::ErrorKind::WouldBlock.into()),
                    },
                    usize::MAX,
                )
                .0
            })
            .collect();
        if eof {
            verdicts.push(r.read(|_| Ok(0), usize::MAX).0);
        }
        verdicts
    }

    fn last(mut v: Vec<Verdict>) -> Verdict {
        v.pop().expect("a verdict")
    }

    #[test]
    fn a_reply_in_pieces_is_pending_until_complete() {
        let mut r = Reader::new(Framing::Json, 1000);
        let v = read_all(&mut r, &[b"{\"status\":", b"\"success\"}"], false);
        assert!(matches!(v[0], Verdict::Pending { stray: Some(_) }), "{v:?}");
        assert!(
            matches!(&v[1], Verdict::Reply { outcome: Ok(t), reusable: true } if t.as_bytes() == br#"{"status":"success"}"#),
            "{v:?}"
        );
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn whitespace_alone_is_dropped_and_a_close_then_is_clean() {
        let mut r = Reader::new(Framing::Json, 10);
        let v = read_all(&mut r, &[b"  \n\t  \n   \n"], false);
        assert!(matches!(v[0], Verdict::Pending { stray: None }));
        assert_eq!(r.len(), 0, "never accumulates");
        assert!(matches!(last(read_all(&mut r, &[], true)), Verdict::Closed));
    }

    #[test]
    fn trailing_bytes_leave_the_connection_unusable_trailing_whitespace_does_not() {
        let mut r = Reader::new(Framing::Json, 1000);
        let v = last(read_all(&mut r, &[br#"{"status":"success"}{"status":"success"}"#], false));
        assert!(matches!(v, Verdict::Reply { outcome: Ok(_), reusable: false }), "{v:?}");
        let mut r = Reader::new(Framing::Json, 1000);
        let v = last(read_all(&mut r, &[br#"{"status":"success"}  "#], false));
        assert!(matches!(v, Verdict::Reply { outcome: Ok(_), reusable: true }), "{v:?}");
    }

    #[test]
    fn an_incomplete_reply_at_eof_and_a_failed_read_fail_the_connection() {
        let mut r = Reader::new(Framing::Json, 1000);
        let v = last(read_all(&mut r, &[b"{\"status\""], true));
        assert!(
            matches!(v, Verdict::Failed(PoolError::ConnectionClosed(ref d)) if d.contains("after 9 bytes")),
            "{v:?}"
        );
        let mut r = Reader::new(Framing::Json, 1000);
        let (v, _) = r.read(|_: &mut Vec<u8>| Err(io::ErrorKind::ConnectionReset.into()), usize::MAX);
        assert!(matches!(v, Verdict::Failed(PoolError::ConnectionClosed(ref d)) if d.starts_with("read failed")));
    }

    #[test]
    fn the_limit_counts_the_body_only() {
        let body = br#"{"status":"success","r":"xxxxxxxxxx"}"#;
        let limit = body.len();
        let mut r = Reader::new(Framing::LengthPrefixed, limit);
        let prefix = (body.len() as u32).to_be_bytes();
        let v = read_all(&mut r, &[&prefix, &body[..20], &body[20..]], false);
        assert!(matches!(v[1], Verdict::Pending { .. }), "prefix plus part of the body is not over: {v:?}");
        assert!(matches!(v[2], Verdict::Reply { outcome: Ok(_), .. }), "{v:?}");
        let mut r = Reader::new(Framing::Json, 5);
        let v = last(read_all(&mut r, &[b"  {\"status\":\"success\""], false));
        assert!(matches!(v, Verdict::Failed(PoolError::ResponseTooLarge { limit: 5 })), "{v:?}");
    }

    #[test]
    fn an_invalid_byte_fails_the_connection_before_the_reply_ends() {
        let mut r = Reader::new(Framing::Json, 1000);
        let v = last(read_all(&mut r, &[b"  {\"status\":\"success\",\"r\":[1,2 3"], false));
        let Verdict::Failed(PoolError::InvalidResponse { reason, sample }) = v else { panic!("{v:?}") };
        assert!(reason.starts_with("Reply is not valid JSON") && reason.ends_with("offset 29)"), "{reason}");
        assert_eq!(sample, "{\"status\":\"success\",\"r\":[1,2 3", "the sample starts at the reply's first byte");
        let mut r = Reader::new(Framing::LengthPrefixed, 1000);
        let v = last(read_all(&mut r, &[&[0, 0, 0, 30], b"{\"status\":\"\xff"], false));
        assert!(
            matches!(v, Verdict::Failed(PoolError::InvalidResponse { ref reason, .. }) if reason.contains("UTF-8")),
            "{v:?}"
        );
    }

    #[test]
    fn a_reply_says_whether_it_is_ascii() {
        for (reply, ascii) in [(r#"{"status":"success","r":"abc"}"#, true), (r#"{"status":"success","r":"é"}"#, false)]
        {
            let mut r = Reader::new(Framing::Json, 1000);
            let v = last(read_all(&mut r, &[reply.as_bytes()], false));
            assert!(
                matches!(&v, Verdict::Reply { outcome: Ok(t), .. } if t.is_ascii() == ascii && t.as_bytes() == reply.as_bytes()),
                "{v:?}"
            );
        }
    }

    /// Feeds a big reply in 64 KiB reads; returns the buffer's address after each read but the
    /// last (which takes the reply out), and the last verdict.
    fn big_reply_addresses(r: &mut Reader, len: usize) -> (Vec<usize>, Verdict) {
        let mut reply = br#"{"status":"success","r":""#.to_vec();
        reply.resize(len - 2, b'a');
        reply.extend_from_slice(br#""}"#);
        let mut addresses = Vec::new();
        let mut verdict = None;
        for chunk in reply.chunks(64 * 1024) {
            let v = last(read_all(r, &[chunk], false));
            if matches!(v, Verdict::Pending { .. }) {
                addresses.push(r.buf.as_ptr() as usize);
            }
            verdict = Some(v);
        }
        (addresses, verdict.expect("a verdict"))
    }

    #[test]
    fn a_big_reply_is_read_into_a_buffer_that_never_moves_once_it_is_big() {
        let limit = 8 * 1024 * 1024;
        let mut r = Reader::new(Framing::Json, limit);
        let (addresses, v) = big_reply_addresses(&mut r, 5 * 1024 * 1024);
        assert!(matches!(&v, Verdict::Reply { outcome: Ok(t), reusable: true } if t.len() == 5 * 1024 * 1024), "{v:?}");
        let big = Reader::BIG / (64 * 1024);
        let moved = addresses[big..].windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(moved, 0, "the buffer moved after the reply passed 1 MiB");
        // The reply hands over its buffer's capacity too, for the binding to recycle.
        let Verdict::Reply { outcome: Ok(reply), .. } = v else { unreachable!() };
        assert!(reply.into_bytes().capacity() > limit);
    }

    #[test]
    fn a_big_reply_is_read_into_the_buffer_a_collected_one_gave_back() {
        let limit = 4 * 1024 * 1024;
        let mut r = Reader::new(Framing::Json, limit);
        let (_, first) = big_reply_addresses(&mut r, 2 * 1024 * 1024);
        let Verdict::Reply { outcome: Ok(first), .. } = first else { panic!("{first:?}") };
        let bytes = first.into_bytes();
        let given_back = bytes.as_ptr() as usize;
        crate::framing::recycle(bytes);
        let (addresses, second) = big_reply_addresses(&mut r, 3 * 1024 * 1024);
        assert!(matches!(&second, Verdict::Reply { outcome: Ok(t), .. } if t.len() == 3 * 1024 * 1024), "{second:?}");
        assert_eq!(addresses.last(), Some(&given_back), "the second reply reuses the first one's buffer");
    }

    #[test]
    fn bytes_arriving_is_progress_a_read_that_finds_none_is_not() {
        let mut r = Reader::new(Framing::Json, 100);
        let long_ago = Instant::now() - std::time::Duration::from_secs(60);
        r.progress = long_ago;
        let _ = read_all(&mut r, &[], false);
        let _ = r.read(|_| Err(io::ErrorKind::WouldBlock.into()), usize::MAX);
        assert_eq!(r.progress, long_ago, "a catch-up read that found nothing");
        let _ = read_all(&mut r, &[b"{"], false);
        assert!(r.progress > long_ago);
    }
}
