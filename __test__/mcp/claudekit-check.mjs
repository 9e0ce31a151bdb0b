// The ClaudeKit check: the ClaudeKit Blender MCP server (github olbboy/claudekit-blender-mcp)
// migrated with the README's two changes, type-checked, built and run through its own suite,
// then its MCP server driven over stdio (the MCP SDK's Client) against the mock and real Blender
// (blender/mcp_server.py), with the figures printed. Not part of `npm test`: it needs a checkout
// of the server, which needs the network.
//
//   node __test__/mcp/claudekit-check.mjs <checkout> [--baseline] [--no-suite] [--targets mock,blender]
//
// <checkout>: a clone of the server, `npm ci` done, outside this repository. The script packs
// this package, installs the tarball there and applies the two changes; `--baseline` leaves the
// server as it is (for the figures of the original socket client). Exit code 1 if a step fails.
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'

import { findBlender, killBlender, restartOnSamePort, startBlender } from '../../blender/launch.mjs'
import { startMockBlender } from '../../mock/blender-mock.mjs'
import { hostBinary } from '../package/check-loader.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    baseline: { type: 'boolean' },
    'no-suite': { type: 'boolean' },
    targets: { type: 'string', default: 'mock,blender' },
  },
})
if (positionals.length !== 1) {
  process.stderr.write(
    'usage: node __test__/mcp/claudekit-check.mjs <checkout> [--baseline] [--no-suite] [--targets mock,blender]\n',
  )
  process.exit(2)
}
const checkout = resolve(positionals[0])
if (checkout.startsWith(resolve(root))) throw new Error('the checkout must be outside this repository')
const summary = { checkout, migrated: !opts.baseline, steps: {}, figures: {} }
let failed = false

const run = (cmd, args, options = {}) =>
  execFileSync(cmd, args, { cwd: checkout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options })
const log = (line) => process.stdout.write(`${line}\n`)

function step(name, fn) {
  try {
    const detail = fn()
    summary.steps[name] = { ok: true, ...detail }
    log(`ok - ${name}${detail ? ` ${JSON.stringify(detail)}` : ''}`)
  } catch (err) {
    failed = true
    summary.steps[name] = { ok: false, error: String(err.stderr || err.stdout || err.message).slice(-2000) }
    log(`not ok - ${name}\n${summary.steps[name].error}`)
  }
}

// ---- the two changes -------------------------------------------------------------------------

const METRICS = join(checkout, 'src/utils/metrics.ts')
const SOCKET_CLIENT = join(checkout, 'src/utils/socket-client.ts')
const POOL_IMPORT_BEFORE = "import { getConnectionPool } from './connection-pool.js';"
const POOL_IMPORT_AFTER = "import { getConnectionPool } from 'blender-mcp-pool';"
const REEXPORT = "export * from 'blender-mcp-pool/socket-client';\n"

if (!opts.baseline) {
  step('pack and install blender-mcp-pool', () => {
    const dir = mkdtempSync(join(tmpdir(), 'claudekit-check-'))
    const pack = (from) =>
      JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', dir, from], { encoding: 'utf8' }))[0]
    const { filename } = pack(root)
    // This platform's package, as the release assembles it (npm/<platform>/ plus the binary built
    // here), which the root package's loader looks for: the root package ships no binary.
    const host = hostBinary()
    const platformDir = join(dir, `platform-${host.suffix}`)
    cpSync(join(root, 'npm', host.suffix), platformDir, { recursive: true })
    copyFileSync(host.path, join(platformDir, host.file))
    const platform = pack(platformDir)
    run('npm', ['install', '--no-audit', '--no-fund', join(dir, filename), join(dir, platform.filename)])
    rmSync(dir, { recursive: true, force: true })
    return { tarball: filename, platform: platform.filename }
  })
  step('apply the two changes', () => {
    const metrics = readFileSync(METRICS, 'utf8')
    if (!metrics.includes(POOL_IMPORT_AFTER)) {
      if (metrics.split(POOL_IMPORT_BEFORE).length !== 2)
        throw new Error(`expected one "${POOL_IMPORT_BEFORE}" in metrics.ts`)
      writeFileSync(METRICS, metrics.replace(POOL_IMPORT_BEFORE, POOL_IMPORT_AFTER))
    }
    writeFileSync(SOCKET_CLIENT, REEXPORT)
    return { diff: run('git', ['diff', '--stat', '--', 'src']).trim().split('\n').at(-1) }
  })
}

