//! The state machine's rules, checked without sockets, threads or clocks: connections are ids,
//! time is whatever `now` the test says, and effects are inspected as data.

use std::sync::mpsc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::effects::Effects;

/// A pool config for the rules: 2 connections at most, none kept idle, and no probation after
/// a connection's first reply (its own test turns it on).
fn cfg() -> PoolConfig {
    let mut c = PoolConfig::new();
    c.max_connections = 2;
    c.min_connections = 0;
    c.new_connection_settle = Duration::ZERO;
    c
}

/// A clock the test moves.
struct Clock(Instant);

impl Clock {
    fn now(&self) -> Now {
        Now { at: self.0, wall_ms: 1_000.0 }
    }
    fn advance(&mut self, d: Duration) -> Now {
        self.0 += d;
        self.now()
    }
}

/// Every idle connection is alive.
fn alive(_: u64) -> Option<&'static str> {
    None
}

/// A whole, valid reply that leaves the connection in step, as the reader reports it.
fn ok_reply() -> Verdict {
    Verdict::Reply { outcome: Ok("{}".into()), reusable: true }
}

/// An `execute` call's number and its answer.
type Answer = (u64, Result<String, PoolError>);
type Replies = mpsc::Receiver<Answer>;

/// A machine and a channel that hears every answer of `execute` calls made with [`call`].
fn machine() -> (State, mpsc::Sender<Answer>, Replies) {
    let (tx, rx) = mpsc::channel();
    (State::default(), tx, rx)
}

/// An execute job numbered `n` whose answer goes to `tx`.
fn call(n: u64, tx: &mpsc::Sender<Answer>) -> Job {
    let tx = tx.clone();
    Job::Execute(
        Request::new("echo", format!("{{\"n\":{n}}}")),
        Completion::new(move |r| drop(tx.send((n, r)))).of_reply_text(),
    )
}

/// Runs the answers in `fx` (as the driver would) and returns them in order.
fn answered(fx: &mut Effects, rx: &Replies) -> Vec<Answer> {
    for (done, outcome) in fx.replies.drain(..) {
        done.complete(outcome);
    }
    rx.try_iter().collect()
}

/// Opens a connection as the driver would: a connect the machine asked for succeeded (one the
/// top-up asked for, when no connect is in progress).
fn open(st: &mut State, cfg: &PoolConfig, now: Now, fx: &mut Effects) -> u64 {
    if st.opening == 0 {
        st.opening = 1;
    }
    st.connected(cfg, now, now.at, Ok(()), &mut alive, fx).expect("opened")
}

#[test]
fn a_call_with_nothing_open_queues_and_asks_for_one_connect() {
    let (mut st, tx, _rx) = machine();
    let (cfg, clock) = (cfg(), Clock(Instant::now()));
    let mut fx = Effects::default();
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    assert_eq!((st.waiters.len(), st.opening, fx.connects), (1, 1, 1));
    assert!(fx.wake_maintenance, "the first waiter wakes the maintenance task");
    assert_eq!(fx.tally.waits, 1);
    assert!(fx.sends.is_empty());
}

#[test]
fn a_new_connection_serves_the_first_waiter_and_frames_its_request() {
    let (mut st, tx, _rx) = machine();
    let (cfg, clock) = (cfg(), Clock(Instant::now()));
    let mut fx = Effects::default();
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    assert_eq!(fx.sends, vec![(id, b"{\"n\":1}\n".to_vec())]);
    assert!(st.in_flight(id) && st.waiters.is_empty() && st.opening == 0);
    assert_eq!((st.sockets, fx.tally.connects), (1, 1));
}

#[test]
fn waiters_are_served_first_in_first_out_and_the_cap_holds() {
    let (mut st, tx, rx) = machine();
    let (cfg, clock) = (cfg(), Clock(Instant::now()));
    let mut fx = Effects::default();
    for n in 1..=5 {
        st.submit(&cfg, clock.now(), n, call(n, &tx), None, &mut alive, &mut fx);
    }
    assert_eq!(fx.connects, 2, "never more connects than maxConnections");
    let a = open(&mut st, &cfg, clock.now(), &mut fx);
    let b = open(&mut st, &cfg, clock.now(), &mut fx);
    let sent: Vec<_> = fx.sends.drain(..).map(|(id, bytes)| (id, String::from_utf8(bytes).unwrap())).collect();
    assert_eq!(sent, vec![(a, "{\"n\":1}\n".to_owned()), (b, "{\"n\":2}\n".to_owned())]);
    // Each reply frees its connection for the next waiter, in arrival order.
    for (conn, expect) in [(b, 3), (a, 4), (b, 5)] {
        let alive = st.on_read(&cfg, clock.now(), conn, ok_reply(), &mut alive, &mut fx);
        assert!(alive);
        let (id, bytes) = fx.sends.remove(0);
        assert_eq!((id, bytes), (conn, format!("{{\"n\":{expect}}}\n").into_bytes()));
    }
    assert_eq!(answered(&mut fx, &rx).iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![2, 1, 3]);
    assert!(st.sockets + st.opening <= cfg.max_connections);
}

