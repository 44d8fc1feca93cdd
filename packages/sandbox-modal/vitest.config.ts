import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    conditions: ["source"],
    // The README's example imports the package by its own name.
    alias: [{ find: /^@running-agent\/sandbox-modal$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) }],
  },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