step('type-check (tsc --noEmit)', () => {
  run(process.execPath, [join(checkout, 'node_modules/typescript/bin/tsc'), '--noEmit'])
})
step('build (npm run build)', () => {
  run('npm', ['run', 'build'])
})
if (!opts['no-suite']) {
  step('its own suite (vitest run)', () => {
    const out = join(tmpdir(), `claudekit-vitest-${process.pid}.json`)
    try {
      run(process.execPath, [
        join(checkout, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--reporter=json',
        `--outputFile=${out}`,
      ])
    } catch (err) {
      if (!existsSync(out)) throw err
    }
    const r = JSON.parse(readFileSync(out, 'utf8'))
    rmSync(out, { force: true })
    const failures = r.testResults.flatMap((f) =>
      f.assertionResults.filter((a) => a.status === 'failed').map((a) => a.fullName),
    )
    const detail = {
      files: r.testResults.length,
      tests: r.numTotalTests,
      passed: r.numPassedTests,
      failed: r.numFailedTests,
      failures,
    }
    if (r.numFailedTests > 0) throw Object.assign(new Error(JSON.stringify(detail)), { detail })
    return detail
  })
}

// ---- the MCP server over stdio ----------------------------------------------------------------

/** What the mock runs for `execute_code`: print of a string literal or of 'x' * N, time.sleep(S). */
function mockExecuteCode({ code }) {
  const repeat = /print\((['"])x\1 \* ([\d_]+)\)/.exec(code)
  if (repeat) return { executed: true, result: `${'x'.repeat(Number(repeat[2].replaceAll('_', '')))}\n` }
  const literal = /^print\(("(?:[^"\\]|\\.)*")\)$/.exec(code)
  if (literal) return { executed: true, result: `${JSON.parse(literal[1])}\n` }
  const sleep = /time\.sleep\(([\d.]+)\)/.exec(code)
  if (sleep)
    return new Promise((done) => setTimeout(done, Number(sleep[1]) * 1000).unref()).then(() => ({
      executed: true,
      result: 'woke\n',
    }))
  return { executed: true, result: '' }
}

/** A Blender to drive: `{ port, restart(), kill(), start(), running(marker), stop() }`. */
async function target(kind) {
  if (kind === 'mock') {
    const mock = await startMockBlender({ handlers: { execute_code: mockExecuteCode } })
    return {
      port: mock.port,
      restart: () => mock.restart(),
      kill: async () => {
        await mock.setAcceptMode('refuse')
        await mock.restart() // closes every connection, forgets the running command, stays closed
      },
      start: () => mock.setAcceptMode('normal'),
      running: () => mock.waitFor((m) => m.requestLog.some((r) => /time\.sleep/.test(r.params?.code ?? '')), 15_000),
      stop: () => mock.stop(),
    }
  }
  let blender = await startBlender({ framing: 'json' })
  const port = blender.port
  return {
    port,
    restart: async () => {
      await blender.stop()
      blender = await restartOnSamePort(port)
    },
    kill: () => killBlender(blender),
    start: async () => {
      blender = await restartOnSamePort(port)
    },
    running: (marker) => blender.waitForOutput(new RegExp(`^${marker}$`), 15_000),
    stop: () => blender.stop(),
  }
}

/** The server's built MCP server on stdio, and a client of it. */
async function connect(port) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(checkout, 'dist/index.js')],
    cwd: checkout,
    env: {
      BLENDER_HOST: '127.0.0.1',
      BLENDER_PORT: String(port),
      LOG_LEVEL: 'debug',
      RATE_LIMIT_ENABLED: 'false',
      CACHE_ENABLED: 'false',
      HEALTH_CHECK_INTERVAL_MS: '3600000',
    },
    stderr: 'pipe',
    maxBufferSize: 64 * 1024 * 1024,
  })
  const watchers = new Set()
  readline.createInterface({ input: transport.stderr }).on('line', (line) => {
    for (const w of watchers) w(line)
  })
  const errors = []
  const client = new Client({ name: 'claudekit-check', version: '1.0.0' })
  client.onerror = (e) => errors.push(e)
  await client.connect(transport)
  const call = async (name, args = {}, timeout = 60_000) => {
    const t0 = performance.now()
    try {
      const result = await client.callTool({ name, arguments: args }, undefined, { timeout })
      return { result, ms: performance.now() - t0, text: result.content?.[0]?.text ?? '' }
    } catch (error) {
      return { error, ms: performance.now() - t0, text: `(no answer: ${error.message})` }
    }
  }
  const stderrLine = (regex, timeoutMs) =>
    new Promise((done, fail) => {
      const timer = setTimeout(() => {
        watchers.delete(w)
        fail(new Error(`no stderr line ${regex} in ${timeoutMs} ms`))
      }, timeoutMs)
      const w = (line) => {
        if (regex.test(line)) {
          clearTimeout(timer)
          watchers.delete(w)
          done(line)
        }
      }
      watchers.add(w)
    })
  return { client, call, errors, stderrLine, close: () => client.close() }
}

