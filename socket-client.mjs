// ESM entry of blender-mcp-pool/socket-client: the same objects as the CommonJS entry.
import cjs from './socket-client.js'

export const { BlenderSocketClient, BufferOverflowError, ChunkCountExceededError, getBlenderClient, mcpCallOptions } =
  cjs
