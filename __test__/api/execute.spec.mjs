import { describe, expect, it } from 'vitest'

import { mockBlender, poolFor } from '../helpers.mjs'

describe('execute', () => {
  it('sends {type, params} + newline and resolves to the parsed reply', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const reply = await pool.execute('echo', { id: 7, text: 'héllo "quoted" {braces}' })
    expect(reply).toEqual({ status: 'success', result: { id: 7, text: 'héllo "quoted" {braces}' } })
    expect(mock.requestLog).toEqual([
      { connectionId: 1, type: 'echo', params: { id: 7, text: 'héllo "quoted" {braces}' } },
    ])
  })

  it('omits the params key when params are not given', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await pool.execute('get_scene_info')
    expect(mock.requestLog[0]).toEqual({ connectionId: 1, type: 'get_scene_info', params: undefined })
    expect(mock.bytesReceived).toBe(Buffer.byteLength('{"type":"get_scene_info"}\n'))
  })

  it('resolves a status:error reply (that is Blender answering, not a pool failure)', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    await expect(pool.execute('get_object_info', { name: 'Nope' })).resolves.toEqual({
      status: 'error',
      message: 'Object not found: Nope',
    })
  })

  it('matches every reply to its own request under concurrency', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock, { maxConnections: 5 })
    const ids = Array.from({ length: 200 }, (_, i) => i)
    const replies = await Promise.all(ids.map((id) => pool.execute('echo', { id, pad: 'x'.repeat(id * 13) })))
    for (const [id, reply] of replies.entries()) expect(reply.result).toEqual({ id, pad: 'x'.repeat(id * 13) })
    expect(mock.requests).toBe(200)
    expect(mock.maxOpenConnections).toBeLessThanOrEqual(5)
  })

  it('reuses one connection for sequential calls', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    for (let i = 0; i < 20; i++) await pool.execute('echo', { i })
    expect(mock.connectionsOpened).toBe(1)
    expect(new Set(mock.requestLog.map((r) => r.connectionId))).toEqual(new Set([1]))
  })

  it('reads a reply that arrives one byte at a time', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    mock.setFault('trickle')
    await expect(pool.execute('echo', { a: [1, { b: '}' }] })).resolves.toEqual({
      status: 'success',
      result: { a: [1, { b: '}' }] },
    })
    await expect(pool.execute('echo', { next: true })).resolves.toEqual({ status: 'success', result: { next: true } })
    expect(mock.connectionsOpened).toBe(1)
  })

  it('receives a 20 MB reply whole', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const reply = await pool.execute('big', { bytes: 20_000_000 })
    expect(reply.result.length).toBe(20_000_000)
    expect(reply.result[19_999_999]).toBe('a')
  })

  it('sends a 5 MB request whole', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const code = `print(${JSON.stringify('y'.repeat(5_000_000))})`
    const reply = await pool.execute('echo', { code })
    expect(reply.result.code).toBe(code)
  })

  it('executeRaw resolves to the reply text, byte for byte', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const text = await pool.executeRaw('echo', { k: 'v' })
    expect(text).toBe('{"status":"success","result":{"k":"v"}}')
  })

  it('hands big ASCII replies over without a copy, byte for byte, and lets V8 reclaim them', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const text = await pool.executeRaw('big', { bytes: 300_000 })
    expect(text).toBe(`{"status":"success","result":"${'a'.repeat(300_000)}"}`)
    // 25 replies of 8 MB, none kept: without telling V8 about the memory behind these
    // strings, nothing would prompt a collection and all 200 MB would stay allocated.
    for (let i = 0; i < 25; i++) expect((await pool.executeRaw('big', { bytes: 8_000_000 })).length).toBe(8_000_032)
    expect(process.memoryUsage().external).toBeLessThan(150_000_000)
  })

  it('big non-ASCII replies arrive intact', async () => {
    const mock = await mockBlender()
    const pool = poolFor(mock)
    const text = 'é€😀'.repeat(50_000)
    const reply = await pool.execute('echo', { text })
    expect(reply.result.text).toBe(text)
  })
})
