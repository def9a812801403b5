import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["shared/test/**/*.test.ts", "sensors/test/**/*.test.ts", "gateway/test/**/*.test.ts", "hub/test/**/*.test.ts", "deploy/test/**/*.test.ts", "test/**/*.test.ts"],
    // Integration tests talk to real servers and start processes: give them time, and keep
    // the number of files in flight at the machine's two cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ["default"],
  },
});
