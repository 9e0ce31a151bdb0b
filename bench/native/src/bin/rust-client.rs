//! `rust-client`: the floor without JavaScript. Runs one benchmark workload against the mock
//! server with plain blocking `std::net::TcpStream`s and prints one line of JSON with the same
//! fields as `bench/contender.mjs` (`opsPerSec`, `p50Us`, `p99Us`, CPU per op, peak RSS).
//!
//! Options: `--port P` `--host H` `--kind echo|big|exec` `--params JSON` (echo) `--bytes N`
//! (big: reply size; exec: script size) `--ops N` `--warmup N` `--concurrency C`
//! `--connections M`. C callers run on C threads; when M < C they share M connections through a
//! small blocking pool (first free, else wait), so a caller's latency includes its wait, as with
//! a JS pool. With C = 1 the single caller runs on the main thread.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use blender_mcp_pool_bench::args::{fail, Args};
use blender_mcp_pool_bench::{make_code, usage};
use blender_mcp_pool_core::framing::{ReplyScanner, Scan};
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// What each call sends and what its reply must look like.
struct Workload {
    kind: String,
    params: Value,
    /// `big`: the expected length of `result`.
    reply_bytes: Option<usize>,
}

impl Workload {
    fn from_args(args: &Args) -> Self {
        let kind = args.text("kind").unwrap_or("echo").to_string();
        let bytes: usize = args.get("bytes", 0);
        let (params, reply_bytes) = match kind.as_str() {
            "echo" => {
                let text = args.text("params").unwrap_or("{}");
                let params = serde_json::from_str(text).unwrap_or_else(|e| fail(&format!("bad --params: {e}")));
                (params, None)
            }
            "big" => match args.get::<u64>("pace-ms", 0) {
                0 => (json!({ "bytes": bytes }), Some(bytes)),
                pace => (json!({ "bytes": bytes, "pace_ms": pace }), Some(bytes)),
            },
            "exec" => (json!({ "code": make_code(bytes) }), None),
            other => fail(&format!("unknown --kind {other:?} (echo, big or exec)")),
        };
        Workload { kind, params, reply_bytes }
    }

    /// The request line, serialised afresh for each call as a JS caller does.
    fn request(&self) -> Vec<u8> {
        let kind = if self.kind == "exec" { "execute_code" } else { self.kind.as_str() };
        let mut out = serde_json::to_vec(&json!({ "type": kind, "params": &self.params })).expect("a Value serialises");
        out.push(b'\n');
        out
    }

    fn check(&self, reply: &Value) -> Result<()> {
        if reply.get("status").and_then(Value::as_str) != Some("success") {
            return Err(format!("unexpected reply status: {}", reply.get("status").unwrap_or(&Value::Null)).into());
        }
        if let Some(n) = self.reply_bytes {
            let len = reply.get("result").and_then(Value::as_str).map_or(0, str::len);
            if len != n {
                return Err(format!("big reply of {len} bytes, expected {n}").into());
            }
        }
        Ok(())
    }
}

/// One blocking connection to the server, with a reply buffer kept across calls.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    chunk: Vec<u8>,
}

impl Connection {
    fn open(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream, buf: Vec::new(), chunk: vec![0; 256 * 1024] })
    }

    /// Sends one request and returns the parsed reply (the first JSON object received).
    fn call(&mut self, request: &[u8]) -> Result<Value> {
        self.stream.write_all(request)?;
        self.buf.clear();
        let mut scanner = ReplyScanner::new();
        loop {
            let n = self.stream.read(&mut self.chunk)?;
            if n == 0 {
                return Err("connection closed before the reply was complete".into());
            }
            self.buf.extend_from_slice(&self.chunk[..n]);
            match scanner.scan(&self.buf) {
                Scan::Incomplete | Scan::Empty => {}
                Scan::Complete { end, .. } if end != self.buf.len() => return Err("bytes after the reply".into()),
                Scan::Complete { .. } => return Ok(serde_json::from_slice(&self.buf)?),
                other => return Err(format!("not a valid reply: {other:?}").into()),
            }
        }
    }
}

