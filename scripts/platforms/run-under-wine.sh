#!/usr/bin/env bash
# The JS test suite (vitest, all of __test__/ but the real-Blender tests) under wine, with the
# official node.exe and the windows-gnu build (standing in for the release's msvc build),
# installed as blender-mcp-pool.win32-x64-msvc.node where the loader looks first.
#   run-under-wine.sh [vitest args...]         e.g. __test__/execute.spec.mjs
# Wine uses Linux's TCP stack: what differs on real Windows (refused connects take ~2 s, ::1
# first for localhost) is not seen here; see README "Install".
source "$(dirname "$0")/common.sh"
tree="$(prepare_tree win32-x64 win32-x64-gnu win32-x64-msvc --os=win32 --cpu=x64)"
log "wine $(wine --version): node.exe $(cat "$NODE_WIN/.version"), vitest in $tree"
logs="$CACHE/logs"
mkdir -p "$logs"
# Output to files: a pipe as stdout gives node.exe EBADF under wine.
set +e
(cd "$tree" && CI= wine "$NODE_WIN/bin/node.exe" node_modules/vitest/vitest.mjs run --exclude __test__/blender.spec.mjs "$@" \
  > "$logs/wine.out" 2> "$logs/wine.err" < /dev/null)
rc=$?
set -e
wineserver -k 2>/dev/null || true
cat "$logs/wine.out"
[[ $rc -eq 0 ]] || tail -n 50 "$logs/wine.err" >&2
exit $rc
