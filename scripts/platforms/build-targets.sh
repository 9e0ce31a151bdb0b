#!/usr/bin/env bash
# Builds the addon for the other desktop targets (release profile), each once: a target whose
# sources did not change since its last build here is reused.
#   build-targets.sh [suffix...]    default: all of win32-x64-gnu linux-arm64-gnu linux-x64-musl
#                                   darwin-x64 darwin-arm64 linux-arm64-musl win32-arm64-gnullvm
# Output: .tmp/platforms/out/<suffix>/blender-mcp-pool.<suffix>.node
# Windows is built as x86_64-pc-windows-gnu (mingw) and aarch64-pc-windows-gnullvm (zig), standing
# in for the release's -msvc: std, tokio, mio and socket2 take the same code paths; the C runtime
# and the linker differ (and the gnu builds import node.exe, where msvc ones look Node-API up at
# run time).
# The compiler is Debian's rustc-web with -Zbuild-std (install-toolchains.sh).
source "$(dirname "$0")/common.sh"

[[ -x "$RUST_WEB/rustc" ]] || die "run scripts/platforms/install-toolchains.sh first"
export RUSTC="$RUST_WEB/rustc" RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$ROOT/target/platforms"
export PATH="$VENV/bin:$PATH"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc

# What a build depends on: the Rust sources, manifests, lock file, cargo config and pins.
sources_stamp() {
  (cd "$ROOT" && {
    # contents, committed or not
    git ls-files -z --cached --others --exclude-standard -- src core/src Cargo.toml Cargo.lock core/Cargo.toml build.rs .cargo |
      sort -z | xargs -0 sha256sum
    cat "$PLATFORMS_DIR/versions.sh" "$PLATFORMS_DIR/build-targets.sh"
  } | sha256sum | cut -d' ' -f1)
}

build_one() {
  local suffix="$1" triple="${TRIPLE[$1]:-}"
  [[ -n "$triple" ]] || die "unknown target $suffix (one of ${SUFFIXES[*]})"
  local dest="$OUT/$suffix" file="blender-mcp-pool.$suffix.node" stamp
  stamp="$(sources_stamp)"
  if [[ -f "$dest/$file" && "$(cat "$dest/stamp" 2>/dev/null)" == "$stamp" ]]; then
    log "$suffix: up to date ($dest/$file)"
    return
  fi
  local cargo=(cargo build) artifact
  case "$triple" in
    *-apple-darwin | *-linux-musl | *-windows-gnullvm) cargo=(cargo-zigbuild zigbuild) ;;
  esac
  case "$triple" in
    aarch64-pc-windows-*) export LIBNODE_PATH="$CACHE/libnode-arm64" ;;
    *-windows-*) export LIBNODE_PATH="$CACHE/libnode" ;;
  esac
  case "$triple" in
    x86_64-apple-darwin) export MACOSX_DEPLOYMENT_TARGET="$MACOSX_X64_DEPLOYMENT_TARGET" ;;
    aarch64-apple-darwin) export MACOSX_DEPLOYMENT_TARGET="$MACOSX_ARM64_DEPLOYMENT_TARGET" ;;
  esac
  case "$triple" in
    *-windows-*) artifact=blender_mcp_pool.dll ;;
    *-apple-darwin) artifact=libblender_mcp_pool.dylib ;;
    *) artifact=libblender_mcp_pool.so ;;
  esac
  log "$suffix: building $triple"
  local start=$SECONDS
  (cd "$ROOT" && "${cargo[@]}" --release --locked -p blender-mcp-pool --target "$triple" -Zbuild-std)
  mkdir -p "$dest"
  cp "$CARGO_TARGET_DIR/$triple/release/$artifact" "$dest/$file"
  echo "$stamp" > "$dest/stamp"
  log "$suffix: built in $((SECONDS - start)) s, $(stat -c %s "$dest/$file") bytes"
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${SUFFIXES[@]}")
for t in "${targets[@]}"; do build_one "$t"; done
