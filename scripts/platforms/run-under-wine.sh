#!/usr/bin/env bash
# The JS test suite (vitest, all of __test__/ but the real-Blender tests) under wine, with the
# official node.exe and the windows-gnu build (standing in for the release's msvc build),
# installed as blender-mcp-pool.win32-x64-msvc.node where the loader looks first. Twice, as
# `npm test` does natively: replies read on the event loop (libuv's uv_poll, found in node.exe),
# then on the I/O thread (BLENDER_POOL_IO_THREAD_READS=1).
#   run-under-wine.sh [vitest args...]         e.g. __test__/api/execute.spec.mjs
# Wine uses Linux's TCP stack: what differs on real Windows (refused connects take ~2 s, ::1
# first for localhost) is not seen here; see docs/platforms.md.
source "$(dirname "$0")/common.sh"
tree="$(prepare_tree win32-x64 win32-x64-gnu win32-x64-msvc --os=win32 --cpu=x64)"
log "wine $(wine --version): node.exe $(cat "$NODE_WIN/.version"), vitest in $tree"
logs="$CACHE/logs"
mkdir -p "$logs"
rc=0
for reads in event-loop io-thread; do
  log "replies read on the $reads"
  io_thread=0
  [[ $reads == io-thread ]] && io_thread=1
  # Output to files: a pipe as stdout gives node.exe EBADF under wine.
  run_rc=0
  (cd "$tree" && CI= BLENDER_POOL_IO_THREAD_READS=$io_thread wine "$NODE_WIN/bin/node.exe" node_modules/vitest/vitest.mjs run \
    --exclude '__test__/blender/**' "$@" > "$logs/wine-$reads.out" 2> "$logs/wine-$reads.err" < /dev/null) || run_rc=$?
  wineserver -k 2>/dev/null || true
  cat "$logs/wine-$reads.out"
  [[ $run_rc -eq 0 ]] || { rc=$run_rc; tail -n 50 "$logs/wine-$reads.err" >&2; }
done
exit $rc
