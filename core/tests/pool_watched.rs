//! Replies read by a [`ReadWatcher`] on the embedder's thread: a busy watcher thread does not
//! turn a reply that arrived in time into a timeout.
#![cfg(unix)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use blender_mcp_pool_core::{Pool, ReadWatcher};
use common::{req, result_of, test_config, PollWatcher, TestServer};
use serde_json::json;

// The watcher's lock is held across the call on purpose: it keeps the watcher's own thread busy.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_arrived_in_time_is_delivered_while_the_watcher_thread_is_busy() {
    let server = TestServer::echo().await;
    let watcher = Arc::new(PollWatcher::start());
    let mut config = test_config(server.port);
    config.socket_timeout = Duration::from_millis(300);
    let pool = Pool::builder(config)
        .watcher(Some(watcher.clone() as Arc<dyn ReadWatcher>))
        .start(tokio::runtime::Handle::current());
    assert_eq!(result_of(&pool.execute(req("warm", json!(0))).await.unwrap()), json!(0));
    // The watcher's thread is busy from before the request until after its reply timeout: the
    // reply, on the socket within a millisecond, must still be delivered, and be the only one.
    let busy = watcher.hold();
    let reply = pool.execute(req("echo", json!("in time"))).await;
    drop(busy);
    assert_eq!(result_of(&reply.expect("an on-time reply is not a timeout")), json!("in time"));
    assert_eq!(server.counts().accepted, 1, "the connection was kept");
    assert_eq!(result_of(&pool.execute(req("after", json!(2))).await.unwrap()), json!(2));
    assert_eq!(pool.stats().failed_requests, 0);
    pool.shutdown().await;
}
