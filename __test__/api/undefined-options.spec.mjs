// An option given as `undefined` means "not given", everywhere options are accepted: the pool's
// constructor, configureConnectionPool (once per JS context: each case in its own worker), the
// socket client's constructor and the per-call options. For every option of the one list.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { ConnectionPool } from '../../index.mjs'
import { startMockBlender } from '../../mock/blender-mock.mjs'

const require = createRequire(import.meta.url)
const { OPTIONS, RESOLVED } = require('../../lib/options.js')
const root = fileURLToPath(new URL('../../', import.meta.url))

let mock
beforeAll(async () => {
  mock = await startMockBlender()
})
afterAll(() => mock.stop())

/** The shared pools' config and options in a fresh JS context, after configureConnectionPool(config). */
function sharedConfigIn(worker) {
  return new Promise((resolve, reject) => {
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads')
      const { configureConnectionPool } = require(workerData.index)
      const { sharedPools } = require(workerData.sharedPools)
      const pool = configureConnectionPool(workerData.undefinedName === null ? undefined : { minConnections: 0, [workerData.undefinedName]: undefined })
      const options = sharedPools().config
      parentPort.postMessage({ config: pool.config, options: Object.entries(options).map(([k, v]) => [k, v === undefined ? 'undefined' : typeof v]) })
      pool.shutdown()`,
      // No BLENDER_* variables: the defaults alone.
      // Paths, not URL pathnames: on Windows a pathname is `/C:/...`, which require cannot load.
      {
        eval: true,
        workerData: { index: join(root, 'index.js'), sharedPools: join(root, 'lib', 'shared-pools.js'), ...worker },
        env: { LOG_LEVEL: 'silent' },
      },
    )
    w.once('message', resolve)
    w.once('error', reject)
  })
}

describe('an option given as undefined is not given', () => {
  it.each(OPTIONS.map((o) => o.name))('new ConnectionPool({ %s: undefined })', async (name) => {
    const { [name]: _, ...plain } = { host: mock.host, port: mock.port, minConnections: 0 }
    const given = new ConnectionPool({ ...plain, [name]: undefined })
    const reference = new ConnectionPool(plain)
    expect(given.config).toEqual(reference.config)
    if (name !== 'host' && name !== 'port') {
      await expect(given.execute('echo', { n: 1 })).resolves.toMatchObject({ status: 'success' })
    }
    await Promise.all([given.shutdown(), reference.shutdown()])
  })

  it('configureConnectionPool(), for reference: the shared defaults', async () => {
    const { config } = await sharedConfigIn({ undefinedName: null })
    expect(config.maxResponseBytes).toBe(50 * 1024 * 1024)
  })

  it.each(OPTIONS.map((o) => o.name))('configureConnectionPool({ %s: undefined })', async (name) => {
    const { config, options } = await sharedConfigIn({ undefinedName: name })
    const expected = Object.fromEntries(
      OPTIONS.filter((o) => RESOLVED.includes(o.name)).map((o) => [o.name, o.sharedDefault ?? o.default]),
    )
    expect(config).toEqual({ ...expected, minConnections: name === 'minConnections' ? 1 : 0 })
    // The options the socket client's other-address pools are built from hold no undefined.
    expect(options.filter(([, type]) => type === 'undefined')).toEqual([])
  })

  it('new BlenderSocketClient(undefined, undefined, undefined) is the default client', async () => {
    const { BlenderSocketClient } = require('../../socket-client.js')
    expect(() => new BlenderSocketClient(undefined, undefined, undefined)).not.toThrow()
    const client = new BlenderSocketClient(mock.host, mock.port, undefined)
    await expect(client.sendCommand('echo', { n: 2 })).resolves.toMatchObject({ result: { n: 2 } })
    await client.disconnect()
  })

  it('per-call options { signal: undefined, timeout: undefined }', async () => {
    const pool = new ConnectionPool({ host: mock.host, port: mock.port, minConnections: 0 })
    const none = { signal: undefined, timeout: undefined }
    await expect(pool.execute('echo', { n: 3 }, none)).resolves.toMatchObject({ result: { n: 3 } })
    await expect(pool.executeRaw('echo', undefined, none)).resolves.toContain('success')
    const conn = await pool.acquire(none)
    await expect(conn.execute('echo', undefined, none)).resolves.toMatchObject({ status: 'success' })
    await conn.release()
    await pool.shutdown()
  })
})
