#!/usr/bin/env bash
# node.exe under wine, for a caller that reads its output through pipes: node.exe's stdout and
# stderr go to files (a pipe gives it EBADF under wine), copied out when it exits.
source "$(dirname "$0")/common.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
set +e
wine "$NODE_WIN/bin/node.exe" "$@" > "$tmp/out" 2> "$tmp/err" < /dev/null
rc=$?
set -e
cat "$tmp/out"
cat "$tmp/err" >&2
exit $rc
