import { readFile } from "node:fs/promises";
import { ErrorCode, RunningAgentError } from "@running-agent/core";
import { afterAll, describe, expect, it } from "vitest";
import { buildDefaultImage } from "./build-default-image.js";
import { DEFAULT_IMAGE, OPENCODE_VERSION } from "./default-image.js";
import { docker, TEST_BASE_IMAGE } from "./test-engine.js";

const scratchTag = `running-agent/test-default-image:${process.pid}`;

afterAll(async () => {
  await docker.getImage(scratchTag).remove({ force: true }).catch(() => undefined);
});

/** Runs a command in a throwaway container of an image (no network) and returns its output. */
async function runIn(image: string, command: string[]): Promise<string> {
  const container = await docker.createContainer({ Image: image, Entrypoint: command, Cmd: [], Env: ["HOME=/tmp"], HostConfig: { NetworkMode: "none" } });
  try {
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const logs = (await container.logs({ stdout: true, stderr: true })) as Buffer;
    expect(StatusCode, logs.toString()).toBe(0);
    // Strip Docker's 8-byte frame headers.
    let text = "";
    for (let offset = 0; offset + 8 <= logs.length; ) {
      const length = logs.readUInt32BE(offset + 4);
      text += logs.subarray(offset + 8, offset + 8 + length).toString();
      offset += 8 + length;
    }
    return text;
  } finally {
    await container.remove({ force: true });
  }
}

describe("buildDefaultImage", () => {
  it("pins the same OpenCode version as this package's opencode-ai dependency", async () => {
    const manifest = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { dependencies: Record<string, string> };
    expect(manifest.dependencies["opencode-ai"]).toBe(OPENCODE_VERSION);
    expect(DEFAULT_IMAGE).toContain(OPENCODE_VERSION);
  });

  it("builds offline from a local base: git, CA certificates and the pinned OpenCode are in the image; a second call reuses the tag", async () => {
    const lines: string[] = [];
    const built = await buildDefaultImage({ docker, baseImage: TEST_BASE_IMAGE, tag: scratchTag, force: true, pullBaseImage: false, onProgress: (line) => lines.push(line) });
    expect(built).toMatchObject({ tag: scratchTag, built: true });
    expect(lines.some((line) => line.includes("COPY opencode"))).toBe(true);
    const inspected = await docker.getImage(scratchTag).inspect();
    expect(inspected.Id).toBe(built.imageId);
    expect(inspected.Config.Labels?.["running-agent.opencode-version"]).toBe(OPENCODE_VERSION);

    const output = await runIn(scratchTag, ["sh", "-c", "opencode --version && git --version && test -s /etc/ssl/certs/ca-certificates.crt && echo certs"]);
    expect(output).toBe(`${OPENCODE_VERSION}\n${output.split("\n")[1]}\ncerts\n`);
    expect(output.split("\n")[1]).toMatch(/^git version \d/);

    const reused = await buildDefaultImage({ docker, baseImage: "running-agent/never-used-base:x", tag: scratchTag });
    expect(reused).toEqual({ tag: scratchTag, built: false, imageId: built.imageId });
  });

  it("a base image that is not there fails with SANDBOX_IMAGE_BUILD_FAILED saying how to get one (pullBaseImage false: no registry is asked)", async () => {
    const error = await buildDefaultImage({ docker, baseImage: "running-agent/no-such-base:never", tag: `${scratchTag}-never`, force: true, pullBaseImage: false }).catch((caught: unknown) => caught);
    expect(RunningAgentError.isInstance(error) && error.code).toBe(ErrorCode.SANDBOX_IMAGE_BUILD_FAILED);
    expect((error as Error).message).toMatch(/running-agent\/no-such-base:never/);
    expect((error as Error).message).toMatch(/docker-base-image\.sh|pull it/);
    await expect(docker.getImage(`${scratchTag}-never`).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it("bad options and an unreachable engine fail with typed errors", async () => {
    await expect(buildDefaultImage({ docker, tag: "has space" })).rejects.toMatchObject({ code: ErrorCode.INVALID_OPTIONS });
    await expect(buildDefaultImage({ docker: { socketPath: "/nonexistent/docker.sock" } })).rejects.toMatchObject({ code: ErrorCode.SANDBOX_UNAVAILABLE });
  });
});
