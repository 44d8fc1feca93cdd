import { EventEmitter } from "node:events";
import Database from "better-sqlite3";
import type { Phase } from "@running-agent/core";
import { JobError, JobErrorCode } from "./job-error.js";
import type { JobFailure, JobListFilter, JobRecord, JobSecrets, JobStatus, StoredJobEvent, SubmitJobInput } from "./job-record.js";
import type { ClaimedJob, JobOutcome, JobStore, WorkerRecord } from "./job-store.js";
import { prepareSubmission } from "./prepare-submission.js";

/** Settings for {@link openSqliteJobStore}. */
export interface SqliteJobStoreOptions {
  /** The database file; created when missing. */
  path: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS agent_jobs (
  id TEXT PRIMARY KEY,
  key TEXT UNIQUE,
  status TEXT NOT NULL,
  spec_json TEXT NOT NULL,
  labels_json TEXT NOT NULL,
  has_secrets INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  retry_delay_ms INTEGER NOT NULL,
  worker_id TEXT,
  lease_expires_at INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  run_after INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  phase TEXT,
  result_json TEXT,
  error_json TEXT,
  revision INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_jobs_by_status ON agent_jobs (status, run_after, created_at);
CREATE INDEX IF NOT EXISTS agent_jobs_by_revision ON agent_jobs (revision);
CREATE TABLE IF NOT EXISTS agent_job_events (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event_json TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS agent_workers (
  id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  pid INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  seen_at INTEGER NOT NULL
);
`;

interface JobRow {
  id: string;
  key: string | null;
  status: JobStatus;
  spec_json: string;
  labels_json: string;
  has_secrets: number;
  attempts: number;
  max_attempts: number;
  retry_delay_ms: number;
  worker_id: string | null;
  lease_expires_at: number | null;
  cancel_requested: number;
  run_after: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  phase: string | null;
  result_json: string | null;
  error_json: string | null;
  revision: number;
}

const NEXT_REVISION = "(SELECT COALESCE(MAX(revision), 0) + 1 FROM agent_jobs)";

/**
 * The embedded job store: one SQLite file, no server. The file is held with an exclusive lock
 * for as long as the store is open, so that a second process (or a second store in this one)
 * is refused with `STORE_LOCKED` before it reads or writes a row; the operating system drops the
 * lock when the holder dies, even by SIGKILL. Job secrets stay in this process's memory.
 */
export function openSqliteJobStore(options: SqliteJobStoreOptions): JobStore {
  let database: Database.Database;
  try {
    // timeout 0: a held lock is refused at once instead of waited for.
    database = new Database(options.path, { timeout: 0 });
  } catch (cause) {
    throw new JobError(JobErrorCode.STORE_UNAVAILABLE, `Cannot open the job database ${options.path}: ${(cause as Error).message}`, { cause });
  }
  try {
    // Exclusive locking mode before WAL: the lock is taken by the first write and held until close; WAL then needs no shared memory.
    database.pragma("locking_mode = EXCLUSIVE");
    database.pragma("journal_mode = WAL");
    database.exec("BEGIN EXCLUSIVE; COMMIT");
  } catch (cause) {
    database.close();
    if ((cause as { code?: string }).code === "SQLITE_BUSY") {
      throw new JobError(
        JobErrorCode.STORE_LOCKED,
        `The job database ${options.path} is in use by another process (an embedded store allows one process per file). Stop that process, or use PostgreSQL (DATABASE_URL) to run several API and worker processes.`,
        { cause },
      );
    }
    throw new JobError(JobErrorCode.STORE_UNAVAILABLE, `Cannot lock the job database ${options.path}: ${(cause as Error).message}`, { cause });
  }
  // In WAL mode NORMAL keeps every commit across a process crash; only a power loss can undo the last ones.
  database.pragma("synchronous = NORMAL");
  database.exec(SCHEMA);
  return new SqliteJobStore(database);
}

class SqliteJobStore implements JobStore {
  readonly kind = "embedded" as const;
  readonly secretStorage = "memory" as const;
  private readonly secrets = new Map<string, JobSecrets>();
  private readonly changes = new EventEmitter();
  /** Workers registered through this store: the lock means no other process has any, so a job held by anyone else is a dead process's. */
  private readonly localWorkers = new Set<string>();

  constructor(private readonly database: Database.Database) {
    this.changes.setMaxListeners(0);
  }

  async submit(input: SubmitJobInput): Promise<{ job: JobRecord; created: boolean }> {
    const prepared = prepareSubmission(input);
    if (prepared.key !== undefined) {
      const existing = await this.getByKey(prepared.key);
      if (existing) return { job: existing, created: false };
    }
    if (prepared.secrets) this.secrets.set(prepared.id, prepared.secrets);
    this.database
      .prepare(
        `INSERT INTO agent_jobs (id, key, status, spec_json, labels_json, has_secrets, max_attempts, retry_delay_ms, run_after, created_at, revision)
         VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ${NEXT_REVISION})`,
      )
      .run(
        prepared.id,
        prepared.key ?? null,
        JSON.stringify(prepared.spec),
        JSON.stringify(prepared.labels),
        prepared.hasSecrets ? 1 : 0,
        prepared.maxAttempts,
        prepared.retryDelayMs,
        prepared.createdAt,
        prepared.createdAt,
      );
    this.changed(prepared.id);
    return { job: this.read(prepared.id)!, created: true };
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return this.read(id);
  }

  async getByKey(key: string): Promise<JobRecord | undefined> {
    const row = this.database.prepare("SELECT * FROM agent_jobs WHERE key = ?").get(key) as JobRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  async list(filter: JobListFilter): Promise<JobRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (filter.status) {
      where.push("status = ?");
      values.push(filter.status);
    }
    for (const [name, value] of Object.entries(filter.label ?? {})) {
      where.push("json_extract(labels_json, ?) = ?");
      values.push(`$.${JSON.stringify(name)}`, value);
    }
    if (filter.repo !== undefined) {
      where.push("json_extract(spec_json, '$.repo') = ?");
      values.push(filter.repo);
    }
    if (filter.search) {
      // instr on lower-cased text: no LIKE wildcards to escape in what the user typed.
      where.push("(instr(lower(json_extract(spec_json, '$.task')), ?) > 0 OR instr(lower(json_extract(spec_json, '$.repo')), ?) > 0)");
      values.push(filter.search.toLowerCase(), filter.search.toLowerCase());
    }
    const sql = `SELECT * FROM agent_jobs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`;
    return (this.database.prepare(sql).all(...values, filter.limit, filter.offset ?? 0) as JobRow[]).map(toRecord);
  }

  async countByStatus(): Promise<Partial<Record<JobStatus, number>>> {
    const rows = this.database.prepare("SELECT status, COUNT(*) AS count FROM agent_jobs GROUP BY status").all() as { status: JobStatus; count: number }[];
    return Object.fromEntries(rows.map((row) => [row.status, row.count]));
  }

  async changedSince(revision: number, limit: number): Promise<JobRecord[]> {
    return (this.database.prepare("SELECT * FROM agent_jobs WHERE revision > ? ORDER BY revision LIMIT ?").all(revision, limit) as JobRow[]).map(toRecord);
  }

  async currentRevision(): Promise<number> {
    return (this.database.prepare("SELECT COALESCE(MAX(revision), 0) AS revision FROM agent_jobs").get() as { revision: number }).revision;
  }

  async requestCancel(id: string, reason: string): Promise<JobRecord | undefined> {
    const now = Date.now();
    const cancelled = this.database
      .prepare(`UPDATE agent_jobs SET status = 'cancelled', cancel_requested = 1, finished_at = ?, error_json = ?, revision = ${NEXT_REVISION} WHERE id = ? AND status = 'queued'`)
      .run(now, JSON.stringify({ code: "ABORTED", message: reason }), id);
    if (cancelled.changes > 0) this.secrets.delete(id);
    else this.database.prepare(`UPDATE agent_jobs SET cancel_requested = 1, revision = ${NEXT_REVISION} WHERE id = ? AND status = 'running' AND cancel_requested = 0`).run(id);
    this.changed(id);
    return this.read(id);
  }

  async addLabels(id: string, labels: Record<string, string>): Promise<boolean> {
    const info = this.database.prepare(`UPDATE agent_jobs SET labels_json = json_patch(labels_json, ?), revision = ${NEXT_REVISION} WHERE id = ?`).run(JSON.stringify(labels), id);
    if (info.changes > 0) this.changed(id);
    return info.changes > 0;
  }

  async events(id: string, afterSeq = 0): Promise<StoredJobEvent[]> {
    const rows = this.database.prepare("SELECT seq, event_json FROM agent_job_events WHERE job_id = ? AND seq > ? ORDER BY seq").all(id, afterSeq) as { seq: number; event_json: string }[];
    return rows.map((row) => ({ seq: row.seq, event: JSON.parse(row.event_json) as unknown }));
  }

  async registerWorker(worker: Omit<WorkerRecord, "seenAt">): Promise<void> {
    this.localWorkers.add(worker.id);
    this.database
      .prepare("INSERT INTO agent_workers (id, hostname, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at")
      .run(worker.id, worker.hostname, worker.pid, worker.startedAt, Date.now());
  }

  async unregisterWorker(workerId: string): Promise<void> {
    this.localWorkers.delete(workerId);
    this.database.prepare("DELETE FROM agent_workers WHERE id = ?").run(workerId);
  }

  async liveWorkers(withinMs: number): Promise<WorkerRecord[]> {
    const rows = this.database.prepare("SELECT * FROM agent_workers WHERE seen_at >= ?").all(Date.now() - withinMs) as {
      id: string;
      hostname: string;
      pid: number;
      started_at: number;
      seen_at: number;
    }[];
    return rows.map((row) => ({ id: row.id, hostname: row.hostname, pid: row.pid, startedAt: row.started_at, seenAt: row.seen_at }));
  }

  async claim(workerId: string, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
    if (limit <= 0) return [];
    const now = Date.now();
    const claimed = this.database.transaction(() => {
      const rows = this.database.prepare("SELECT id FROM agent_jobs WHERE status = 'queued' AND run_after <= ? ORDER BY created_at, rowid LIMIT ?").all(now, limit) as { id: string }[];
      const update = this.database.prepare(
        `UPDATE agent_jobs SET status = 'running', worker_id = ?, lease_expires_at = ?, attempts = attempts + 1, started_at = COALESCE(started_at, ?), revision = ${NEXT_REVISION} WHERE id = ? AND status = 'queued'`,
      );
      for (const row of rows) update.run(workerId, now + leaseMs, now, row.id);
      return rows.map((row) => row.id);
    })();
    return claimed.map((id) => {
      this.changed(id);
      const job = this.read(id)!;
      return { job, secrets: this.secretsOf(job), lastSeq: this.lastSeq(id) };
    });
  }

  async renewLeases(workerId: string, jobIds: readonly string[], leaseMs: number): Promise<{ held: string[]; cancelRequested: string[] }> {
    const held: string[] = [];
    const cancelRequested: string[] = [];
    const now = Date.now();
    const renew = this.database.prepare("UPDATE agent_jobs SET lease_expires_at = ? WHERE id = ? AND worker_id = ? AND status = 'running' AND lease_expires_at >= ? RETURNING cancel_requested");
    for (const id of jobIds) {
      const row = renew.get(now + leaseMs, id, workerId, now) as { cancel_requested: number } | undefined;
      if (!row) continue;
      held.push(id);
      if (row.cancel_requested) cancelRequested.push(id);
    }
    this.database.prepare("UPDATE agent_workers SET seen_at = ? WHERE id = ?").run(now, workerId);
    return { held, cancelRequested };
  }

  async appendEvents(workerId: string, jobId: string, events: readonly StoredJobEvent[], phase?: string): Promise<boolean> {
    const written = this.database.transaction(() => {
      if (!this.holds(workerId, jobId)) return false;
      const insert = this.database.prepare("INSERT INTO agent_job_events (job_id, seq, event_json) VALUES (?, ?, ?)");
      for (const event of events) insert.run(jobId, event.seq, JSON.stringify(event.event));
      if (phase) this.database.prepare(`UPDATE agent_jobs SET phase = ?, revision = ${NEXT_REVISION} WHERE id = ? AND (phase IS NULL OR phase != ?)`).run(phase, jobId, phase);
      return true;
    })();
    if (written) this.changed(jobId);
    return written;
  }

  async finish(workerId: string, jobId: string, outcome: JobOutcome): Promise<boolean> {
    const info = this.database
      .prepare(
        `UPDATE agent_jobs SET status = ?, finished_at = ?, result_json = ?, error_json = ?, worker_id = NULL, lease_expires_at = NULL, revision = ${NEXT_REVISION}
         WHERE id = ? AND worker_id = ? AND status = 'running'`,
      )
      .run(outcome.status, Date.now(), "result" in outcome ? JSON.stringify(outcome.result) : null, "error" in outcome ? JSON.stringify(outcome.error) : null, jobId, workerId);
    if (info.changes === 0) return false;
    this.secrets.delete(jobId);
    this.changed(jobId);
    return true;
  }

  async requeue(workerId: string, jobId: string, error?: JobFailure): Promise<boolean> {
    const job = this.read(jobId);
    if (!job || job.workerId !== workerId || job.status !== "running") return false;
    const retryDelayMs = (this.database.prepare("SELECT retry_delay_ms FROM agent_jobs WHERE id = ?").get(jobId) as { retry_delay_ms: number }).retry_delay_ms;
    const delay = error ? retryDelayMs * 2 ** Math.max(0, job.attempts - 1) : 0;
    const info = this.database
      .prepare(
        `UPDATE agent_jobs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, run_after = ?, attempts = attempts - ?, error_json = COALESCE(?, error_json), revision = ${NEXT_REVISION}
         WHERE id = ? AND worker_id = ? AND status = 'running'`,
      )
      .run(Date.now() + delay, error ? 0 : 1, error ? JSON.stringify(error) : null, jobId, workerId);
    if (info.changes > 0) this.changed(jobId);
    return info.changes > 0;
  }

  async recoverExpiredLeases(): Promise<{ requeued: string[]; failed: string[]; cancelled: string[] }> {
    const now = Date.now();
    const result = { requeued: [] as string[], failed: [] as string[], cancelled: [] as string[] };
    this.database.transaction(() => {
      const rows = this.database.prepare("SELECT * FROM agent_jobs WHERE status = 'running'").all() as JobRow[];
      for (const row of rows) {
        if ((row.lease_expires_at ?? 0) >= now && this.localWorkers.has(row.worker_id ?? "")) continue;
        const outcome = expiredOutcome(row);
        this.database
          .prepare(
            `UPDATE agent_jobs SET status = ?, worker_id = NULL, lease_expires_at = NULL, run_after = ?, finished_at = ?, error_json = ?, revision = ${NEXT_REVISION} WHERE id = ?`,
          )
          .run(outcome.status, now, outcome.status === "queued" ? null : now, JSON.stringify(outcome.error), row.id);
        (outcome.status === "queued" ? result.requeued : outcome.status === "failed" ? result.failed : result.cancelled).push(row.id);
      }
    })();
    for (const id of [...result.requeued, ...result.failed, ...result.cancelled]) this.changed(id);
    return result;
  }

  onChange(listener: (jobId: string) => void): () => void {
    this.changes.on("change", listener);
    return () => this.changes.off("change", listener);
  }

  async close(): Promise<void> {
    if (this.database.open) this.database.close();
    this.secrets.clear();
  }

  private read(id: string): JobRecord | undefined {
    const row = this.database.prepare("SELECT * FROM agent_jobs WHERE id = ?").get(id) as JobRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  private holds(workerId: string, jobId: string): boolean {
    return this.database.prepare("SELECT 1 FROM agent_jobs WHERE id = ? AND worker_id = ? AND status = 'running'").get(jobId, workerId) !== undefined;
  }

  private lastSeq(id: string): number {
    return (this.database.prepare("SELECT COALESCE(MAX(seq), 0) AS seq FROM agent_job_events WHERE job_id = ?").get(id) as { seq: number }).seq;
  }

  private secretsOf(job: JobRecord): JobSecrets | JobError {
    if (!job.hasSecrets) return {};
    return (
      this.secrets.get(job.id) ??
      new JobError(
        JobErrorCode.SECRET_LOST,
        `Job ${job.id} was submitted with secrets, which the embedded store keeps in memory only; the process that had them has ended. Submit it again with its secrets.`,
      )
    );
  }

  private changed(id: string): void {
    this.changes.emit("change", id);
  }
}

/** What becomes of a job whose lease expired. */
export function expiredOutcome(row: { attempts: number; max_attempts: number; cancel_requested: number | boolean; worker_id: string | null }): {
  status: "queued" | "failed" | "cancelled";
  error: JobFailure;
} {
  if (row.cancel_requested) return { status: "cancelled", error: { code: "ABORTED", message: "Cancelled; its worker stopped answering before it could stop the job." } };
  if (row.attempts >= row.max_attempts) {
    return { status: "failed", error: { code: JobErrorCode.LEASE_EXPIRED, message: `Its worker (${row.worker_id}) stopped heartbeating, and all ${row.max_attempts} attempts are used.` } };
  }
  return { status: "queued", error: { code: JobErrorCode.LEASE_EXPIRED, message: `Its worker (${row.worker_id}) stopped heartbeating; the job runs again.` } };
}

function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    key: row.key ?? undefined,
    status: row.status,
    spec: JSON.parse(row.spec_json) as JobRecord["spec"],
    labels: JSON.parse(row.labels_json) as Record<string, string>,
    hasSecrets: row.has_secrets === 1,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    workerId: row.worker_id ?? undefined,
    cancelRequested: row.cancel_requested === 1,
    createdAt: row.created_at,
    startedAt: row.started_at ?? undefined,
    finishedAt: row.finished_at ?? undefined,
    phase: (row.phase ?? undefined) as Phase | undefined,
    result: row.result_json ? JSON.parse(row.result_json) : undefined,
    error: row.error_json ? (JSON.parse(row.error_json) as JobFailure) : undefined,
    revision: row.revision,
  };
}
