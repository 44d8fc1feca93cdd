import { fileURLToPath } from "node:url";
import { defineWorkspaceVitestConfig } from "../../vitest.shared.ts";

export default defineWorkspaceVitestConfig({
  resolve: {
    // The README's example imports the package by its own name.
    alias: [{ find: /^@running-agent\/sandbox-modal$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) }],
  },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
