import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** An index entry: its mode (`100644`, `160000`, ...) and object id. */
export interface IndexFileEntry {
  mode: string;
  object: string;
}

// Per entry: ctime, mtime (seconds and nanoseconds each), dev, ino, mode, uid, gid, size (4 bytes each), then the object id and 2 bytes of flags.
const STAT_BYTES = 40;
const FLAG_EXTENDED = 0x4000;
const FLAG_STAGE = 0x3000;
const NAME_LENGTH = 0x0fff;

/**
 * The entries of `paths` in the host clone's own index (`.git/index`), read here instead of asking git
 * (a process started from a large process costs more than reading the file): see {@link parseIndexEntries}.
 * Undefined when there is no index file.
 */
export async function readIndexEntries(dir: string, paths: ReadonlySet<string>, objectLength: 20 | 32): Promise<Map<string, IndexFileEntry> | undefined> {
  const index = await readFile(join(dir, ".git", "index")).catch(() => undefined);
  return index && parseIndexEntries(index, paths, objectLength);
}

/**
 * The entries of `paths` in the bytes of an index file: those of a plain version 2 or 3 index (git's
 * default), stage 0 only. Undefined for anything else (version 4's compressed names, extended flags,
 * a conflict, a sparse index's folder entry, a file cut short): then git is asked. `objectLength` is
 * the object id's length in bytes (20 for SHA-1, 32 for SHA-256). Only names of an asked length are
 * read as strings.
 */
export function parseIndexEntries(index: Buffer, paths: ReadonlySet<string>, objectLength: 20 | 32): Map<string, IndexFileEntry> | undefined {
  if (index.byteLength < 12 || index.toString("latin1", 0, 4) !== "DIRC") return undefined;
  const version = index.readUInt32BE(4);
  if (version !== 2 && version !== 3) return undefined;
  // The byte lengths of the names asked for: a name of another length is not read.
  const lengths = new Set<number>();
  for (const path of paths) lengths.add(Buffer.byteLength(path, "utf8"));
  const count = index.readUInt32BE(8);
  const entries = new Map<string, IndexFileEntry>();
  let at = 12;
  for (let entry = 0; entry < count; entry++) {
    const flagsAt = at + STAT_BYTES + objectLength;
    if (flagsAt + 2 > index.byteLength) return undefined;
    const flags = index.readUInt16BE(flagsAt);
    if (flags & (FLAG_EXTENDED | FLAG_STAGE)) return undefined;
    const nameAt = flagsAt + 2;
    // The flags hold the name's length below 0xfff; a longer name ends at its NUL.
    const end = (flags & NAME_LENGTH) === NAME_LENGTH ? index.indexOf(0, nameAt + NAME_LENGTH) : nameAt + (flags & NAME_LENGTH);
    if (end < 0 || end >= index.byteLength || index[end] !== 0) return undefined;
    const mode = index.readUInt32BE(at + 24);
    // A sparse index's folder entries stand for whole trees: their paths are not the files asked for.
    if (mode === 0o40000) return undefined;
    const path = lengths.has(end - nameAt) ? index.toString("utf8", nameAt, end) : undefined;
    if (path !== undefined && paths.has(path)) entries.set(path, { mode: mode.toString(8).padStart(6, "0"), object: index.toString("hex", at + STAT_BYTES, flagsAt) });
    // NUL padding to a multiple of 8 bytes from the entry's start, at least one.
    at += (end - at + 8) & ~7;
  }
  return entries;
}
