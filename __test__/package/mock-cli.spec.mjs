// `npx blender-mcp-pool mock`: the shipped mock Blender as a command.
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

import { afterEach, describe, expect, it } from 'vitest'

import { poolFor } from '../helpers.mjs'

const BIN = fileURLToPath(new URL('../../bin/blender-mcp-pool.mjs', import.meta.url))
const children = []

afterEach(() => {
  // Each child leads its own process group (detached): nothing it started outlives the test.
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid, 'SIGKILL')
})

/** Runs the command in its own process group; `exited` resolves with { code, signal, stdout, stderr }. */
function mockCommand(args) {
  const child = spawn(process.execPath, [BIN, 'mock', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  const lines = readline.createInterface({ input: child.stderr })
  const listening = new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      stderr += `${line}\n`
      const m = /^mock-blender listening on (\S+):(\d+)$/.exec(line)
      if (m) resolve({ host: m[1], port: Number(m[2]) })
    })
    child.on('exit', () => reject(new Error(`exited before listening: ${stderr}`)))
  })
  listening.catch(() => {})
  const exited = new Promise((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  )
  return { child, listening, exited }
}

describe('blender-mcp-pool mock', () => {
  it('serves the add-on protocol on the port it prints (stderr), until SIGTERM; nothing on stdout', async () => {
    const { child, listening, exited } = mockCommand(['--port', '0'])
    const address = await listening
    const pool = poolFor(address)
    await expect(pool.execute('get_scene_info')).resolves.toEqual({
      status: 'success',
      result: { name: 'Scene', object_count: 3, objects: ['Cube', 'Camera', 'Light'] },
    })
    await pool.shutdown()
    child.kill('SIGTERM')
    const { code, signal, stdout } = await exited
    // Windows has no signal handlers: kill() ends the process there, so it cannot exit cleanly.
    if (process.platform === 'win32') expect(signal).toBe('SIGTERM')
    else expect(code).toBe(0)
    expect(stdout).toBe('')
  })

  it('a bad option: usage on stderr, exit code 2', async () => {
    const { exited } = mockCommand(['--no-such-option'])
    const { code, stdout, stderr } = await exited
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expect(stderr).toMatch(/^usage: blender-mcp-pool mock /)
  })
})