#[test]
fn an_idle_connection_found_closed_is_dropped_before_anything_is_written() {
    let (mut st, tx, _rx) = machine();
    let mut cfg = cfg();
    cfg.max_connections = 1;
    let clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    let mut fx = Effects::default();
    let mut closed = |conn: u64| (conn == id).then_some("closed by Blender");
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut closed, &mut fx);
    assert_eq!(fx.closes, vec![(id, "closed-by-blender")]);
    assert!(fx.sends.is_empty(), "the request waits for a new connection instead");
    assert_eq!((st.waiters.len(), fx.connects), (1, 0), "its slot stays taken until the socket closes");
    let mut fx = Effects::default();
    st.socket_closed(&cfg, clock.now(), &mut fx);
    assert_eq!(fx.connects, 1);
}

#[test]
fn a_freed_connection_found_closed_is_not_handed_to_the_next_waiter_which_stays_first() {
    let (mut st, tx, rx) = machine();
    let mut cfg = cfg();
    cfg.max_connections = 1;
    let clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    st.submit(&cfg, clock.now(), 2, call(2, &tx), None, &mut alive, &mut fx);
    st.submit(&cfg, clock.now(), 3, call(3, &tx), None, &mut alive, &mut fx);
    // The reply to 1 arrives, and Blender closed the connection right after it.
    let mut fx = Effects::default();
    let mut closed = |conn: u64| (conn == id).then_some("closed by Blender");
    let reading = st.on_read(&cfg, clock.now(), id, ok_reply(), &mut closed, &mut fx);
    assert!(!reading, "the connection is gone: its reader stops");
    assert_eq!(answered(&mut fx, &rx).iter().map(|(n, r)| (*n, r.is_ok())).collect::<Vec<_>>(), vec![(1, true)]);
    assert_eq!(fx.closes, vec![(id, "closed-by-blender")]);
    assert!(fx.sends.is_empty(), "nothing is written to the closed connection");
    assert_eq!(st.waiters.iter().map(|w| w.call).collect::<Vec<_>>(), vec![2, 3], "the waiters keep their places");
    // Its slot frees once the socket closes; the new connection serves 2 first.
    let mut fx = Effects::default();
    st.socket_closed(&cfg, clock.now(), &mut fx);
    assert_eq!(fx.connects, 1);
    let mut fx = Effects::default();
    let next = st.connected(&cfg, clock.now(), clock.0, Ok(()), &mut alive, &mut fx).expect("opened");
    assert_eq!(fx.sends.len(), 1);
    assert_eq!(fx.sends[0].0, next);
    assert_eq!(&fx.sends[0].1[..], b"{\"n\":2}\n");
}

#[test]
fn a_lease_whose_connection_was_closed_fails_its_call_without_writing() {
    let (mut st, _tx, _rx) = machine();
    let (cfg, clock) = (cfg(), Clock(Instant::now()));
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    let (lease_tx, lease_rx) = mpsc::channel();
    st.submit(
        &cfg,
        clock.now(),
        1,
        Job::Acquire(Completion::new(move |r| drop(lease_tx.send(r)))),
        None,
        &mut alive,
        &mut fx,
    );
    for (done, outcome) in fx.grants.drain(..) {
        done.complete(outcome);
    }
    assert_eq!(lease_rx.try_recv().unwrap().unwrap(), id);
    let (reply_tx, reply_rx) = mpsc::channel();
    let mut fx = Effects::default();
    let mut closed = |conn: u64| (conn == id).then_some("closed by Blender");
    let done = Completion::new(move |r: Result<Reply, PoolError>| drop(reply_tx.send(r.map(|_| ()))));
    st.submit_on_lease(&cfg, clock.now(), id, 2, Request::new("echo", "{}"), None, done, &mut closed, &mut fx);
    assert!(fx.sends.is_empty());
    assert_eq!(fx.closes, vec![(id, "closed-by-blender")]);
    for (done, outcome) in fx.replies.drain(..) {
        done.complete(outcome);
    }
    assert_eq!(reply_rx.try_recv().unwrap().unwrap_err().code(), "ERR_CONNECTION_CLOSED");
}

