import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packDirectory, readArchive } from "../archive.js";
import { ErrorCode, RunningAgentError } from "../errors.js";
import type { SandboxSession } from "../spec/sandbox-spec.js";
import { expectRunningAgentError } from "../testing/expect-running-agent-error.js";
import { testSandboxProvider } from "../testing/sandbox-conformance.js";
import { bubblewrapArguments, findExecutable, probeBubblewrap, readSystemLayout, sandboxAccounts } from "./bubblewrap.js";
import { createLocalSandbox } from "./local-sandbox.js";

/** Host-side: is any process alive whose command line contains the marker? */
/** A process whose program is `program` and whose arguments name the marker (not bwrap, whose arguments also do). */
function isSandboxedCommandAlive(program: string, marker: string): boolean {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const [first, ...rest] = readFileSync(`/proc/${name}/cmdline`, "latin1").split("\0");
      if (first === program && rest.includes(marker)) return true;
    } catch {
      // The process ended while we looked.
    }
  }
  return false;
}

function isProcessAlive(marker: string): boolean {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "latin1").includes(marker)) return true;
    } catch {
      // The process ended while we looked.
    }
  }
  return false;
}

// Tests that count or reap session folders use a parent folder of their own: other test files make sessions in parallel.
async function withTempParent<T>(body: (parent: string) => Promise<T>): Promise<T> {
  const parent = await mkdtemp(join(tmpdir(), "local-sandbox-test-"));
  try {
    return await body(parent);
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}

testSandboxProvider({ name: "local (bubblewrap)", createProvider: () => createLocalSandbox(), isProcessAlive });
testSandboxProvider({
  name: "local (isolation: none)",
  createProvider: () => createLocalSandbox({ isolation: "none" }),
  isProcessAlive,
  skip: { networkNone: "unisolated processes share the host's network (CAPABILITY_UNSUPPORTED)" },
});

describe("local sandbox under bubblewrap: isolation", () => {
  let session: SandboxSession;
  let canaryFolder: string;
  const canary = `canary-${randomBytes(8).toString("hex")}`;
  const hostVariable = `RA_HOST_ONLY_${randomBytes(4).toString("hex").toUpperCase()}`;

  beforeAll(async () => {
    // A canary in the caller's real home proves the sandbox cannot see it.
    canaryFolder = await mkdtemp(join(homedir(), ".running-agent-canary-"));
    await writeFile(join(canaryFolder, "credentials"), canary);
    process.env[hostVariable] = canary;
    session = await createLocalSandbox().create({ taskId: "isolation" });
  });
  afterAll(async () => {
    delete process.env[hostVariable];
    await session?.destroy();
    await rm(canaryFolder, { recursive: true, force: true });
  });

  it("reports itself isolated, with fixed paths inside", () => {
    expect(session.isolated).toBe(true);
    expect(session.workdir).toBe("/workspace");
    expect(session.scratchDir).toBe("/scratch");
  });

  it("cannot read the caller's home, /root, or secrets in /etc", async () => {
    const result = await session.exec(["cat", join(canaryFolder, "credentials")]);
    expect(result.exitCode).not.toBe(0);
    expect(result.stdout).not.toContain(canary);
    for (const path of ["/root", "/home", "/etc/shadow", "/etc/ssh", "/etc/ssl/private", "/run", "/work"]) {
      expect((await session.exec(["test", "-e", path])).exitCode, `${path} is visible`).not.toBe(0);
    }
    // What programs need from /etc is still there.
    expect((await session.exec(["test", "-f", "/etc/passwd"])).exitCode).toBe(0);
    expect((await session.exec(["whoami"])).stdout.trim()).toBe("agent");
  });

  it("cannot write outside the workspace, scratch and its own /tmp", async () => {
    for (const path of ["/usr/ra-probe", "/etc/ra-probe", "/ra-probe", "/opt/opencode/bin/opencode"]) {
      expect((await session.exec(["sh", "-c", 'echo x > "$1"', "sh", path])).exitCode, `${path} is writable`).not.toBe(0);
    }
    expect((await session.exec(["sh", "-c", "echo x > /tmp/ok && echo x > /workspace/ok && echo x > /scratch/ok"])).exitCode).toBe(0);
  });

  it("sees no host environment variable that was not passed", async () => {
    const result = await session.exec(["env"]);
    expect(result.stdout).not.toContain(hostVariable);
    expect(result.stdout).not.toContain(canary);
    const names = result.stdout
      .trim()
      .split("\n")
      .map((line) => line.split("=")[0])
      .sort();
    expect(names).toEqual(["HOME", "LANG", "LOGNAME", "PATH", "PWD", "RUNNING_AGENT_SESSION", "TMPDIR", "USER"]);
  });

  it("runs without capabilities and cannot make nested user namespaces", async () => {
    const status = await session.exec(["grep", "^CapEff:", "/proc/self/status"]);
    expect(status.stdout.trim()).toBe("CapEff:\t0000000000000000");
    expect((await session.exec(["unshare", "--user", "true"])).exitCode).not.toBe(0);
  });

  it("sees only its own processes", async () => {
    const result = await session.exec(["sh", "-c", "ls -d /proc/[0-9]*"]);
    // bwrap's reaper, the shell and ls: nothing from the host.
    expect(result.stdout.trim().split("\n").length).toBeLessThanOrEqual(3);
  });

  it("keeps secrets off bwrap's command line on the host", async () => {
    const secret = `secret-${randomBytes(8).toString("hex")}`;
    const withSecret = await createLocalSandbox().create({ taskId: "argv", secrets: { API_KEY: secret } });
    try {
      const sleeper = await withSecret.spawn(["sleep", "1000"]);
      await expect.poll(() => isProcessAlive("/opt/opencode/bin/opencode")).toBe(true);
      expect(isProcessAlive(secret)).toBe(false);
      expect((await withSecret.exec(["sh", "-c", 'printf %s "$API_KEY"'])).stdout).toBe(secret);
      await sleeper.kill();
    } finally {
      await withSecret.destroy();
    }
  });

  it("refuses host paths that escape the workspace, including through symlinks", async () => {
    const outside = await mkdtemp(join(tmpdir(), "ra-outside-"));
    try {
      await writeFile(join(outside, "secret.txt"), canary);
      await expectRunningAgentError(session.readFile("../../etc/passwd"), ErrorCode.UNSAFE_PATH);
      await expectRunningAgentError(session.readFile("/etc/passwd"), ErrorCode.UNSAFE_PATH);
      await expectRunningAgentError(session.writeFile("/workspace/../escape.txt", "x"), ErrorCode.UNSAFE_PATH);
      // Links made inside the sandbox: an absolute target is a sandbox path, so it cannot reach host files.
      await session.exec(["ln", "-s", join(outside, "secret.txt"), "host-link"]);
      await session.exec(["ln", "-s", "../../..", "up-link"]);
      await session.exec(["ln", "-s", "/scratch", "scratch-link"]);
      await expectRunningAgentError(session.readFile("host-link"), ErrorCode.UNSAFE_PATH);
      await expectRunningAgentError(session.readFile(`up-link${outside}/secret.txt`), ErrorCode.UNSAFE_PATH);
      await expectRunningAgentError(session.writeFile("host-link", "overwritten"), ErrorCode.UNSAFE_PATH);
      await expectRunningAgentError(session.getArchive("up-link"), ErrorCode.UNSAFE_PATH);
      expect(readFileSync(join(outside, "secret.txt"), "utf8")).toBe(canary);
      // A link that stays inside is followed the way the sandbox sees it.
      await session.writeFile("/scratch/note.txt", "inside");
      expect(Buffer.from(await session.readFile("scratch-link/note.txt")).toString()).toBe("inside");
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("packs asked-for paths with tar inside: a folder that is a link to a host folder leads to nothing of the host's", async () => {
    const outside = await mkdtemp(join(tmpdir(), "ra-outside-"));
    try {
      await writeFile(join(outside, "secret.txt"), canary);
      // What the loop asks for after the agent swapped a listed folder for a link: the host's tmp, by an absolute and by a relative way.
      await session.exec(["sh", "-c", `mkdir -p packed && echo inside > packed/real.txt && ln -s "$0" packed/swapped && ln -s ../../.. packed/up`, outside]);
      const asked = ["packed/real.txt", "packed/swapped/secret.txt", `packed/up${outside}/secret.txt`];
      const chunks: Uint8Array[] = [];
      for await (const chunk of await session.getArchiveStream!(session.workdir, { paths: asked })) chunks.push(chunk);
      const archive = Buffer.concat(chunks);
      expect((await readArchive(archive)).map((entry) => [entry.path, Buffer.from(entry.content ?? []).toString()])).toEqual([["packed/real.txt", "inside\n"]]);
      expect(archive.includes(canary)).toBe(false);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it("the session's own tar sees the sandbox's folders and the system's only, and none of the task's environment", async () => {
    // TAR_OPTIONS in the task's env would make tar follow links (and extract with a prefix dropped); /etc/hosts is bound for commands.
    const transfers = await createLocalSandbox().create({ taskId: "transfers", env: { TAR_OPTIONS: "--dereference --strip-components=1" } });
    const source = await mkdtemp(join(tmpdir(), "ra-transfer-"));
    try {
      await transfers.exec(["sh", "-c", "echo target > target.txt && ln -s target.txt link && ln -s /etc etc-link && test -f etc-link/hosts"]);
      const chunks: Uint8Array[] = [];
      for await (const chunk of await transfers.getArchiveStream!(transfers.workdir, { paths: ["link", "etc-link/hosts"] })) chunks.push(chunk);
      // The link comes as a link, and nothing of /etc comes at all.
      expect((await readArchive(Buffer.concat(chunks))).map((entry) => [entry.path, entry.type, entry.linkTarget])).toEqual([["link", "symlink", "target.txt"]]);
      // Extracted as given: a path of two segments keeps both.
      await mkdir(join(source, "put"));
      await writeFile(join(source, "put", "file.txt"), "put\n");
      await transfers.putArchiveStream!(transfers.workdir, Readable.from([await packDirectory(source)]));
      expect(Buffer.from(await transfers.readFile("put/file.txt")).toString()).toBe("put\n");
      // A command still sees the task's environment.
      expect((await transfers.exec(["sh", "-c", 'printf %s "$TAR_OPTIONS"'])).stdout).toBe("--dereference --strip-components=1");
    } finally {
      await transfers.destroy();
      await rm(source, { recursive: true, force: true });
    }
  });
});

describe("local sandbox: options and leftovers", () => {
  it("rejects without bubblewrap unless isolation is 'none', before creating anything", async () => {
    await withTempParent(async (parent) => {
      const missing = createLocalSandbox({ bubblewrapPath: "/nonexistent/bwrap", tempDirectory: parent });
      await expectRunningAgentError(missing.create({ taskId: "t" }), ErrorCode.ISOLATION_UNAVAILABLE);
      await expectRunningAgentError(missing.validate!(), ErrorCode.ISOLATION_UNAVAILABLE);
      expect(await readdir(parent)).toEqual([]);
      const unisolated = await createLocalSandbox({ isolation: "none", bubblewrapPath: "/nonexistent/bwrap", tempDirectory: parent }).create({ taskId: "t" });
      expect(unisolated.isolated).toBe(false);
      await unisolated.destroy();
      expect(await readdir(parent)).toEqual([]);
    });
  });

  it("rejects limits and network policies it cannot enforce, and bad options, with typed errors", async () => {
    const provider = createLocalSandbox();
    await expectRunningAgentError(provider.create({ taskId: "t", resources: { memoryMiB: 512 } }), ErrorCode.CAPABILITY_UNSUPPORTED);
    await expectRunningAgentError(createLocalSandbox({ isolation: "none" }).create({ taskId: "t", network: "none" }), ErrorCode.CAPABILITY_UNSUPPORTED);
    await expectRunningAgentError(provider.create({ taskId: "t", network: { mode: "none" } as unknown as "none" }), ErrorCode.INVALID_OPTIONS);
    await expectRunningAgentError(provider.create({ taskId: "" }), ErrorCode.INVALID_OPTIONS);
    await expectRunningAgentError(provider.create({ taskId: "t", env: { "BAD NAME": "x" } }), ErrorCode.INVALID_OPTIONS);
    await expectRunningAgentError(createLocalSandbox({ opencodeBinary: "/nonexistent/opencode" }).create({ taskId: "t" }), ErrorCode.INVALID_OPTIONS);
    expect(() => createLocalSandbox({ isolation: "sometimes" as "none" })).toThrow(RunningAgentError);
    const ignoring = await createLocalSandbox({ unenforcedResources: "ignore" }).create({ taskId: "t", resources: { memoryMiB: 512 }, network: "open" });
    await ignoring.destroy();
  });

  it("an exec command cannot be a shell string smuggled as one argument into a shell", async () => {
    await using session = await createLocalSandbox().create({ taskId: "argv" });
    const result = await session.exec(["echo", "$(id); rm -rf /workspace"]);
    expect(result.stdout).toBe("$(id); rm -rf /workspace\n");
    await expectRunningAgentError(session.exec([]), ErrorCode.INVALID_OPTIONS);
  });

  it("unisolated, host paths stay inside workspace and scratch", async () => {
    await using session = await createLocalSandbox({ isolation: "none" }).create({ taskId: "paths" });
    expect(session.workdir).toBe(join(tmpdir(), session.id, "workspace"));
    await expectRunningAgentError(session.readFile(`${session.workdir}/../system/passwd`), ErrorCode.UNSAFE_PATH);
    await expectRunningAgentError(session.readFile("/etc/hostname"), ErrorCode.UNSAFE_PATH);
    await session.writeFile(`${session.workdir}/../scratch/via-parent.txt`, "ok");
    expect(Buffer.from(await session.readFile(`${session.scratchDir}/via-parent.txt`)).toString()).toBe("ok");
  });

  it("caps kept output at maxOutputBytes and says so, while callbacks see everything", async () => {
    await using session = await createLocalSandbox({ maxOutputBytes: 10 }).create({ taskId: "cap" });
    let streamed = 0;
    const result = await session.exec(["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a"], { onStdout: (chunk) => (streamed += chunk.byteLength) });
    expect(result.stdout).toBe("a".repeat(10));
    expect(result.truncated).toBe(true);
    expect(streamed).toBe(100_000);
  });

  it("stops everything when the session's time limit passes", async () => {
    await using session = await createLocalSandbox().create({ taskId: "lifetime", timeoutMs: 1_000 });
    await expectRunningAgentError(session.exec(["sleep", "1000"]), ErrorCode.SANDBOX_TERMINATED);
    await expectRunningAgentError(session.exec(["true"]), ErrorCode.SANDBOX_TERMINATED);
  });

  it("leaves no process and no temp folder after destroy, also for a process that detached itself", async () => {
    const marker = `1000.${Date.now() % 1e9}`;
    for (const isolation of ["bubblewrap", "none"] as const) {
      const session = await createLocalSandbox({ isolation }).create({ taskId: "leftovers" });
      const folder = join(tmpdir(), session.id);
      expect((await stat(folder)).isDirectory()).toBe(true);
      await session.spawn(["sh", "-c", `sleep ${marker} & wait`]);
      await expect.poll(() => isProcessAlive(marker)).toBe(true);
      await session.destroy();
      expect(isProcessAlive(marker)).toBe(false);
      await expect(stat(folder)).rejects.toThrow();
    }
  });

  it.each(["bubblewrap", "none"] as const)("with isolation %s, a process that started its own session (setsid) still dies with the sandbox", async (isolation) => {
    const marker = `1000.${(Date.now() % 1e8) + (isolation === "none" ? 1 : 2)}`;
    const session = await createLocalSandbox({ isolation }).create({ taskId: "setsid" });
    await session.spawn(["sh", "-c", `setsid -f sleep ${marker}; exec sleep 1000`]);
    await expect.poll(() => isProcessAlive(marker)).toBe(true);
    await session.destroy();
    expect(isProcessAlive(marker)).toBe(false);
  });

  it("a bubblewrap sandbox dies with its parent process, even on SIGKILL (a crashed caller leaves no process)", async () => {
    await withTempParent(async (parent) => {
      const bubblewrap = findExecutable("bwrap")!;
      const accounts = sandboxAccounts();
      await mkdir(join(parent, "workspace"));
      await mkdir(join(parent, "scratch"));
      await writeFile(join(parent, "passwd"), accounts.passwd);
      await writeFile(join(parent, "group"), accounts.group);
      const args = bubblewrapArguments({
        system: readSystemLayout(),
        hostWorkspace: join(parent, "workspace"),
        hostScratch: join(parent, "scratch"),
        hostPasswd: join(parent, "passwd"),
        hostGroup: join(parent, "group"),
        cwd: "/workspace",
        disableUserns: (await probeBubblewrap(bubblewrap)).disableUserns,
      });
      const marker = `1000.${(Date.now() % 1e8) + 5}`;
      // sh stands in for the caller's Node process: bwrap is its child, exactly as the provider starts it.
      const caller = spawn("sh", ["-c", '"$@" & wait', "sh", bubblewrap, ...args, "--", "sleep", marker], { stdio: "ignore" });
      // Wait for the sandboxed command itself: bwrap's own command line names the marker from the moment it starts,
      // before it has set its parent-death signal, and killing the caller in that instant would prove nothing.
      await expect.poll(() => isSandboxedCommandAlive("sleep", marker)).toBe(true);
      caller.kill("SIGKILL");
      await expect.poll(() => isProcessAlive(marker)).toBe(false);
    });
  });

  it("reapOrphans removes the folder and the escaped processes of a session whose owner died, and keeps live ones", async () => {
    await withTempParent(async (parent) => {
      const provider = createLocalSandbox({ isolation: "none", tempDirectory: parent });
      const live = await provider.create({ taskId: "live" });
      const crashed = await provider.create({ taskId: "crashed" });
      const marker = `1000.${(Date.now() % 1e8) + 3}`;
      await crashed.spawn(["sh", "-c", `setsid -f sleep ${marker}; exec sleep ${marker}`]);
      await expect.poll(() => isProcessAlive(marker)).toBe(true);
      // What a crash leaves: the owner file names a process that no longer exists (above the kernel's pid limit).
      await writeFile(join(parent, crashed.id, "system", "owner.json"), JSON.stringify({ pid: 2 ** 22 + 1, createdAt: new Date(0).toISOString() }));
      expect(await provider.reapOrphans!({ olderThanMs: 60_000 })).toBe(1);
      expect(await readdir(parent)).toEqual([live.id]);
      expect(isProcessAlive(marker)).toBe(false);
      await live.destroy();
      await crashed.destroy();
      expect(await readdir(parent)).toEqual([]);
    });
  });
});
