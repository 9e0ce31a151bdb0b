// Builds the native addon when it is missing or older than any Rust source, so `npm test` and
// `npm run demo` work on a fresh clone and stay fast afterwards.
import { execSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const addon = readdirSync(root).find((f) => f.startsWith('blender-mcp-pool.') && f.endsWith('.node'))

function newestSource(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path))
    else newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

const sources = Math.max(
  newestSource(join(root, 'src')),
  newestSource(join(root, 'core', 'src')),
  ...['Cargo.toml', 'Cargo.lock', 'build.rs', 'core/Cargo.toml'].map((f) => statSync(join(root, f)).mtimeMs),
)

if (addon && existsSync(join(root, 'binding.js')) && statSync(join(root, addon)).mtimeMs >= sources) {
  console.error(`native addon ${addon} is up to date`)
} else {
  console.error(
    addon
      ? 'Rust sources changed: rebuilding the native addon'
      : 'building the native addon (first time: about a minute)',
  )
  execSync('npm run build', { cwd: root, stdio: 'inherit' })
}
