// Blender not there (closed, crashed, still starting): a call fails fast with a clear
// ERR_CONNECT, the pool says so once, and a Blender that comes back is used at once.
import { describe, expect, it } from 'vitest'
import { ConnectionPool } from '../../index.mjs'
import { deadEndpoint, mockBlender, poolFor, rejection, runScript, until } from '../helpers.mjs'

/** The package's ESM entry, as a specifier a child process can import on any platform. */
const entry = new URL('../../index.mjs', import.meta.url).href

describe('Blender not running', () => {
  it('two calls with the defaults each fail after connectRetryTimeout (2 s), with one warning on stderr', async () => {
    const dead = await deadEndpoint()
    const run = await runScript(
      `import { ConnectionPool } from ${JSON.stringify(entry)}
       const pool = new ConnectionPool({ host: ${JSON.stringify(dead.host)}, port: ${dead.port} })
       const calls = []
       for (let i = 0; i < 2; i++) {
         const started = performance.now()
         const err = await pool.execute('get_scene_info').then(() => null, (e) => e)
         calls.push({ code: err?.code, message: err?.message, ms: Math.round(performance.now() - started) })
       }
       process.stdout.write(JSON.stringify({ calls, config: pool.config, stats: pool.getStats() }))`,
      { LOG_LEVEL: '', LOG_FORMAT: '' },
    )
    expect(run.code).toBe(0)
    const { calls, config, stats } = JSON.parse(run.stdout)
    expect(config.connectRetryTimeout).toBe(2000)
    expect(config.connectionTimeout).toBe(30_000)
    for (const call of calls) {
      expect(call.code).toBe('ERR_CONNECT')
      expect(call.message).toBe(
        `Failed to connect to Blender: connection refused (${dead.host}:${dead.port}): is Blender running with the MCP add-on's server started?`,
      )
      // Held for the retry budget, not for connectionTimeout.
      expect(call.ms).toBeGreaterThanOrEqual(2000)
      expect(call.ms).toBeLessThan(10_000)
    }
    expect(stats.connectFailures).toBeGreaterThan(8)
    // At the default level: one line when Blender went away, none per retry or per call.
    const lines = run.stderr.split('\n').filter((l) => l.trim() !== '')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/WARN/)
    expect(lines[0]).toMatch(/Blender is not reachable/)
    expect(lines[0]).toContain(`${dead.host}:${dead.port}`)
    expect(lines[0]).toMatch(/connection refused/)
  })

  it('logs once when Blender goes away and once when it is back; each retry is debug', async () => {
    const mock = await mockBlender()
    await mock.setAcceptMode('refuse')
    const run = await runScript(
      `import { ConnectionPool } from ${JSON.stringify(entry)}
       const records = []
       const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (message, fields) => records.push({ level, message, fields })]))
       const pool = new ConnectionPool({ host: '127.0.0.1', port: ${mock.port}, minConnections: 0, connectRetryTimeout: 300, logger })
       const codes = []
       for (let i = 0; i < 2; i++) codes.push(await pool.execute('echo').then(() => 'ok', (e) => e.code))
       process.stdout.write(JSON.stringify({ codes }) + '\\n')
       // The parent lets Blender back in once it reads that line.
       await new Promise((resolve) => process.stdin.once('data', resolve))
       process.stdin.destroy()
       codes.push(await pool.execute('echo', { back: true }).then((r) => r.result.back, (e) => e.code))
       await pool.shutdown()
       process.stdout.write(JSON.stringify({ codes, records }))`,
      { LOG_LEVEL: 'debug' },
      {
        onStdout: async (text, child) => {
          if (text.includes('"codes"') && !text.includes('records')) {
            await mock.setAcceptMode('normal')
            child.stdin.write('go\n')
          }
        },
      },
    )
    expect(run.code).toBe(0)
    const { codes, records } = JSON.parse(run.stdout.trim().split('\n').pop())
    expect(codes).toEqual(['ERR_CONNECT', 'ERR_CONNECT', true])
    // (The shutdown record may still be on its way: records reach the logger asynchronously.)
    const loud = records.filter((r) => r.level !== 'debug' && r.message !== 'shutting down pool')
    expect(loud.map((r) => [r.level, r.message])).toEqual([
      ['warn', 'Blender is not reachable; calls fail with ERR_CONNECT after connectRetryTimeout until it is back'],
      ['info', 'Blender reachable again'],
    ])
    expect(loud[0].fields).toMatchObject({
      addr: `127.0.0.1:${mock.port}`,
      reason: 'connection refused',
      retry_ms: 300,
    })
    expect(loud[1].fields).toMatchObject({
      addr: `127.0.0.1:${mock.port}`,
      failures: expect.any(Number),
      outage_ms: expect.any(Number),
    })
    const retries = records.filter((r) => r.message === 'connect retry failed')
    expect(retries.length).toBeGreaterThan(2)
    expect(retries.every((r) => r.level === 'debug')).toBe(true)
  })

  it('connectRetryTimeout 0: each call fails with the one attempt made for it', async () => {
    const dead = await deadEndpoint()
    const pool = poolFor(dead, { connectRetryTimeout: 0 })
    for (let call = 1; call <= 3; call++) {
      expect((await rejection(pool.execute('echo'))).code).toBe('ERR_CONNECT')
      expect(pool.getStats().connectFailures).toBe(call)
    }
    expect(pool.getStats()).toMatchObject({ pendingRequests: 0, openingConnections: 0 })
  })

  it('a Blender that starts while a caller waits serves it at once: probes stay at most 250 ms apart', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { connectRetryTimeout: 20_000 })
    await mock.setAcceptMode('refuse')
    const call = pool.execute('echo', { waited: true })
    // Eight failures come within ~1.3 s at most 250 ms apart (backed off to 5 s: over 3 s).
    const started = Date.now()
    await until(() => pool.getStats().connectFailures >= 8, 3000)
    expect(Date.now() - started).toBeLessThan(3000)
    await mock.setAcceptMode('normal')
    const back = Date.now()
    await expect(call).resolves.toEqual({ status: 'success', result: { waited: true } })
    expect(Date.now() - back).toBeLessThan(1000)
    expect(mock.requestLog).toHaveLength(1)
  })

  it('connectRetryTimeout is validated like the other durations, 0 included', () => {
    expect(() => new ConnectionPool({ connectRetryTimeout: -1 })).toThrow(RangeError)
    expect(() => new ConnectionPool({ connectRetryTimeout: 1.5 })).toThrow(/connectRetryTimeout must be an integer/)
    expect(() => new ConnectionPool({ connectRetryTimeout: '2000' })).toThrow(TypeError)
    expect(() => new ConnectionPool({ connectRetryTimeout: 2 ** 31 })).toThrow(/connectRetryTimeout/)
    const pool = new ConnectionPool({ connectRetryTimeout: 0, minConnections: 0 })
    expect(pool.config.connectRetryTimeout).toBe(0)
    return pool.shutdown()
  })
})
