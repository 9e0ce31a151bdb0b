// The one list of options (lib/options.js) against everything else that names them: index.d.ts,
// the binding's JsPoolConfig and JsResolvedConfig (binding.d.ts, generated from src/config.rs),
// pool.config, the core's defaults and ranges (core/src/config.rs) and docs/configuration.md.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { ConnectionPool } from '../../index.mjs'
import { DOC, documented } from '../../scripts/docs-options.mjs'

const require = createRequire(import.meta.url)
const { OPTIONS, RESOLVED, SHARED_DEFAULTS } = require('../../lib/options.js')

const read = (path) => readFileSync(new URL(path, import.meta.url), 'utf8')
/** The fields of `interface <name>` in a .d.ts, in order, each with the doc comment above it. */
function fields(dts, name) {
  const body = new RegExp(`interface ${name} \\{([\\s\\S]*?)\\n\\}`).exec(dts)?.[1]
  if (body === undefined) throw new Error(`no interface ${name}`)
  return [...body.matchAll(/(\/\*\*[\s\S]*?\*\/\s*)?\n\s*(\w+)\??:/g)].map((m) => ({ name: m[2], doc: m[1] ?? '' }))
}

// No environment: what pool.config shows is the list's defaults.
const ENV = ['BLENDER_HOST', 'BLENDER_PORT', 'SOCKET_TIMEOUT']
const saved = {}
beforeAll(() => {
  for (const name of ENV) {
    saved[name] = process.env[name]
    delete process.env[name]
  }
})
afterAll(() => {
  for (const name of ENV) if (saved[name] !== undefined) process.env[name] = saved[name]
})

/** A pool that opens nothing, shut down at once; its config. */
async function configOf(config) {
  const pool = new ConnectionPool({ minConnections: 0, ...config })
  const resolved = pool.config
  await pool.shutdown()
  return resolved
}

/** Whether `config` is refused, and how. */
async function refusal(config) {
  try {
    await configOf(config)
    return null
  } catch (err) {
    return err
  }
}

describe('every option is declared once', () => {
  it('index.d.ts types exactly the options of the list, each with its default documented', () => {
    const typed = fields(read('../../index.d.ts'), 'ConnectionPoolConfig')
    expect(typed.map((f) => f.name).sort()).toEqual(OPTIONS.map((o) => o.name).sort())
    for (const option of OPTIONS.filter((o) => 'default' in o)) {
      const { doc } = typed.find((f) => f.name === option.name)
      expect(doc, option.name).toMatch(/Default:/)
      expect(doc.slice(doc.indexOf('Default:')), option.name).toContain(String(option.default))
    }
  })

  it("the binding's JsPoolConfig and JsResolvedConfig hold the options the core takes, in the list's order", () => {
    const binding = read('../../binding.d.ts')
    expect(fields(binding, 'JsPoolConfig').map((f) => f.name)).toEqual(RESOLVED)
    expect(fields(binding, 'JsResolvedConfig').map((f) => f.name)).toEqual(RESOLVED)
    expect(OPTIONS.filter((o) => !RESOLVED.includes(o.name)).map((o) => o.name)).toEqual(['logger', 'loggerStyle'])
  })

  it("pool.config holds exactly those options, each at the list's default", async () => {
    const config = await configOf({ minConnections: undefined })
    expect(Object.keys(config)).toEqual(RESOLVED)
    expect(config).toEqual(Object.fromEntries(OPTIONS.filter((o) => 'default' in o).map((o) => [o.name, o.default])))
  })

  it("the shared pools' defaults are the list's sharedDefault values", () => {
    expect(SHARED_DEFAULTS).toEqual({ maxResponseBytes: 50 * 1024 * 1024 })
  })

  it("docs/configuration.md's table is written from the list (node scripts/docs-options.mjs)", () => {
    const text = readFileSync(DOC, 'utf8')
    expect(text).toBe(documented(text))
  })
})

