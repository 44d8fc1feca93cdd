// Builds the default sandbox image through the Engine API when its tag is missing.
//   pnpm build-image [--base-image running-agent/debian-base:bookworm] [--tag NAME:TAG] [--force] [--offline]
// --offline: never let the Engine pull the base image (it must be local).
// Without --base-image: $RUNNING_AGENT_DOCKER_BASE_IMAGE, else debian:bookworm-slim (Docker Hub).
import { parseArgs } from "node:util";
import { buildDefaultImage } from "../src/build-default-image.js";

const { values } = parseArgs({
  options: {
    "base-image": { type: "string" },
    tag: { type: "string" },
    force: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    offline: { type: "boolean", default: false },
  },
});
const started = Date.now();
const baseImage = values["base-image"] ?? process.env.RUNNING_AGENT_DOCKER_BASE_IMAGE;
try {
  const result = await buildDefaultImage({
    ...(baseImage ? { baseImage } : {}),
    ...(values.tag ? { tag: values.tag } : {}),
    force: values.force,
    pullBaseImage: !values.offline,
    ...(values.quiet ? {} : { onProgress: (line: string) => console.log(line) }),
  });
  console.log(`${result.built ? "built" : "reused"} ${result.tag} (${result.imageId.slice(7, 19)}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (error) {
  console.error(`build-default-image: ${(error as Error).message}`);
  process.exitCode = 1;
}
