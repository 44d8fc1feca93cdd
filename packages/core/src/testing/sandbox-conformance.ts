import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { packDirectory, packDirectoryStream, readArchive } from "../archive.js";
import { ErrorCode, RunningAgentError } from "../errors.js";
import { cloneRepository } from "../git/clone.js";
import { collectChanges } from "../git/collect.js";
import { createGitFixture } from "../git/git-fixture.js";
import { placeRepository } from "../git/place.js";
import { isRacy, listChangesSince } from "../git/workspace-listing.js";
import { startEgressProxy, type BlockedConnection } from "../network/egress-proxy.js";
import {
  SANDBOX_EGRESS_PROXY_URL,
  SANDBOX_SPEC_VERSION,
  type ExposedPort,
  type SandboxCreateOptions,
  type SandboxNetworkPolicy,
  type SandboxProvider,
  type SandboxSession,
} from "../spec/sandbox-spec.js";
import { startLoopbackService } from "./network-probe.js";

/** The tests of {@link testSandboxProvider}, by key, for {@link SandboxConformanceOptions.skip}. */
export type SandboxConformanceTest =
  | "exec"
  | "stdin"
  | "environment"
  | "cwd"
  | "timeout"
  | "abort"
  | "spawn"
  | "files"
  | "largeFile"
  | "archive"
  | "collect"
  | "exposePort"
  | "opencode"
  | "networkNone"
  | "networkAllowList"
  | "networkBlockedEvents"
  | "destroy";

/** A server the port test starts inside the sandbox, and how the host checks that it answers. */
export interface ConformancePortServer {
  /** Prepares what the server needs (runs once before `command`). */
  prepare?(session: SandboxSession, folder: string): Promise<void>;
  /** The command that listens on `port` (on 127.0.0.1 or all interfaces) inside the sandbox. */
  command(port: number, folder: string): string[];
  /** Resolves once the server answered through the exposed URL; rejects when it answered wrongly. */
  probe(exposed: ExposedPort): Promise<void>;
}

/** Settings for {@link testSandboxProvider}. */
export interface SandboxConformanceOptions {
  /** Shown in the `describe` block. */
  name: string;
  /** Makes the provider under test (called once per suite). */
  createProvider: () => SandboxProvider | Promise<SandboxProvider>;
  /** Extra create options (taskId, env and secrets are the suite's own). */
  createOptions?: Partial<SandboxCreateOptions>;
  /**
   * Tests this provider cannot pass, each with the reason (shown in the test name). The network
   * cases also skip themselves, with the reason printed, when the provider's capability flags say
   * it cannot enforce them (`appliesNetworkPolicy: false`, no `egressProxy`).
   */
  skip?: Partial<Record<SandboxConformanceTest, string>>;
  /** The server for the port test. Default: `git daemon`, which a minimal Debian image with git has. */
  portServer?: ConformancePortServer;
  /**
   * A host-side check whether any process whose command line contains `marker` is still alive.
   * With it, the kill, timeout and destroy tests also prove from outside that nothing is left.
   */
  isProcessAlive?: (marker: string) => boolean | Promise<boolean>;
  /** Per-test timeout in ms. Default 60 000. */
  testTimeoutMs?: number;
}

/**
 * Registers vitest tests that every sandbox provider must pass: exec with streamed output and exit
 * codes, stdin, environment and secrets, cwd, timeouts, abort, spawn and kill, files (binary and
 * large), archives with the exec bit and symlinks, port exposure, the OpenCode binary, network
 * policies (`"none"`; an allow-list, with each refusal reported by the host's egress proxy), and a
 * destroy that is idempotent and leaves no process.
 *
 * @example
 * ```ts
 * testSandboxProvider({ name: "docker", createProvider: () => createDockerSandbox({ image }) });
 * ```
 */
