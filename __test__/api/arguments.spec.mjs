// Bad arguments are refused with a TypeError/RangeError naming the field, before anything is
// sent or any socket is opened.
import { describe, expect, it } from 'vitest'

import { ConnectionPool } from '../../index.mjs'
import { mockBlender, poolFor, rejection } from '../helpers.mjs'

describe('config validation', () => {
  it.each([
    [{ maxConnections: '5' }, TypeError, 'ERR_INVALID_ARG_TYPE', 'maxConnections'],
    [{ host: 42 }, TypeError, 'ERR_INVALID_ARG_TYPE', 'host'],
    [{ port: 70000 }, RangeError, 'ERR_OUT_OF_RANGE', 'port'],
    [{ port: 0 }, RangeError, 'ERR_OUT_OF_RANGE', 'port'],
    [{ maxConnections: Number.NaN }, RangeError, 'ERR_OUT_OF_RANGE', 'maxConnections'],
    [{ minConnections: -1 }, RangeError, 'ERR_OUT_OF_RANGE', 'minConnections'],
    [{ connectionTimeout: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE', 'connectionTimeout'],
    [{ minConnections: 6, maxConnections: 5 }, RangeError, 'ERR_OUT_OF_RANGE', 'minConnections'],
    [{ socketTimeout: Infinity }, RangeError, 'ERR_OUT_OF_RANGE', 'socketTimeout'],
    [{ idleTimeout: 0 }, RangeError, 'ERR_OUT_OF_RANGE', 'idleTimeout'],
    [{ maxRequestsPerConnection: 0 }, RangeError, 'ERR_OUT_OF_RANGE', 'maxRequestsPerConnection'],
  ])('%o throws %o naming the field', (config, klass, code, field) => {
    let thrown
    try {
      new ConnectionPool(config)
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(klass)
    expect(thrown.code).toBe(code)
    expect(thrown.message).toContain(field)
  })

  it('rejects a non-object config', () => {
    expect(() => new ConnectionPool('localhost')).toThrow(TypeError)
    expect(() => new ConnectionPool([1])).toThrow(TypeError)
  })

  it('fills defaults like the original, plus host/port/socketTimeout from the environment', () => {
    const pool = new ConnectionPool({ minConnections: 0 })
    expect(pool.config).toMatchObject({
      minConnections: 0,
      maxConnections: 5,
      connectionTimeout: 30000,
      idleTimeout: 60000,
      maxRequestsPerConnection: 1000,
      healthCheckInterval: 30000,
      mutexTimeout: 30000,
      host: process.env.BLENDER_HOST || 'localhost',
      port: Number(process.env.BLENDER_PORT || 9876),
      socketTimeout: Number(process.env.SOCKET_TIMEOUT || 180000),
      maxResponseBytes: 64 * 1024 * 1024,
    })
    return pool.shutdown()
  })

  it('reads BLENDER_HOST, BLENDER_PORT and SOCKET_TIMEOUT at construction', async () => {
    const saved = { ...process.env }
    try {
      Object.assign(process.env, { BLENDER_HOST: '127.0.0.2', BLENDER_PORT: '7777', SOCKET_TIMEOUT: '5000' })
      const pool = new ConnectionPool({ minConnections: 0 })
      expect(pool.config).toMatchObject({ host: '127.0.0.2', port: 7777, socketTimeout: 5000 })
      await pool.shutdown()
      process.env.BLENDER_PORT = 'not-a-port'
      expect(() => new ConnectionPool()).toThrow(/BLENDER_PORT/)
    } finally {
      for (const key of ['BLENDER_HOST', 'BLENDER_PORT', 'SOCKET_TIMEOUT']) {
        if (saved[key] === undefined) delete process.env[key]
        else process.env[key] = saved[key]
      }
    }
  })
})

describe('execute arguments', () => {
  const circular = {}
  circular.self = circular

  it.each([
    ['empty type', '', undefined, TypeError],
    ['non-string type', 42, undefined, TypeError],
    ['array params', 'echo', [1, 2], TypeError],
    ['string params', 'echo', 'x', TypeError],
    ['class instance params', 'echo', new Date(0), TypeError],
    ['circular params', 'echo', circular, TypeError],
    ['BigInt params', 'echo', { n: 10n }, TypeError],
  ])('%s rejects before anything is sent', async (_, type, params, klass) => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const err = await rejection(pool.execute(type, params))
    expect(err).toBeInstanceOf(klass)
    expect(err.code).toMatch(/^ERR_INVALID_ARG_(TYPE|VALUE)$/)
    // Then a good call goes through, and it is the only thing the server ever saw.
    await pool.execute('echo', { ok: 1 })
    expect(mock.requestLog).toEqual([{ connectionId: 1, type: 'echo', params: { ok: 1 } }])
  })

  it('treats null params as absent, as the original did', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await pool.execute('get_scene_info', null)
    expect(mock.requestLog[0].params).toBeUndefined()
  })
})
