// The oracle of core/tests/framing_differential.rs: JSON.parse. Reads cases from stdin (each a
// 4-byte little-endian length, then that many bytes) and writes one character per case: 1 if
// the bytes are a Blender response as the consumer reads one (UTF-8, JSON.parse accepts the
// text, an object whose status is "success" or "error" and whose message, if any, a string),
// else 0.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function verdict(bytes) {
  let value
  try {
    value = JSON.parse(utf8.decode(bytes))
  } catch {
    return '0'
  }
  const object = typeof value === 'object' && value !== null && !Array.isArray(value)
  const ok =
    object &&
    (value.status === 'success' || value.status === 'error') &&
    (!Object.hasOwn(value, 'message') || typeof value.message === 'string')
  return ok ? '1' : '0'
}

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = Buffer.concat(chunks)
let out = ''
for (let at = 0; at < input.length; ) {
  const len = input.readUInt32LE(at)
  out += verdict(input.subarray(at + 4, at + 4 + len))
  at += 4 + len
}
process.stdout.write(out)
