import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Readable } from "node:stream";
import * as tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { packDirectory, packEntries, packFolderThen, readArchive, unpackArchive } from "./archive.js";
import { ErrorCode } from "./errors.js";
import { expectRunningAgentError } from "./testing/expect-running-agent-error.js";

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "archive-test-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Builds a tar archive by hand, so that tests can craft entries packDirectory would never write. */
async function craftArchive(entries: Array<{ header: tar.Headers; content?: string }>): Promise<Uint8Array> {
  const pack = tar.pack();
  for (const { header, content } of entries) {
    if (content === undefined) pack.entry(header);
    else pack.entry(header, content);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of Readable.from(pack)) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}

describe("packDirectory / unpackArchive", () => {
  it("round-trips binary content, a large file, the exec bit, folders and symlinks", async () => {
    const source = join(root, "source");
    await mkdir(join(source, "bin"), { recursive: true });
    await mkdir(join(source, "empty"));
    const binary = Uint8Array.from({ length: 256 }, (_, index) => index);
    const large = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(join(source, "binary.dat"), binary);
    await writeFile(join(source, "large.bin"), large);
    await writeFile(join(source, "bin", "run.sh"), "#!/bin/sh\necho hi\n");
    await chmod(join(source, "bin", "run.sh"), 0o755);
    await writeFile(join(source, "readonly.txt"), "ro");
    await chmod(join(source, "readonly.txt"), 0o444);
    await symlink("bin/run.sh", join(source, "link-inside"));
    await symlink("/etc/passwd", join(source, "link-outside"));
    const deep = join(source, "a".repeat(60), "b".repeat(60), "c".repeat(60));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, "long-name.txt"), "long");

    const archive = await packDirectory(source);
    const target = join(root, "target");
    await unpackArchive(archive, target);

    expect(new Uint8Array(await readFile(join(target, "binary.dat")))).toEqual(binary);
    expect((await readFile(join(target, "large.bin"))).equals(large)).toBe(true);
    expect((await stat(join(target, "bin", "run.sh"))).mode & 0o777).toBe(0o755);
    expect((await stat(join(target, "readonly.txt"))).mode & 0o777).toBe(0o444);
    expect((await stat(join(target, "empty"))).isDirectory()).toBe(true);
    expect((await lstat(join(target, "link-inside"))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(target, "link-inside"))).toBe("bin/run.sh");
    // A link pointing outside is kept as data, never resolved.
    expect(await readlink(join(target, "link-outside"))).toBe("/etc/passwd");
    expect(await readFile(join(target, "a".repeat(60), "b".repeat(60), "c".repeat(60), "long-name.txt"), "utf8")).toBe("long");
  });

  it("leaves out excluded paths and does not descend into excluded folders", async () => {
    await mkdir(join(root, ".git", "objects"), { recursive: true });
    await writeFile(join(root, ".git", "objects", "x"), "x");
    await writeFile(join(root, "kept.txt"), "kept");
    const archive = await packDirectory(root, { exclude: (path) => path === ".git" });
    const entries = await readArchive(archive);
    expect(entries.map((entry) => entry.path)).toEqual(["kept.txt"]);
  });

  it("packs the same tree into the same bytes", async () => {
    await writeFile(join(root, "a.txt"), "a");
    const first = await packDirectory(root);
    const second = await packDirectory(root);
    expect(Buffer.from(first).equals(Buffer.from(second))).toBe(true);
  });

  it("replaces existing files and symlinks instead of writing through them", async () => {
    const outside = join(root, "outside.txt");
    await writeFile(outside, "untouched");
    const target = join(root, "target");
    await mkdir(target);
    await symlink(outside, join(target, "victim.txt"));
    await unpackArchive(await craftArchive([{ header: { name: "victim.txt" }, content: "new" }]), target);
    expect(await readFile(outside, "utf8")).toBe("untouched");
    expect((await lstat(join(target, "victim.txt"))).isFile()).toBe(true);
    expect(await readFile(join(target, "victim.txt"), "utf8")).toBe("new");
  });

  it("rejects a missing source folder with SANDBOX_FILE_ERROR", async () => {
    await expectRunningAgentError(packDirectory(join(root, "missing")), ErrorCode.SANDBOX_FILE_ERROR);
  });
});

describe("unpackArchive refuses hostile archives", () => {
  const cases: Array<[string, Array<{ header: tar.Headers; content?: string }>]> = [
    ["an absolute path", [{ header: { name: "/tmp/evil.txt" }, content: "x" }]],
    ["a '..' escape", [{ header: { name: "../evil.txt" }, content: "x" }]],
    ["a '..' in the middle", [{ header: { name: "a/../../evil.txt" }, content: "x" }]],
    ["a hard link", [{ header: { name: "hard", type: "link", linkname: "/etc/passwd" } }]],
    ["a device", [{ header: { name: "dev", type: "character-device", devmajor: 1, devminor: 3 } }]],
    [
      "a file below a symlink from the same archive",
      [
        { header: { name: "escape", type: "symlink", linkname: ".." } },
        { header: { name: "escape/evil.txt" }, content: "x" },
      ],
    ],
  ];
  for (const [label, entries] of cases) {
    it(`refuses ${label} with UNSAFE_PATH and writes nothing outside`, async () => {
      const target = join(root, "deep", "target");
      await expectRunningAgentError(
        (async () => unpackArchive(await craftArchive(entries), target))(),
        ErrorCode.UNSAFE_PATH,
      );
      await expect(stat(join(root, "deep", "evil.txt"))).rejects.toThrow();
      await expect(stat(join(root, "evil.txt"))).rejects.toThrow();
    });
  }

  it("refuses a file below a symlink that already exists on disk", async () => {
    const target = join(root, "target");
    const outside = join(root, "outside");
    await mkdir(target);
    await mkdir(outside);
    await symlink(outside, join(target, "dir"));
    await expectRunningAgentError(unpackArchive(await craftArchive([{ header: { name: "dir/evil.txt" }, content: "x" }]), target), ErrorCode.UNSAFE_PATH);
    await expect(stat(join(outside, "evil.txt"))).rejects.toThrow();
  });

  it("rejects bytes that are not a tar archive", async () => {
    await expectRunningAgentError(unpackArchive(new TextEncoder().encode("not a tar archive at all".repeat(40)), join(root, "t")), ErrorCode.SANDBOX_FILE_ERROR);
  });
});

