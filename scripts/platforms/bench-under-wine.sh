#!/usr/bin/env bash
# The benchmark's JS contenders (blender-mcp-pool and the raw Node socket) on node.exe under
# wine, against the native mock server on Linux: bench/run.mjs with BENCH_NODE.
#   bench-under-wine.sh [bench/run.mjs options]     default: --only c1,c16,reply-20MB --rounds 3
# Wine is not Windows: its sockets are Linux's, its thread wake-ups wine's. The figures compare
# builds and read paths with each other under wine, nothing more.
source "$(dirname "$0")/common.sh"
tree="$(prepare_tree win32-x64 win32-x64-gnu win32-x64-msvc --os=win32 --cpu=x64)"
(cd "$ROOT" && cargo build --release --locked -q -p blender-mcp-pool-bench)
args=("$@")
[[ ${#args[@]} -gt 0 ]] || args=(--only c1,c16,reply-20MB --rounds 3)
cd "$tree"
BENCH_NODE="$(printf '["bash","%s"]' "$PLATFORMS_DIR/wine-node.sh")" CARGO_TARGET_DIR="$ROOT/target" \
  exec node bench/run.mjs --contenders native,raw --json "$CACHE/logs/bench-wine.json" "${args[@]}"