#[test]
fn a_removed_connection_holds_its_slot_until_its_socket_is_closed() {
    let (mut st, tx, _rx) = machine();
    let mut cfg = cfg();
    cfg.max_connections = 1;
    let clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    st.submit(&cfg, clock.now(), 2, call(2, &tx), None, &mut alive, &mut fx);
    let mut fx = Effects::default();
    let _ = st.on_read(
        &cfg,
        clock.now(),
        id,
        Verdict::Failed(PoolError::ConnectionClosed("reset".into())),
        &mut alive,
        &mut fx,
    );
    assert_eq!(fx.closes, vec![(id, "ERR_CONNECTION_CLOSED")]);
    assert_eq!(fx.connects, 0, "the old socket is not closed yet");
    let mut fx = Effects::default();
    st.socket_closed(&cfg, clock.now(), &mut fx);
    assert_eq!(fx.connects, 1, "now the waiter gets a connect");
}

#[test]
fn a_bad_reply_fails_that_call_and_the_connection_is_never_reused() {
    let (mut st, tx, rx) = machine();
    let (cfg, clock) = (cfg(), Clock(Instant::now()));
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    let bad = PoolError::invalid_response("Reply is not valid JSON", b"{oops");
    let alive_after =
        st.on_read(&cfg, clock.now(), id, Verdict::Reply { outcome: Err(bad), reusable: false }, &mut alive, &mut fx);
    assert!(!alive_after);
    assert_eq!(answered(&mut fx, &rx)[0].1.as_ref().unwrap_err().code(), "ERR_INVALID_RESPONSE");
    assert_eq!(fx.closes, vec![(id, "ERR_INVALID_RESPONSE")]);
    assert_eq!(fx.tally.failed, 1);
    assert!(st.conns.is_empty() && st.idle.is_empty());
}

#[test]
fn bytes_nobody_asked_for_discard_an_idle_connection_but_whitespace_does_not() {
    let (mut st, _tx, _rx) = machine();
    let (cfg, clock) = (cfg(), Clock(Instant::now()));
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    assert!(st.on_read(&cfg, clock.now(), id, Verdict::Pending { stray: None }, &mut alive, &mut fx));
    let stray = PoolError::invalid_response("3 bytes arrived while no request was in flight", b"abc");
    assert!(!st.on_read(&cfg, clock.now(), id, Verdict::Pending { stray: Some(stray) }, &mut alive, &mut fx));
    assert_eq!(fx.closes, vec![(id, "ERR_INVALID_RESPONSE")]);
}

#[test]
fn the_reply_timeout_restarts_with_progress_and_fires_on_silence() {
    let (mut st, tx, rx) = machine();
    let mut cfg = cfg();
    cfg.socket_timeout = Duration::from_millis(100);
    let mut clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    let sent_at = clock.0;
    let now = clock.advance(Duration::from_millis(80));
    // Bytes arrived at 80 ms: the deadline moves to 180 ms.
    assert_eq!(st.on_timer(&cfg, now, id, now.at, &mut alive, &mut fx), Some(sent_at + Duration::from_millis(180)));
    let now = clock.advance(Duration::from_millis(100));
    assert_eq!(st.on_timer(&cfg, now, id, sent_at + Duration::from_millis(80), &mut alive, &mut fx), None);
    let answers = answered(&mut fx, &rx);
    assert_eq!(answers[0].1.as_ref().unwrap_err(), &PoolError::ResponseTimeout(Duration::from_millis(100), None));
    assert_eq!(fx.closes, vec![(id, "ERR_RESPONSE_TIMEOUT")]);
}

#[test]
fn an_idle_connection_above_the_minimum_closes_after_idle_timeout() {
    let (mut st, _tx, _rx) = machine();
    let mut cfg = cfg();
    cfg.idle_timeout = Duration::from_millis(50);
    let mut clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    let now = clock.now();
    assert_eq!(st.on_timer(&cfg, now, id, now.at, &mut alive, &mut fx), Some(now.at + Duration::from_millis(50)));
    let now = clock.advance(Duration::from_millis(50));
    assert_eq!(st.on_timer(&cfg, now, id, now.at, &mut alive, &mut fx), None);
    assert_eq!(fx.closes, vec![(id, "idle-timeout")]);
}

