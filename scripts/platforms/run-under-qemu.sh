#!/usr/bin/env bash
# The official arm64 Node under qemu-user, with the linux-arm64-gnu build: the JS suite (vitest
# in worker threads) less the tests that start node child processes, then the smoke script
# (scripts/platforms/smoke.mjs), which covers what those left out (a process that exits without
# shutdown()) through qemu explicitly.
#   run-under-qemu.sh
# Why not the whole suite: without binfmt_misc (none in this container) a child started with
# process.execPath (an arm64 ELF) cannot run; vitest's default fork pool and the CLI, process,
# loader, logger and dual-stack tests all start such children.
source "$(dirname "$0")/common.sh"
tree="$(prepare_tree linux-arm64-gnu linux-arm64-gnu linux-arm64-gnu --os=linux --cpu=arm64 --libc=glibc)"
node="$NODE_ARM64/bin/node"
qemu=(qemu-aarch64-static -L /usr/aarch64-linux-gnu)
log "$(qemu-aarch64-static --version | head -n 1): arm64 node $(cat "$NODE_ARM64/.version") in $tree"
cd "$tree"
rc=0
CI= "${qemu[@]}" "$node" node_modules/vitest/vitest.mjs run --pool=threads --exclude __test__/blender.spec.mjs \
  --exclude __test__/cli.spec.mjs --exclude __test__/process.spec.mjs --exclude __test__/loader.spec.mjs \
  --exclude __test__/logger.spec.mjs --exclude __test__/dual-stack.spec.mjs || rc=$?
SMOKE_NODE="$(printf '["%s","-L","/usr/aarch64-linux-gnu","%s"]' "$(command -v qemu-aarch64-static)" "$node")" \
  LOG_LEVEL="${LOG_LEVEL:-error}" "${qemu[@]}" "$node" scripts/platforms/smoke.mjs || rc=$?
exit $rc
