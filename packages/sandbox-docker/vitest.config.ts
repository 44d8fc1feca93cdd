import { defineWorkspaceVitestConfig } from "../../vitest.shared.ts";

export default defineWorkspaceVitestConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    globalSetup: ["./src/test-global-setup.ts"],
  },
});
