//! `validate-bench`: the pool's reply validation alone, in GB/s per reply shape: no socket, no
//! JavaScript. For each shape (`blender_mcp_pool_bench::shapes`) it builds one reply of
//! `--mb` MB (default 20) and times `check_reply` over the whole buffer, then the incremental
//! scanner fed 64 KiB at a time (as reads bring a reply), `--rounds` times (default 9), and
//! prints the median per line. `--shapes scene,printed` measures only those.
//!
//! Run: `cargo run --release -p blender-mcp-pool-bench --bin validate-bench [-- --mb 20]`.

use std::time::Instant;

use blender_mcp_pool_bench::args::Args;
use blender_mcp_pool_bench::shapes::{self, Shape};
use blender_mcp_pool_core::framing::{check_reply, ReplyScanner, Scan};

/// The bytes a read brings at a time in the incremental run.
const READ: usize = 64 * 1024;

fn main() {
    let args = Args::from_env();
    let mb: usize = args.get("mb", 20);
    let rounds: usize = args.get("rounds", 9);
    let only = args.text("shapes").map(|list| list.split(',').map(str::to_string).collect::<Vec<_>>());
    println!("kernel: {}", blender_mcp_pool_core::framing::scan::kernel_name());
    println!("| shape | reply | check_reply (whole) | scanner fed 64 KiB reads |");
    println!("|---|---|---|---|");
    for shape in Shape::ALL {
        if only.as_ref().is_some_and(|names| !names.iter().any(|n| n == shape.name())) {
            continue;
        }
        let reply = shapes::reply(shape, mb * 1_000_000);
        let whole = median_gbs(rounds, reply.len(), || {
            assert!(check_reply(&reply).is_ok(), "the {} reply is valid", shape.name());
        });
        let fed = median_gbs(rounds, reply.len(), || {
            let mut scanner = ReplyScanner::new();
            let mut end = 0;
            let scan = loop {
                end = (end + READ).min(reply.len());
                match scanner.scan(&reply[..end]) {
                    Scan::Incomplete | Scan::Empty if end < reply.len() => {}
                    other => break other,
                }
            };
            assert_eq!(scan, Scan::Complete { start: 0, end: reply.len() });
        });
        println!("| {} | {:.1} MB | {whole:.2} GB/s | {fed:.2} GB/s |", shape.name(), reply.len() as f64 / 1e6);
    }
}

/// The median over `rounds` runs of `run`, in GB/s of `bytes`.
fn median_gbs(rounds: usize, bytes: usize, mut run: impl FnMut()) -> f64 {
    run(); // warm: pages touched, code in cache
    let mut speeds: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            run();
            bytes as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    speeds.sort_by(f64::total_cmp);
    speeds[speeds.len() / 2]
}
