import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.spec.mjs'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // The pool logs warnings (refused connects, bad replies) that these tests provoke on purpose.
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
  },
})
