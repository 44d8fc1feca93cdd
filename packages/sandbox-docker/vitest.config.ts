import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    globalSetup: ["./src/test-global-setup.ts"],
  },
});
