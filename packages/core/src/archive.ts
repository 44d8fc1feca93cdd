import { constants as fsConstants } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, readlink, rmdir, symlink, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { agentError, ErrorCode, RunningAgentError } from "./errors.js";

/** One entry of a tar archive, as read by {@link readArchive}. */
export interface ArchiveEntry {
  /** Path relative to the archive's root, with `/` separators and no trailing slash. */
  path: string;
  /** A file, a symlink or a folder. */
  type: "file" | "symlink" | "directory";
  /** Permission bits (e.g. `0o755`). */
  mode: number;
  /** The content of a file. */
  content?: Uint8Array;
  /** Where a symlink points, verbatim (never resolved). */
  linkTarget?: string;
}

/** Options for {@link packDirectory}. */
export interface PackDirectoryOptions {
  /** Returns true for a relative path (`/` separators) that must be left out; a left-out folder is not descended into. */
  exclude?: (relativePath: string) => boolean;
  /** Names every entry `prefix/path` (for {@link packDirectoryStream}); `exclude` still gets the path without it. */
  prefix?: string;
}

// A fixed mtime keeps archives of the same tree byte-identical.
const fixedMtime = new Date(0);

/**
 * Packs a host folder into a tar archive: folders, regular files with their permission bits,
 * and symlinks as links (never followed). Sockets, FIFOs and devices are left out.
 */
