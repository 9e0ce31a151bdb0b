#!/usr/bin/env bash
# The smoke script (scripts/platforms/smoke.mjs) on the official arm64 Node under qemu-user,
# with the linux-arm64-gnu build. Not the whole suite: without binfmt_misc (none in this
# container) every child process the tests spawn with process.execPath fails to start, and
# emulated V8 is ~10x slower, past the suite's timing-based timeouts.
source "$(dirname "$0")/common.sh"
tree="$(prepare_tree linux-arm64-gnu linux-arm64-gnu linux-arm64-gnu)"
node="$NODE_ARM64/bin/node"
qemu=(qemu-aarch64-static -L /usr/aarch64-linux-gnu)
log "$(qemu-aarch64-static --version | head -n 1): arm64 node $(cat "$NODE_ARM64/.version"), smoke in $tree"
cd "$tree"
SMOKE_NODE="$(printf '["%s","-L","/usr/aarch64-linux-gnu","%s"]' "$(command -v qemu-aarch64-static)" "$node")" \
  LOG_LEVEL="${LOG_LEVEL:-error}" exec "${qemu[@]}" "$node" scripts/platforms/smoke.mjs
