import { defineWorkspaceVitestConfig } from "../../vitest.shared.ts";

export default defineWorkspaceVitestConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
