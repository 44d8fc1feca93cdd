import { defineWorkspaceVitestConfig } from "../../vitest.shared.ts";

export default defineWorkspaceVitestConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
