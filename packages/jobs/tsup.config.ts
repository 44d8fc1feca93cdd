import { definePackageBuild } from "../../tsup.shared.ts";

export default definePackageBuild({ entry: { index: "src/index.ts", "testing/index": "src/testing/index.ts" }, external: ["vitest"] });
