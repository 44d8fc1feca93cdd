import { defineWorkspaceVitestConfig } from "../../vitest.shared.ts";

export default defineWorkspaceVitestConfig({
  test: {
    // Tests start real OpenCode servers and sandboxes and check that none is left; one file at a time keeps
    // those checks about the file's own work on a 2-core machine.
    fileParallelism: false,
    // A loaded 2-core machine can take seconds to start or reap a process: poll patiently.
    expect: { poll: { timeout: 15_000, interval: 100 } },
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
