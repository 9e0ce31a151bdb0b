// Packaging test: `npm pack`, install the tarball into a fresh temporary project, and use it
// from ESM `import`, CJS `require` and TypeScript (`module: Node16`, `strict`, `tsc --noEmit`).
// Each use talks to a mock Blender, so the installed binary is exercised, not just loaded.
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { startMockBlender } from '../mock/blender-mock.mjs'

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

try {
  const [{ filename, files }] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir, root]))
  const shipped = files.map((f) => f.path).sort()
  await check('the tarball ships only the package files', () => {
    const unexpected = shipped.filter((p) => !/^(index\.(js|mjs|d\.ts|d\.mts)|prom-client\.js|binding\.(js|d\.ts)|blender-mcp-pool\.[\w-]+\.node|package\.json|bin\/[\w.-]+\.(mjs|md)|README\.md|LICENSE)$/.test(p))
    if (unexpected.length > 0) throw new Error(`unexpected files: ${unexpected.join(', ')}`)
    for (const needed of ['index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'package.json']) {
      if (!shipped.includes(needed)) throw new Error(`missing ${needed}`)
    }
  })

  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, filename)])
  const env = { ...process.env, BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(mock.port), LOG_LEVEL: 'silent' }

  writeFileSync(
    join(dir, 'esm.mjs'),
    `import { ConnectionPool, getConnectionPool, MutexTimeoutError, BlenderPoolError } from 'blender-mcp-pool'
     if (typeof MutexTimeoutError !== 'function' || typeof BlenderPoolError !== 'function') throw new Error('missing export')
     const reply = await getConnectionPool().execute('echo', { via: 'esm' })
     if (reply.result.via !== 'esm') throw new Error(JSON.stringify(reply))
     await getConnectionPool().shutdown()
     if (!(new ConnectionPool({ minConnections: 0 }) instanceof ConnectionPool)) throw new Error('class')`,
  )
  await check('ESM import works', () => runNode(['esm.mjs'], env))

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
      const named = new ConnectionPool({ name: 'scene', connectRetryTimeout: 0, logger: console, loggerStyle: 'message-fields' })
      registerPoolMetrics(named, { registerMetric() {} })
      const families: MetricFamily[] = named.metricFamilies()
      const end: DiagnosticsMessages['blender-mcp-pool:command:end'] = { pool: 'scene', type: 'echo', requestBytes: 1, replyLength: 2, durationMs: 3, connectionId: 'conn-1' }
      const style: LoggerStyle = 'fields-message'
      await named.shutdown()
      void status; void text; void n; void id; void fields; void families; void end; void style
    }
    void main
  `
  const names = 'ConnectionPool, getConnectionPool, registerPoolMetrics, MutexTimeoutError, BlenderPoolError, AbortError, type CallOptions, type ConnectionPoolConfig, type PoolStats, type PooledConnection, type BlenderSocketMessage, type BlenderSocketResponse, type BlenderPoolErrorCode, type MetricFamily, type DiagnosticsMessages, type LoggerStyle'
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
