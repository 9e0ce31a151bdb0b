// Packaging test, as users install it: `npm pack` of the root package (which never ships a
// binary) and of this platform's package (npm/<platform>/ with the binary built here), both
// installed into a fresh temporary project with no Rust toolchain on PATH, then used from ESM
// `import`, CJS `require` and TypeScript (`module: Node16`, `strict`, `tsc --noEmit`). Each use
// talks to a mock Blender, so the installed binary is exercised, not just loaded. Also checks
// that `napi prepublish` gives the root package exactly the optionalDependencies the loader asks
// for.
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { accessSync, constants, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { startMockBlender } from '../mock/blender-mock.mjs'
import { TARGETS, hostBinary } from './check-loader.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'blender-mcp-pool-pack-'))
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: dir, encoding: 'utf8', ...opts })
// Asynchronous, so this process's event loop keeps serving the mock Blender meanwhile.
const runNode = (args, env) => promisify(execFile)(process.execPath, args, { cwd: dir, env, timeout: 60_000 })
const mock = await startMockBlender()
let failed = 0
let passed = 0

async function check(name, fn) {
  try {
    await fn()
    passed++
    console.log(`ok - ${name}`)
  } catch (err) {
    failed++
    console.log(`not ok - ${name}\n${err.stdout ?? ''}${err.stderr ?? ''}${err.message}`)
  }
}

/** PATH without any directory holding cargo or rustc: the consumer has no Rust toolchain. */
function pathWithoutRust() {
  const has = (d, exe) => {
    try {
      accessSync(join(d, exe), constants.X_OK)
      return true
    } catch {
      return false
    }
  }
  const exes = process.platform === 'win32' ? ['cargo.exe', 'rustc.exe'] : ['cargo', 'rustc']
  return (process.env.PATH ?? '').split(delimiter).filter((d) => d && !exes.some((e) => has(d, e))).join(delimiter)
}

