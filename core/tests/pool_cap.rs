//! `max_connections` caps real sockets: a connection discarded while callers wait keeps its
//! slot until its socket is closed, so a replacement never overlaps it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use blender_mcp_pool_core::{CallOptions, Completion};
use common::{req, Reply, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_calls_in_flight_while_others_wait_never_exceeds_the_socket_cap() {
    let server =
        TestServer::start(|r| if r.kind == "slow" { Reply::EchoAfter(Duration::from_millis(20)) } else { Reply::Echo })
            .await;
    let pool = Arc::new(server.pool(|c| c.max_connections = 3));
    // A watcher samples the pool's own count of open and opening sockets throughout.
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (pool, watching) = (pool.clone(), watching.clone());
        std::thread::spawn(move || {
            let mut worst = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                let s = pool.stats();
                worst = worst.max(s.open_sockets + s.opening_connections);
            }
            worst
        })
    };
    for round in 0..100 {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut in_flight = Vec::new();
        for k in 0..3 {
            let tx = tx.clone();
            let call = pool.submit_with(
                req("slow", json!([round, k])),
                CallOptions::default(),
                Completion::new(move |r| drop(tx.send(r))),
            );
            in_flight.push(call);
        }
        for k in 3..6 {
            let tx = tx.clone();
            let _ = pool.submit(req("echo", json!([round, k])), Completion::new(move |r| drop(tx.send(r))));
        }
        for call in in_flight {
            pool.cancel(call);
        }
        drop(tx);
        let mut settled = 0;
        while rx.recv().await.is_some() {
            settled += 1;
        }
        assert_eq!(settled, 6, "round {round}: every call settles");
    }
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let worst = watcher.join().unwrap();
    assert!(worst <= 3, "open + opening sockets reached {worst} with max_connections 3");
    pool.shutdown().await;
}
