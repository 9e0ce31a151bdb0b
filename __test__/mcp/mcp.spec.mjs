// An MCP server whose tools call getBlenderClient().sendCommand(...) (blender-mcp-pool/socket-client),
// driven over stdio by the MCP SDK's Client, against the mock Blender: concurrent tool calls,
// big replies, a small call during a big one, Blender restarts, Blender closed, and a stdout
// that carries MCP frames only. The same against real Blender: mcp-blender.spec.mjs.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { startMcpFixture, textOf } from '../fixtures/mcp-client.mjs'
import { mockBlender } from '../helpers.mjs'

const figures = {}
const servers = []

afterEach(async () => {
  while (servers.length > 0) await servers.pop().close()
})

afterAll(() => {
  console.log(`MCP over stdio, mock Blender: ${JSON.stringify(figures)}`)
})

/** The fixture MCP server, pointed at `mock`, with more env if given. */
async function serverFor(mock, env = {}) {
  const server = await startMcpFixture({ BLENDER_HOST: mock.host, BLENDER_PORT: String(mock.port), ...env })
  servers.push(server)
  return server
}

const round = (ms) => Math.round(ms)

describe('an MCP server on blender-mcp-pool/socket-client, against the mock', () => {
  it("answers tool calls; stdout carries MCP frames only, with the pool's debug logging on", async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock, { LOG_LEVEL: 'debug' })
    const { tools } = await server.client.listTools()
    expect(tools.map((t) => t.name)).toEqual(['get_scene_info', 'execute_code', 'command', 'health'])
    const { result } = await server.call('get_scene_info')
    expect(JSON.parse(textOf(result))).toEqual({
      status: 'success',
      result: { name: 'Scene', object_count: 3, objects: ['Cube', 'Camera', 'Light'] },
    })
    const health = await server.call('health')
    expect(health.result.isError).toBeUndefined()
    expect(mock.requests).toBe(2)
    // The pool did log its commands (to stderr), and nothing but frames reached the client.
    const poolLines = server
      .stderr()
      .split('\n')
      .filter((line) => !line.startsWith('mcp-fixture: '))
    expect(poolLines.some((line) => line.includes('get_scene_info'))).toBe(true)
    expect(server.errors).toEqual([])
  })

  it("a client notices a stray line on the server's stdout (the check above can fail)", async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock, { FIXTURE_STDOUT_NOISE: '1' })
    await server.call('get_scene_info') // a round trip after the stray line: it has been read
    expect(server.errors.length).toBe(1)
    expect(server.errors[0].name).toBe('SyntaxError')
  })

  it('16 concurrent tool calls each get their own result, over several connections', async () => {
    // Each reply waits 20 ms, so the calls really are in flight together.
    const mock = await mockBlender({ script: ({ type }) => (type === 'echo' ? { fault: 'delay', delayMs: 20 } : null) })
    const server = await serverFor(mock)
    const tokens = Array.from({ length: 16 }, (_, i) => `call-${i}-${Math.random().toString(36).slice(2)}`)
    const calls = await Promise.all(tokens.map((token) => server.call('command', { type: 'echo', params: { token } })))
    const correct = calls.filter(({ result }, i) => JSON.parse(textOf(result)).result?.token === tokens[i]).length
    figures.concurrentCorrect = `${correct}/16`
    expect(correct).toBe(16)
    expect(
      mock.requestLog
        .filter((r) => r.type === 'echo')
        .map((r) => r.params.token)
        .sort(),
    ).toEqual([...tokens].sort())
    expect(mock.maxOpenConnections).toBeGreaterThan(1)
    expect(mock.maxOpenConnections).toBeLessThanOrEqual(5) // the pool's maxConnections
  })

  it('5 MB and 20 MB replies arrive whole', async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock)
    for (const bytes of [5_000_000, 20_000_000]) {
      const { result, ms } = await server.call('command', { type: 'big', params: { bytes } })
      const reply = JSON.parse(textOf(result))
      expect(reply.status).toBe('success')
      expect(reply.result.length).toBe(bytes)
      expect(/^a+$/.test(reply.result)).toBe(true)
      figures[`reply${bytes / 1e6}MB`] = { mcpMs: round(ms), clientMs: round(result._meta.clientMs) }
    }
  })

  it('a small tool call sent while a 20 MB reply arrives is answered before it', async () => {
    // The 20 MB reply comes in 1 MiB chunks 100 ms apart (about 2 s in all).
    const mock = await mockBlender({
      script: ({ type }) => (type === 'render' ? { fault: 'huge', bytes: 20_000_000, chunkDelayMs: 100 } : null),
    })
    const server = await serverFor(mock)
    const order = []
    const big = server.call('command', { type: 'render' }).then((outcome) => {
      order.push('big')
      return outcome
    })
    await mock.waitFor((m) => m.hugeBytesSent > 0, 10_000)
    const small = server.call('get_scene_info').then((outcome) => {
      order.push('small')
      return outcome
    })
    const [bigOutcome, smallOutcome] = await Promise.all([big, small])
    expect(order).toEqual(['small', 'big'])
    expect(JSON.parse(textOf(smallOutcome.result)).result.object_count).toBe(3)
    const reply = JSON.parse(textOf(bigOutcome.result))
    expect(reply.result.length).toBe(20_000_000)
    expect(mock.hugeBytesSent).toBe(20_000_000 + '{"status":"success","result":""}'.length)
    figures.smallDuringBig = { smallMs: round(smallOutcome.ms), bigMs: round(bigOutcome.ms) }
  })

  it('Blender restarted between calls: the next call is answered', async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock)
    expect((await server.call('get_scene_info')).result.isError).toBeUndefined()
    await mock.restart()
    const { result, ms } = await server.call('get_scene_info')
    expect(result.isError).toBeUndefined()
    expect(JSON.parse(textOf(result)).status).toBe('success')
    expect(mock.restarts).toBe(1)
    figures.afterRestartMs = round(ms)
  })

  it('Blender restarted under a running call: that call fails as the connection closed, the next is answered', async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock)
    const running = server.call('command', { type: 'sleep', params: { ms: 15_000 } })
    await mock.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    await mock.restart()
    const { result } = await running
    expect(result.isError).toBe(true)
    expect(result._meta.code).toBe('ERR_CONNECTION_CLOSED')
    expect(textOf(result)).toMatch(/^Error: Connection closed before complete response/)
    const next = await server.call('get_scene_info')
    expect(next.result.isError).toBeUndefined()
    figures.afterRestartUnderCallMs = round(next.ms)
  })

  it('Blender closed: a tool call fails fast with ERR_CONNECT naming host:port; once back, calls are answered', async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock)
    expect((await server.call('get_scene_info')).result.isError).toBeUndefined()
    await mock.setAcceptMode('refuse')
    await mock.closeAllConnections()
    const { result, ms } = await server.call('get_scene_info', {}, { timeout: 10_000 })
    expect(result.isError).toBe(true)
    expect(result._meta.code).toBe('ERR_CONNECT')
    expect(textOf(result)).toMatch(/^Error: Failed to connect to Blender: /)
    expect(textOf(result)).toContain(`${mock.host}:${mock.port}`)
    figures.closedBlenderMs = round(ms)
    // connectRetryTimeout (2000 ms by default) bounds the wait, not connectionTimeout (30 s).
    expect(ms).toBeLessThan(4000)
    await mock.setAcceptMode('normal')
    expect((await server.call('get_scene_info')).result.isError).toBeUndefined()
  })

  it("the health check's client disconnects while a tool call runs: the call completes, the pool stays", async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock)
    const running = server.call('command', { type: 'sleep', params: { ms: 300 } })
    await mock.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    const health = await server.call('health')
    expect(JSON.parse(textOf(health.result)).status).toBe('success')
    expect(JSON.parse(textOf((await running).result))).toEqual({ status: 'success', result: { slept: 300 } })
    const opened = mock.connectionsOpened
    expect((await server.call('get_scene_info')).result.isError).toBeUndefined()
    expect(mock.connectionsOpened).toBe(opened) // the same pool's connections, not a new one
  })
})
