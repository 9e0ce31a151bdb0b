// Shared set-up of the JS tests: a mock Blender on a free port, pools pointed at it, and
// clean-up after each test so no socket outlives its test.

import { spawn } from 'node:child_process'
import { afterEach } from 'vitest'
import { ConnectionPool } from '../index.mjs'
import { startMockBlender } from '../mock/blender-mock.mjs'

const cleanups = []

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()()
})

/** A mock Blender that stops after the test. */
export async function mockBlender(options) {
  const mock = await startMockBlender(options)
  cleanups.push(() => mock.stop())
  return mock
}

/** A pool pointed at `target` (a mock, or `{host, port}`), minConnections 0 unless given. */
export function poolFor(target, config = {}) {
  const host = target.host ?? '127.0.0.1'
  const pool = new ConnectionPool({ host, port: target.port, minConnections: 0, ...config })
  cleanups.push(() => pool.shutdown())
  return pool
}

/**
 * An address where connects are refused: port 1 (tcpmux) on 127.0.0.1, where nothing listens and
 * no test server can (an ephemeral bind never picks a privileged port), so a concurrent test
 * cannot take it over. 127.0.0.1 because macOS loopback has no other address.
 */
export async function deadEndpoint() {
  return { host: '127.0.0.1', port: 1 }
}

/**
 * Resolves once `predicate()` holds, checking after each turn of the event loop; rejects after
 * `timeoutMs`. For state only the pool can see (its stats), where no event announces a change.
 */
export async function until(predicate, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${predicate}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** The rejection of `promise` (fails the test if it resolves). */
export async function rejection(promise) {
  try {
    const value = await promise
    throw new Error(`expected a rejection, got ${JSON.stringify(value)}`)
  } catch (err) {
    return err
  }
}

/**
 * Runs `source` as an ES module in a fresh node (after `prefix`, a command that runs it, e.g.
 * `unshare`); resolves with its exit code and output. `onStdout(chunk, child)`, if given, sees
 * each chunk of its stdout as it comes (the child's stdin is then a pipe, for answering it).
 */
export function runScript(source, env, { onStdout, prefix = [] } = {}) {
  const [command, ...args] = [...prefix, process.execPath, '--input-type=module', '-e', source]
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...env },
      stdio: [onStdout ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
      if (onStdout) Promise.resolve(onStdout(String(d), child)).catch(reject)
    })
    child.stderr.on('data', (d) => (stderr += d))
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}
