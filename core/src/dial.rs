//! Dialling Blender: every address the host name resolves to, staggered ("Happy Eyeballs",
//! RFC 8305), as Node's own sockets do (`autoSelectFamily`).
//!
//! `localhost`, the default host, resolves to `::1` first on Windows and on many Linux
//! systems, while Blender's add-on listens on IPv4 only. Trying the addresses one after another
//! costs the whole failure of the first before the second is tried: on Windows a refused
//! connect on loopback is reported only after ~2 s of SYN retries, and an unreachable address
//! can take much longer. Here the next address is tried as soon as the previous attempt fails,
//! or after [`ATTEMPT_DELAY`] if it has not finished by then, with earlier attempts left
//! running: the first to connect wins, the others are dropped (closed).
//!
//! On Windows, each attempt on a loopback address is also told not to retransmit its SYN
//! (`SIO_TCP_INITIAL_RTO`, as libuv does for Node's sockets), so a closed port on this machine
//! is reported at once instead of after ~2 s.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// How long an attempt runs before the next address is tried alongside it (RFC 8305 says
/// 250 ms; Node's `autoSelectFamilyAttemptTimeout` defaults to 250 ms).
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to `host:port`: resolves the name, then dials its addresses staggered. The caller
/// bounds the whole (resolution included) with its connect timeout.
pub(crate) async fn dial(host: &str, port: u16) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    dial_addrs(interleave(addrs), ATTEMPT_DELAY).await
}

/// RFC 8305 §4: the addresses alternate between families, starting with the family of the
/// first one (the resolver's preference), each family keeping the resolver's order.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else { return addrs };
    let first_is_v6 = first.is_ipv6();
    let (mut preferred, mut other): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| a.is_ipv6() == first_is_v6);
    let mut out = Vec::with_capacity(preferred.len() + other.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Dials `addrs` in order, starting the next one when the previous attempt fails or after
/// `delay`, whichever comes first. Returns the first connection made; if every attempt fails,
/// the most telling error (see [`most_telling`]) with every address's outcome in its text.
pub(crate) async fn dial_addrs(addrs: Vec<SocketAddr>, delay: Duration) -> io::Result<TcpStream> {
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the host name has no address"));
    }
    let several = addrs.len() > 1;
    let mut queue = addrs.into_iter();
    let mut attempts = JoinSet::new();
    let mut failures: Vec<(SocketAddr, io::Error)> = Vec::new();
    let _ = attempts.spawn(attempt(queue.next().expect("not empty")));
    loop {
        let more = queue.len() > 0;
        tokio::select! {
            joined = attempts.join_next(), if !attempts.is_empty() => {
                match joined.expect("not empty") {
                    // The other attempts are aborted (their sockets closed) when `attempts` drops.
                    Ok((_, Ok(stream))) => return Ok(stream),
                    Ok((addr, Err(e))) => failures.push((addr, e)),
                    Err(join) => return Err(io::Error::other(format!("connect attempt ended: {join}"))),
                }
                // A failure starts the next address at once.
                if let Some(addr) = queue.next() {
                    let _ = attempts.spawn(attempt(addr));
                }
            }
            () = tokio::time::sleep(delay), if more => {
                let _ = attempts.spawn(attempt(queue.next().expect("more")));
            }
        }
        if attempts.is_empty() && queue.len() == 0 {
            return Err(summarise(failures, several));
        }
    }
}

/// One connect attempt; its address comes back with the outcome.
async fn attempt(addr: SocketAddr) -> (SocketAddr, io::Result<TcpStream>) {
    let outcome = async {
        let socket = if addr.is_ipv6() { TcpSocket::new_v6()? } else { TcpSocket::new_v4()? };
        #[cfg(windows)]
        if addr.ip().is_loopback() {
            // Best effort, as libuv: older Windows (before 10 1709) refuses the option.
            let _ = no_syn_retransmissions(&socket);
        }
        socket.connect(addr).await
    }
    .await;
    (addr, outcome)
}

/// The error to report when every address failed: a refusal if any (the host was reached and
/// nothing listens: Blender is not running, the actionable case), else the last one. With
/// several addresses its text names each address and how it failed.
fn summarise(mut failures: Vec<(SocketAddr, io::Error)>, several: bool) -> io::Error {
    let pick = most_telling(&failures);
    let (addr, err) = failures.remove(pick);
    if !several {
        return err;
    }
    let mut text = format!("{err} at {addr}");
    for (other, e) in &failures {
        text.push_str(&format!("; {other}: {e}"));
    }
    io::Error::new(err.kind(), text)
}

/// Index of the failure [`summarise`] reports.
fn most_telling(failures: &[(SocketAddr, io::Error)]) -> usize {
    failures.iter().rposition(|(_, e)| e.kind() == io::ErrorKind::ConnectionRefused).unwrap_or(failures.len() - 1)
}

