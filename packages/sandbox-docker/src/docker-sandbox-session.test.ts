import { randomInt } from "node:crypto";
import { ErrorCode, readArchive, RunningAgentError } from "@running-agent/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OUTPUT_CAP_BYTES } from "./container-process.js";
import { runtimeRefusal, type DockerSandboxSession } from "./docker-sandbox-session.js";
import { expectNoContainers, isHostProcessAlive, scopedProvider } from "./test-engine.js";

// Docker-specific edges beyond the conformance suite.
describe("DockerSandboxSession", () => {
  const scope = scopedProvider();
  let session: DockerSandboxSession;

  beforeAll(async () => {
    session = await scope.provider.create({ taskId: "session-edges" });
  });
  afterAll(async () => {
    await session?.destroy();
    await expectNoContainers(scope.run);
  });

  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => "resolved",
      (error: unknown) => (RunningAgentError.isInstance(error) ? error.code : String(error)),
    );

  it("a command that cannot start (missing cwd) is SANDBOX_EXEC_FAILED; a missing program and a self-inflicted SIGKILL are plain exit codes", async () => {
    const missingCwd = await session.exec(["pwd"], { cwd: "/no/such/folder" }).catch((error: unknown) => error);
    expect(RunningAgentError.isInstance(missingCwd) && missingCwd.code).toBe(ErrorCode.SANDBOX_EXEC_FAILED);
    expect((missingCwd as Error).message).toContain("/no/such/folder");
    expect(await session.exec(["/no/such/program"])).toMatchObject({ exitCode: 127 });
    expect(await session.exec(["sh", "-c", "kill -9 $$"])).toMatchObject({ exitCode: 137 });
  });

  it("rejects malformed commands and environment before running anything", async () => {
    expect(await codeOf(session.exec([]))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(session.exec(["echo", "a\0b"]))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(session.exec(["true"], { env: { "NOT-VALID": "x" } }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(session.exec(["true"], { timeoutMs: 0 }))).toBe(ErrorCode.INVALID_OPTIONS);
    expect(await codeOf(session.spawn([]))).toBe(ErrorCode.INVALID_OPTIONS);
  });

  it("keeps at most the output cap per stream and says it cut the rest; callbacks still see every byte", async () => {
    let seen = 0;
    const result = await session.exec(["head", "-c", String(OUTPUT_CAP_BYTES + 1024), "/dev/zero"], { onStdout: (chunk) => (seen += chunk.byteLength) });
    expect(result.truncated).toBe(true);
    expect(result.stdout.length).toBe(OUTPUT_CAP_BYTES);
    expect(seen).toBe(OUTPUT_CAP_BYTES + 1024);
    expect((await session.exec(["echo", "small"])).truncated).toBeUndefined();
  });

  it("files: readFile follows symlinks and refuses folders; writeFile never replaces a folder", async () => {
    await session.exec(["sh", "-c", "mkdir -p links/dir/sub && printf target > links/dir/real.txt && ln -s dir/real.txt links/link && ln -s /workspace/links/link links/absolute"]);
    expect(Buffer.from(await session.readFile("links/link")).toString()).toBe("target");
    expect(Buffer.from(await session.readFile("links/absolute")).toString()).toBe("target");
    expect(await codeOf(session.readFile("links/dir"))).toBe(ErrorCode.SANDBOX_FILE_ERROR);
    expect(await codeOf(session.writeFile("links/dir", "x"))).toBe(ErrorCode.SANDBOX_FILE_ERROR);
    expect(await codeOf(session.writeFile("/", "x"))).toBe(ErrorCode.SANDBOX_FILE_ERROR);
    expect((await session.exec(["ls", "links/dir"])).stdout).toBe("real.txt\nsub\n");
    expect(await codeOf(session.getArchive("no/such/folder"))).toBe(ErrorCode.SANDBOX_FILE_ERROR);
    expect(await codeOf(session.putArchive("links/dir/real.txt", new Uint8Array(1024)))).toBe(ErrorCode.SANDBOX_FILE_ERROR);
  });

  it("getArchive names entries relative to the folder and turns hard links into regular files", async () => {
    await session.exec(["sh", "-c", "mkdir -p hard && printf shared > hard/a && ln hard/a hard/b"]);
    const entries = await readArchive(await session.getArchive("hard"));
    expect(entries.map((entry) => [entry.path, entry.type, Buffer.from(entry.content ?? []).toString()]).sort()).toEqual([
      ["a", "file", "shared"],
      ["b", "file", "shared"],
    ]);
  });
});

describe("stopping a process", () => {
  const scope = scopedProvider();

  it("a spawn starts the session's tree killer; a stop ends the tree, also through an exec of its own once the agent killed that killer", async () => {
    await using session = await scope.provider.create({ taskId: "tree-killer" });
    // The bracket keeps this script's own command line from matching.
    const killers = () => session.exec(["sh", "-c", 'for p in /proc/[0-9]*; do grep -q "running-agent-tree-kille[r]" "$p/cmdline" 2>/dev/null && echo "${p#/proc/}"; done']);
    const tree = async () => {
      const marker = `${randomInt(100_000, 999_999)}.25`;
      const spawned = await session.spawn(["sh", "-c", `sleep ${marker} & sleep ${marker}`]);
      for (let attempt = 0; attempt < 50 && !(await isHostProcessAlive(marker)); attempt++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await isHostProcessAlive(marker)).toBe(true);
      return { spawned, marker };
    };

    const first = await tree();
    let pids = "";
    for (let attempt = 0; attempt < 50 && pids === ""; attempt++) pids = (await killers()).stdout.trim();
    expect(pids).toMatch(/^\d+$/);
    await first.spawned.kill();
    expect(await first.spawned.exited).toBeNull();
    expect(await isHostProcessAlive(first.marker)).toBe(false);

    expect((await session.exec(["kill", "-9", pids])).exitCode).toBe(0);
    const second = await tree();
    await second.spawned.kill();
    expect(await second.spawned.exited).toBeNull();
    expect(await isHostProcessAlive(second.marker)).toBe(false);
    await session.destroy();
    await expectNoContainers(scope.run);
  });
});

describe("runtimeRefusal", () => {
  const outcome = (exitCode: number | null, stdout: string) => ({ exitCode, stdout: Buffer.from(stdout) });

  it("tells a runtime that refused the exec (container stopping, exec failed) from a command's own exit 126", () => {
    // The runtime's answer while a killed container is going away, as seen from the Engine.
    expect(runtimeRefusal(outcome(126, "cannot exec in a stopped state: unknown\r\n"))).toBe("container stopped");
    expect(runtimeRefusal(outcome(126, "OCI runtime exec failed: exec failed: cannot exec in a stopped container: unknown\r\n"))).toBe("container stopped");
    expect(runtimeRefusal(outcome(126, "task 44ab24741e1c056448f76fee54e1119766f461feb2599183873aea339efc254f not found: not found\r\n"))).toBe("container stopped");
    expect(runtimeRefusal(outcome(126, 'OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("/no/such/folder") set in config.json failed: no such file or directory: unknown\r\n'))).toBe("exec failed");
    // A script that is not executable exits 126 on its own: its output is its own.
    expect(runtimeRefusal(outcome(126, "sh: 1: ./script.sh: Permission denied\n"))).toBeUndefined();
    expect(runtimeRefusal(outcome(0, "cannot exec in a stopped state: unknown"))).toBeUndefined();
  });
});
