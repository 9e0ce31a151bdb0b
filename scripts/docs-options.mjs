// The table of options in docs/configuration.md, written from the one list (lib/options.js).
//
//   node scripts/docs-options.mjs           rewrites the table between its two markers
//   node scripts/docs-options.mjs --check   exit 1 if the table is not the list's
//
// `__test__/api/options.spec.mjs` runs the check as part of `npm test`.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const { OPTIONS } = require('../lib/options.js')

export const DOC = fileURLToPath(new URL('../docs/configuration.md', import.meta.url))
const START = '<!-- options table: written by scripts/docs-options.mjs from lib/options.js; do not edit -->'
const END = '<!-- end of options table -->'

const code = (value) => `\`${typeof value === 'string' ? `'${value}'` : value}\``

/** An option's type and range, as the table shows it. */
function typeOf(option) {
  switch (option.type) {
    case 'integer':
      return `integer, ${option.min}..${option.max}${option.unit ? ` ${option.unit}` : ''}`
    case 'string':
      return `string, ${option.min}..${option.max ?? ''} characters`.replace('.. characters', '+ characters')
    case 'enum':
      return option.values.map(code).join(' or ')
    default:
      return 'object'
  }
}

function defaultOf(option) {
  if (!('default' in option)) return option.name === 'logger' ? 'none (stderr)' : 'detected'
  const shared = 'sharedDefault' in option ? `; ${code(option.sharedDefault)} for the shared pools` : ''
  return `${code(option.default)}${shared}`
}

function envOf(option) {
  if (option.env === undefined) return ''
  const range = option.env.min === undefined ? '' : ` (${option.env.min}..${option.env.max})`
  return `\`${option.env.name}\`${range}`
}

/** The markdown table, markers included. */
export function optionsTable() {
  const rows = OPTIONS.map(
    (o) => `| \`${o.name}\` | ${typeOf(o)} | ${defaultOf(o)} | ${envOf(o)} | ${o.doc.replaceAll('|', '\\|')} |`,
  )
  return [
    START,
    '| option | type and range | default | environment | meaning |',
    '|---|---|---|---|---|',
    ...rows,
    END,
  ].join('\n')
}

/** docs/configuration.md with the table as the list says. */
export function documented(text = readFileSync(DOC, 'utf8')) {
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  if (start < 0 || end < start) throw new Error(`${DOC}: the options table's markers are missing`)
  return text.slice(0, start) + optionsTable() + text.slice(end + END.length)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = readFileSync(DOC, 'utf8')
  const wanted = documented(text)
  if (process.argv.includes('--check')) {
    if (wanted !== text) {
      process.stderr.write(`${DOC}: the options table is stale: run node scripts/docs-options.mjs\n`)
      process.exit(1)
    }
  } else if (wanted !== text) {
    writeFileSync(DOC, wanted)
  }
}
