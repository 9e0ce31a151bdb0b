// The native loader (binding.js) for real, in child processes: which binary it picks, what it
// does on each release target (simulated), and the error when no binary fits. The checks live in
// check-loader.mjs so that Node 18, which vitest 4 does not run on, runs them too.
import { describe, expect, it } from 'vitest'

import {
  BINARY,
  checkLibraryPathOverride,
  checkLocalBinary,
  checkMissingBinary,
  checkPlatformPackage,
  checkSimulatedTarget,
  checkUnsupportedPlatform,
  checkVersionMismatch,
  hostBinary,
  PACKAGE,
  TARGETS,
} from './check-loader.mjs'

describe('native loader (binding.js)', () => {
  it('picks the local binary for this platform and exposes NativePool', async () => {
    const report = await checkLocalBinary()
    expect(report.exports).toContain('NativePool')
    expect(report.loaded).toHaveLength(1)
    expect(report.loaded[0]).toMatch(new RegExp(`${BINARY}\\.${hostBinary().suffix}\\.node$`))
  })

  it('picks the per-platform npm package when there is no local binary', async () => {
    const report = await checkPlatformPackage()
    expect(report.exports).toContain('NativePool')
    expect(report.loaded[0].split(/[\\/]/).slice(-3)).toEqual([
      'node_modules',
      `${PACKAGE}-${hostBinary().suffix}`,
      `${BINARY}.${hostBinary().suffix}.node`,
    ])
  })

  it('fails with an Error naming the platform package it looked for when no binary fits', async () => {
    const { message, causes, stderr } = await checkMissingBinary()
    const { suffix } = hostBinary()
    // napi's message itself is generic (it blames npm's optional-dependency bug); the platform is
    // in its cause chain, which node prints with the uncaught error.
    expect(message).toMatch(/^Cannot find native binding\. .*Please try `npm i` again/)
    expect(causes).toContain(`Cannot find module '${PACKAGE}-${suffix}'`)
    expect(causes).toContain(`Cannot find module './${BINARY}.${suffix}.node'`)
    expect(stderr).toContain(`${PACKAGE}-${suffix}`)
  })

  it('honours NAPI_RS_NATIVE_LIBRARY_PATH', async () => {
    const { report, bad } = await checkLibraryPathOverride()
    expect(report.nativePool).toBe('function')
    expect(bad.ok).toBe(false)
  })

  it('rejects a platform package of another version under NAPI_RS_ENFORCE_VERSION_CHECK', async () => {
    const report = await checkVersionMismatch()
    expect(report.ok).toBe(false)
  })

  it('names an unsupported OS and architecture', async () => {
    const report = await checkUnsupportedPlatform()
    expect(report.causes).toContain('Unsupported OS: aix, architecture: ppc64')
  })
})

describe.each(TARGETS)('on $suffix (simulated process.platform/arch)', (target) => {
  it(`loads ${PACKAGE}-${target.suffix}, and names it when it is missing`, async () => {
    const { found, missing } = await checkSimulatedTarget(target)
    expect(found.nativePool).toBe('function')
    expect(missing.ok).toBe(false)
    expect([missing.message, ...missing.causes].join('\n')).toContain(target.platform)
  })
})
