import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { agentError, ErrorCode } from "../errors.js";
import type { CheckReport } from "../spec/git-host-spec.js";

/** A change request as the local Git host records it. */
export interface LocalChangeRequest {
  /** Its number in the repository, from 1. */
  number: number;
  /** `local://<repository id>/change-requests/<number>`. */
  url: string;
  /** Always open: the local host neither merges nor closes. */
  state: "open";
  /** The branch it merges from. */
  head: string;
  /** The branch it merges into. */
  base: string;
  /** The head branch's commit when the change request was last opened or updated. */
  headCommit: string;
  /** Its title. */
  title: string;
  /** Its description. */
  body: string;
  /** Whether it is a draft. */
  draft: boolean;
  /** Label names. */
  labels: string[];
  /** Users asked for a review. */
  reviewers: string[];
  /** Assigned users. */
  assignees: string[];
  /** ISO 8601 times. */
  createdAt: string;
  /** When it was last opened or updated. */
  updatedAt: string;
  /** The checks last reported for the head commit (GitHost.reportChecks). */
  checks?: {
    /** The commit the checks ran on. */
    commit: string;
    /** Fix rounds before this result. */
    fixRounds: number;
    /** One entry per check, in order. */
    results: CheckReport["checks"];
    /** When they were reported (ISO 8601). */
    reportedAt: string;
  };
}

interface StoreFile {
  version: 1;
  changeRequests: LocalChangeRequest[];
}

const LOCK_WAIT_MS = 10_000;
const STALE_LOCK_MS = 30_000;
const queues = new Map<string, Promise<unknown>>();

/**
 * The change requests of one local repository, kept as JSON in its git folder
 * (`<gitdir>/running-agent/change-requests.json`) where clones never see them. Writes are
 * atomic (temp file and rename) and serialized, within the process and across processes.
 */
export class ChangeRequestStore {
  private readonly folder: string;
  private readonly file: string;

  constructor(gitDir: string) {
    this.folder = join(gitDir, "running-agent");
    this.file = join(this.folder, "change-requests.json");
  }

  /** Every recorded change request, oldest first. */
  async list(): Promise<LocalChangeRequest[]> {
    return (await this.read()).changeRequests;
  }

  /** Reads, changes and writes the records under the lock; returns what `change` returns. */
  update<T>(change: (records: LocalChangeRequest[]) => T): Promise<T> {
    const previous = queues.get(this.file) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.withFileLock(async () => {
      const store = await this.read();
      const result = change(store.changeRequests);
      await this.write(store);
      return result;
    }));
    queues.set(this.file, next);
    void next.finally(() => {
      if (queues.get(this.file) === next) queues.delete(this.file);
    }).catch(() => undefined);
    return next;
  }

  private async read(): Promise<StoreFile> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, changeRequests: [] };
      throw error;
    }
    let parsed: Partial<StoreFile> | null;
    try {
      parsed = JSON.parse(text) as Partial<StoreFile> | null;
    } catch (cause) {
      throw agentError(ErrorCode.GIT_HOST_ERROR, `${this.file} is not valid JSON; fix or remove it.`, { cause });
    }
    if (parsed?.version !== 1 || !Array.isArray(parsed.changeRequests)) {
      throw agentError(ErrorCode.GIT_HOST_ERROR, `${this.file} is not a change request file this version understands.`);
    }
    return parsed as StoreFile;
  }

  private async write(store: StoreFile): Promise<void> {
    await mkdir(this.folder, { recursive: true });
    const temporary = `${this.file}.${randomBytes(6).toString("hex")}.tmp`;
    const handle = await open(temporary, "wx", 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(store, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.file);
  }

  // An O_EXCL lock file; one left by a crashed process is taken over once it is old.
  private async withFileLock<T>(work: () => Promise<T>): Promise<T> {
    await mkdir(this.folder, { recursive: true });
    const lock = `${this.file}.lock`;
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        await (await open(lock, "wx")).close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        const age = await stat(lock).then((stats) => Date.now() - stats.mtimeMs, () => 0);
        if (age > STALE_LOCK_MS) {
          await rm(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline) throw agentError(ErrorCode.GIT_HOST_ERROR, `${lock} is held by another process; remove it if no run is active.`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    try {
      return await work();
    } finally {
      await rm(lock, { force: true });
    }
  }
}
