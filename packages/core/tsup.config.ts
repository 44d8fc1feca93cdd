import { definePackageBuild } from "../../tsup.shared.ts";

export default definePackageBuild({ entry: { index: "src/index.ts", "testing/index": "src/testing/index.ts", "offline/index": "src/testing/offline.ts", "hand-run/index": "src/testing/hand-run.ts" } });
