// What the pool writes on stderr (never stdout): LOG_FORMAT=json lines shaped like pino's,
// readable lines otherwise, at the LOG_LEVEL each pool was created with; panics included.
import { describe, expect, it } from 'vitest'

import { mockBlender, runScript } from '../helpers.mjs'

const entry = new URL('../../index.mjs', import.meta.url).href
const binding = new URL('../../binding.js', import.meta.url).href

/** A child that creates a pool (after setting `lateEnv`, as a .env loader would) and runs `body`. */
function withPool(mock, { env = {}, lateEnv = {}, config = '', body = "await pool.execute('echo', { n: 1 })" }) {
  return runScript(
    `import { ConnectionPool } from ${JSON.stringify(entry)}
     import native from ${JSON.stringify(binding)}
     Object.assign(process.env, ${JSON.stringify(lateEnv)})
     const pool = new ConnectionPool({ host: '127.0.0.1', port: ${mock.port}, minConnections: 0 ${config} })
     ${body}
     await pool.shutdown()`,
    { LOG_LEVEL: '', LOG_FORMAT: '', ...env },
  )
}

const lines = (text) => text.split('\n').filter((l) => l !== '')

describe('log output', () => {
  it('LOG_FORMAT=json: one pino-shaped object per line, flat fields, nothing on stdout', async () => {
    const mock = await mockBlender()
    const run = await withPool(mock, { env: { LOG_FORMAT: 'json', LOG_LEVEL: 'debug' }, config: ", name: 'scene'" })
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('')
    const records = lines(run.stderr).map((l) => JSON.parse(l))
    expect(records.length).toBeGreaterThan(3)
    for (const r of records) {
      expect(Object.keys(r).slice(0, 4)).toEqual(['level', 'time', 'pid', 'name'])
      expect(Object.keys(r).at(-1)).toBe('msg')
      expect(r).toMatchObject({ name: 'blender-mcp-pool', pool: expect.any(Number), poolName: 'scene' })
      expect(Math.abs(r.time - Date.now())).toBeLessThan(60_000)
    }
    const reply = records.find((r) => r.msg === 'reply')
    expect(reply).toMatchObject({
      level: 20,
      conn: expect.any(Number),
      bytes: expect.any(Number),
      micros: expect.any(Number),
    })
    expect(records.find((r) => r.msg === 'shutting down pool')).toMatchObject({ level: 30 })
  })

  it('the default format is one readable line per record, stamped in UTC', async () => {
    const mock = await mockBlender()
    const run = await withPool(mock, { env: { LOG_LEVEL: 'info' } })
    expect(run.code).toBe(0)
    const [line] = lines(run.stderr)
    const today = new Date().toISOString().slice(0, 10)
    expect(line).toMatch(
      new RegExp(
        `^${today}T\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z INFO  blender-mcp-pool: shutting down pool pool=\\d+ poolName=default connections=1 waiting=0$`,
      ),
    )
  })

  it('LOG_LEVEL is read when the pool is created (a .env loaded after import counts), with aliases', async () => {
    const mock = await mockBlender()
    const counts = {}
    for (const level of ['debug', 'trace', 'verbose', 'info', 'warn', 'error', 'fatal', 'silent']) {
      const run = await withPool(mock, {
        lateEnv: { LOG_LEVEL: level, LOG_FORMAT: 'json' },
        body: "await pool.execute('echo', { n: 1 }); await pool.execute('bad').catch(() => {})",
      })
      expect(run.code).toBe(0)
      counts[level] = lines(run.stderr).map((l) => JSON.parse(l).level)
    }
    expect(counts.debug.filter((l) => l === 20).length).toBeGreaterThan(2)
    expect(counts.trace).toEqual(counts.debug.map(() => expect.any(Number)))
    expect(counts.verbose.length).toBe(counts.debug.length)
    expect(counts.info).toEqual([30])
    expect(counts.warn).toEqual([])
    expect(counts.error).toEqual([])
    expect(counts.fatal).toEqual([])
    expect(counts.silent).toEqual([])
  })

  it('an unknown LOG_LEVEL gives one warning naming the value, however many pools use it', async () => {
    const mock = await mockBlender()
    const run = await withPool(mock, {
      lateEnv: { LOG_LEVEL: 'loud', LOG_FORMAT: 'json' },
      body: `const second = new ConnectionPool({ host: '127.0.0.1', port: ${mock.port}, minConnections: 0 })
             await second.execute('echo'); await second.shutdown()`,
    })
    expect(run.code).toBe(0)
    const records = lines(run.stderr).map((l) => JSON.parse(l))
    expect(records).toEqual([
      expect.objectContaining({
        level: 40,
        variable: 'LOG_LEVEL',
        value: 'loud',
        msg: 'unknown LOG_LEVEL value; using the default',
      }),
    ])
  })

  it('a panic is a record like the others: in the chosen format, never raw on stderr', async () => {
    const mock = await mockBlender()
    const run = await withPool(mock, {
      env: { LOG_FORMAT: 'json', LOG_LEVEL: 'error' },
      body: `await pool.execute('echo')
             native.__setFailpoint('panic-on-reply', true)
             const err = await pool.execute('echo').catch((e) => e)
             native.__setFailpoint('panic-on-reply', false)
             process.stdout.write(err.code)`,
    })
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('ERR_INTERNAL')
    expect(run.stderr).not.toMatch(/panicked at/)
    const records = lines(run.stderr).map((l) => JSON.parse(l))
    const panic = records.find((r) => r.msg.startsWith('panic'))
    expect(panic).toMatchObject({
      level: 50,
      pool: expect.any(Number),
      location: expect.stringMatching(/failpoint\.rs:\d+$/),
    })
    expect(panic.msg).toMatch(/failpoint PanicOnReply hit \(a panic injected by a test: expected\)/)
  })
})