#[test]
fn a_connection_retires_after_its_quota_of_requests() {
    let (mut st, tx, _rx) = machine();
    let mut cfg = cfg();
    cfg.max_requests_per_connection = 2;
    let clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    for n in 1..=2 {
        st.submit(&cfg, clock.now(), n, call(n, &tx), None, &mut alive, &mut fx);
        let _ = st.on_read(&cfg, clock.now(), id, ok_reply(), &mut alive, &mut fx);
    }
    assert_eq!(fx.closes, vec![(id, "max-requests")]);
}

#[test]
fn cancelling_a_waiter_sends_nothing_and_cancelling_in_flight_discards() {
    let (mut st, tx, rx) = machine();
    let (cfg, clock) = (cfg(), Clock(Instant::now()));
    let mut fx = Effects::default();
    st.submit(&cfg, clock.now(), 7, call(7, &tx), None, &mut alive, &mut fx);
    st.cancel(&cfg, clock.now(), 7, &mut fx);
    assert_eq!(answered(&mut fx, &rx)[0].1.as_ref().unwrap_err().code(), "ABORT_ERR");
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    assert!(fx.sends.is_empty(), "the cancelled call was never sent");
    st.submit(&cfg, clock.now(), 8, call(8, &tx), None, &mut alive, &mut fx);
    st.cancel(&cfg, clock.now(), 8, &mut fx);
    assert_eq!(answered(&mut fx, &rx)[0].1.as_ref().unwrap_err().code(), "ABORT_ERR");
    assert_eq!(fx.closes, vec![(id, "ABORT_ERR")]);
}

#[test]
fn a_caller_held_by_an_outage_fails_after_the_retry_budget_with_the_connect_error() {
    let (mut st, tx, rx) = machine();
    let mut cfg = cfg();
    cfg.connect_retry_timeout = Duration::from_millis(300);
    let mut clock = Clock(Instant::now());
    let mut fx = Effects::default();
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    let refused = PoolError::Connect { addr: "127.0.0.1:9876".into(), reason: "connection refused".into() };
    let started = clock.0;
    let now = clock.advance(Duration::from_millis(1));
    assert_eq!(st.connected(&cfg, now, started, Err(refused.clone()), &mut alive, &mut fx), None);
    assert_eq!(fx.tally.connect_failures, 1);
    // Within its budget it keeps waiting; the maintenance round retries once the back-off is due.
    let now = clock.advance(Duration::from_millis(100));
    let next = st.housekeep(&cfg, now, &mut fx).unwrap();
    assert!(next <= started + Duration::from_millis(301), "looks again by the budget's end");
    assert!(answered(&mut fx, &rx).is_empty());
    let now = clock.advance(Duration::from_millis(250));
    let _ = st.housekeep(&cfg, now, &mut fx);
    let answers = answered(&mut fx, &rx);
    assert_eq!(answers[0].1.as_ref().unwrap_err(), &refused);
    assert!(st.waiters.is_empty());
}

#[test]
fn while_connects_fail_only_one_probe_runs_at_a_time() {
    let (mut st, tx, _rx) = machine();
    let mut cfg = cfg();
    cfg.max_connections = 5;
    cfg.connect_retry_timeout = Duration::from_secs(60);
    let mut clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let refused = PoolError::Connect { addr: "h:1".into(), reason: "connection refused".into() };
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    let _ = st.connected(&cfg, clock.now(), clock.0, Err(refused.clone()), &mut alive, &mut fx);
    let mut fx = Effects::default();
    for n in 2..=20 {
        st.submit(&cfg, clock.now(), n, call(n, &tx), None, &mut alive, &mut fx);
    }
    assert_eq!(fx.connects, 0, "no connect before the back-off is due");
    let now = clock.advance(Duration::from_millis(300));
    let _ = st.housekeep(&cfg, now, &mut fx);
    assert_eq!((fx.connects, fx.tally.retries), (1, 1), "one probe for twenty callers");
}