/// Connections shared by the callers: take the first free one, or wait for one.
struct Pool {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

impl Pool {
    fn take(&self) -> Connection {
        let mut idle = self.idle.lock().unwrap();
        loop {
            if let Some(conn) = idle.pop() {
                return conn;
            }
            idle = self.freed.wait(idle).unwrap();
        }
    }

    fn give(&self, conn: Connection) {
        self.idle.lock().unwrap().push(conn);
        self.freed.notify_one();
    }
}

/// One caller: takes call numbers from `next` until `ops` are taken; returns its latencies (µs).
fn caller(pool: &Pool, work: &Workload, next: &AtomicUsize, ops: usize) -> Result<Vec<f64>> {
    let mut latencies = Vec::new();
    while next.fetch_add(1, Ordering::Relaxed) < ops {
        let start = Instant::now();
        let request = work.request();
        let mut conn = pool.take();
        let reply = conn.call(&request);
        pool.give(conn);
        work.check(&reply?)?;
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
    }
    Ok(latencies)
}

/// Runs `ops` calls with `concurrency` callers; returns every latency (µs).
fn run_phase(pool: &Pool, work: &Workload, ops: usize, concurrency: usize) -> Result<Vec<f64>> {
    let next = AtomicUsize::new(0);
    if concurrency == 1 {
        return caller(pool, work, &next, ops);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..concurrency).map(|_| s.spawn(|| caller(pool, work, &next, ops))).collect();
        let mut all = Vec::with_capacity(ops);
        for h in handles {
            all.extend(h.join().map_err(|_| "a caller thread panicked")??);
        }
        Ok(all)
    })
}

/// Nearest-rank percentile of sorted values (the same rule as `bench/contender.mjs`).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn run(args: &Args) -> Result<Value> {
    let addr = format!("{}:{}", args.text("host").unwrap_or("127.0.0.1"), args.get::<u16>("port", 0));
    let work = Workload::from_args(args);
    let ops: usize = args.get("ops", 1000);
    let warmup: usize = args.get("warmup", 0);
    let concurrency: usize = args.get::<usize>("concurrency", 1).max(1);
    let connections: usize = args.get::<usize>("connections", concurrency).clamp(1, concurrency);

    let idle = (0..connections).map(|_| Connection::open(&addr)).collect::<Result<Vec<_>>>()?;
    let pool = Pool { idle: Mutex::new(idle), freed: Condvar::new() };
    let rss_start_kb = usage::rss_kb();
    run_phase(&pool, &work, warmup, concurrency)?;

    let (proc0, main0) = (usage::cpu_us(false), usage::cpu_us(true));
    let start = Instant::now();
    let mut latencies = run_phase(&pool, &work, ops, concurrency)?;
    let seconds = start.elapsed().as_secs_f64();
    let (proc1, main1) = (usage::cpu_us(false), usage::cpu_us(true));

    latencies.sort_by(f64::total_cmp);
    let per_op = |us: f64| us / ops as f64;
    Ok(json!({
        "ops": ops,
        "seconds": seconds,
        "opsPerSec": ops as f64 / seconds,
        "p50Us": percentile(&latencies, 50.0),
        "p99Us": percentile(&latencies, 99.0),
        "elu": null,
        // The main thread does the calls only when there is a single caller.
        "mainCpuPerOpUs": if concurrency == 1 { json!(per_op(main1 - main0)) } else { Value::Null },
        "procCpuPerOpUs": per_op(proc1 - proc0),
        "peakRssKb": usage::peak_rss_kb(),
        "rssStartKb": rss_start_kb,
    }))
}

fn main() {
    let args = Args::from_env();
    match run(&args) {
        Ok(result) => println!("{result}"),
        Err(e) => fail(&format!("rust-client: {e}")),
    }
}
