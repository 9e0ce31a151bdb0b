'use strict'
// Loads the native addon (binding.js, written by `napi build`), or fails with an error that says
// which platform lacks a binary and what to do; then starts its logging from the environment.

const fs = require('node:fs')
const path = require('node:path')

/**
 * The prebuilt binaries published with each release: the targets of package.json's `napi`
 * section (the one list, which the release workflow builds), named as napi-rs names their
 * packages (`x86_64-unknown-linux-gnu` is `linux-x64-gnu`).
 */
const PREBUILT = require('../package.json').napi.targets.map((triple) => {
  const [cpu, , os, abi] = triple.split('-')
  const platform = { linux: 'linux', darwin: 'darwin', windows: 'win32' }[os]
  const arch = { x86_64: 'x64', aarch64: 'arm64' }[cpu]
  return abi === undefined ? `${platform}-${arch}` : `${platform}-${arch}-${abi}`
})
/** Where to ask for another platform. */
const ISSUES = 'https://github.com/claudekit/blender-mcp-pool/issues'

/** The native addon, or an error that says which platform lacks one and what to do. */
function loadNative() {
  try {
    return require('../binding.js')
  } catch (cause) {
    // The suffix napi-rs gives each platform's package: the C runtime on Linux and Windows.
    let abi = ''
    if (process.platform === 'linux') {
      abi = process.report?.getReport?.().header?.glibcVersionRuntime ? '-gnu' : '-musl'
    } else if (process.platform === 'win32') {
      abi = '-msvc'
    }
    const platform = `${process.platform}-${process.arch}${abi}`
    // Only a clone of the repository has the Rust sources; a copy from npm does not.
    const fromSource = fs.existsSync(path.join(__dirname, '..', 'Cargo.toml'))
    const advice = fromSource
      ? 'This is a source checkout: build the binary with a Rust toolchain (npm run build). '
      : PREBUILT.includes(platform)
        ? `Its binary comes in the optional dependency blender-mcp-pool-${platform}: reinstall ` +
          'without --no-optional/--omit=optional (if that does not help, delete node_modules and ' +
          'package-lock.json first: npm bug 4828). '
        : `There is no prebuilt binary for ${platform}: ask for one at ${ISSUES}. `
    const err = new Error(
      `blender-mcp-pool: no native binary could be loaded for ${platform}. ` +
        `Supported platforms: ${PREBUILT.join(', ')}. ${advice}Loader said: ${cause.message}`,
      { cause },
    )
    err.code = 'ERR_BLENDER_POOL_NO_BINARY'
    throw err
  }
}

const native = loadNative()
native.initLogging(process.env.LOG_LEVEL, process.env.LOG_FORMAT)

module.exports = { native }
