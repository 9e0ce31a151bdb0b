// Smoke test of the installed addon on another platform, with plain node (no vitest): what the
// platform runs it under (qemu here) may be too slow or too limited for the whole suite. Each
// check talks to the mock Blender in this process and asserts the outcome's code, the reply
// bytes, or what the server saw.
//   node __test__/package/smoke.mjs         -> "ok - ..." lines, then "N passed, N failed"
// SMOKE_NODE: a JSON array, the command that runs this platform's node for child processes
// (default: [process.execPath]); under qemu-user without binfmt, qemu itself comes first.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'

import { ACCEPT_MODES, FAULTS, startMockBlender } from '../../mock/blender-mock.mjs'

const ENTRY_URL = new URL('../../index.mjs', import.meta.url).href
const { ConnectionPool } = await import(ENTRY_URL)
const CJS_ENTRY = new URL('../../index.js', import.meta.url)
const NODE = process.env.SMOKE_NODE ? JSON.parse(process.env.SMOKE_NODE) : [process.execPath]

const results = []
const cleanups = []

async function check(name, fn) {
  const started = Date.now()
  try {
    await fn()
    results.push(true)
    console.log(`ok - ${name} (${Date.now() - started} ms)`)
  } catch (err) {
    results.push(false)
    console.log(`not ok - ${name}\n${err.stack ?? err}`)
  } finally {
    for (const clean of cleanups.splice(0).reverse()) await clean().catch(() => {})
  }
}

async function setup(config = {}) {
  const mock = await startMockBlender()
  const pool = new ConnectionPool({ host: '127.0.0.1', port: mock.port, minConnections: 0, ...config })
  cleanups.push(
    () => mock.stop(),
    () => pool.shutdown(),
  )
  return { mock, pool }
}

async function rejection(promise) {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection, got a reply')
}

