// The fixture MCP server (tools on getBlenderClient().sendCommand) driven over stdio by the MCP
// SDK's Client, against real Blender running blender/mcp_server.py: concurrent tool calls, big
// replies, a small call during a big one, Blender restarted between calls and under a running
// call, Blender closed. The same scenarios against the mock: mcp.spec.mjs.
//
// Without Blender these tests are skipped (with a warning), except under CI, where a missing
// Blender fails the run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { findBlender, killBlender, restartOnSamePort, startBlender } from '../../blender/launch.mjs'
import { startMcpFixture, textOf } from '../fixtures/mcp-client.mjs'

const blender = findBlender()
const missingInCi = !blender && Boolean(process.env.CI)
if (!blender && !missingInCi) {
  console.warn(
    "skipping MCP tests against real Blender: blender not found (set BLENDER_BIN or install Debian's blender)",
  )
}

const START_TIMEOUT = 70_000 // startBlender waits up to 60 s for the listening line

it.runIf(missingInCi)('Blender is installed (required when CI is set)', () => {
  throw new Error("blender not found under CI: set BLENDER_BIN or install Debian's blender (apt-get install blender)")
})

/** Code that tells the test (on Blender's real stdout) it is running, then sleeps. */
const announceThenSleep = (marker, seconds) =>
  `import sys, time\nsys.__stdout__.write(${JSON.stringify(`${marker}\n`)})\nsys.__stdout__.flush()\ntime.sleep(${seconds})\nprint('woke')`

const round = (ms) => Math.round(ms)

describe.skipIf(!blender)('an MCP server on blender-mcp-pool/socket-client, against real Blender', () => {
  const figures = {}
  let current // the Blender running now (the restart tests replace it)
  let port
  let server

  beforeAll(async () => {
    current = await startBlender({ framing: 'json' })
    port = current.port
    server = await startMcpFixture({ BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(port) })
  }, START_TIMEOUT)

  afterAll(async () => {
    console.log(`MCP over stdio, real Blender: ${JSON.stringify(figures)}`)
    await server?.close()
    await current?.stop()
  }, 15_000)

  it('16 concurrent execute_code tool calls each get their own output', async () => {
    const tokens = Array.from({ length: 16 }, (_, i) => `tok-${i}-${Math.random().toString(36).slice(2)}`)
    const calls = await Promise.all(
      tokens.map((token) => server.call('execute_code', { code: `print(${JSON.stringify(token)})` })),
    )
    const correct = calls.filter(({ result }, i) => !result.isError && textOf(result) === `${tokens[i]}\n`).length
    figures.concurrentCorrect = `${correct}/16`
    expect(correct).toBe(16)
    expect(server.errors).toEqual([])
  })

  it('5 MB and 20 MB of execute_code output arrive whole', async () => {
    for (const n of [5_000_000, 20_000_000]) {
      const { result, ms } = await server.call('execute_code', { code: `print('x' * ${n})` })
      expect(result.isError).toBeUndefined()
      const out = textOf(result)
      expect(out.length).toBe(n + 1)
      expect(/^x+\n$/.test(out)).toBe(true)
      figures[`output${n / 1e6}MB`] = { mcpMs: round(ms), clientMs: round(result._meta.clientMs) }
    }
    expect(server.errors).toEqual([])
  }, 60_000)

  it('a small tool call sent during a 20 MB one is answered within 2 s of it', async () => {
    const sent = server.waitForStderr(/^mcp-fixture: sending execute_code$/)
    let bigDone = false
    const big = server.call('execute_code', { code: "print('x' * 20_000_000)" }).then((outcome) => {
      bigDone = true
      return { ...outcome, at: performance.now() }
    })
    await sent // the big command is on its way to Blender
    expect(bigDone).toBe(false)
    const small = server.call('get_scene_info').then((outcome) => ({ ...outcome, at: performance.now() }))
    const [b, s] = await Promise.all([big, small])
    expect(textOf(b.result).length).toBe(20_000_001)
    expect(JSON.parse(textOf(s.result)).result.objects.map((o) => o.name)).toEqual(
      expect.arrayContaining(['Camera', 'Cube', 'Light']),
    )
    // Over stdio the small answer may queue behind the 20 MB message the SDK is still reading.
    expect(s.at - b.at).toBeLessThan(2000)
    figures.smallDuringBig = { smallMs: round(s.ms), bigMs: round(b.ms), smallAfterBigMs: round(s.at - b.at) }
  }, 60_000)

  it(
    'Blender restarted between calls: the next call is answered by the new Blender',
    async () => {
      expect((await server.call('get_scene_info')).result.isError).toBeUndefined()
      await current.stop()
      current = await restartOnSamePort(port)
      const { result, ms } = await server.call('execute_code', { code: 'print(1 + 1)' })
      expect(result.isError).toBeUndefined()
      expect(textOf(result)).toBe('2\n')
      figures.firstCallAfterRestartMs = round(ms)
    },
    START_TIMEOUT,
  )

  it('Blender killed under a running call: that call fails as the connection closed', async () => {
    const marker = 'MCP_E2E_SLEEPING'
    const sleeping = current.waitForOutput(new RegExp(`^${marker}$`), 15_000)
    const running = server.call('execute_code', { code: announceThenSleep(marker, 30) })
    await sleeping // the command is running on Blender's main thread
    await killBlender(current)
    const { result } = await running
    expect(result.isError).toBe(true)
    expect(result._meta.code).toBe('ERR_CONNECTION_CLOSED')
    expect(textOf(result)).toMatch(/^Error: Connection closed before complete response/)
  }, 30_000)

  it('Blender closed: a tool call fails fast with ERR_CONNECT naming host:port', async () => {
    expect(current.process.exitCode !== null || current.process.signalCode !== null).toBe(true)
    const { result, ms } = await server.call('get_scene_info', {}, { timeout: 10_000 })
    expect(result.isError).toBe(true)
    expect(result._meta.code).toBe('ERR_CONNECT')
    expect(textOf(result)).toMatch(/^Error: Failed to connect to Blender: /)
    expect(textOf(result)).toContain(`127.0.0.1:${port}`)
    figures.closedBlenderMs = round(ms)
    // connectRetryTimeout (2000 ms by default) bounds the wait, not connectionTimeout (30 s).
    expect(ms).toBeLessThan(4000)
  }, 30_000)

  it(
    'Blender started again after the kill: the next call is answered',
    async () => {
      current = await restartOnSamePort(port)
      const { result, ms } = await server.call('get_scene_info')
      expect(result.isError).toBeUndefined()
      figures.firstCallAfterKillMs = round(ms)
      expect(server.errors).toEqual([])
    },
    START_TIMEOUT,
  )
})
