'use strict'
// blender-mcp-pool/socket-client: the drop-in for the ClaudeKit server's socket client
// (lib/socket-client.js), and the bridge from an MCP tool handler to a call's options.

const { mcpCallOptions } = require('./lib/mcp.js')
const {
  BlenderSocketClient,
  BufferOverflowError,
  ChunkCountExceededError,
  getBlenderClient,
} = require('./lib/socket-client.js')

module.exports = {
  BlenderSocketClient,
  BufferOverflowError,
  ChunkCountExceededError,
  getBlenderClient,
  mcpCallOptions,
}
