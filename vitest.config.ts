import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Some unit tests run the built CLI a few times; a loaded 2-core CI machine needs more than 5 s.
          testTimeout: 30_000,
        },
      },
    ],
  },
})
