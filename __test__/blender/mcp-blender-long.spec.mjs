// Long commands over MCP stdio against real Blender (blender/mcp_server.py, which runs commands
// one at a time on Blender's main thread): the fixture server's tools pass mcpCallOptions(extra)
// to sendCommand. The same scenarios against the mock: __test__/mcp/long-commands.spec.mjs.
//
// Without Blender these tests are skipped (mcp-blender.spec.mjs fails the run under CI instead).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { findBlender, startBlender } from '../../blender/launch.mjs'
import { startMcpFixture, textOf } from '../fixtures/mcp-client.mjs'

const blender = findBlender()
const START_TIMEOUT = 70_000

/** Python that tells the test (on Blender's real stdout) it runs, sleeps, then prints. */
const announceThenSleep = (marker, seconds) =>
  `import sys, time\nsys.__stdout__.write(${JSON.stringify(`${marker}\n`)})\nsys.__stdout__.flush()\ntime.sleep(${seconds})\nprint('woke')`

/** The epoch ms the fixture logged for the end of a command (`... at <ms>`). */
const endedAt = (line) => Number(/ at (\d+)$/.exec(line)[1])

describe.skipIf(!blender)('long commands over MCP, against real Blender', () => {
  const figures = {}
  let current
  let server

  beforeAll(async () => {
    current = await startBlender({ framing: 'json' })
    server = await startMcpFixture({
      BLENDER_HOST: '127.0.0.1',
      BLENDER_PORT: String(current.port),
      FIXTURE_PROGRESS_INTERVAL: '1000',
    })
  }, START_TIMEOUT)

  afterAll(async () => {
    console.log(`Long commands over MCP stdio, real Blender: ${JSON.stringify(figures)}`)
    await server?.close()
    await current?.stop()
  }, 15_000)

  it('a 10 s execute_code succeeds for a client whose timeout is 3 s but restarts on progress', async () => {
    const progress = []
    const { result, ms } = await server.call(
      'execute_code',
      { code: 'import time\ntime.sleep(10)\nprint("slept")' },
      { timeout: 3000, resetTimeoutOnProgress: true, onprogress: (p) => progress.push(p.message) },
    )
    expect(result.isError).toBeUndefined()
    expect(textOf(result)).toBe('slept\n')
    figures.longCommand = { ms: Math.round(ms), progress: progress.length }
    expect(progress.length).toBeGreaterThanOrEqual(3)
  }, 30_000)

  it('a cancelled tool call ends the pool call within 100 ms; the next call is served once Blender is free', async () => {
    const marker = `cancel-me-${Date.now()}`
    const sleeping = current.waitForOutput(new RegExp(`^${marker}$`), 15_000)
    const controller = new AbortController()
    const running = server.call('execute_code', { code: announceThenSleep(marker, 4) }, { signal: controller.signal })
    await sleeping
    const ended = server.waitForStderr(/^mcp-fixture: failed execute_code in .*: ABORT_ERR at \d+$/)
    const cancelledAt = Date.now()
    controller.abort()
    await expect(running).rejects.toThrow()
    const cancelToEnd = endedAt(await ended) - cancelledAt
    // Blender cannot stop the command it runs: the next one waits in its queue for the sleep.
    const { result, ms } = await server.call('get_scene_info')
    expect(result.isError).toBeUndefined()
    figures.cancel = { cancelToEndMs: cancelToEnd, nextCallMs: Math.round(ms) }
    expect(cancelToEnd).toBeLessThan(100)
  }, 30_000)

  it('a call queued behind a long execute_code hears it named, and its timeout names it', async () => {
    const marker = `hold-${Date.now()}`
    const sleeping = current.waitForOutput(new RegExp(`^${marker}$`), 15_000)
    const long = server.call('execute_code', { code: announceThenSleep(marker, 4) })
    await sleeping
    const progress = []
    const { result } = await server.call(
      'command',
      { type: 'get_scene_info', timeout: 2500 },
      { onprogress: (p) => progress.push(p.message) },
    )
    expect(result.isError).toBe(true)
    expect(result._meta.code).toBe('ERR_RESPONSE_TIMEOUT')
    expect(textOf(result)).toMatch(/Blender runs one command at a time and "execute_code" has been running for \d/)
    expect(progress.length).toBeGreaterThanOrEqual(1)
    expect(progress.every((m) => /^waiting for Blender: "execute_code" running for \d/.test(m))).toBe(true)
    figures.queued = { progress: progress[0], error: textOf(result) }
    expect((await long).result.isError).toBeUndefined()
  }, 30_000)
})