/** The printed output in a blender_execute_code result (its text is "Result:\n" + JSON). */
function printed(text) {
  const at = text.indexOf('Result:\n')
  if (at < 0) return null
  try {
    return JSON.parse(text.slice(at + 8)).result
  } catch {
    return null
  }
}

const round = (ms) => Math.round(ms)
const code = (n) => `print('x' * ${n})`

/** The server's own socket client, alone in a process of its own: 5 MB and 20 MB times. */
function inClient(port) {
  const script = `
    import { getBlenderClient } from ${JSON.stringify(join(checkout, 'dist/utils/socket-client.js'))}
    const out = {}
    for (const n of [5_000_000, 20_000_000]) {
      const t0 = performance.now()
      const reply = await getBlenderClient().sendCommand('execute_code', { code: "print('x' * " + n + ")" })
      out[n / 1e6 + 'MB'] = { ms: Math.round(performance.now() - t0), whole: reply.result.result.length === n + 1 }
    }
    process.stdout.write(JSON.stringify(out))
    process.exit(0)`
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(port), LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('close', (status) =>
      status === 0 ? done(JSON.parse(out)) : fail(new Error(`in-client run exited ${status}`)),
    )
  })
}

/**
 * The figures of one target. Each group of scenarios gets a server process of its own, warmed up
 * by one call (a running server's client is connected when users' calls come), so that one
 * group's leftovers (a socket out of step) do not distort the next. A scenario that breaks
 * records its error and the next one runs.
 */