export async function packDirectory(hostDirectory: string, options: PackDirectoryOptions = {}): Promise<Uint8Array> {
  const root = await lstat(hostDirectory).catch((cause: unknown) => {
    throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot pack ${hostDirectory}: it does not exist.`, { cause });
  });
  if (!root.isDirectory()) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot pack ${hostDirectory}: it is not a folder.`);
  return buildArchive((pack) => packFolder(pack, hostDirectory, "", options.exclude));
}

/**
 * {@link packDirectory} as a stream: entries are read from disk as the stream is consumed, so that
 * neither the archive nor a whole file is held in memory. A failure destroys the stream with it.
 */
export function packDirectoryStream(hostDirectory: string, options: PackDirectoryOptions = {}): Readable {
  return streamArchive(async (pack) => {
    const root = await lstat(hostDirectory).catch((cause: unknown) => {
      throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot pack ${hostDirectory}: it does not exist.`, { cause });
    });
    if (!root.isDirectory()) throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot pack ${hostDirectory}: it is not a folder.`);
    await packFolder(pack, hostDirectory, "", options.exclude, true, options.prefix);
  });
}

// tar-stream's finalize() writes exactly this many zero bytes after the last entry.
const PACK_TRAILER_BYTES = 1024;

/**
 * One tar stream made of two: the host folder `hostDirectory/name` packed as `name/…` (as
 * {@link packDirectoryStream} does: streamed, links never followed; `exclude` gets paths below
 * `name`), then the tar stream `rest` byte for byte, whose end-of-archive ends both. One archive, so
 * one extraction in the sandbox instead of two. Destroying the result destroys `rest`.
 */
export function packFolderThen(hostDirectory: string, name: string, options: PackDirectoryOptions, rest: AsyncIterable<Uint8Array> & { destroy?(error?: Error): void }): Readable {
  const folder = packDirectoryStream(join(hostDirectory, name), { ...options, prefix: name });
  async function* joined(): AsyncGenerator<Uint8Array> {
    // The last bytes of the folder's archive are held back: its end-of-archive must not reach the sandbox.
    let held = Buffer.alloc(0);
    for await (const chunk of folder) {
      held = Buffer.concat([held, chunk as Buffer]);
      if (held.byteLength > PACK_TRAILER_BYTES) {
        yield held.subarray(0, held.byteLength - PACK_TRAILER_BYTES);
        held = held.subarray(held.byteLength - PACK_TRAILER_BYTES);
      }
    }
    if (held.byteLength !== PACK_TRAILER_BYTES || held.some((byte) => byte !== 0)) {
      throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Packing ${name} ended without the end-of-archive expected of tar-stream.`);
    }
    yield* rest;
  }
  const stream = Readable.from(joined(), { objectMode: false });
  stream.once("close", () => {
    folder.destroy();
    rest.destroy?.();
  });
  return stream;
}

function streamArchive(fill: (pack: tar.Pack) => Promise<void>): Readable {
  const pack = tar.pack();
  fill(pack).then(
    () => pack.finalize(),
    (error: unknown) => pack.destroy(error as Error),
  );
  return pack;
}

// Streams a regular file into the archive; the size comes from the open descriptor, and a file that
// changes size while it is read fails the archive rather than corrupting it.
async function addFileEntry(pack: tar.Pack, hostPath: string, name: string, mode: number): Promise<void> {
  const handle = await open(hostPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    await addOpenFileEntry(pack, handle, name, mode, (await handle.stat()).size);
  } finally {
    await handle.close();
  }
}

function addOpenFileEntry(pack: tar.Pack, handle: FileHandle, name: string, mode: number, size: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const sink = pack.entry({ name, type: "file", mode, size, mtime: fixedMtime }, (error) => (error ? reject(error) : resolve()));
    pipeline(handle.createReadStream({ autoClose: false, start: 0 }), sink).catch(reject);
  });
}

/** An entry for {@link packEntries}: a file by default. */
export interface ArchiveEntryInput {
  /** Path relative to the archive's root, with `/` separators. */
  path: string;
  /** Default `file`. */
  type?: ArchiveEntry["type"];
  /** Default 0o644 for files and symlinks, 0o755 for folders. */
  mode?: number;
  /** A file's content; text is written as UTF-8. */
  content?: string | Uint8Array;
  /** Where a symlink points. */
  linkTarget?: string;
  /** Modification time recorded in the archive; default the epoch, so that equal entries pack to equal bytes. */
  modifiedAt?: Date;
}

/**
 * Packs entries held in memory into a tar archive (the inverse of {@link readArchive}).
 * Paths are checked like archive entries are: absolute paths and `..` are refused with UNSAFE_PATH.
 */
export async function packEntries(entries: ArchiveEntryInput[]): Promise<Uint8Array> {
  return buildArchive(async (pack) => {
    for (const entry of entries) {
      const name = safeArchivePath(entry.path);
      const type = entry.type ?? "file";
      const mtime = entry.modifiedAt ?? fixedMtime;
      if (type === "directory") await addEntry(pack, { name, type, mode: entry.mode ?? 0o755, mtime });
      else if (type === "symlink") await addEntry(pack, { name, type, linkname: entry.linkTarget ?? "", mode: entry.mode ?? 0o777, mtime });
      else {
        const content = typeof entry.content === "string" ? Buffer.from(entry.content, "utf8") : Buffer.from(entry.content ?? new Uint8Array());
        await addEntry(pack, { name, type, mode: entry.mode ?? 0o644, size: content.byteLength, mtime }, content);
      }
    }
  });
}

// Fills a new tar stream and returns the finished archive; on a failure the stream is destroyed and the error rethrown.
async function buildArchive(fill: (pack: tar.Pack) => Promise<void>): Promise<Uint8Array> {
  const pack = tar.pack();
  const done = collectStream(pack);
  try {
    await fill(pack);
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
    await done.catch(() => undefined);
    throw error;
  }
  return done;
}

async function packFolder(pack: tar.Pack, hostDirectory: string, relative: string, exclude: ((path: string) => boolean) | undefined, streamFiles = false, prefix?: string): Promise<void> {
  const names = (await readdir(join(hostDirectory, relative))).sort();
  for (const name of names) {
    const path = relative === "" ? name : `${relative}/${name}`;
    if (exclude?.(path)) continue;
    const hostPath = join(hostDirectory, path);
    const entryName = prefix ? `${prefix}/${path}` : path;
    const stats = await lstat(hostPath);
    const mode = stats.mode & 0o7777;
    if (stats.isSymbolicLink()) {
      await addEntry(pack, { name: entryName, type: "symlink", linkname: await readlink(hostPath), mode, mtime: fixedMtime });
    } else if (stats.isDirectory()) {
      await addEntry(pack, { name: entryName, type: "directory", mode, mtime: fixedMtime });
      await packFolder(pack, hostDirectory, path, exclude, streamFiles, prefix);
    } else if (stats.isFile() && streamFiles) {
      await addFileEntry(pack, hostPath, entryName, mode);
    } else if (stats.isFile()) {
      const content = await readRegularFile(hostPath);
      await addEntry(pack, { name: entryName, type: "file", mode, size: content.byteLength, mtime: fixedMtime }, content);
    }
  }
}

// O_NOFOLLOW: a file swapped for a symlink between lstat and open is refused, not followed.
async function readRegularFile(hostPath: string): Promise<Buffer> {
  const handle = await open(hostPath, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function addEntry(pack: tar.Pack, header: tar.Headers, content?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, content, (error) => (error ? reject(error) : resolve()));
  });
}

function collectStream(stream: Readable): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("end", () => {
      const joined = Buffer.concat(chunks);
      resolve(new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength));
    });
  });
}

/**
 * Checks an entry name and returns it normalized (no `./`, no trailing slash); "" is the root.
 * Absolute names, `..` segments and NUL bytes are refused with UNSAFE_PATH.
 */
export function safeArchivePath(name: string): string {
  if (name.includes("\0")) throw unsafe(name, "contains a NUL byte");
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name)) throw unsafe(name, "is absolute");
  const segments = name.split(/[\\/]+/).filter((segment) => segment !== "" && segment !== ".");
  if (segments.includes("..")) throw unsafe(name, "contains '..'");
  return segments.join("/");
}

function unsafe(name: string, reason: string): RunningAgentError {
  return agentError(ErrorCode.UNSAFE_PATH, `Refused archive entry ${JSON.stringify(name)}: it ${reason}.`, { details: { path: name } });
}

interface RawEntry {
  header: tar.Headers;
  content: Buffer;
}

async function* iterateArchive(archive: Uint8Array): AsyncGenerator<RawEntry> {
  const extract = tar.extract();
  Readable.from([Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength)]).pipe(extract);
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      yield { header: entry.header, content: Buffer.concat(chunks) };
    }
  } catch (cause) {
    if (RunningAgentError.isInstance(cause)) throw cause;
    throw agentError(ErrorCode.SANDBOX_FILE_ERROR, "The tar archive is malformed.", { cause });
  }
}

/**
 * Reads a tar archive into memory. Entry paths are checked like {@link unpackArchive} does
 * (absolute paths and `..` are refused with UNSAFE_PATH); hard links, devices and FIFOs are refused too.
 */
export async function readArchive(archive: Uint8Array): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = [];
  for await (const { header, content } of iterateArchive(archive)) {
    const path = safeArchivePath(header.name);
    const mode = (header.mode ?? 0o644) & 0o7777;
    switch (header.type) {
      case "file":
      case "contiguous-file":
        entries.push({ path, type: "file", mode, content: new Uint8Array(content.buffer, content.byteOffset, content.byteLength) });
        break;
      case "directory":
        if (path !== "") entries.push({ path, type: "directory", mode });
        break;
      case "symlink":
        entries.push({ path, type: "symlink", mode, linkTarget: header.linkname ?? "" });
        break;
      default:
        throw unsafe(header.name, `is a ${header.type ?? "unknown"} entry, which is not supported`);
    }
  }
  return entries;
}

/**
 * Unpacks a tar archive into a host folder, creating it. Safe against hostile archives: absolute
 * paths and `..` are refused, a symlink entry is created as a link and never written through (an
 * entry below a symlink, whether from the archive or already on disk, is refused with UNSAFE_PATH),
 * and hard links, devices and FIFOs are refused. Existing files are replaced.
 */
export async function unpackArchive(archive: Uint8Array, hostDirectory: string): Promise<void> {
  await mkdir(hostDirectory, { recursive: true });
  const rootStats = await lstat(hostDirectory);
  if (!rootStats.isDirectory()) throw agentError(ErrorCode.UNSAFE_PATH, `Cannot unpack into ${hostDirectory}: it is not a folder.`);
  // Folder modes are applied last so that a read-only folder can still receive its files.
  const folderModes: Array<[string, number]> = [];
  for await (const { header, content } of iterateArchive(archive)) {
    const path = safeArchivePath(header.name);
    const mode = (header.mode ?? 0o644) & 0o7777;
    if (path === "") {
      if (header.type !== "directory") throw unsafe(header.name, "names the root as a non-folder");
      continue;
    }
    const hostPath = await prepareParents(hostDirectory, path);
    switch (header.type) {
      case "directory": {
        const existing = await lstatOrUndefined(hostPath);
        if (existing?.isSymbolicLink()) throw unsafe(header.name, "is a folder where a symlink already exists");
        if (existing && !existing.isDirectory()) await unlink(hostPath);
        if (!existing?.isDirectory()) await mkdir(hostPath, { mode: 0o700 });
        folderModes.push([hostPath, mode]);
        break;
      }
      case "file":
      case "contiguous-file": {
        await removeNonFolder(hostPath, header.name);
        // O_EXCL with O_NOFOLLOW: never opens whatever might have appeared at that path.
        const handle = await open(hostPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
        try {
          await handle.writeFile(content);
          await handle.chmod(mode);
        } finally {
          await handle.close();
        }
        break;
      }
      case "symlink":
        await removeNonFolder(hostPath, header.name);
        await symlink(header.linkname ?? "", hostPath);
        break;
      default:
        throw unsafe(header.name, `is a ${header.type ?? "unknown"} entry, which is not supported`);
    }
  }
  for (const [hostPath, mode] of folderModes.reverse()) await chmod(hostPath, mode);
}

// Walks the parents of `path` below the root one by one with lstat: a symlink anywhere is refused,
// a missing folder is created.
async function prepareParents(hostDirectory: string, path: string): Promise<string> {
  const segments = path.split("/");
  let current = hostDirectory;
  for (const segment of segments.slice(0, -1)) {
    current = join(current, segment);
    const stats = await lstatOrUndefined(current);
    if (!stats) await mkdir(current, { mode: 0o755 });
    else if (stats.isSymbolicLink()) throw unsafe(path, "lies below a symlink");
    else if (!stats.isDirectory()) throw unsafe(path, "lies below something that is not a folder");
  }
  return join(hostDirectory, path);
}

async function removeNonFolder(hostPath: string, name: string): Promise<void> {
  const existing = await lstatOrUndefined(hostPath);
  if (!existing) return;
  if (existing.isDirectory()) {
    // An empty folder may be replaced; a full one is a conflict the caller must resolve.
    await rmdir(hostPath).catch((cause: unknown) => {
      throw agentError(ErrorCode.SANDBOX_FILE_ERROR, `Cannot replace the folder ${JSON.stringify(name)} with a file: it is not empty.`, { cause });
    });
    return;
  }
  await unlink(hostPath);
}

async function lstatOrUndefined(hostPath: string) {
  try {
    return await lstat(hostPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
