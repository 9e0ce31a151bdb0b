#!/usr/bin/env bash
# An arm64 Node under qemu-user with the linux-arm64 build: the JS suite (vitest in worker
# threads) less the tests that start node child processes, then the smoke script
# (__test__/package/smoke.mjs), which covers what those left out (a process that exits without
# shutdown()) by starting its child through qemu.
#   run-under-qemu.sh [gnu|musl]    gnu (default): the official arm64 Node 20 (npm), glibc;
#                                   musl: the musl arm64 Node 22 (PyPI), the linux-arm64-musl build
# Why not the whole suite: without binfmt_misc (none in this container) a child started with
# process.execPath (an arm64 ELF) cannot run; vitest's default fork pool and the CLI, process,
# loader, logger and dual-stack tests all start such children.
source "$(dirname "$0")/common.sh"
libc="${1:-gnu}"
case "$libc" in
  gnu) suffix=linux-arm64-gnu node="$NODE_ARM64/bin/node" qemu=(qemu-aarch64-static -L /usr/aarch64-linux-gnu) ;;
  musl) suffix=linux-arm64-musl node="$NODE_ARM64_MUSL/bin/node" qemu=(qemu-aarch64-static) ;;
  *) die "usage: run-under-qemu.sh [gnu|musl]" ;;
esac
tree="$(prepare_tree "$suffix" "$suffix" "$suffix" --os=linux --cpu=arm64 "--libc=$([[ $libc == gnu ]] && echo glibc || echo musl)")"
log "$(qemu-aarch64-static --version | head -n 1): arm64 node $("${qemu[@]}" "$node" --version) ($libc) in $tree"
cd "$tree"
wrap=()
if [[ $libc == musl ]]; then
  # The loader tells musl from glibc by /usr/bin/ldd: a musl one (as Alpine's) over it, in a
  # private mount namespace; without namespaces, NAPI_RS_NATIVE_LIBRARY_PATH instead.
  ldd="$CACHE/musl-ldd-arm64"
  printf '#!/bin/sh\n# musl libc ldd, as on Alpine\nexec %s --list "$@"\n' "$MUSL_ROOT/usr/lib/aarch64-linux-musl/libc.so" > "$ldd"
  chmod +x "$ldd"
  if unshare -m true 2>/dev/null; then
    wrap=(unshare -m sh -c 'mount --bind "$0" /usr/bin/ldd && exec "$@"' "$ldd")
  else
    echo "note: mount namespaces not allowed here: NAPI_RS_NATIVE_LIBRARY_PATH set" >&2
    export NAPI_RS_NATIVE_LIBRARY_PATH="$tree/blender-mcp-pool.$suffix.node"
  fi
fi
rc=0
# Without binfmt_misc a node child of this arm64 node cannot start: the specs that start one
# are left out here (they run on x64, musl and under wine; the smoke script below starts its
# children through qemu and covers what they test of the binary).
children=(package/cli lifecycle/process package/loader api/logger api/dual-stack lifecycle/gc lifecycle/log-output package/mock-cli
  api/reply-handover api/socket-client lifecycle/unreachable)
# Every MCP spec starts the fixture server as a node child.
excludes=(--exclude '__test__/blender/**' --exclude '__test__/mcp/**')
for spec in "${children[@]}"; do excludes+=(--exclude "__test__/$spec.spec.mjs"); done
CI= "${wrap[@]}" "${qemu[@]}" "$node" node_modules/vitest/vitest.mjs run --pool=threads "${excludes[@]}" || rc=$?
smoke_node="$(printf '"%s",' "$(command -v qemu-aarch64-static)" "${qemu[@]:1}" "$node")"
SMOKE_NODE="[${smoke_node%,}]" LOG_LEVEL="${LOG_LEVEL:-error}" "${wrap[@]}" "${qemu[@]}" "$node" __test__/package/smoke.mjs || rc=$?
exit $rc
