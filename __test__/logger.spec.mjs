// The `logger` option: the pool's records go to the host's logger instead of stderr.
import { describe, expect, it } from 'vitest'

import { ConnectionPool } from '../index.mjs'
import { mockBlender, rejection, runScript } from './helpers.mjs'

const entry = new URL('../index.mjs', import.meta.url).href // a URL: ESM specifiers are not paths

describe('logger option', () => {
  it("sends the pool's records to the host logger, not to stderr, and never keeps the process alive", async () => {
    const mock = await mockBlender()
    const secret = 'sk-TOP-SECRET-9999'
    const run = await runScript(
      `import { ConnectionPool } from ${JSON.stringify(entry)}
       const records = []
       const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (message, fields) => records.push({ level, message, fields })]))
       const pool = new ConnectionPool({ host: '127.0.0.1', port: ${mock.port}, minConnections: 0, logger })
       await pool.execute('echo', { key: ${JSON.stringify(secret)} })
       await pool.execute('garbage_please', {}).catch(() => {})
       // Records arrive asynchronously: give the queue a few turns, then report.
       for (let i = 0; i < 20 && !records.some((r) => r.message === 'reply'); i++) await new Promise((r) => setTimeout(r, 10))
       process.stdout.write(JSON.stringify(records))`,
      { LOG_LEVEL: 'debug' },
    )
    expect(run.code).toBe(0)
    const records = JSON.parse(run.stdout)
    const reply = records.find((r) => r.message === 'reply')
    expect(reply).toMatchObject({ level: 'debug', fields: { conn: expect.any(Number), bytes: expect.any(Number), pool: expect.any(Number) } })
    expect(records.some((r) => r.message === 'sending' && r.fields.command === 'echo')).toBe(true)
    expect(run.stdout).not.toContain(secret)
    // Nothing of this pool reached stderr.
    expect(run.stderr).not.toMatch(/sending|reply/)
  })

  it('a logger that throws does not break calls', async () => {
    const mock = await mockBlender()
    const boom = () => {
      throw new Error('logger down')
    }
    const pool = new ConnectionPool({ host: '127.0.0.1', port: mock.port, minConnections: 0, logger: { debug: boom, info: boom, warn: boom, error: boom } })
    mock.setFault('garbage')
    expect((await rejection(pool.execute('echo'))).code).toBe('ERR_INVALID_RESPONSE')
    await expect(pool.execute('echo', { ok: 1 })).resolves.toMatchObject({ result: { ok: 1 } })
    await pool.shutdown()
  })

  it('rejects a logger without the four methods', () => {
    expect(() => new ConnectionPool({ logger: { info() {} } })).toThrow(/logger must have debug, info, warn and error/)
    expect(() => new ConnectionPool({ logger: 'console' })).toThrow(TypeError)
  })
})