export function testSandboxProvider(options: SandboxConformanceOptions): void {
  const timeout = options.testTimeoutMs ?? 60_000;
  const secret = `secret-${randomBytes(12).toString("hex")}`;
  const plain = `plain-${randomBytes(6).toString("hex")}`;
  let provider: SandboxProvider;
  let session: SandboxSession;
  let hostFolder: string;

  const test = (key: SandboxConformanceTest, name: string, body: (context: TestContext) => Promise<void>) => {
    const reason = options.skip?.[key];
    if (reason) it.skip(`${name} (skipped: ${reason})`, body);
    else it(name, body, timeout);
  };
  const create = () =>
    provider.create({
      ...options.createOptions,
      taskId: `conformance-${randomBytes(4).toString("hex")}`,
      env: { ...options.createOptions?.env, RA_CONFORMANCE_PLAIN: plain },
      secrets: { ...options.createOptions?.secrets, RA_CONFORMANCE_SECRET: secret },
    });
  /** A fresh folder inside the workdir for one test. */
  const folderFor = async (name: string) => {
    const folder = `${session.workdir}/${name}`;
    const result = await session.exec(["mkdir", "-p", folder]);
    expect(result.exitCode).toBe(0);
    return folder;
  };
  const checkGone = async (marker: string) => {
    if (options.isProcessAlive) expect(await options.isProcessAlive(marker), `a process with ${marker} is still alive`).toBe(false);
  };

  describe(`sandbox provider conformance: ${options.name}`, () => {
    beforeAll(async () => {
      provider = await options.createProvider();
      session = await create();
      hostFolder = await mkdtemp(join(tmpdir(), "sandbox-conformance-"));
    }, timeout * 2);
    afterAll(async () => {
      await session?.destroy();
      if (hostFolder) await rm(hostFolder, { recursive: true, force: true });
    }, timeout);

    it("declares the sandbox-v1 spec and a provider id, and opens a session with absolute, distinct workdir and scratchDir", async () => {
      expect(provider.specificationVersion).toBe(SANDBOX_SPEC_VERSION);
      expect(typeof provider.providerId).toBe("string");
      expect(provider.providerId.length).toBeGreaterThan(0);
      expect(session.workdir.startsWith("/")).toBe(true);
      expect(session.scratchDir.startsWith("/")).toBe(true);
      expect(session.workdir).not.toBe(session.scratchDir);
      expect(typeof session.isolated).toBe("boolean");
      const writable = await session.exec(["sh", "-c", 'test -d "$1" && test -w "$1" && test -d "$2" && test -w "$2"', "sh", session.workdir, session.scratchDir]);
      expect(writable.exitCode).toBe(0);
    });

    test("exec", "exec keeps stdout and stderr apart, resolves with a non-zero exit code and calls back with every chunk", async () => {
      const seenOut: Buffer[] = [];
      const seenErr: Buffer[] = [];
      const result = await session.exec(["sh", "-c", "printf out1; printf err1 >&2; printf out2; exit 7"], {
        onStdout: (chunk) => seenOut.push(Buffer.from(chunk)),
        onStderr: (chunk) => seenErr.push(Buffer.from(chunk)),
      });
      expect(result.exitCode).toBe(7);
      expect(result.stdout).toBe("out1out2");
      expect(result.stderr).toBe("err1");
      expect(Buffer.concat(seenOut).toString()).toBe("out1out2");
      expect(Buffer.concat(seenErr).toString()).toBe("err1");
      expect((await session.exec(["false"])).exitCode).toBe(1);
      expect((await session.exec(["true"])).exitCode).toBe(0);
    });

    test("exec", "exec streams output while the command still runs", async () => {
      const folder = await folderFor("streaming");
      // The command waits for a file that the host writes only after it saw the first line:
      // an implementation that buffers output until exit would never release it (and time out).
      let released: Promise<void> | undefined;
      const result = await session.exec(["sh", "-c", 'echo first; while [ ! -f "$1" ]; do sleep 0.05; done; echo second', "sh", `${folder}/release`], {
        timeoutMs: timeout / 2,
        onStdout: (chunk) => {
          if (!released && Buffer.from(chunk).toString().includes("first")) released = session.writeFile(`${folder}/release`, "go");
        },
      });
      await released;
      expect(result.stdout).toBe("first\nsecond\n");
    });

    test("exec", "a command that does not exist fails with SANDBOX_EXEC_FAILED or a non-zero exit code", async () => {
      const outcome = await session.exec(["ra-conformance-no-such-command"]).then(
        (result) => result.exitCode,
        (error: unknown) => (RunningAgentError.isInstance(error) ? error.code : error),
      );
      if (typeof outcome === "number") expect(outcome).not.toBe(0);
      else expect(outcome).toBe(ErrorCode.SANDBOX_EXEC_FAILED);
    });

    test("stdin", "stdin reaches the command (text and binary), and is empty when not given", async () => {
      expect((await session.exec(["cat"], { stdin: "hello\nworld\n" })).stdout).toBe("hello\nworld\n");
      const bytes = randomBytes(100_000);
      const digest = await session.exec(["sha256sum"], { stdin: new Uint8Array(bytes) });
      expect(digest.stdout.split(" ")[0]).toBe(createHash("sha256").update(bytes).digest("hex"));
      const empty = await session.exec(["cat"], { timeoutMs: timeout / 2 });
      expect(empty).toMatchObject({ exitCode: 0, stdout: "" });
    });

    test("environment", "env and secrets from create() and per-command env reach the command", async () => {
      const result = await session.exec(["sh", "-c", 'printf "%s|%s|%s" "$RA_CONFORMANCE_PLAIN" "$RA_CONFORMANCE_SECRET" "$RA_CONFORMANCE_EXTRA"'], {
        env: { RA_CONFORMANCE_EXTRA: "extra" },
      });
      expect(result.stdout).toBe(`${plain}|${secret}|extra`);
      const overridden = await session.exec(["sh", "-c", 'printf %s "$RA_CONFORMANCE_PLAIN"'], { env: { RA_CONFORMANCE_PLAIN: "override" } });
      expect(overridden.stdout).toBe("override");
    });

    test("environment", "the secret is on no command line inside the sandbox", async () => {
      const folder = await folderFor("argv");
      const background = await session.spawn(["sh", "-c", 'echo "$RA_CONFORMANCE_SECRET" > "$1"; exec sleep 1000', "sh", `${folder}/ready`]);
      try {
        await waitFor(() => session.readFile(`${folder}/ready`).then(() => true, () => false), timeout / 2);
        // The pattern comes through stdin so that grep's own command line does not contain it.
        const scan = await session.exec(["sh", "-c", "grep -l -F -f - /proc/[0-9]*/cmdline || true"], { stdin: `${secret}\n` });
        expect(scan.stdout.trim()).toBe("");
      } finally {
        await background.kill();
      }
    });

    test("cwd", "exec runs in the workdir by default and in the given cwd (absolute or relative)", async () => {
      expect((await session.exec(["pwd"])).stdout.trim()).toBe(session.workdir);
      expect((await session.exec(["pwd"], { cwd: session.scratchDir })).stdout.trim()).toBe(session.scratchDir);
      const folder = await folderFor("cwd-test");
      expect((await session.exec(["pwd"], { cwd: folder })).stdout.trim()).toBe(folder);
      expect((await session.exec(["pwd"], { cwd: "cwd-test" })).stdout.trim()).toBe(folder);
    });

    test("timeout", "a command past its timeoutMs rejects with SANDBOX_EXEC_TIMEOUT and its whole tree is gone", async () => {
      const folder = await folderFor("timeout");
      const marker = uniqueSleep();
      const error = await session
        .exec(["sh", "-c", `sleep ${marker} & while :; do echo tick >> "$1"; sleep 0.1; done`, "sh", `${folder}/ticks`], { timeoutMs: 1_500 })
        .catch((caught: unknown) => caught);
      expectCode(error, ErrorCode.SANDBOX_EXEC_TIMEOUT);
      await expectStopped(session, `${folder}/ticks`);
      await checkGone(marker);
    });

    test("abort", "aborting a command rejects with ABORTED and kills it; an aborted signal runs nothing", async () => {
      const folder = await folderFor("abort");
      const marker = uniqueSleep();
      const controller = new AbortController();
      const error = await session
        .exec(["sh", "-c", `sleep ${marker} & echo started; while :; do echo tick >> "$1"; sleep 0.1; done`, "sh", `${folder}/ticks`], {
          signal: controller.signal,
          timeoutMs: timeout / 2,
          onStdout: () => controller.abort(),
        })
        .catch((caught: unknown) => caught);
      expectCode(error, ErrorCode.ABORTED);
      await expectStopped(session, `${folder}/ticks`);
      await checkGone(marker);

      const early = await session.exec(["touch", `${folder}/must-not-exist`], { signal: AbortSignal.abort() }).catch((caught: unknown) => caught);
      expectCode(early, ErrorCode.ABORTED);
      expectCode(await session.readFile(`${folder}/must-not-exist`).catch((caught: unknown) => caught), ErrorCode.SANDBOX_FILE_ERROR);
    });

    test("spawn", "spawn runs in the background and streams; kill() stops the whole tree, is idempotent, and exited settles", async () => {
      const folder = await folderFor("spawn");
      const marker = uniqueSleep();
      const output: Buffer[] = [];
      const background = await session.spawn(["sh", "-c", `sleep ${marker} & echo up; while :; do echo tick >> "$1"; sleep 0.1; done`, "sh", `${folder}/ticks`], {
        onStdout: (chunk) => output.push(Buffer.from(chunk)),
      });
      await waitFor(async () => Buffer.concat(output).toString().includes("up"), timeout / 2);
      await waitFor(() => session.readFile(`${folder}/ticks`).then(() => true, () => false), timeout / 2);
      await background.kill();
      await background.kill();
      await expect(background.exited).resolves.not.toBe(0);
      await expectStopped(session, `${folder}/ticks`);
      await checkGone(marker);
    });

    test("spawn", "a spawned process that ends by itself settles exited with its code", async () => {
      const background = await session.spawn(["sh", "-c", "exit 5"]);
      await expect(background.exited).resolves.toBe(5);
      await background.kill();
    });

    test("files", "writeFile and readFile round-trip text and every byte value, create parents, accept relative paths and set the mode", async () => {
      const folder = await folderFor("files");
      await session.writeFile(`${folder}/deep/er/text.txt`, "héllo\n");
      expect(Buffer.from(await session.readFile(`${folder}/deep/er/text.txt`)).toString("utf8")).toBe("héllo\n");
      expect((await session.exec(["cat", "files/deep/er/text.txt"])).stdout).toBe("héllo\n");
      const binary = Uint8Array.from({ length: 512 }, (_, index) => index % 256);
      await session.writeFile("files/binary.dat", binary);
      expect(Buffer.from(await session.readFile(`${folder}/binary.dat`)).equals(Buffer.from(binary))).toBe(true);
      await session.writeFile(`${folder}/tool.sh`, "#!/bin/sh\necho tool-ran\n", { mode: 0o755 });
      expect((await session.exec([`${folder}/tool.sh`])).stdout).toBe("tool-ran\n");
      await session.writeFile(`${folder}/deep/er/text.txt`, "short");
      expect(Buffer.from(await session.readFile(`${folder}/deep/er/text.txt`)).toString()).toBe("short");
      await session.exec(["sh", "-c", 'printf made-inside > "$1"', "sh", `${folder}/inside.txt`]);
      expect(Buffer.from(await session.readFile(`${folder}/inside.txt`)).toString()).toBe("made-inside");
    });

    test("files", "readFile of a missing file rejects with SANDBOX_FILE_ERROR", async () => {
      expectCode(await session.readFile(`${session.workdir}/no-such-file.txt`).catch((caught: unknown) => caught), ErrorCode.SANDBOX_FILE_ERROR);
    });

    test("largeFile", "an 8 MiB file round-trips byte for byte and is the same file inside", async () => {
      const folder = await folderFor("large");
      const large = randomBytes(8 * 1024 * 1024);
      await session.writeFile(`${folder}/large.bin`, new Uint8Array(large));
      expect(Buffer.from(await session.readFile(`${folder}/large.bin`)).equals(large)).toBe(true);
      const digest = await session.exec(["sha256sum", `${folder}/large.bin`]);
      expect(digest.stdout.split(" ")[0]).toBe(createHash("sha256").update(large).digest("hex"));
    });

    test("archive", "putArchive and getArchive round-trip binary files, the exec bit, folders and symlinks", async () => {
      const source = join(hostFolder, "archive-source");
      await mkdir(join(source, "bin"), { recursive: true });
      await writeFile(join(source, "bin", "run.sh"), "#!/bin/sh\necho archive-ran\n", { mode: 0o755 });
      const binary = randomBytes(70_000);
      await writeFile(join(source, "data.bin"), binary);
      await symlink("bin/run.sh", join(source, "run-link"));
      const target = `${session.workdir}/unpacked`;
      await session.putArchive(target, await packDirectory(source));
      expect((await session.exec(["./unpacked/bin/run.sh"])).stdout).toBe("archive-ran\n");
      expect((await session.exec(["readlink", "unpacked/run-link"])).stdout.trim()).toBe("bin/run.sh");
      await session.exec(["sh", "-c", "printf new > unpacked/bin/new.txt"]);

      const entries = await readArchive(await session.getArchive(target));
      const byPath = new Map(entries.map((entry) => [entry.path, entry]));
      expect(byPath.get("bin")?.type).toBe("directory");
      expect(byPath.get("bin/run.sh")?.mode).toBe(0o755);
      expect(Buffer.from(byPath.get("data.bin")?.content ?? []).equals(binary)).toBe(true);
      expect(byPath.get("run-link")).toMatchObject({ type: "symlink", linkTarget: "bin/run.sh" });
      expect(Buffer.from(byPath.get("bin/new.txt")?.content ?? []).toString()).toBe("new");
    });

    test("archive", "putArchiveStream and getArchiveStream (when present) stream the same archives, and paths pick only those entries", async () => {
      const source = join(hostFolder, "stream-source");
      await mkdir(join(source, "bin"), { recursive: true });
      await writeFile(join(source, "bin", "run.sh"), "#!/bin/sh\necho streamed-ran\n", { mode: 0o755 });
      const binary = randomBytes(300_000);
      await writeFile(join(source, "data.bin"), binary);
      await writeFile(join(source, "other.txt"), "not asked for\n");
      await symlink("bin/run.sh", join(source, "run-link"));
      const target = `${session.workdir}/streamed`;
      if (session.putArchiveStream) await session.putArchiveStream(target, packDirectoryStream(source));
      else await session.putArchive(target, await packDirectory(source));
      expect((await session.exec(["./streamed/bin/run.sh"])).stdout).toBe("streamed-ran\n");
      if (!session.getArchiveStream) return;
      const chunks: Uint8Array[] = [];
      for await (const chunk of await session.getArchiveStream(target, { paths: ["data.bin", "run-link", "bin/run.sh", "missing.txt", "bin"] })) chunks.push(chunk);
      const entries = await readArchive(Buffer.concat(chunks));
      const byPath = new Map(entries.map((entry) => [entry.path, entry]));
      expect([...byPath.keys()].filter((path) => byPath.get(path)!.type !== "directory").sort()).toEqual(["bin/run.sh", "data.bin", "run-link"]);
      expect(byPath.get("bin/run.sh")?.mode).toBe(0o755);
      expect(Buffer.from(byPath.get("data.bin")?.content ?? []).equals(binary)).toBe(true);
      expect(byPath.get("run-link")).toMatchObject({ type: "symlink", linkTarget: "bin/run.sh" });
    });

    test("collect", "a repository placed by the core comes back with only its changed paths, whatever the sandbox's .git says", async () => {
      const fixture = await createGitFixture({
        files: { "README.md": "# readme\n", "src/a.ts": "export const a = 1;\n", "bin/run.sh": { content: "#!/bin/sh\n", executable: true }, link: { symlink: "README.md" }, ".gitignore": "build/\n", "docs/guide/intro.md": "# intro\n" },
      });
      const fresh = await create();
      try {
        // Its own folder each time, so that a retry starts clean.
        const dir = await mkdtemp(join(hostFolder, "collect-clone-"));
        await cloneRepository({ repository: { id: "fixture", remote: fixture.workPath, defaultBranch: "main", canPush: true }, branch: "main", depth: 1, dir, checkout: false });
        const asked: string[] = [];
        let wholeTree = 0;
        const watched = Object.create(fresh) as SandboxSession;
        watched.getArchive = (directory) => (wholeTree++, fresh.getArchive(directory));
        if (fresh.getArchiveStream) watched.getArchiveStream = (directory, streamOptions = {}) => (asked.push(...(streamOptions.paths ?? ["(whole tree)"])), fresh.getArchiveStream!(directory, streamOptions));
        const placed = await placeRepository({ session: watched, dir });
        // The listing needs GNU find and date inside; a sandbox without them skips "collect" and gets the whole-tree collect.
        expect(placed, "the placed listing (GNU find inside the sandbox)").toBeDefined();
        const script = [
          "echo 'export const a = 2;' > src/a.ts && echo new > new.txt && rm README.md && chmod -x bin/run.sh",
          "mkdir build && echo out > build/x.js && echo new.txt >> .git/info/exclude && git update-index --assume-unchanged src/a.ts",
          // A hard link comes back as a file of its own (the archive dereferences it).
          "ln src/a.ts hard.ts",
          // A folder moved with a folder inside it (whose ctime stays old): the listing of the whole tree.
          "mv docs manual",
        ].join(" && ");
        const ran = await fresh.exec(["sh", "-c", script]);
        expect(ran.exitCode, ran.stderr).toBe(0);
        // The listing that follows the change works there (else collect falls back to a full listing).
        expect(await listChangesSince(watched, placed!), "the listing of what changed (GNU find inside the sandbox)").toBeDefined();
        const changes = await collectChanges({ session: watched, dir, placed: placed! });
        expect(changes.map((change) => [change.path, change.status])).toEqual([
          ["README.md", "deleted"],
          ["bin/run.sh", "modified"],
          ["hard.ts", "added"],
          ["manual/guide/intro.md", "renamed"],
          ["new.txt", "added"],
          ["src/a.ts", "modified"],
        ]);
        // With a listing and the streaming member, only the changed paths cross, never the whole tree.
        if (fresh.getArchiveStream) {
          expect(wholeTree).toBe(0);
          const changed = ["bin/run.sh", "hard.ts", "manual/guide/intro.md", "new.txt", "src/a.ts"];
          expect(asked).toEqual(expect.arrayContaining(changed));
          // Besides those, only files placed too close to the listing for their ctime to tell (compared by content).
          expect(asked.filter((path) => !changed.includes(path) && !isRacy(placed!, path))).toEqual([]);
        }
      } finally {
        await fresh.destroy();
        await fixture.cleanup();
      }
    });

    test("exposePort", "a server inside the sandbox answers on the exposed URL", async () => {
      const portServer = options.portServer ?? gitDaemonPortServer;
      const folder = await folderFor("port");
      const port = session.allocatePort ? await session.allocatePort() : 20_000 + Math.floor(Math.random() * 20_000);
      const exposed = await session.exposePort(port);
      expect(exposed.url).toMatch(/^https?:\/\//);
      await portServer.prepare?.(session, folder);
      const stderr: Buffer[] = [];
      const server = await session.spawn(portServer.command(port, folder), { onStderr: (chunk) => stderr.push(Buffer.from(chunk)) });
      try {
        await portServer.probe(exposed);
      } catch (error) {
        throw new Error(`The port server did not answer: ${String(error)}; its stderr: ${Buffer.concat(stderr).toString()}`);
      } finally {
        await server.kill();
      }
    });

    test("opencode", "the OpenCode binary runs inside the sandbox", async () => {
      const result = await session.exec([provider.opencodeBinary ?? "opencode", "--version"], { timeoutMs: timeout / 2 });
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/\d+\.\d+\.\d+/);
    });

    test("networkNone", 'network "none": a service on the host\'s loopback is out of reach from inside', async () => {
      // A host-side listener that counts connections: reaching it at all is the failure, whatever a tool prints.
      let connections = 0;
      const listener = createServer((socket) => {
        connections += 1;
        socket.destroy();
      });
      await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
      const port = (listener.address() as AddressInfo).port;
      const offline = await provider.create({ ...options.createOptions, taskId: `conformance-net-${randomBytes(4).toString("hex")}`, network: "none" });
      try {
        const probe = await offline.exec(["git", "ls-remote", `http://127.0.0.1:${port}/probe.git`], { timeoutMs: 30_000 });
        expect(probe.exitCode).not.toBe(0);
        expect(connections).toBe(0);
      } finally {
        await offline.destroy();
        await new Promise<void>((resolve) => listener.close(() => resolve()));
      }
    });

    /** A session under `network`, behind an egress proxy of the suite's own when the provider takes one (as runAgentTask starts). */
    const openWithPolicy = async (network: SandboxNetworkPolicy) => {
      const blocked: BlockedConnection[] = [];
      const proxy = provider.egressProxy === true ? await startEgressProxy({ policy: network, onBlocked: (entry) => blocked.push(entry) }) : undefined;
      try {
        const taskId = `conformance-net-${randomBytes(4).toString("hex")}`;
        const opened = await provider.create({ ...options.createOptions, taskId, network, ...(proxy ? { egressProxy: { socketPath: proxy.socketPath } } : {}) });
        return {
          session: opened,
          blocked,
          [Symbol.asyncDispose]: async () => {
            await opened.destroy();
            await proxy?.close();
          },
        };
      } catch (error) {
        await proxy?.close();
        throw error;
      }
    };
    /** git through the egress proxy's address inside (or with no proxy at all: `direct`), whatever the sandbox's environment says. */
    const git = (url: string, via: "proxy" | "direct") =>
      via === "proxy"
        ? ["env", "-u", "NO_PROXY", "-u", "no_proxy", "git", "-c", `http.proxy=${SANDBOX_EGRESS_PROXY_URL}`, "ls-remote", url]
        : ["env", "-u", "HTTP_PROXY", "-u", "http_proxy", "-u", "HTTPS_PROXY", "-u", "https_proxy", "git", "ls-remote", url];

    test("networkAllowList", "an allow-list admits its host; another host and the host's loopback, directly or through the proxy, are refused", async (context) => {
      const gap = networkCapabilityGap(provider);
      if (gap) context.skip(gap);
      // Two services on the host's loopback: 127.0.0.2 is on the list, 127.0.0.1 is not (loopback needs an entry of its own).
      await using allowed = await startLoopbackService({ host: "127.0.0.2" });
      await using hostLoopback = await startLoopbackService();
      await using opened = await openWithPolicy({ allow: ["127.0.0.2"] });
      const run = (command: string[]) => opened.session.exec(command, { timeoutMs: 30_000 });
      await run(git(`${allowed.url}/allowed.git`, "proxy"));
      // The service answers no git protocol, so git fails; that it was asked is what counts.
      expect(allowed.requests, "requests that reached the allowed host").toBeGreaterThan(0);
      for (const probe of [git(`${hostLoopback.url}/direct.git`, "direct"), git(`${hostLoopback.url}/proxied.git`, "proxy"), git("https://blocked.invalid/other.git", "proxy")]) {
        expect((await run(probe)).exitCode, probe.join(" ")).not.toBe(0);
      }
      expect(hostLoopback.requests, "requests that reached the host's loopback").toBe(0);
    });

    test("networkBlockedEvents", "each refused connection is reported by the host's egress proxy, with host, port, method and reason", async (context) => {
      const gap = networkCapabilityGap(provider);
      if (gap) context.skip(gap);
      await using hostLoopback = await startLoopbackService();
      await using opened = await openWithPolicy({ allow: ["127.0.0.2"] });
      for (const url of [`${hostLoopback.url}/proxied.git`, "https://blocked.invalid/other.git"]) await opened.session.exec(git(url, "proxy"), { timeoutMs: 30_000 });
      expect(opened.blocked.map((entry) => `${entry.method} ${entry.host}:${entry.port}`)).toEqual([`GET 127.0.0.1:${hostLoopback.port}`, "CONNECT blocked.invalid:443"]);
      for (const entry of opened.blocked) expect(entry.reason.length).toBeGreaterThan(0);
      expect(hostLoopback.requests).toBe(0);
    });

    test("destroy", "destroy() stops every process, is idempotent, and makes later calls reject with SANDBOX_DESTROYED", async () => {
      const doomed = await create();
      const marker = uniqueSleep();
      await doomed.spawn(["sh", "-c", `sleep ${marker} & echo started > "$1"; wait`, "sh", `${doomed.workdir}/started`]);
      await waitFor(() => doomed.readFile(`${doomed.workdir}/started`).then(() => true, () => false), timeout / 2);
      const running = doomed.exec(["sleep", "1000"]).catch((caught: unknown) => caught);
      await doomed.destroy();
      await doomed.destroy();
      expect(RunningAgentError.isInstance(await running)).toBe(true);
      expectCode(await doomed.exec(["true"]).catch((caught: unknown) => caught), ErrorCode.SANDBOX_DESTROYED);
      expectCode(await doomed.spawn(["true"]).catch((caught: unknown) => caught), ErrorCode.SANDBOX_DESTROYED);
      expectCode(await doomed.readFile("started").catch((caught: unknown) => caught), ErrorCode.SANDBOX_DESTROYED);
      expectCode(await doomed.writeFile("x", "x").catch((caught: unknown) => caught), ErrorCode.SANDBOX_DESTROYED);
      await checkGone(marker);
    });

    test("destroy", "Symbol.asyncDispose destroys the session", async () => {
      const disposed = await create();
      await disposed[Symbol.asyncDispose]();
      expectCode(await disposed.exec(["true"]).catch((caught: unknown) => caught), ErrorCode.SANDBOX_DESTROYED);
    });
  });
}

