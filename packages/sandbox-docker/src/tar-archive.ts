import { Readable } from "node:stream";
import * as tar from "tar-stream";

/** Reads a whole stream into one buffer. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** The first entry of a tar archive (for an archive of one path: that path itself). */
export async function firstEntry(archive: Uint8Array): Promise<{ type: string; content: Buffer; mode: number; linkname?: string } | undefined> {
  const extract = tar.extract();
  Readable.from([Buffer.from(archive)]).pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const header = entry.header;
    return { type: header.type ?? "file", content: Buffer.concat(chunks), mode: header.mode ?? 0o644, ...(header.linkname ? { linkname: header.linkname } : {}) };
  }
  return undefined;
}

/**
 * Rewrites an archive the Engine made of `folder/.` (entries `./name`) so that entries are plain
 * relative names (`name`), as the sandbox spec wants. The folder's own `./` entry is dropped, and
 * hard links become regular files (readers of the spec's archives know files, folders and symlinks).
 */
export async function withoutDotPrefix(archive: Buffer): Promise<Buffer> {
  const strip = (name: string): string => name.replace(/^(\.\/)+/, "");
  const fileContents = new Map<string, Buffer>();
  return rewriteEntries(archive, (header, body) => {
    const name = strip(header.name);
    if (name === "" || name === ".") return undefined;
    if (header.type === "file") {
      fileContents.set(name, body);
      return { header: { ...header, name }, content: body };
    }
    if (header.type === "link") {
      const content = fileContents.get(strip(header.linkname ?? "")) ?? Buffer.alloc(0);
      return { header: { ...header, name, type: "file", linkname: null, size: content.length }, content };
    }
    return { header: { ...header, name } };
  });
}

/**
 * Reads an archive entry by entry and packs what `rewrite` returns for each (nothing: the entry
 * is dropped). Entries are read whole: these archives are single files or a task's workspace.
 */
async function rewriteEntries(archive: Buffer, rewrite: (header: tar.Headers, body: Buffer) => { header: tar.Headers; content?: Buffer } | undefined): Promise<Buffer> {
  const extract = tar.extract();
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const packed = new Promise<void>((resolve, reject) => {
    pack.on("data", (chunk: Buffer) => chunks.push(chunk));
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  Readable.from([archive]).pipe(extract);
  for await (const entry of extract) {
    const body: Buffer[] = [];
    for await (const chunk of entry) body.push(chunk as Buffer);
    const rewritten = rewrite(entry.header, Buffer.concat(body));
    if (!rewritten) continue;
    await new Promise<void>((resolve, reject) => {
      pack.entry(rewritten.header, rewritten.content, (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await packed;
  return Buffer.concat(chunks);
}

/** tar-stream's headers carry an entry's PAX records (its types leave them out). */
type PaxHeaders = tar.Headers & { pax?: Record<string, string> | undefined };

const USTAR_MAX_ID = 0o777777;

/** A numeric owner for files in a container. */
export interface FileOwner {
  /** The user id the files get. */
  uid: number;
  /** The group id the files get. */
  gid: number;
}

/**
 * Rewrites an archive so that every entry belongs to `owner`: the Engine unpacks as root and
 * keeps each entry's uid/gid, so this is how files land owned by a non-root sandbox user without
 * a root `chown` over paths the agent could swap for symlinks meanwhile. PAX owner records are
 * dropped (they would override the header). Also returns the folders the archive needs but has
 * no entry for: the Engine would make those as root, so the caller creates them as the user first.
 */
export async function withOwner(archive: Buffer, owner: FileOwner): Promise<{ archive: Buffer; implicitFolders: string[] }> {
  const entryNames = new Set<string>();
  const neededFolders = new Set<string>();
  const clean = (name: string): string => name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
  const rewritten = await rewriteEntries(archive, (header, body) => {
    const name = clean(header.name);
    entryNames.add(name);
    const parts = name.split("/");
    for (let end = 1; end < parts.length; end++) neededFolders.add(parts.slice(0, end).join("/"));
    const records = Object.entries((header as PaxHeaders).pax ?? {}).filter(([key]) => !["uid", "gid", "uname", "gname"].includes(key));
    // The ustar fields hold six octal digits; larger ids go into PAX records.
    if (owner.uid > USTAR_MAX_ID) records.push(["uid", String(owner.uid)]);
    if (owner.gid > USTAR_MAX_ID) records.push(["gid", String(owner.gid)]);
    const owned: PaxHeaders = { ...header, uid: owner.uid, gid: owner.gid, uname: "", gname: "", pax: records.length > 0 ? Object.fromEntries(records) : undefined };
    return { header: owned, ...(header.type === "file" || header.type === "contiguous-file" ? { content: body } : {}) };
  });
  const implicitFolders = [...neededFolders].filter((folder) => folder !== "" && folder !== "." && !entryNames.has(folder));
  return { archive: rewritten, implicitFolders };
}
