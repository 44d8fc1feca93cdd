import { defineWorkspaceVitestConfig } from "../../vitest.shared.ts";

export default defineWorkspaceVitestConfig({
  test: {
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
