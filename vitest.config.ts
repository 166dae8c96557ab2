import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "drivers/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration files start real servers; two cores, so at most two files at once.
    maxWorkers: 2,
    fileParallelism: true,
    reporters: ["default"],
    // An unhandled rejection anywhere fails the run (vitest reports it as an error).
    dangerouslyIgnoreUnhandledErrors: false,
  },
});