/**
 * Why the network cases cannot run with this provider, from its capability flags: they need the
 * policy enforced through the host's egress proxy (the allowed host is on the host's loopback, and
 * refusals are seen there). Undefined when they can.
 */
function networkCapabilityGap(provider: SandboxProvider): string | undefined {
  if ((provider as { appliesNetworkPolicy?: boolean }).appliesNetworkPolicy === false) return "the provider shares the host's network and applies no policy (appliesNetworkPolicy: false)";
  if (provider.egressProxy !== true) return "the provider does not enforce policies through the host's egress proxy (egressProxy), which these cases observe";
  return undefined;
}

/** A `sleep` argument that is unique to one test, so that its process can be found by command line. */
function uniqueSleep(): string {
  return `1000.${String(Math.floor(Math.random() * 1e9)).padStart(9, "1")}`;
}

function expectCode(error: unknown, code: ErrorCode): void {
  expect(RunningAgentError.isInstance(error), `expected a RunningAgentError with ${code}, got ${String(error)}`).toBe(true);
  expect((error as RunningAgentError).code).toBe(code);
}

/** Polls until `check` is true; the limit is a guard against a hang, not an asserted timing. */
async function waitFor(check: () => Promise<boolean>, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Gave up waiting after ${limitMs} ms.`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// A killed writer loop leaves its tick file unchanged; a surviving one keeps appending every 0.1 s.
async function expectStopped(session: SandboxSession, tickFile: string): Promise<void> {
  const read = () => session.readFile(tickFile).then((content) => content.byteLength, () => 0);
  const before = await read();
  await new Promise((resolve) => setTimeout(resolve, 700));
  expect(await read(), "the killed command is still writing").toBe(before);
}

/** The default port server: `git daemon`, present wherever git is, probed with git's own protocol. */
export const gitDaemonPortServer: ConformancePortServer = {
  async prepare(session, folder) {
    const result = await session.exec(["git", "init", "--bare", "--quiet", `${folder}/served.git`]);
    if (result.exitCode !== 0) throw new Error(`git init failed: ${result.stderr}`);
  },
  command: (port, folder) => ["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", `--port=${port}`, `--base-path=${folder}`, "--export-all", folder],
  async probe(exposed) {
    const url = new URL(exposed.url);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const answer = await gitProtocolRequest(url.hostname, Number(url.port || (url.protocol === "https:" ? 443 : 80)));
        // A valid pkt-line stream ending in a flush: only git upload-pack answers like that.
        if (!answer.endsWith("0000")) throw new Error(`unexpected answer ${JSON.stringify(answer.slice(0, 80))}`);
        return;
      } catch (error) {
        if (Date.now() > deadline || !/ECONNREFUSED|ECONNRESET|closed without/.test(String(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  },
};

// Sends one upload-pack request in git's own protocol and resolves with the pkt-lines up to the first flush.
function gitProtocolRequest(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let received = Buffer.alloc(0);
    const payload = `git-upload-pack /served.git\0host=${host}\0`;
    socket.setTimeout(10_000, () => socket.destroy(new Error("timed out")));
    socket.on("connect", () => socket.write(`${(payload.length + 4).toString(16).padStart(4, "0")}${payload}`));
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      let offset = 0;
      while (received.length >= offset + 4) {
        const length = Number.parseInt(received.subarray(offset, offset + 4).toString("latin1"), 16);
        if (Number.isNaN(length) || (length > 0 && length < 4)) return reject(new Error(`not a git pkt-line: ${JSON.stringify(received.toString("latin1").slice(0, 80))}`));
        if (length === 0) {
          socket.end();
          return resolve(received.subarray(0, offset + 4).toString("latin1"));
        }
        offset += length;
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error("connection closed without an answer")));
  });
}
