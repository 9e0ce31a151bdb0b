import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.spec.mjs'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
})