#[test]
fn shutdown_fails_waiters_closes_idle_connections_and_reports_done_once_sockets_close() {
    let (mut st, tx, rx) = machine();
    let (cfg, clock) = (cfg(), Clock(Instant::now()));
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    st.submit(&cfg, clock.now(), 2, call(2, &tx), None, &mut alive, &mut fx);
    assert_eq!(st.opening, 1, "call 2 asked for a second connection");
    let (done_tx, done_rx) = mpsc::channel();
    let mut fx = Effects::default();
    st.shutdown(Some(Completion::new(move |r| drop(done_tx.send(r)))), &mut fx);
    assert_eq!(
        answered(&mut fx, &rx).iter().map(|(n, r)| (*n, r.as_ref().unwrap_err().code())).collect::<Vec<_>>(),
        vec![(2, "ERR_POOL_SHUTDOWN")]
    );
    assert!(fx.shutdown_done.is_empty(), "call 1 is still in flight");
    // The request in flight finishes; then its connection closes instead of going idle.
    let _ = st.on_read(&cfg, clock.now(), id, ok_reply(), &mut alive, &mut fx);
    assert_eq!(fx.closes, vec![(id, "shutdown")]);
    st.socket_closed(&cfg, clock.now(), &mut fx);
    assert!(fx.shutdown_done.is_empty(), "a connect is still in progress");
    // It succeeds after all: the socket is dropped unused, and shutdown is done.
    assert_eq!(st.connected(&cfg, clock.now(), clock.0, Ok(()), &mut alive, &mut fx), None);
    assert_eq!(fx.shutdown_done.len(), 1);
    for done in fx.shutdown_done.drain(..) {
        done.complete(Ok(()));
    }
    assert!(done_rx.try_recv().is_ok());
    let mut fx = Effects::default();
    st.submit(&cfg, clock.now(), 3, call(3, &tx), None, &mut alive, &mut fx);
    assert_eq!(fx.connects, 0, "nothing reconnects after shutdown");
}

#[test]
fn a_lease_takes_a_connection_and_gives_it_back_to_the_next_waiter() {
    let (mut st, tx, _rx) = machine();
    let mut cfg = cfg();
    cfg.max_connections = 1;
    let clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    let (lease_tx, lease_rx) = mpsc::channel();
    st.submit(
        &cfg,
        clock.now(),
        1,
        Job::Acquire(Completion::new(move |r| drop(lease_tx.send(r)))),
        None,
        &mut alive,
        &mut fx,
    );
    for (done, granted) in fx.grants.drain(..) {
        done.complete(granted);
    }
    assert_eq!(lease_rx.try_recv().unwrap(), Ok(id));
    st.submit(&cfg, clock.now(), 2, call(2, &tx), None, &mut alive, &mut fx);
    assert!(fx.sends.is_empty(), "the leased connection is not the pool's to give");
    let mut fx = Effects::default();
    st.submit_on_lease(
        &cfg,
        clock.now(),
        id,
        3,
        Request::new("echo", "{}"),
        None,
        Completion::new(|_| {}),
        &mut alive,
        &mut fx,
    );
    assert_eq!(fx.sends.len(), 1);
    let mut busy = Effects::default();
    st.submit_on_lease(
        &cfg,
        clock.now(),
        id,
        4,
        Request::new("echo", "{}"),
        None,
        Completion::new(|_| {}),
        &mut alive,
        &mut busy,
    );
    assert_eq!(busy.replies[0].1.as_ref().unwrap_err().code(), "ERR_CONNECTION_BUSY");
    let _ = st.on_read(&cfg, clock.now(), id, ok_reply(), &mut alive, &mut fx);
    assert!(matches!(st.conns[&id].phase, Phase::Leased), "back to its lease, not to the pool");
    let mut fx = Effects::default();
    st.end_lease(&cfg, clock.now(), id, &mut alive, &mut fx);
    assert_eq!(fx.sends.len(), 1, "released: the waiter gets it");
}

