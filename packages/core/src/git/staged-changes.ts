import type { ChangedFile } from "../changes.js";
import { runGit } from "./git-command.js";

type FileMode = NonNullable<ChangedFile["mode"]>;

const DIFF_OPTIONS = ["--cached", "-z", "--no-ext-diff", "--no-textconv", "--find-renames=100%", "--no-color"];

/**
 * The changes staged in the index against HEAD, as git sees them: status and modes from
 * `--raw`, line counts and the binary flag from `--numstat` (binary means git would not diff it
 * as text). Only exact renames count as renames.
 */
export async function listStagedChanges(dir: string, signal?: AbortSignal): Promise<ChangedFile[]> {
  const { stdout } = await runGit(STAGED_DIFF_ARGUMENTS, { cwd: dir, signal, phase: "collect" });
  return parseStagedChanges(stdout);
}

/**
 * The git arguments {@link listStagedChanges} runs. One process: the raw records of every file pair
 * first, then their numstat records. Past the threshold a file counts as binary unread, instead of
 * being loaded whole into git's memory.
 */
export const STAGED_DIFF_ARGUMENTS: readonly string[] = ["-c", "core.bigFileThreshold=16m", "diff", ...DIFF_OPTIONS, "--raw", "--no-abbrev", "--numstat", "HEAD"];

/** Reads what git printed for {@link STAGED_DIFF_ARGUMENTS}. */
export function parseStagedChanges(stdout: Buffer): ChangedFile[] {
  const tokens = stdout.toString("utf8").split("\0");
  const { records, next } = parseRaw(tokens);
  const counts = parseNumstat(tokens, next);
  const changes: ChangedFile[] = [];
  for (const record of records) {
    // Submodule pointers (mode 160000) are not something the agent can change through files.
    if (record.oldMode === "160000" || record.newMode === "160000") continue;
    const count = counts.get(record.path);
    const change: ChangedFile = {
      path: record.path,
      status: record.status,
      binary: count?.binary ?? false,
      additions: count?.additions ?? 0,
      deletions: count?.deletions ?? 0,
    };
    if (record.previousPath !== undefined) change.previousPath = record.previousPath;
    const mode = fileMode(record.newMode);
    const previousMode = fileMode(record.oldMode);
    if (mode) change.mode = mode;
    if (previousMode) change.previousMode = previousMode;
    changes.push(change);
  }
  return changes;
}

interface RawRecord {
  status: ChangedFile["status"];
  path: string;
  previousPath?: string;
  oldMode: string;
  newMode: string;
}

// `:<old mode> <new mode> <old sha> <new sha> <status>\0<path>\0` (renames carry two paths), read by
// position up to the first token that is not a record's head: where the numstat records start.
function parseRaw(tokens: readonly string[]): { records: RawRecord[]; next: number } {
  const records: RawRecord[] = [];
  let index = 0;
  for (; index < tokens.length && tokens[index]!.startsWith(":"); index++) {
    const meta = tokens[index]!;
    const [oldMode = "", newMode = "", , , statusField = ""] = meta.slice(1).split(" ");
    const letter = statusField.charAt(0);
    if (letter === "R" || letter === "C") {
      const previousPath = tokens[++index]!;
      const path = tokens[++index]!;
      records.push(letter === "R" ? { status: "renamed", path, previousPath, oldMode, newMode } : { status: "added", path, oldMode: "000000", newMode });
      continue;
    }
    const path = tokens[++index]!;
    const status = letter === "A" ? "added" : letter === "D" ? "deleted" : "modified";
    records.push({ status, path, oldMode, newMode });
  }
  return { records, next: index };
}

interface LineCounts {
  additions: number;
  deletions: number;
  binary: boolean;
}

// `<added>\t<deleted>\t<path>\0`, or for renames `<added>\t<deleted>\t\0<old>\0<new>\0`; `-` for binary.
function parseNumstat(tokens: readonly string[], start: number): Map<string, LineCounts> {
  const counts = new Map<string, LineCounts>();
  for (let index = start; index < tokens.length; index++) {
    const token = tokens[index]!;
    const match = /^(-|\d+)\t(-|\d+)\t(.*)$/s.exec(token);
    if (!match) continue;
    let path = match[3]!;
    if (path === "") {
      index += 2;
      path = tokens[index]!;
    }
    const binary = match[1] === "-";
    counts.set(path, { binary, additions: binary ? 0 : Number(match[1]), deletions: binary ? 0 : Number(match[2]) });
  }
  return counts;
}

function fileMode(mode: string): FileMode | undefined {
  if (mode === "100644" || mode === "100755" || mode === "120000") return mode;
  // git records old 100664 files as 100644.
  if (mode.startsWith("100")) return "100644";
  return undefined;
}
