// Packaging test, as users install it: `npm pack` of the root package (which never ships a
// binary) and of this platform's package (npm/<platform>/ with the binary built here), both
// installed into a fresh temporary project with no Rust toolchain on PATH, then used from ESM
// `import`, CJS `require` and TypeScript (`module: Node16`, `strict`, `tsc --noEmit`): the main
// entry and the subpaths `blender-mcp-pool/socket-client` and `blender-mcp-pool/mock`. Each use
// talks to a mock Blender, so the installed binary is exercised, not just loaded. Also checks
// that `napi prepublish` gives the root package exactly the optionalDependencies the loader asks
// for.
import { execFile, execFileSync } from 'node:child_process'
import {
  accessSync,
  constants,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

import { startMockBlender } from '../../mock/blender-mock.mjs'
import { hostBinary, TARGETS } from './check-loader.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
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
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d && !exes.some((e) => has(d, e)))
    .join(delimiter)
}

try {
  const [{ filename, files }] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir, root]))
  const shipped = files.map((f) => f.path).sort()
  await check('the root tarball ships the package files and no binary', () => {
    const unexpected = shipped.filter(
      (p) =>
        !/^((index|socket-client)\.(js|mjs|d\.ts|d\.mts)|mock\/blender-mock\.(mjs|d\.mts)|lib\/[\w-]+\.js|binding\.(js|d\.ts)|package\.json|bin\/[\w.-]+\.mjs|docs\/[\w.-]+\.md|README\.md|LICENSE)$/.test(
          p,
        ),
    )
    if (unexpected.length > 0) throw new Error(`unexpected files: ${unexpected.join(', ')}`)
    const subpaths = [
      'socket-client.js',
      'socket-client.mjs',
      'socket-client.d.ts',
      'socket-client.d.mts',
      'mock/blender-mock.mjs',
      'mock/blender-mock.d.mts',
    ]
    for (const needed of ['index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'package.json', ...subpaths]) {
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
    execFileSync(
      process.execPath,
      [
        join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js'),
        'prepublish',
        '-t',
        'npm',
        '--skip-optional-publish',
        '--no-gh-release',
      ],
      { cwd: copy, encoding: 'utf8', stdio: 'pipe' },
    )
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
  run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, filename), join(dir, platformPack.filename)],
    { env: { ...process.env, PATH } },
  )
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
    const where = await runNode(
      ['-p', `require('blender-mcp-pool'); Object.keys(require.cache).filter((k) => k.endsWith('.node')).join()`],
      env,
    )
    const loaded = where.stdout.trim()
    if (!loaded.includes(join('node_modules', `blender-mcp-pool-${host.suffix}`, host.file)))
      throw new Error(`loaded ${loaded}`)
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
    runNode(
      [
        '--input-type=module',
        '-e',
        `
      import { createRequire } from 'node:module'
      import * as esm from 'blender-mcp-pool'
      import * as esmClient from 'blender-mcp-pool/socket-client'
      const require = createRequire(import.meta.url)
      const cjs = require('blender-mcp-pool')
      if (esm.ConnectionPool !== cjs.ConnectionPool) throw new Error('two copies')
      if (esmClient.BlenderSocketClient !== require('blender-mcp-pool/socket-client').BlenderSocketClient) throw new Error('two socket clients')`,
      ],
      env,
    ),
  )

  await check("socket-client (ESM) runs on getConnectionPool()'s pool", () =>
    runNode(
      [
        '--input-type=module',
        '-e',
        `
      import { getBlenderClient, BlenderSocketClient, BufferOverflowError, ChunkCountExceededError } from 'blender-mcp-pool/socket-client'
      import { getConnectionPool } from 'blender-mcp-pool'
      if (typeof BufferOverflowError !== 'function' || typeof ChunkCountExceededError !== 'function') throw new Error('missing export')
      const replies = await Promise.all([1, 2, 3].map((i) => getBlenderClient().sendCommand('echo', { i })))
      if (replies.map((r) => r.result.i).join() !== '1,2,3') throw new Error(JSON.stringify(replies))
      if (getConnectionPool().getStats().totalRequests !== 3) throw new Error('not the default pool')
      const health = new BlenderSocketClient(process.env.BLENDER_HOST, Number(process.env.BLENDER_PORT), 5000)
      await health.connect()
      await health.disconnect()
      if (!getBlenderClient().validateConnection()) throw new Error('disconnect closed the shared pool')`,
      ],
      env,
    ),
  )

  await check('socket-client (CJS) works', () =>
    runNode(
      [
        '-e',
        `
      const { getBlenderClient } = require('blender-mcp-pool/socket-client')
      getBlenderClient().sendCommand('echo', { via: 'cjs' }).then((reply) => {
        if (reply.result.via !== 'cjs') throw new Error(JSON.stringify(reply))
      })`,
      ],
      env,
    ),
  )

  await check('mock (ESM) starts, answers and stops', () =>
    runNode(
      [
        '--input-type=module',
        '-e',
        `
      import { startMockBlender } from 'blender-mcp-pool/mock'
      import { ConnectionPool } from 'blender-mcp-pool'
      const mock = await startMockBlender()
      const pool = new ConnectionPool({ host: mock.host, port: mock.port, minConnections: 0 })
      const reply = await pool.execute('get_scene_info')
      if (reply.result.object_count !== 3 || mock.requests !== 1) throw new Error(JSON.stringify(reply))
      await pool.shutdown()
      await mock.stop()`,
      ],
      env,
    ),
  )

  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        // As the consumer (an MCP server on Node) compiles: Node16 modules, strict, Node's types.
        module: 'Node16',
        moduleResolution: 'Node16',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['consumer.mts', 'consumer.cts'],
    }),
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
      const named = new ConnectionPool({ name: 'scene', connectRetryTimeout: 0, logger: console, loggerStyle: 'message-fields' })
      registerPoolMetrics(named, { registerMetric() {} })
      const families: MetricFamily[] = named.metricFamilies()
      const end: DiagnosticsMessages['blender-mcp-pool:command:end'] = { pool: 'scene', type: 'echo', requestBytes: 1, replyLength: 2, durationMs: 3, connectionId: 'conn-1' }
      const style: LoggerStyle = 'fields-message'
      const resolved: ResolvedPoolConfig = named.config
      const framing: 'json' | 'length-prefixed' = resolved.framing
      // @ts-expect-error pool.config never holds the logger's options
      void named.config.logger
      await named.shutdown()
      void status; void text; void n; void id; void fields; void families; void end; void style; void framing
    }
    void main
  `
  const names =
    'ConnectionPool, getConnectionPool, registerPoolMetrics, MutexTimeoutError, BlenderPoolError, AbortError, type CallOptions, type ConnectionPoolConfig, type PoolStats, type PooledConnection, type BlenderSocketMessage, type BlenderSocketResponse, type BlenderPoolErrorCode, type MetricFamily, type DiagnosticsMessages, type LoggerStyle, type ResolvedPoolConfig, type ProgressInfo, type McpHandlerExtra, mcpCallOptions as mcpCallOptionsFromRoot'
  const clientBody = `
    const client: BlenderSocketClient = getBlenderClient()
    const health = new BlenderSocketClient('localhost', 9876, 5000)
    async function useClient(): Promise<void> {
      await health.connect()
      const reply: BlenderSocketResponse = await client.sendCommand('get_scene_info', { detail: true })
      const ok: boolean = health.validateConnection()
      await health.disconnect()
      const overflow = new BufferOverflowError(2, 1, 1)
      const sizes: [number, number, number, 'ERR_RESPONSE_TOO_LARGE'] = [overflow.totalBytes, overflow.maxSize, overflow.chunkCount, overflow.code]
      const chunks = new ChunkCountExceededError(2, 1)
      const counts: [number, number] = [chunks.chunkCount, chunks.maxChunks]
      const shared: ConnectionPool = configureConnectionPool({ maxResponseBytes: 1024, framing: 'json' })
      // An MCP tool handler's call: its cancel and its progress, typed without the MCP SDK.
      const extra = { signal: new AbortController().signal, _meta: { progressToken: 'p1' }, sendNotification: async (_n: { method: 'notifications/progress'; params: unknown }) => {} }
      const options = mcpCallOptions(extra, { progressInterval: 1000 })
      const long: BlenderSocketResponse = await client.sendCommand('render', { frames: 1 }, options)
      const seen: string[] = []
      await client.sendCommand('echo', {}, { timeout: 5000, onProgress: (info) => { seen.push(info.phase + (info.busy?.command ?? '') + info.bytesReceived) } })
      // @ts-expect-error onProgress takes a function
      await client.sendCommand('echo', {}, { onProgress: 'no' })
      // The same function from either entry, and its types from the root.
      const same: typeof mcpCallOptions = mcpCallOptionsFromRoot
      const typed: McpHandlerExtra = extra
      const last: ProgressInfo | null = null
      void reply; void ok; void sizes; void counts; void shared; void long; void same; void typed; void last
    }
    void useClient
  `
  const clientNames =
    'BlenderSocketClient, getBlenderClient, BufferOverflowError, ChunkCountExceededError, mcpCallOptions'
  const clientImports = `import { ${clientNames} } from 'blender-mcp-pool/socket-client'\nimport { configureConnectionPool } from 'blender-mcp-pool'\n`
  const mockBody = `
    async function useMock(): Promise<void> {
      const mock: MockBlender = await startMockBlender({ port: 0, handlers: { hello: (params: { to: string }) => 'hi ' + params.to } })
      mock.setFault('huge', { bytes: 1024, chunkDelayMs: 1 })
      mock.setScript(seededFaultScript({ rate: 0.1, seed: 7 }))
      mock.setScript(({ connectionId }) => (connectionId === 2 ? 'close' : null))
      await mock.setAcceptMode('refuse')
      const counts: MockSnapshot = mock.snapshot()
      const n: number = counts.requests + mock.connectionsOpened + mock.hugeBytesSent
      await mock.waitFor((m) => m.requests > 0, 1000)
      await mock.restart()
      await mock.stop()
      void n
    }
    void useMock
  `
  const mockImports =
    "import { startMockBlender, seededFaultScript, type MockBlender, type MockSnapshot } from 'blender-mcp-pool/mock'\n"
  writeFileSync(
    join(dir, 'consumer.mts'),
    `import { ${names} } from 'blender-mcp-pool'\n${clientImports}${mockImports}${tsBody}${clientBody}${mockBody}`,
  )
  writeFileSync(
    join(dir, 'consumer.cts'),
    `import { ${names} } from 'blender-mcp-pool'\n${clientImports}${tsBody}${clientBody}`,
  )
  await check('TypeScript (Node16, strict) type-checks an ESM and a CJS consumer', () =>
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']),
  )

  // The ClaudeKit server's surface: its socket-client.ts replaced by the re-export, the uses its
  // files make of it, compiled as the server compiles (ESM package, Node16, strict), then run.
  const surface = join(dir, 'surface')
  cpSync(join(root, '__test__', 'fixtures', 'socket-client-surface'), join(surface, 'src'), { recursive: true })
  writeFileSync(join(surface, 'package.json'), JSON.stringify({ name: 'surface', private: true, type: 'module' }))
  writeFileSync(
    join(surface, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'Node16',
        moduleResolution: 'Node16',
        target: 'ES2022',
        strict: true,
        outDir: 'dist',
        rootDir: 'src',
        declaration: true,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      include: ['src/**/*'],
    }),
  )
  await check("the server's socket-client surface type-checks against the subpath (Node16, strict)", () =>
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
      cwd: surface,
    }),
  )
  await check("the server's uses of the surface run against the mock", () =>
    runNode([join(surface, 'dist', 'usage.js')], env),
  )

  // docs/mock.md's vitest example, as written there, against the installed package (vitest: this
  // repository's own copy, linked in).
  await check("docs/mock.md's vitest example of the mock passes", async () => {
    const readme = readFileSync(join(root, 'docs', 'mock.md'), 'utf8')
    const example = /With vitest:\n\n```js\n([\s\S]*?)```/.exec(readme)?.[1]
    if (!example) throw new Error('no vitest example found in docs/mock.md')
    writeFileSync(join(dir, 'readme.test.mjs'), example)
    symlinkSync(join(root, 'node_modules', 'vitest'), join(dir, 'node_modules', 'vitest'), 'dir')
    await runNode([join(dir, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', dir, 'readme.test.mjs'], {
      ...process.env,
      LOG_LEVEL: 'silent',
    })
  })
} finally {
  await mock.stop()
  rmSync(dir, { recursive: true, force: true })
}

console.log(`\n${passed} passed, ${failed} failed`)
process.exitCode = failed === 0 ? 0 : 1