#[test]
fn after_its_first_reply_a_connection_is_watched_before_the_next_waiter_gets_it() {
    let (mut st, tx, rx) = machine();
    let mut cfg = cfg();
    cfg.max_connections = 1;
    cfg.new_connection_settle = Duration::from_millis(25);
    let mut clock = Clock(Instant::now());
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    st.submit(&cfg, clock.now(), 2, call(2, &tx), None, &mut alive, &mut fx);
    let mut fx = Effects::default();
    let reply = ok_reply();
    assert!(st.on_read(&cfg, clock.now(), id, reply, &mut alive, &mut fx), "its reader goes on watching");
    assert_eq!(answered(&mut fx, &rx).len(), 1);
    assert!(fx.sends.is_empty(), "the waiter is not handed the connection yet");
    assert_eq!(fx.wakes, vec![id], "its task is told when to look again");
    let until = clock.0 + cfg.new_connection_settle;
    let mut fx = Effects::default();
    assert_eq!(st.on_timer(&cfg, clock.now(), id, clock.0, &mut alive, &mut fx), Some(until));
    // Quiet for the settle: the waiter gets it.
    let now = clock.advance(cfg.new_connection_settle);
    let mut fx = Effects::default();
    assert!(st.on_timer(&cfg, now, id, clock.0, &mut alive, &mut fx).is_some());
    assert_eq!(fx.sends.len(), 1);
    assert_eq!(&fx.sends[0].1[..], b"{\"n\":2}\n");
    // Its second reply does not put it on probation again: the next waiter gets it at once.
    st.submit(&cfg, clock.now(), 3, call(3, &tx), None, &mut alive, &mut fx);
    let mut fx = Effects::default();
    let reply = ok_reply();
    let _ = st.on_read(&cfg, clock.now(), id, reply, &mut alive, &mut fx);
    assert_eq!(fx.sends.len(), 1);
}

#[test]
fn bytes_or_a_close_during_probation_end_the_connection_and_the_waiter_keeps_its_place() {
    for verdict in
        [Verdict::Closed, Verdict::Pending { stray: Some(PoolError::invalid_response("late greeting", b"{")) }]
    {
        let (mut st, tx, rx) = machine();
        let mut cfg = cfg();
        cfg.max_connections = 1;
        cfg.new_connection_settle = Duration::from_millis(25);
        let clock = Clock(Instant::now());
        let mut fx = Effects::default();
        let id = open(&mut st, &cfg, clock.now(), &mut fx);
        st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
        st.submit(&cfg, clock.now(), 2, call(2, &tx), None, &mut alive, &mut fx);
        let reply = ok_reply();
        let _ = st.on_read(&cfg, clock.now(), id, reply, &mut alive, &mut fx);
        assert_eq!(answered(&mut fx, &rx).iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![1]);
        let mut fx = Effects::default();
        assert!(!st.on_read(&cfg, clock.now(), id, verdict, &mut alive, &mut fx));
        assert_eq!(fx.closes.len(), 1);
        assert!(fx.sends.is_empty());
        assert!(answered(&mut fx, &rx).is_empty(), "nobody else is answered");
        assert_eq!(st.waiters.iter().map(|w| w.call).collect::<Vec<_>>(), vec![2]);
    }
}

#[test]
fn once_a_connection_came_through_its_probation_clean_new_ones_skip_it_until_something_is_out_of_step() {
    let (mut st, tx, _rx) = machine();
    let mut cfg = cfg();
    cfg.max_connections = 1;
    cfg.new_connection_settle = Duration::from_millis(25);
    let mut clock = Clock(Instant::now());
    assert_eq!(st.settle(&cfg), cfg.new_connection_settle, "a new pool watches its connections");
    let mut fx = Effects::default();
    let id = open(&mut st, &cfg, clock.now(), &mut fx);
    st.submit(&cfg, clock.now(), 1, call(1, &tx), None, &mut alive, &mut fx);
    let reply = ok_reply();
    let _ = st.on_read(&cfg, clock.now(), id, reply, &mut alive, &mut fx);
    assert!(matches!(st.conns[&id].phase, Phase::Probation { .. }));
    let now = clock.advance(cfg.new_connection_settle);
    let _ = st.on_timer(&cfg, now, id, clock.0, &mut alive, &mut fx);
    assert!(st.proven && st.settle(&cfg).is_zero(), "proven: the next connections are not watched");
    // Its replacement's first reply makes it available at once.
    let mut fx = Effects::default();
    let _ = st.remove(id, "max-requests", &mut fx);
    st.socket_closed(&cfg, clock.now(), &mut fx);
    let next = open(&mut st, &cfg, clock.now(), &mut fx);
    st.submit(&cfg, clock.now(), 2, call(2, &tx), None, &mut alive, &mut fx);
    let reply = ok_reply();
    let _ = st.on_read(&cfg, clock.now(), next, reply, &mut alive, &mut fx);
    assert!(matches!(st.conns[&next].phase, Phase::Idle));
    // Closed while idle: out of step; new connections are watched again.
    let _ = st.on_read(&cfg, clock.now(), next, Verdict::Closed, &mut alive, &mut fx);
    assert!(!st.proven);
    assert_eq!(st.settle(&cfg), cfg.new_connection_settle);
}
