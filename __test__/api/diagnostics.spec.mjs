// node:diagnostics_channel: what a tracing or APM tool sees without any option.

import diagnostics from 'node:diagnostics_channel'
import { afterEach, describe, expect, it } from 'vitest'

import { mockBlender, poolFor, rejection, until } from '../helpers.mjs'

const NAMES = ['command:start', 'command:end', 'command:error', 'connection:open', 'connection:close']
const subscribed = []

/** Subscribes to every channel; returns the messages, as `[channel, message]`, in order. */
function subscribeAll() {
  const seen = []
  for (const name of NAMES) {
    const fn = (message) => seen.push([name, message])
    diagnostics.subscribe(`blender-mcp-pool:${name}`, fn)
    subscribed.push([`blender-mcp-pool:${name}`, fn])
  }
  return seen
}

afterEach(() => {
  while (subscribed.length > 0) diagnostics.unsubscribe(...subscribed.pop())
})

describe('diagnostics_channel', () => {
  it('publishes command start/end/error and connection open/close, with sizes, durations, ids and codes', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { name: 'scene', maxConnections: 1 })
    const seen = subscribeAll()
    const secret = 'sk-DIAG-SECRET'
    await pool.execute('echo', { key: secret })
    mock.setFault('garbage')
    expect((await rejection(pool.execute('get_scene_info'))).code).toBe('ERR_INVALID_RESPONSE')
    await until(() => seen.some(([name]) => name === 'connection:close'))
    // Command events come in order, and so do connection events; the two streams travel apart
    // (a connection's close and its call's failure may arrive in either order).
    const names = seen.map(([name]) => name)
    expect(names.filter((n) => n.startsWith('command:'))).toEqual([
      'command:start',
      'command:end',
      'command:start',
      'command:error',
    ])
    expect(names.filter((n) => n.startsWith('connection:'))).toEqual(['connection:open', 'connection:close'])
    expect(names.indexOf('connection:open')).toBeLessThan(names.indexOf('command:end'))
    const event = (name, nth = 0) => seen.filter(([n]) => n === name)[nth][1]
    const [start, open, end, error, close] = [
      event('command:start'),
      event('connection:open'),
      event('command:end'),
      event('command:error'),
      event('connection:close'),
    ]
    const request = JSON.stringify({ type: 'echo', params: { key: secret } })
    expect(start).toEqual({ pool: 'scene', type: 'echo', requestBytes: request.length })
    expect(open).toEqual({ pool: 'scene', connectionId: 'conn-1' })
    expect(end).toEqual({
      pool: 'scene',
      type: 'echo',
      requestBytes: request.length,
      replyLength: JSON.stringify({ status: 'success', result: { key: secret } }).length,
      durationMs: expect.any(Number),
      connectionId: 'conn-1',
    })
    expect(end.durationMs).toBeGreaterThan(0)
    expect(error).toMatchObject({
      pool: 'scene',
      type: 'get_scene_info',
      code: 'ERR_INVALID_RESPONSE',
      connectionId: 'conn-1',
    })
    expect(close).toEqual({ pool: 'scene', connectionId: 'conn-1', reason: 'ERR_INVALID_RESPONSE' })
    // Never a body: not the params, not the reply.
    expect(JSON.stringify(seen)).not.toContain(secret)
  })

  it('a call that never reached Blender has no connection id; an idle close says why', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { idleTimeout: 50, minConnections: 0 })
    const seen = subscribeAll()
    const err = await rejection(pool.execute('echo', {}, { signal: AbortSignal.abort() }))
    expect(err.code).toBe('ABORT_ERR')
    await pool.execute('echo')
    await until(() => seen.some(([name]) => name === 'connection:close'))
    const [, aborted] = seen.find(([name]) => name === 'command:error')
    expect(aborted).toMatchObject({ code: 'ABORT_ERR', connectionId: null })
    const [, close] = seen.find(([name]) => name === 'connection:close')
    expect(close.reason).toBe('idle-timeout')
  })
})
