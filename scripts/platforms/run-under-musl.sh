#!/usr/bin/env bash
# The JS test suite (vitest, all of __test__/ but the real-Blender tests) on a musl build of Node
# with the linux-x64-musl build of the addon.
#   run-under-musl.sh [vitest args...]
# The loader decides musl or glibc from /usr/bin/ldd: in a private mount namespace, a musl ldd
# (as Alpine's: a script running musl's loader) is bind-mounted over it, so the loader takes the
# musl binary as it would on Alpine. Where namespaces are not allowed, NAPI_RS_NATIVE_LIBRARY_PATH
# points it at the musl binary instead and the loader tests are left out (said so).
source "$(dirname "$0")/common.sh"
tree="$(prepare_tree linux-x64-musl linux-x64-musl linux-x64-musl --os=linux --cpu=x64 --libc=musl)"
node="$NODE_MUSL/bin/node"
ldd="$CACHE/musl-ldd"
printf '#!/bin/sh\n# musl libc ldd, as on Alpine\nexec %s --list "$@"\n' "$MUSL_ROOT/usr/lib/x86_64-linux-musl/libc.so" > "$ldd"
chmod +x "$ldd"
log "musl node $("$node" --version), vitest in $tree"
cmd=("$node" node_modules/vitest/vitest.mjs run --exclude '__test__/blender/**' "$@")
cd "$tree"
if unshare -m true 2>/dev/null; then
  CI= exec unshare -m sh -c 'mount --bind "$0" /usr/bin/ldd && exec "$@"' "$ldd" "${cmd[@]}"
fi
echo "note: mount namespaces not allowed here: loader tests skipped, NAPI_RS_NATIVE_LIBRARY_PATH set" >&2
CI= NAPI_RS_NATIVE_LIBRARY_PATH="$tree/blender-mcp-pool.linux-x64-musl.node" exec "${cmd[@]}" --exclude __test__/package/loader.spec.mjs
