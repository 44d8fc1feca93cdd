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
  const extract = tar.extract();
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const packed = new Promise<void>((resolve, reject) => {
    pack.on("data", (chunk: Buffer) => chunks.push(chunk));
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  const strip = (name: string): string => name.replace(/^(\.\/)+/, "");
  const fileContents = new Map<string, Buffer>();
  Readable.from([archive]).pipe(extract);
  for await (const entry of extract) {
    const header = entry.header;
    const body: Buffer[] = [];
    for await (const chunk of entry) body.push(chunk as Buffer);
    const name = strip(header.name);
    if (name === "" || name === ".") continue;
    let rewritten: tar.Headers = { ...header, name };
    let content: Buffer | undefined = header.type === "file" ? Buffer.concat(body) : undefined;
    if (header.type === "file" && content) fileContents.set(name, content);
    if (header.type === "link") {
      content = fileContents.get(strip(header.linkname ?? "")) ?? Buffer.alloc(0);
      rewritten = { ...header, name, type: "file", linkname: null, size: content.length };
    }
    await new Promise<void>((resolve, reject) => {
      pack.entry(rewritten, content, (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await packed;
  return Buffer.concat(chunks);
}