describe("the list's types and ranges are the ones enforced", () => {
  // Far from Blender: nothing is opened anyway (minConnections 0), and a stray connect is refused.
  const base = { host: '127.0.0.1', port: 1 }

  it.each(OPTIONS.filter((o) => o.type === 'integer').map((o) => [o.name, o]))(
    '%s: its min and max are accepted, one past either is a RangeError naming it',
    async (name, option) => {
      // minConnections may not exceed maxConnections: raise the cap with it.
      const companion = name === 'minConnections' ? { maxConnections: option.max } : {}
      for (const value of [option.min, option.max]) {
        expect(await refusal({ ...base, ...companion, [name]: value }), `${name}: ${value}`).toBeNull()
      }
      for (const value of [option.min - 1, option.max + 1]) {
        const err = await refusal({ ...base, ...companion, [name]: value })
        expect(err, `${name}: ${value}`).toBeInstanceOf(RangeError)
        expect(err.code).toBe('ERR_OUT_OF_RANGE')
        expect(err.message).toContain(name)
      }
    },
  )

  it.each(OPTIONS.filter((o) => o.type === 'string').map((o) => [o.name, o]))(
    '%s: its shortest and longest are accepted, shorter or longer is a RangeError',
    async (name, option) => {
      expect(await refusal({ ...base, [name]: 'x'.repeat(option.min) })).toBeNull()
      expect(await refusal({ ...base, [name]: 'x'.repeat(option.min - 1) })).toBeInstanceOf(RangeError)
      if (option.max !== undefined) {
        expect(await refusal({ ...base, [name]: 'x'.repeat(option.max) })).toBeNull()
        expect(await refusal({ ...base, [name]: 'x'.repeat(option.max + 1) })).toBeInstanceOf(RangeError)
      }
    },
  )

  it.each(OPTIONS.filter((o) => o.type === 'enum').map((o) => [o.name, o]))(
    '%s: each of its values is accepted, another is a RangeError naming it',
    async (name, option) => {
      const logger = { debug() {}, info() {}, warn() {}, error() {} }
      const extra = name === 'loggerStyle' ? { logger } : {}
      for (const value of option.values) expect(await refusal({ ...base, ...extra, [name]: value })).toBeNull()
      const err = await refusal({ ...base, ...extra, [name]: 'xml' })
      expect(err).toBeInstanceOf(RangeError)
      expect(err.message).toContain(name)
    },
  )

  it.each(RESOLVED)('%s: a value of another type is a TypeError naming it', async (name) => {
    const option = OPTIONS.find((o) => o.name === name)
    const err = await refusal({ ...base, [name]: option.type === 'integer' ? '1' : 1 })
    expect(err).toBeInstanceOf(TypeError)
    expect(err.code).toBe('ERR_INVALID_ARG_TYPE')
    expect(err.message).toContain(name)
  })

  it.each(OPTIONS.filter((o) => o.env?.min !== undefined).map((o) => [o.env.name, o]))(
    '%s: its range is accepted, one past either end is a RangeError naming it',
    async (variable, option) => {
      try {
        for (const value of [option.env.min, option.env.max]) {
          process.env[variable] = String(value)
          expect((await configOf({}))[option.name]).toBe(value)
        }
        for (const value of [option.env.min - 1, option.env.max + 1]) {
          process.env[variable] = String(value)
          const err = await refusal({})
          expect(err).toBeInstanceOf(RangeError)
          expect(err.message).toContain(variable)
        }
      } finally {
        delete process.env[variable]
      }
    },
  )
})

describe('an unknown option', () => {
  it('is a TypeError naming it, and the option meant for a near miss', () => {
    let err
    try {
      new ConnectionPool({ maxConnection: 3 })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(TypeError)
    expect(err.code).toBe('ERR_INVALID_ARG_VALUE')
    expect(err.message).toMatch(/unknown option "maxConnection" \(did you mean maxConnections\?\)/)
    expect(() => new ConnectionPool({ retries: 3 })).toThrow(/unknown option "retries"; the options are name, host/)
  })

  it('given as undefined is not given, as any option', async () => {
    expect(await refusal({ retries: undefined })).toBeNull()
  })
})
