// The `logger` option: the pool's records go to the host's logger instead of stderr.
import { describe, expect, it } from 'vitest'

import { ConnectionPool } from '../../index.mjs'
import { mockBlender, rejection, runScript } from '../helpers.mjs'

const entry = new URL('../../index.mjs', import.meta.url).href // a URL: ESM specifiers are not paths

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
    expect(reply).toMatchObject({
      level: 'debug',
      fields: { conn: expect.any(Number), bytes: expect.any(Number), pool: expect.any(Number) },
    })
    expect(records.some((r) => r.message === 'sending' && r.fields.command === 'echo')).toBe(true)
    expect(run.stdout).not.toContain(secret)
    // Nothing of this pool reached stderr.
    expect(run.stderr).not.toMatch(/sending|reply/)
  })

  it('with a logger, not one record reaches stderr: the first ones (pool created, first connects) included', async () => {
    const mock = await mockBlender()
    const run = await runScript(
      `import { ConnectionPool } from ${JSON.stringify(new URL('../../index.mjs', import.meta.url).href)}
       const records = []
       const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (message, fields) => records.push({ level, message, fields })]))
       // minConnections 1: the pool connects in the background from its first moment.
       const pool = new ConnectionPool({ host: '127.0.0.1', port: ${mock.port}, minConnections: 1, logger })
       await pool.execute('echo', { n: 1 })
       await pool.shutdown()
       for (let i = 0; i < 20 && !records.some((r) => r.message === 'shutting down pool'); i++) await new Promise((r) => setTimeout(r, 10))
       process.stdout.write(JSON.stringify(records))`,
      { LOG_LEVEL: 'debug' },
    )
    expect(run.code).toBe(0)
    expect(run.stderr).toBe('')
    const records = JSON.parse(run.stdout)
    expect(records[0]).toMatchObject({
      level: 'debug',
      message: 'pool created',
      fields: { addr: `127.0.0.1:${mock.port}`, max: 5 },
    })
    expect(records.some((r) => r.message === 'connected')).toBe(true)
  })

  it('says in its first record where replies are read: the event loop, unless BLENDER_POOL_IO_THREAD_READS=1', async () => {
    // Every supported Node exports libuv (Windows included, through node.exe): the I/O-thread
    // path is the fallback, or what the variable asks for (npm test runs the suite both ways).
    const mock = await mockBlender()
    const records = []
    const logger = Object.fromEntries(
      ['debug', 'info', 'warn', 'error'].map((level) => [
        level,
        (message, fields) => records.push({ message, fields }),
      ]),
    )
    const pool = loggedPool(mock, logger)
    const created = await recordWhere(records, (r) => r.message === 'pool created')
    expect(created.fields.watched).toBe(process.env.BLENDER_POOL_IO_THREAD_READS !== '1')
    await expect(pool.execute('echo', { n: 1 })).resolves.toMatchObject({ result: { n: 1 } })
    await pool.shutdown()
  })

  it('a logger that throws does not break calls', async () => {
    const mock = await mockBlender()
    const boom = () => {
      throw new Error('logger down')
    }
    const pool = new ConnectionPool({
      host: '127.0.0.1',
      port: mock.port,
      minConnections: 0,
      logger: { debug: boom, info: boom, warn: boom, error: boom },
    })
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

/** A pool created with LOG_LEVEL=`level` (read at construction), its records to `logger`. */
function loggedPool(mock, logger, level = 'debug', extra = {}) {
  const saved = process.env.LOG_LEVEL
  process.env.LOG_LEVEL = level
  try {
    return new ConnectionPool({ host: '127.0.0.1', port: mock.port, minConnections: 0, logger, ...extra })
  } finally {
    process.env.LOG_LEVEL = saved
  }
}

/** Resolves once `records` holds one matching `predicate` (records arrive asynchronously). */
async function recordWhere(records, predicate) {
  for (let turn = 0; turn < 2000; turn++) {
    const found = records.find(predicate)
    if (found !== undefined) return found
    await new Promise((resolve) => setImmediate(resolve))
  }
  throw new Error(`no such record among ${records.length}: ${predicate}`)
}

/**
 * A logger with the ClaudeKit server's signatures (consumer.md): `debug/info/warn(message,
 * context?)` and `error(message, error?: Error, context?)`.
 */
class ClaudeKitStyleLogger {
  constructor() {
    this.calls = []
  }
  debug(message, context) {
    this.calls.push({ level: 'debug', message, context })
  }
  info(message, context) {
    this.calls.push({ level: 'info', message, context })
  }
  warn(message, context) {
    this.calls.push({ level: 'warn', message, context })
  }
  error(message, error, context) {
    this.calls.push({ level: 'error', message, error, context })
  }
}

describe('logger shapes', () => {
  it('a pino logger, passed as it is, gets (fields, message): the fields arrive', async () => {
    const { default: pino } = await import('pino')
    const lines = []
    const logger = pino({ level: 'debug' }, { write: (line) => lines.push(JSON.parse(line)) })
    const mock = await mockBlender()
    const pool = loggedPool(mock, logger)
    await pool.execute('echo', { n: 1 })
    const reply = await recordWhere(lines, (l) => l.msg === 'reply')
    expect(reply).toMatchObject({
      level: 20,
      conn: expect.any(Number),
      bytes: expect.any(Number),
      pool: expect.any(Number),
      poolName: 'default',
    })
    const sending = await recordWhere(lines, (l) => l.msg === 'sending')
    expect(sending.command).toBe('echo')
    await pool.shutdown()
  })

  it('a bunyan logger, passed as it is, gets (fields, message): the fields arrive', async () => {
    const { default: bunyan } = await import('bunyan')
    const records = []
    const logger = bunyan.createLogger({
      name: 'host',
      level: 'debug',
      streams: [{ type: 'raw', level: 'debug', stream: { write: (r) => records.push(r) } }],
    })
    const mock = await mockBlender()
    const pool = loggedPool(mock, logger)
    mock.setFault('garbage')
    await pool.execute('echo').catch(() => {})
    const bad = await recordWhere(records, (r) => /discarding connection/.test(r.msg))
    expect(bad).toMatchObject({
      level: bunyan.WARN,
      code: 'ERR_INVALID_RESPONSE',
      command: 'echo',
      conn: expect.any(Number),
      pool: expect.any(Number),
    })
    await pool.shutdown()
  })

  it("the ClaudeKit server's logger gets (message, undefined, fields) at error, (message, fields) below", async () => {
    const native = (await import('../../binding.js')).default
    const logger = new ClaudeKitStyleLogger()
    const mock = await mockBlender()
    const pool = loggedPool(mock, logger)
    await pool.execute('echo')
    native.__setFailpoint('panic-on-reply', true)
    try {
      expect((await rejection(pool.execute('echo'))).code).toBe('ERR_INTERNAL')
    } finally {
      native.__setFailpoint('panic-on-reply', false)
    }
    const error = await recordWhere(logger.calls, (c) => c.level === 'error')
    expect(error.error).toBeUndefined()
    expect(error.context).toMatchObject({ pool: expect.any(Number), poolName: 'default' })
    const debug = await recordWhere(logger.calls, (c) => c.message === 'reply')
    expect(debug.context).toMatchObject({ conn: expect.any(Number), bytes: expect.any(Number) })
    await pool.shutdown()
  })

  it('loggerStyle overrides the detection', async () => {
    const calls = []
    // error declares three parameters, yet this host wants (message, fields).
    const logger = {
      debug: (m, f) => calls.push([m, f]),
      info: (m, f) => calls.push([m, f]),
      warn: (m, f) => calls.push([m, f]),
      error: (m, f, _unused) => calls.push([m, f]),
    }
    const mock = await mockBlender()
    const pool = loggedPool(mock, logger, 'debug', { loggerStyle: 'message-fields' })
    await pool.execute('echo')
    const [message, fields] = await recordWhere(calls, ([m]) => m === 'reply')
    expect(message).toBe('reply')
    expect(fields).toMatchObject({ conn: expect.any(Number) })
    await pool.shutdown()
    expect(() => new ConnectionPool({ logger, loggerStyle: 'fields-first' })).toThrow(
      /loggerStyle must be one of message-fields, fields-message, message-error-fields/,
    )
    expect(() => new ConnectionPool({ loggerStyle: 'message-fields' })).toThrow(/only meaningful with a logger/)
  })
})