try {
  const [{ filename, files }] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir, root]))
  const shipped = files.map((f) => f.path).sort()
  await check('the root tarball ships the package files and no binary', () => {
    const unexpected = shipped.filter((p) => !/^(index\.(js|mjs|d\.ts|d\.mts)|binding\.(js|d\.ts)|package\.json|bin\/[\w.-]+\.(mjs|md)|README\.md|LICENSE)$/.test(p))
    if (unexpected.length > 0) throw new Error(`unexpected files: ${unexpected.join(', ')}`)
    for (const needed of ['index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'package.json']) {
      if (!shipped.includes(needed)) throw new Error(`missing ${needed}`)
    }
  })

  // This platform's package, as the release assembles it: npm/<platform>/ plus its binary.
  const host = hostBinary()
  const platformDir = join(dir, `platform-${host.suffix}`)
  cpSync(join(root, 'npm', host.suffix), platformDir, { recursive: true })
  copyFileSync(host.path, join(platformDir, host.file))
  const [platformPack] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir, platformDir]))
  await check(`the platform package ships ${host.file} and its manifest`, () => {
    const got = platformPack.files.map((f) => f.path).sort()
    const want = [host.file, 'README.md', 'package.json'].sort()
    if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`files: ${got.join(', ')}`)
    if (platformPack.name !== `blender-mcp-pool-${host.suffix}`) throw new Error(`name: ${platformPack.name}`)
  })

  await check('napi prepublish writes exactly the optionalDependencies the loader asks for', () => {
    // In a copy (prepublish rewrites package.json), each platform directory with a stand-in
    // binary, publishing nothing.
    const copy = join(dir, 'prepublish')
    mkdirSync(copy)
    copyFileSync(join(root, 'package.json'), join(copy, 'package.json'))
    cpSync(join(root, 'npm'), join(copy, 'npm'), { recursive: true })
    for (const { suffix } of TARGETS) writeFileSync(join(copy, 'npm', suffix, `blender-mcp-pool.${suffix}.node`), '')
    execFileSync(process.execPath, [join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js'), 'prepublish', '-t', 'npm',
      '--skip-optional-publish', '--no-gh-release'], { cwd: copy, encoding: 'utf8', stdio: 'pipe' })
    const { version, optionalDependencies } = JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8'))
    const want = Object.fromEntries(TARGETS.map((t) => [`blender-mcp-pool-${t.suffix}`, version]))
    if (JSON.stringify(optionalDependencies) !== JSON.stringify(want)) {
      throw new Error(`optionalDependencies ${JSON.stringify(optionalDependencies)}, want ${JSON.stringify(want)}`)
    }
    const loader = readFileSync(join(root, 'binding.js'), 'utf8')
    for (const name of Object.keys(want)) {
      if (!loader.includes(`require('${name}')`)) throw new Error(`binding.js never requires ${name}`)
    }
  })

  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  const PATH = pathWithoutRust()
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, filename), join(dir, platformPack.filename)],
    { env: { ...process.env, PATH } })
  const env = { ...process.env, PATH, BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(mock.port), LOG_LEVEL: 'silent' }
  await check('the consumer has no Rust toolchain on PATH', () => {
    for (const exe of ['cargo', 'rustc']) {
      let found = true
      try {
        execFileSync(exe, ['--version'], { env, stdio: 'ignore' })
      } catch {
        found = false
      }
      if (found) throw new Error(`${exe} is still on PATH`)
    }
  })

  writeFileSync(
    join(dir, 'esm.mjs'),
    `import { ConnectionPool, getConnectionPool, MutexTimeoutError, BlenderPoolError } from 'blender-mcp-pool'
     if (typeof MutexTimeoutError !== 'function' || typeof BlenderPoolError !== 'function') throw new Error('missing export')
     const reply = await getConnectionPool().execute('echo', { via: 'esm' })
     if (reply.result.via !== 'esm') throw new Error(JSON.stringify(reply))
     await getConnectionPool().shutdown()
     if (!(new ConnectionPool({ minConnections: 0 }) instanceof ConnectionPool)) throw new Error('class')`,
  )
  await check('ESM import works, with the binary from the platform package', async () => {
    await runNode(['esm.mjs'], env)
    const where = await runNode(['-p', `require('blender-mcp-pool'); Object.keys(require.cache).filter((k) => k.endsWith('.node')).join()`], env)
    const loaded = where.stdout.trim()
    if (!loaded.includes(join('node_modules', `blender-mcp-pool-${host.suffix}`, host.file))) throw new Error(`loaded ${loaded}`)
  })

  writeFileSync(
    join(dir, 'cjs.cjs'),
    `const { getConnectionPool } = require('blender-mcp-pool')
     getConnectionPool().execute('echo', { via: 'cjs' }).then(async (reply) => {
       if (reply.result.via !== 'cjs') throw new Error(JSON.stringify(reply))
       await getConnectionPool().shutdown()
     })`,
  )
  await check('CJS require works', () => runNode(['cjs.cjs'], env))

  await check('ESM and CJS share one module instance', () =>
    runNode(['--input-type=module', '-e', `
      import { createRequire } from 'node:module'
      import * as esm from 'blender-mcp-pool'
      const cjs = createRequire(import.meta.url)('blender-mcp-pool')
      if (esm.ConnectionPool !== cjs.ConnectionPool) throw new Error('two copies')`], env))

  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: {
        // As the consumer (an MCP server on Node) compiles: Node16 modules, strict, Node's types.
        module: 'Node16', moduleResolution: 'Node16', target: 'ES2022', strict: true, noEmit: true,
        types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
      }, files: ['consumer.mts', 'consumer.cts'] }),
  )
  const tsBody = `
    const pool: ConnectionPool = getConnectionPool()
    const config: Partial<ConnectionPoolConfig> = { maxConnections: 3, socketTimeout: 1000 }
    const other = new ConnectionPool(config)
    async function main(): Promise<void> {
      const reply: BlenderSocketResponse = await pool.execute('get_scene_info', { detail: true })
      const status: 'success' | 'error' = reply.status
      const text: string = await pool.executeRaw('get_scene_info')
      const stats: PoolStats = pool.getStats()
      const n: number = stats.totalConnections + stats.activeConnections + stats.idleConnections + stats.pendingRequests + stats.totalRequests
      const conn: PooledConnection = await pool.acquire()
      const id: string = conn.id
      const fields: [boolean, number, number, number] = [conn.inUse, conn.createdAt, conn.lastUsedAt, conn.requestCount]
      await conn.execute('echo')
      await pool.release(conn)
      const message: BlenderSocketMessage = { type: 'echo', params: { a: 1 } }
      const options: CallOptions = { signal: AbortSignal.timeout(1000), timeout: 500 }
      try { await pool.execute(message.type, message.params, options) } catch (err) {
        if (err instanceof AbortError) { const abort: 'ABORT_ERR' = err.code; void abort }
        if (err instanceof BlenderPoolError) { const code: BlenderPoolErrorCode = err.code; void code }
        if (err instanceof MutexTimeoutError) throw err
      }
      await other.shutdown()
      void status; void text; void n; void id; void fields
    }
    void main
  `
  const names = 'ConnectionPool, getConnectionPool, MutexTimeoutError, BlenderPoolError, AbortError, type CallOptions, type ConnectionPoolConfig, type PoolStats, type PooledConnection, type BlenderSocketMessage, type BlenderSocketResponse, type BlenderPoolErrorCode'
  writeFileSync(join(dir, 'consumer.mts'), `import { ${names} } from 'blender-mcp-pool'\n${tsBody}`)
  writeFileSync(join(dir, 'consumer.cts'), `import { ${names} } from 'blender-mcp-pool'\n${tsBody}`)
  await check('TypeScript (Node16, strict) type-checks an ESM and a CJS consumer', () =>
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']))
} finally {
  await mock.stop()
  rmSync(dir, { recursive: true, force: true })
}

console.log(`\n${passed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
