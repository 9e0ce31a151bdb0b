// The demo: a few commands through the native pool, with replies and stats printed.
//
//   npm run demo                       starts the bundled mock Blender and talks to it
//   npm run demo -- --blender          starts real Blender (background mode) with blender/mcp_server.py
//   BLENDER_PORT=9876 npm run demo     talks to the Blender (add-on) already listening there
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { findBlender, startBlender } from '../blender/launch.mjs'
import { ConnectionPool } from '../index.mjs'

async function startMock() {
  const script = fileURLToPath(new URL('../mock/blender-mock.mjs', import.meta.url))
  const child = spawn(process.execPath, [script, '--port', '0'], { stdio: ['ignore', 'inherit', 'pipe'] })
  const [line] = await once(createInterface({ input: child.stderr }), 'line')
  const match = /listening on (.+):(\d+)$/.exec(line)
  if (!match) throw new Error(`mock Blender did not start: ${line}`)
  return { child, host: match[1], port: Number(match[2]) }
}

const useBlender = process.argv.includes('--blender')
const external = !useBlender && process.env.BLENDER_PORT !== undefined && process.env.BLENDER_PORT !== ''
if (useBlender && !findBlender()) {
  console.error("--blender: no blender executable found (install Debian's blender, or set BLENDER_BIN)")
  process.exit(2)
}
const blender = useBlender ? await startBlender() : null
const mock = external || blender ? null : await startMock()
const target = blender ? { host: '127.0.0.1', port: blender.port } : mock ? { host: mock.host, port: mock.port } : {}
const pool = new ConnectionPool(target)
const { host, port } = pool.config
const what = blender ? 'real Blender (background mode)' : mock ? 'mock Blender' : 'Blender'
console.log(`blender-mcp-pool demo -> ${what} at ${host}:${port}\n`)

async function show(type, params) {
  const started = performance.now()
  try {
    const reply = await pool.execute(type, params)
    const ms = (performance.now() - started).toFixed(2)
    console.log(`${type} (${ms} ms) ->`, JSON.stringify(reply).slice(0, 300))
  } catch (err) {
    console.log(`${type} -> ${err.code}: ${err.message}`)
    if (err.code === 'ERR_CONNECT') process.exitCode = 1
  }
}

try {
  await show('get_scene_info')
  await show('create_primitive', { type: 'UV_SPHERE', name: 'DemoSphere', location: [0, 0, 2] })
  await show('get_object_info', { name: 'DemoSphere' })
  await show('execute_code', { code: 'import bpy\nprint(len(bpy.data.objects))' })
  await show('delete_object', { name: 'DemoSphere' })

  const started = performance.now()
  const replies = await Promise.all(Array.from({ length: 16 }, () => pool.execute('get_scene_info')))
  const ms = (performance.now() - started).toFixed(2)
  console.log(
    `\n16 concurrent get_scene_info: ${replies.filter((r) => r.status === 'success').length} succeeded in ${ms} ms`,
  )
  console.log('\nstats:', pool.getStats())
} finally {
  await pool.shutdown()
  if (mock) {
    mock.child.kill('SIGTERM')
    await once(mock.child, 'exit')
  }
  if (blender) await blender.stop()
}