describe("readArchive", () => {
  it("lists files with content and mode, symlinks with their target, and folders", async () => {
    const archive = await craftArchive([
      { header: { name: "./dir/", type: "directory", mode: 0o755 } },
      { header: { name: "dir/tool", mode: 0o755 }, content: "#!/bin/sh\n" },
      { header: { name: "link", type: "symlink", linkname: "dir/tool" } },
    ]);
    const entries = await readArchive(archive);
    expect(entries).toEqual([
      { path: "dir", type: "directory", mode: 0o755 },
      { path: "dir/tool", type: "file", mode: 0o755, content: new TextEncoder().encode("#!/bin/sh\n") },
      { path: "link", type: "symlink", mode: expect.any(Number), linkTarget: "dir/tool" },
    ]);
  });

  it("refuses a '..' entry", async () => {
    await expectRunningAgentError(readArchive(await craftArchive([{ header: { name: "../x" }, content: "x" }])), ErrorCode.UNSAFE_PATH);
  });
});

describe("packEntries", () => {
  it("packs in-memory entries that readArchive and unpackArchive read back", async () => {
    const binary = Uint8Array.from([0, 255, 10, 13]);
    const archive = await packEntries([
      { path: "config", type: "directory" },
      { path: "config/settings.json", content: "{}" },
      { path: "bin/tool", content: binary, mode: 0o755 },
      { path: "link", type: "symlink", linkTarget: "config/settings.json" },
    ]);
    const entries = await readArchive(archive);
    expect(entries.map(({ path, type, mode }) => [path, type, type === "symlink" ? "-" : mode])).toEqual([
      ["config", "directory", 0o755],
      ["config/settings.json", "file", 0o644],
      ["bin/tool", "file", 0o755],
      ["link", "symlink", "-"],
    ]);
    expect(entries[2]?.content).toEqual(binary);
    await unpackArchive(archive, root);
    expect(await readFile(join(root, "config", "settings.json"), "utf8")).toBe("{}");
    expect(await readlink(join(root, "link"))).toBe("config/settings.json");
  });

  it("refuses an entry path that escapes", async () => {
    await expectRunningAgentError(packEntries([{ path: "../x", content: "x" }]), ErrorCode.UNSAFE_PATH);
  });

  it("records the epoch as modification time unless an entry names one", async () => {
    const modifiedAt = new Date("2024-05-06T07:08:09Z");
    const archive = await packEntries([{ path: "fixed", content: "a" }, { path: "dated", content: "b", modifiedAt }]);
    const times: Record<string, number | undefined> = {};
    const extract = tar.extract();
    Readable.from([Buffer.from(archive)]).pipe(extract);
    for await (const entry of extract) {
      times[entry.header.name] = entry.header.mtime?.getTime();
      entry.resume();
    }
    expect(times).toEqual({ fixed: 0, dated: modifiedAt.getTime() });
  });
});

describe("packFolderThen", () => {
  const collect = async (stream: AsyncIterable<Uint8Array>) => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks);
  };

  it("makes one archive of a folder (as name/…, excluded paths left out) followed by another tar, that GNU tar extracts whole", async () => {
    const host = join(root, "host");
    await mkdir(join(host, ".git", "hooks"), { recursive: true });
    await mkdir(join(host, ".git", "refs", "heads"), { recursive: true });
    await writeFile(join(host, ".git", "HEAD"), "ref: refs/heads/main\n");
    await writeFile(join(host, ".git", "refs", "heads", "main"), "0".repeat(40) + "\n");
    await writeFile(join(host, ".git", "hooks", "pre-commit"), "#!/bin/sh\n");
    // The second archive ends in a file whose last block is all zeros: only its own end-of-archive ends the whole.
    const rest = await packEntries([
      { path: "src/a.ts", content: new TextEncoder().encode("export {};\n") },
      { path: "zeros.bin", content: new Uint8Array(1024) },
    ]);
    const joined = await collect(packFolderThen(host, ".git", { exclude: (path) => path === "hooks" }, Readable.from([Buffer.from(rest)])));

    const entries = await readArchive(new Uint8Array(joined));
    expect(entries.filter((entry) => entry.type === "file").map((entry) => entry.path).sort()).toEqual([".git/HEAD", ".git/refs/heads/main", "src/a.ts", "zeros.bin"]);
    const out = join(root, "out");
    await mkdir(out);
    const tarProcess = promisify(execFile)("tar", ["-x", "-C", out]);
    tarProcess.child.stdin!.end(joined);
    await tarProcess;
    expect(await readFile(join(out, ".git", "HEAD"), "utf8")).toBe("ref: refs/heads/main\n");
    expect(await readFile(join(out, "zeros.bin"))).toEqual(Buffer.alloc(1024));
    await expect(lstat(join(out, ".git", "hooks"))).rejects.toThrow();
  });

  it("fails the stream when the folder is missing, and destroys the other tar", async () => {
    const rest = Readable.from([Buffer.alloc(10)]);
    await expect(collect(packFolderThen(root, "missing", {}, rest))).rejects.toThrow(/does not exist/);
    expect(rest.destroyed).toBe(true);
  });
});