async function until(predicate, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** Runs `fault` after a warm-up call; asserts the code (or `null`: a reply), then a recovery. */
async function fault(name, code, { options = {}, config = {}, closes = false } = {}) {
  const { mock, pool } = await setup({ socketTimeout: 300, ...config })
  await pool.execute('echo', { warm: true })
  mock.setFault(name, options)
  const call = pool.execute('echo', { n: 1 })
  if (code === null) assert.deepEqual(await call, { status: 'success', result: { n: 1 } })
  else assert.equal((await rejection(call)).code, code)
  // A server that closes after its reply: the pool sees the close, and drops the connection.
  if (closes) await until(() => mock.openConnections === 0)
  assert.deepEqual(await pool.execute('echo', { after: name }), { status: 'success', result: { after: name } })
  assert.equal(mock.faultsInjected[name], 1)
  return { mock, pool }
}

console.log(`smoke: node ${process.version} ${process.platform}-${process.arch}`)

await check('execute: a reply, and the request as the server saw it', async () => {
  const { mock, pool } = await setup()
  assert.deepEqual(await pool.execute('echo', { a: 1, s: 'é' }), { status: 'success', result: { a: 1, s: 'é' } })
  assert.deepEqual(
    mock.requestLog.map((r) => [r.type, r.params]),
    [['echo', { a: 1, s: 'é' }]],
  )
})

await check('32 parallel calls over 5 connections: each its own reply, at most 5 sockets', async () => {
  const { mock, pool } = await setup({ maxConnections: 5 })
  const replies = await Promise.all(Array.from({ length: 32 }, (_, i) => pool.execute('sleep', { ms: 5, i })))
  assert.deepEqual(
    replies.map((r) => r.result.slept),
    Array(32).fill(5),
  )
  assert.equal(mock.requests, 32)
  assert.ok(mock.maxOpenConnections <= 5, `server saw ${mock.maxOpenConnections} connections`)
  assert.equal(pool.getStats().totalRequests, 32)
})

for (const bytes of [300_000, 5 * 1024 * 1024]) {
  await check(`a ${bytes >= 1e6 ? '5 MB' : '300 KB'} reply arrives whole`, async () => {
    const { pool } = await setup()
    const reply = await pool.execute('big', { bytes })
    assert.equal(reply.result.length, bytes)
    assert.ok(/^a+$/.test(reply.result))
    assert.equal((await pool.execute('echo', { next: 1 })).result.next, 1)
  })
}

await check('executeRaw: the reply text, unparsed', async () => {
  const { pool } = await setup()
  const text = await pool.executeRaw('echo', { raw: [1, 2] })
  assert.equal(typeof text, 'string')
  assert.deepEqual(JSON.parse(text), { status: 'success', result: { raw: [1, 2] } })
})

await check('a 5 MB request reaches the server intact', async () => {
  const { mock, pool } = await setup()
  const code = 'x'.repeat(5 * 1024 * 1024)
  assert.equal((await pool.execute('echo', { code })).result.code.length, code.length)
  assert.equal(mock.requestLog[0].params.code, code)
})

await check('abort: a waiting call leaves unsent, a call in flight rejects at once', async () => {
  const { mock, pool } = await setup({ maxConnections: 1 })
  const busy = pool.execute('sleep', { ms: 300 })
  const waiting = new AbortController()
  const queued = pool.execute('echo', { never: 1 }, { signal: waiting.signal })
  waiting.abort()
  const err = await rejection(queued)
  assert.equal(err.code, 'ABORT_ERR')
  assert.equal(err.name, 'AbortError')
  await busy
  const inFlight = new AbortController()
  const call = pool.execute('sleep', { ms: 2000 }, { signal: inFlight.signal })
  await until(() => mock.requests === 2)
  const started = Date.now()
  inFlight.abort()
  assert.equal((await rejection(call)).code, 'ABORT_ERR')
  assert.ok(Date.now() - started < 1000)
  assert.ok(!mock.requestLog.some((r) => r.params?.never))
})

await check("per-call timeout: ERR_RESPONSE_TIMEOUT at the call's own deadline", async () => {
  const { pool } = await setup()
  const started = Date.now()
  const err = await rejection(pool.execute('sleep', { ms: 3000 }, { timeout: 200 }))
  assert.equal(err.code, 'ERR_RESPONSE_TIMEOUT')
  const elapsed = Date.now() - started
  assert.ok(elapsed >= 150 && elapsed < 2000, `${elapsed} ms`)
})

await check('shutdown: the call in flight finishes, later calls reject ERR_POOL_SHUTDOWN', async () => {
  const { pool } = await setup()
  const inFlight = pool.execute('sleep', { ms: 100 })
  await until(() => pool.getStats().activeConnections === 1)
  await pool.shutdown()
  assert.deepEqual(await inFlight, { status: 'success', result: { slept: 100 } })
  assert.equal((await rejection(pool.execute('echo'))).code, 'ERR_POOL_SHUTDOWN')
})

await check('restart while idle: the next call succeeds and is sent once', async () => {
  const { mock, pool } = await setup({ maxConnections: 3 })
  await Promise.all([1, 2, 3].map((i) => pool.execute('sleep', { ms: 2, i })))
  await mock.restart()
  assert.deepEqual(await pool.execute('echo', { after: 'restart' }), {
    status: 'success',
    result: { after: 'restart' },
  })
  assert.equal(mock.requestLog.filter((r) => r.type === 'echo').length, 1)
})

// Every fault of the mock (FAULTS), each with the outcome the README documents.
const EXPECTED = {
  close: ['ERR_CONNECTION_CLOSED'],
  garbage: ['ERR_INVALID_RESPONSE'],
  'invalid-utf8': ['ERR_INVALID_RESPONSE'],
  'non-object': ['ERR_INVALID_RESPONSE'],
  'bad-status': ['ERR_INVALID_RESPONSE'],
  'bad-message': ['ERR_INVALID_RESPONSE'],
  'two-documents': [null],
  'no-reply': ['ERR_RESPONSE_TIMEOUT'],
  'half-reply': ['ERR_CONNECTION_CLOSED'],
  'half-reset': ['ERR_CONNECTION_CLOSED'],
  trickle: [null],
  reset: ['ERR_CONNECTION_CLOSED'],
  delay: [null, { options: { delayMs: 100 } }],
  huge: ['ERR_RESPONSE_TOO_LARGE', { options: { bytes: 16 * 1024 * 1024 }, config: { maxResponseBytes: 1024 * 1024 } }],
  'half-open': ['ERR_RESPONSE_TIMEOUT'],
  padded: [null],
  'close-after-reply': [null, { closes: true }],
}
assert.deepEqual(Object.keys(EXPECTED).sort(), [...FAULTS].sort(), 'a check for every fault of the mock')
for (const [name, [code, opts]] of Object.entries(EXPECTED)) {
  await check(`fault ${name}: ${code ?? 'the reply'}`, async () => {
    const { mock } = await fault(name, code, opts)
    // A failed call, or bytes after the reply, discard the connection: the recovery used a new one.
    const discarded = code !== null || name === 'two-documents' || name === 'close-after-reply'
    assert.equal(mock.connectionsOpened, discarded ? 2 : 1)
  })
}

// Every accept mode of the mock but `normal`.
assert.deepEqual([...ACCEPT_MODES].sort(), [
  'close-on-accept',
  'early-reply',
  'greeting',
  'never-read',
  'normal',
  'refuse',
])
await check('a reply before the request is written: the caller gets it, the connection is not reused', async () => {
  const { mock, pool } = await setup({ maxConnections: 1 })
  await mock.setAcceptMode('early-reply')
  // Bigger than the socket buffers on both sides: most of it is still unwritten when the reply
  // comes, and the server stops reading for a while.
  const reply = await pool.execute('echo', { id: 7, pad: 'b'.repeat(16 * 1024 * 1024) })
  assert.deepEqual(reply, { status: 'error', message: 'early reply to request 7' })
  await mock.setAcceptMode('normal')
  assert.deepEqual(await pool.execute('echo', { id: 8 }), { status: 'success', result: { id: 8 } })
  assert.equal(mock.connectionsOpened, 2)
  assert.equal(mock.invalidRequests, 0, 'no two requests interleaved')
  assert.deepEqual(
    mock.requestLog.map((r) => r.params?.id),
    [8],
  )
})
await check('refused connections: ERR_CONNECT at the deadline, served once Blender is back', async () => {
  const { mock, pool } = await setup({ connectionTimeout: 500 })
  await mock.setAcceptMode('refuse')
  const err = await rejection(pool.execute('echo'))
  assert.equal(err.code, 'ERR_CONNECT')
  assert.match(err.message, /^Failed to connect to Blender: /)
  await mock.setAcceptMode('normal')
  assert.equal((await pool.execute('echo', { back: 1 })).result.back, 1)
})

await check('accepted and never read: ERR_RESPONSE_TIMEOUT', async () => {
  const { mock, pool } = await setup({ socketTimeout: 300 })
  await mock.setAcceptMode('never-read')
  assert.equal((await rejection(pool.execute('echo', { n: 1 }))).code, 'ERR_RESPONSE_TIMEOUT')
  await mock.setAcceptMode('normal')
  assert.equal((await pool.execute('echo', { n: 2 })).result.n, 2)
  assert.deepEqual(
    mock.requestLog.map((r) => r.params.n),
    [2],
  )
})

await check('closed on accept: a clear error, never a hang', async () => {
  const { mock, pool } = await setup({ connectionTimeout: 500 })
  await mock.setAcceptMode('close-on-accept')
  const err = await rejection(pool.execute('echo'))
  assert.ok(['ERR_CONNECTION_CLOSED', 'ERR_CONNECT', 'ERR_POOL_TIMEOUT'].includes(err.code), err.code)
  await mock.setAcceptMode('normal')
  assert.equal((await pool.execute('echo', { ok: 1 })).result.ok, 1)
})

await check('a worker terminated mid-call: the process and other pools carry on', async () => {
  const { mock, pool } = await setup()
  const source = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { ConnectionPool } = require(workerData.entry)
    const pool = new ConnectionPool({ host: '127.0.0.1', port: workerData.port, minConnections: 0 })
    pool.execute('sleep', { ms: 500 }).catch(() => {})
    parentPort.postMessage('sent')`
  const worker = new Worker(source, { eval: true, workerData: { entry: fileURLToPath(CJS_ENTRY), port: mock.port } })
  await new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  await until(() => mock.requests === 1)
  assert.equal(await worker.terminate(), 1)
  // The reply to the terminated worker arrives after its JS context is gone (the mock runs
  // commands one at a time: this call is answered after it).
  assert.deepEqual(await pool.execute('echo', { after: 'terminate' }), {
    status: 'success',
    result: { after: 'terminate' },
  })
})

await check('a process that never calls shutdown() exits when its work is done', async () => {
  const { mock } = await setup()
  const script = `import { getConnectionPool } from ${JSON.stringify(ENTRY_URL)}
    const reply = await getConnectionPool().execute('echo', { from: 'child' })
    process.stdout.write(JSON.stringify(reply))`
  const [cmd, ...pre] = NODE
  const child = spawn(cmd, [...pre, '--input-type=module', '-e', script], {
    env: { ...process.env, BLENDER_HOST: '127.0.0.1', BLENDER_PORT: String(mock.port), LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [code, signal] = await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])))
  clearTimeout(killer)
  assert.equal(signal, null, `killed: the child did not exit by itself\n${stderr}`)
  assert.equal(code, 0, stderr)
  assert.deepEqual(JSON.parse(stdout), { status: 'success', result: { from: 'child' } })
})

const passed = results.filter(Boolean).length
console.log(`\n${passed} passed, ${results.length - passed} failed`)
process.exitCode = passed === results.length && results.length > 0 ? 0 : 1
