// The pool in a real process: it exits without shutdown(), stays alive while a call is in
// flight, keeps stdout clean (the consumer's MCP channel), never logs bodies, and works in
// worker threads.

import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'

import { getConnectionPool } from '../../index.mjs'
import { mockBlender, runScript } from '../helpers.mjs'

// An ESM specifier is a URL: a Windows path (C:\...) would be read as a URL scheme.
const entry = new URL('../../index.mjs', import.meta.url).href

describe('in a process', () => {
  it('exits when its work is done, without shutdown(), with idle connections open', async () => {
    const mock = await mockBlender()
    const run = await runScript(
      `import { getConnectionPool } from ${JSON.stringify(entry)}
       const pool = getConnectionPool()
       const reply = await pool.execute('echo', { from: 'child' })
       process.stdout.write(JSON.stringify(reply))`,
      { BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(mock.port), LOG_LEVEL: 'silent' },
    )
    expect(run.signal).toBeNull()
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({ status: 'success', result: { from: 'child' } })
    expect(mock.connectionsOpened).toBeGreaterThanOrEqual(1)
  })

  it('stays alive while a call is in flight (top-level await on a slow command)', async () => {
    const mock = await mockBlender()
    const run = await runScript(
      `import { ConnectionPool } from ${JSON.stringify(entry)}
       const pool = new ConnectionPool({ minConnections: 0 })
       const reply = await pool.execute('sleep', { ms: 300 })
       process.stdout.write(JSON.stringify(reply))`,
      { BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(mock.port), LOG_LEVEL: 'silent' },
    )
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({ status: 'success', result: { slept: 300 } })
  })

  it('a forgotten shutdown() ends quietly at exit, on the main thread and in workers: no error record', async () => {
    const mock = await mockBlender()
    // Pools with idle connections open (watched by the event loop unless
    // BLENDER_POOL_IO_THREAD_READS=1), never shut down: the environment is torn down under them.
    const forget = `
      const pools = Array.from({ length: 20 }, () => new ConnectionPool({ minConnections: 2 }))
      await Promise.all(pools.map((pool, i) => pool.execute('echo', { i })))`
    const run = await runScript(
      `import { ConnectionPool } from ${JSON.stringify(entry)}
       import { Worker } from 'node:worker_threads'
       ${forget}
       const worker = new Worker(${JSON.stringify(`import { ConnectionPool } from ${JSON.stringify(entry)}
${forget}`)}, { eval: true, type: 'module' })
       await new Promise((resolve, reject) => { worker.once('exit', resolve); worker.once('error', reject) })
       process.stdout.write('done')`,
      { BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(mock.port), LOG_LEVEL: 'debug', LOG_FORMAT: 'json' },
    )
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('done')
    const records = run.stderr
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
    expect(records.filter((r) => r.msg === 'pool created').length).toBe(40)
    expect(records.filter((r) => r.level >= 50 || r.code === 'ERR_INTERNAL')).toEqual([])
  })

  it('logs to stderr only, never to stdout, and never the request or reply bodies', async () => {
    const mock = await mockBlender()
    const secret = 'sk-SECRET-API-KEY-4242'
    const run = await runScript(
      `import { ConnectionPool } from ${JSON.stringify(entry)}
       const pool = new ConnectionPool({ minConnections: 0 })
       await pool.execute('execute_code', { code: 'print(${JSON.stringify(secret).slice(1, -1)})' })
       await pool.execute('echo', { key: ${JSON.stringify(secret)} })
       await pool.shutdown()`,
      { BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(mock.port), LOG_LEVEL: 'debug', LOG_FORMAT: 'json' },
    )
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('')
    const records = run.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(records.length).toBeGreaterThan(3)
    expect(records.some((r) => r.command === 'execute_code')).toBe(true)
    expect(run.stderr).not.toContain(secret)
  })

  it('gives each worker thread its own default pool', async () => {
    const mock = await mockBlender()
    const workerSource = `
      const { parentPort, workerData } = require('node:worker_threads')
      process.env.BLENDER_HOST = '127.0.0.1'
      process.env.BLENDER_PORT = String(workerData.port)
      const { getConnectionPool } = require(workerData.entry)
      const pool = getConnectionPool()
      pool.execute('echo', { worker: workerData.n }).then(async (reply) => {
        await pool.shutdown()
        parentPort.postMessage(reply)
      })`
    const cjsEntry = fileURLToPath(new URL('../../index.js', import.meta.url))
    const results = await Promise.all(
      [1, 2, 3].map(
        (n) =>
          new Promise((resolve, reject) => {
            const worker = new Worker(workerSource, { eval: true, workerData: { n, port: mock.port, entry: cjsEntry } })
            worker.once('message', resolve)
            worker.once('error', reject)
          }),
      ),
    )
    expect(results.map((r) => r.result.worker)).toEqual([1, 2, 3])
    expect(getConnectionPool()).toBe(getConnectionPool())
    await getConnectionPool().shutdown()
  })

  it('survives a worker terminated in the middle of a request, and other workers carry on', async () => {
    const mock = await mockBlender()
    const cjsEntry = fileURLToPath(new URL('../../index.js', import.meta.url))
    const source = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { ConnectionPool } = require(workerData.entry)
      const pool = new ConnectionPool({ host: '127.0.0.1', port: workerData.port, minConnections: 0 })
      parentPort.postMessage('started')
      pool.execute(workerData.type, workerData.params).then((reply) => parentPort.postMessage(reply))`
    const slow = new Worker(source, {
      eval: true,
      workerData: { entry: cjsEntry, port: mock.port, type: 'sleep', params: { ms: 300 } },
    })
    await mock.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    await slow.terminate()
    // The reply to the terminated worker's request arrives after its JS context is gone.
    await mock.waitFor((m) => m.openConnections === 0, 5000)
    const others = await Promise.all(
      [1, 2].map(
        (n) =>
          new Promise((resolve, reject) => {
            const w = new Worker(source, {
              eval: true,
              workerData: { entry: cjsEntry, port: mock.port, type: 'echo', params: { n } },
            })
            w.on('message', (m) => m !== 'started' && resolve(m))
            w.once('error', reject)
          }),
      ),
    )
    expect(others.map((r) => r.result.n)).toEqual([1, 2])
  })
})
