import { defineConfig } from "vitest/config";

const timeScale = Math.max(1, Number(process.env.DATALAB_TEST_TIME_SCALE) || 3);

export default defineConfig({
  test: {
    include: [
      "shared/test/**/*.test.ts",
      "sensors/test/**/*.test.ts",
      "gateway/test/**/*.test.ts",
      "hub/test/**/*.test.ts",
      "deploy/test/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    // Integration tests talk to real servers and start processes: give them time (sized for a
    // machine three times slower, as their waits are: see TIME_SCALE in shared/testing), and
    // keep the number of files in flight at the machine's two cores.
    testTimeout: 60_000 * timeScale,
    hookTimeout: 60_000 * timeScale,
    pool: "forks",
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ["default"],
  },
});
