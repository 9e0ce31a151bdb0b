// Long Blender commands over MCP stdio, against the mock (which runs commands one at a time, as
// Blender does): the fixture server's tools pass `mcpCallOptions(extra)` to sendCommand, and the
// SDK's Client drives them. A client with a short timeout that restarts on progress waits out a
// long command; a cancelled tool call ends the pool's call at once and the next one is served on
// a fresh connection; a call queued behind a long one hears which one, and so does its timeout.
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { startMcpFixture, textOf } from '../fixtures/mcp-client.mjs'
import { mockBlender } from '../helpers.mjs'

const figures = {}
const servers = []

afterEach(async () => {
  while (servers.length > 0) await servers.pop().close()
})

afterAll(() => {
  console.log(`Long commands over MCP stdio, mock Blender: ${JSON.stringify(figures)}`)
})

async function serverFor(mock) {
  const server = await startMcpFixture({
    BLENDER_HOST: mock.host,
    BLENDER_PORT: String(mock.port),
    FIXTURE_PROGRESS_INTERVAL: '1000',
  })
  servers.push(server)
  return server
}

/** The epoch ms the fixture logged for the end of a command (`failed|answered <type> ... at <ms>`). */
const endedAt = (line) => Number(/ at (\d+)$/.exec(line)[1])

describe('long commands over MCP, against the mock', () => {
  it('a 10 s command succeeds for a client whose timeout is 3 s but restarts on progress', async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock)
    const progress = []
    const { result, ms } = await server.call(
      'command',
      { type: 'sleep', params: { ms: 10_000 } },
      { timeout: 3000, resetTimeoutOnProgress: true, onprogress: (p) => progress.push(p) },
    )
    expect(result.isError).toBeUndefined()
    expect(JSON.parse(textOf(result))).toEqual({ status: 'success', result: { slept: 10_000 } })
    figures.longCommand = { ms: Math.round(ms), progress: progress.length, first: progress[0]?.message }
    expect(progress.length).toBeGreaterThanOrEqual(3)
    expect(progress.map((p) => p.progress)).toEqual(progress.map((_, i) => i + 1))
    expect(progress[0].message).toMatch(/^waiting for Blender \(\d/)
  }, 30_000)

  it('the same client without progress gives up after 3 s (the test above can fail)', async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock)
    const started = performance.now()
    await expect(server.call('command', { type: 'sleep', params: { ms: 6000 } }, { timeout: 3000 })).rejects.toThrow(
      /timed out/i,
    )
    expect(performance.now() - started).toBeLessThan(5000)
  }, 30_000)

  it('a cancelled tool call ends the pool call within 100 ms; the next call gets a fresh connection at once', async () => {
    // The slow command's reply is held back 20 s without holding the mock's command queue: what
    // is measured is the pool, not Blender's queue. (Blender itself cannot stop a command it
    // runs: a call after a cancelled render still waits for the render in Blender's queue.)
    const mock = await mockBlender({
      script: ({ params }) => (params?.slow ? { fault: 'delay', delayMs: 20_000 } : null),
    })
    const server = await serverFor(mock)
    await server.call('get_scene_info') // one connection open and warm
    expect(mock.connectionsOpened).toBe(1)
    const controller = new AbortController()
    const running = server.call('command', { type: 'echo', params: { slow: true } }, { signal: controller.signal })
    await mock.waitFor((m) => m.requestLog.some((r) => r.params?.slow))
    const ended = server.waitForStderr(/^mcp-fixture: failed echo in .*: ABORT_ERR at \d+$/)
    const cancelledAt = Date.now()
    controller.abort()
    await expect(running).rejects.toThrow()
    const cancelToEnd = endedAt(await ended) - cancelledAt
    // The aborted call's connection is discarded: the mock sees it close.
    await mock.waitFor((m) => m.openConnections === 0)
    const { result, ms } = await server.call('command', { type: 'echo', params: { after: 'cancel' } })
    expect(JSON.parse(textOf(result)).result).toEqual({ after: 'cancel' })
    expect(mock.connectionsOpened).toBe(2)
    figures.cancel = { cancelToEndMs: cancelToEnd, nextCallMs: Math.round(ms) }
    expect(cancelToEnd).toBeLessThan(100)
  }, 30_000)

  it('a call queued behind a long one hears which one holds Blender, and its timeout says so', async () => {
    const mock = await mockBlender()
    const server = await serverFor(mock)
    const long = server.call('command', { type: 'sleep', params: { ms: 4000 } })
    await mock.waitFor((m) => m.requestLog.some((r) => r.type === 'sleep'))
    const progress = []
    const { result } = await server.call(
      'command',
      { type: 'echo', params: { small: 1 }, timeout: 2500 },
      { onprogress: (p) => progress.push(p.message) },
    )
    expect(result.isError).toBe(true)
    expect(result._meta.code).toBe('ERR_RESPONSE_TIMEOUT')
    expect(textOf(result)).toMatch(/Blender runs one command at a time and "sleep" has been running for \d/)
    expect(progress.length).toBeGreaterThanOrEqual(1)
    expect(progress.every((m) => /^waiting for Blender: "sleep" running for \d/.test(m))).toBe(true)
    figures.queued = { progress: progress[0], error: textOf(result) }
    await long
  }, 30_000)
})