async function drive(kind) {
  const f = { stdoutErrors: 0 }
  const blender = await target(kind)
  const ok = (c) => !c.error && !c.result.isError
  const scenario = async (name, fn) => {
    try {
      f[name] = await fn()
    } catch (err) {
      f[name] = { error: err.message }
    }
  }
  const group = async (name, fn) => {
    const mcp = await connect(blender.port)
    try {
      await scenario(`${name}WarmUp`, async () => ok(await mcp.call('blender_get_scene_info', {}, 30_000)))
      await fn(mcp, (scenarioName, body) => scenario(scenarioName, body))
    } finally {
      f.stdoutErrors += mcp.errors.length
      await mcp.close()
    }
  }
  try {
    await group('parallel', async (mcp, scenario) => {
      for (const n of [12, 16]) {
        await scenario(`parallel${n}Correct`, async () => {
          const tokens = Array.from({ length: n }, (_, i) => `tok-${i}-${Math.random().toString(36).slice(2, 8)}`)
          const calls = await Promise.all(
            tokens.map((t) => mcp.call('blender_execute_code', { code: `print(${JSON.stringify(t)})` }, 30_000)),
          )
          return `${calls.filter((c, i) => printed(c.text) === `${tokens[i]}\n`).length}/${n}`
        })
      }
    })
    await group('big', async (mcp, scenario) => {
      for (const n of [5_000_000, 20_000_000]) {
        await scenario(`mcp${n / 1e6}MB`, async () => {
          const c = await mcp.call('blender_execute_code', { code: code(n) })
          return { ms: round(c.ms), whole: printed(c.text)?.length === n + 1, text: c.error ? c.text : undefined }
        })
      }
    })
    await scenario('inClient', () => inClient(blender.port))
    await group('smallDuringBig', async (mcp, scenario) => {
      await scenario('smallDuringBig20MB', async () => {
        const sending = mcp.stderrLine(/Executing code/, 15_000)
        let bigAt = null
        const big = mcp.call('blender_execute_code', { code: code(20_000_000) }).then((c) => {
          bigAt = performance.now()
          return c
        })
        await sending
        const small = await mcp.call('blender_get_scene_info', {}, 15_000)
        const smallAt = performance.now()
        const bigDone = await big
        return {
          smallMs: round(small.ms),
          smallOk: ok(small),
          smallText: small.text.slice(0, 80),
          smallBeforeBig: bigAt === null || smallAt < bigAt,
          bigMs: round(bigDone.ms),
          bigWhole: printed(bigDone.text)?.length === 20_000_001,
        }
      })
    })
    await group('restarts', async (mcp, scenario) => {
      await scenario('restartBetweenCalls', async () => {
        await blender.restart()
        const c = await mcp.call('blender_get_scene_info', {}, 30_000)
        return { firstCallMs: round(c.ms), ok: ok(c), text: c.text.slice(0, 80) }
      })
      const marker = 'CLAUDEKIT_CHECK_SLEEPING'
      await scenario('killedUnderCall', async () => {
        const running = blender.running(marker)
        const sleeping = mcp.call('blender_execute_code', {
          code: `import sys, time\nsys.__stdout__.write(${JSON.stringify(`${marker}\n`)})\nsys.__stdout__.flush()\ntime.sleep(30)\nprint('woke')`,
        })
        try {
          await running
        } finally {
          await blender.kill()
        }
        const c = await sleeping
        return { ms: round(c.ms), text: c.text.slice(0, 120) }
      })
      await scenario('closedBlender', async () => {
        const c = await mcp.call('blender_get_scene_info', {}, 60_000)
        return { ms: round(c.ms), text: c.text.slice(0, 160) }
      })
      await scenario('firstCallAfterRestart', async () => {
        await blender.start()
        const c = await mcp.call('blender_get_scene_info', {}, 30_000)
        return { ms: round(c.ms), ok: ok(c) }
      })
    })
  } finally {
    await blender.stop()
  }
  return f
}

for (const kind of opts.targets.split(',').filter(Boolean)) {
  if (kind === 'blender' && !findBlender()) {
    log('skip - real Blender: blender not found')
    continue
  }
  try {
    summary.figures[kind] = await drive(kind)
    log(`ok - MCP over stdio against ${kind} ${JSON.stringify(summary.figures[kind])}`)
  } catch (err) {
    failed = true
    log(`not ok - MCP over stdio against ${kind}: ${err.stack}`)
  }
}

log(JSON.stringify(summary, null, 2))
process.exit(failed ? 1 : 0)
