// Vitest global setup: the default sandbox image must exist before the tests run. It is built
// offline from the local Debian base (scripts/docker-base-image.sh at the repo root) when
// missing. The build runs as a child process because global setup does not resolve the
// workspace's `source` condition.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const baseImage = process.env.RUNNING_AGENT_DOCKER_BASE_IMAGE ?? "running-agent/debian-base:bookworm";

export default async function setup(): Promise<void> {
  const packageRoot = fileURLToPath(new URL("..", import.meta.url));
  try {
    await run("docker", ["image", "inspect", "--format", "{{.Id}}", baseImage]);
  } catch (error) {
    throw new Error(`The base image ${baseImage} is missing, or no Docker Engine answers (${String(error)}). Run scripts/docker-engine.sh start and scripts/docker-base-image.sh.`);
  }
  await run(process.execPath, ["--conditions=source", "--import", "tsx", "scripts/build-default-image.ts", "--base-image", baseImage, "--quiet", "--offline"], { cwd: packageRoot });
}