/// `SIO_TCP_INITIAL_RTO` with no SYN retransmission: a connect to a closed port on loopback
/// fails at once (Windows otherwise retries the SYN for ~2 s before reporting the refusal).
#[cfg(windows)]
#[allow(unsafe_code)]
fn no_syn_retransmissions(socket: &TcpSocket) -> io::Result<()> {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{
        WSAIoctl, SIO_TCP_INITIAL_RTO, SOCKET, SOCKET_ERROR, TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS,
        TCP_INITIAL_RTO_PARAMETERS,
    };
    let params = TCP_INITIAL_RTO_PARAMETERS {
        Rtt: TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS,
        MaxSynRetransmissions: TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS as u8,
    };
    let mut returned = 0u32;
    // Safety: `socket` is an open socket for the duration of the call; the input buffer is a
    // live TCP_INITIAL_RTO_PARAMETERS of the size passed; no output buffer, overlapped
    // structure or completion routine is given (a synchronous call); `returned` is writable.
    let status = unsafe {
        WSAIoctl(
            socket.as_raw_socket() as SOCKET,
            SIO_TCP_INITIAL_RTO,
            std::ptr::from_ref(&params).cast(),
            std::mem::size_of::<TCP_INITIAL_RTO_PARAMETERS>() as u32,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
            None,
        )
    };
    if status == SOCKET_ERROR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    fn v4(last: u8, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, last), port))
    }
    fn v6(last: u16, port: u16) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last), port, 0, 0))
    }

    /// A listener on 127.0.0.1 whose accept queue is full: a connect to it gets no answer at
    /// all (its SYNs are dropped) for as long as the test runs, like a black-holed address.
    fn black_hole() -> (socket2::Socket, std::net::TcpStream, SocketAddr) {
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener.bind(&v4(1, 0).into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // Fills the queue (of one): the handshake completes in the kernel, never accepted.
        let filler = std::net::TcpStream::connect(addr).unwrap();
        (listener, filler, addr)
    }

    /// A port on 127.0.0.1 where connects are refused: bound, not listening, for as long as
    /// the socket lives (so no other test's server can be given it).
    fn refused() -> (socket2::Socket, SocketAddr) {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&v4(1, 0).into()).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        (socket, addr)
    }

    #[test]
    fn interleave_alternates_families_from_the_first() {
        let addrs = vec![v6(1, 9), v6(2, 9), v4(1, 9), v4(2, 9), v4(3, 9)];
        assert_eq!(interleave(addrs), vec![v6(1, 9), v4(1, 9), v6(2, 9), v4(2, 9), v4(3, 9)]);
        let addrs = vec![v4(1, 9), v6(1, 9), v6(2, 9)];
        assert_eq!(interleave(addrs), vec![v4(1, 9), v6(1, 9), v6(2, 9)]);
        assert_eq!(interleave(vec![v4(7, 9)]), vec![v4(7, 9)]);
        assert_eq!(interleave(Vec::new()), Vec::<SocketAddr>::new());
    }

    #[tokio::test]
    async fn connects_to_the_only_address() {
        let listener = tokio::net::TcpListener::bind(v4(1, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = dial("127.0.0.1", addr.port()).await.unwrap();
        assert_eq!(stream.peer_addr().unwrap(), addr);
    }

    #[tokio::test]
    async fn a_first_address_that_never_answers_does_not_hold_up_the_second() {
        let (_listener, _filler, hole) = black_hole();
        let listener = tokio::net::TcpListener::bind(v4(1, 0)).await.unwrap();
        let good = listener.local_addr().unwrap();
        // One after the other, the connect to `hole` would wait for the kernel's SYN retries
        // (over a minute) before `good` is tried: this bound would be hit.
        let stream = tokio::time::timeout(Duration::from_secs(10), dial_addrs(vec![hole, good], ATTEMPT_DELAY))
            .await
            .expect("the second address was not tried while the first hung")
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good);
        let (_accepted, from) = listener.accept().await.unwrap();
        assert_eq!(from, stream.local_addr().unwrap());
    }

    #[tokio::test]
    async fn a_failed_attempt_starts_the_next_address_at_once() {
        let listener = tokio::net::TcpListener::bind(v4(1, 0)).await.unwrap();
        let good = listener.local_addr().unwrap();
        // With an hour's stagger, only the refusal of the first can start the second.
        let (_bound, dead) = refused();
        let stream =
            tokio::time::timeout(Duration::from_secs(10), dial_addrs(vec![dead, good], Duration::from_secs(3600)))
                .await
                .expect("the second address waited for the stagger delay")
                .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good);
    }

    #[tokio::test]
    async fn every_address_refused_reports_the_refusal_and_each_address() {
        let ((_a, a), (_b, b)) = (refused(), refused());
        let err = dial_addrs(vec![a, b], ATTEMPT_DELAY).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let text = err.to_string();
        assert!(text.contains(&a.to_string()) && text.contains(&b.to_string()), "{text}");
        // One address: the error as the OS gave it, no decoration.
        let err = dial_addrs(vec![a], ATTEMPT_DELAY).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(!err.to_string().contains(&a.to_string()), "{err}");
    }

    #[test]
    fn the_refusal_is_the_telling_failure() {
        let failures = vec![
            (v6(2, 9), io::Error::from(io::ErrorKind::NetworkUnreachable)),
            (v4(1, 9), io::Error::from(io::ErrorKind::ConnectionRefused)),
            (v6(3, 9), io::Error::from(io::ErrorKind::TimedOut)),
        ];
        assert_eq!(most_telling(&failures), 1);
        let err = summarise(failures, true);
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(err.to_string().starts_with("connection refused at 127.0.0.1:9; [2001:db8::2]:9: "), "{err}");
        let failures = vec![
            (v6(2, 9), io::Error::from(io::ErrorKind::NetworkUnreachable)),
            (v4(1, 9), io::Error::from(io::ErrorKind::TimedOut)),
        ];
        assert_eq!(most_telling(&failures), 1);
    }

    #[tokio::test]
    async fn a_name_without_addresses_is_an_error() {
        let err = dial_addrs(Vec::new(), ATTEMPT_DELAY).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
