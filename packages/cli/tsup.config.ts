import { definePackageBuild } from "../../tsup.shared.ts";

export default definePackageBuild({ entry: { index: "src/index.ts", bin: "src/bin.ts" }, dts: { entry: { index: "src/index.ts" } } });
