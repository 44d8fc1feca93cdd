import Database from "better-sqlite3";
import type { AgentTaskResult, Phase } from "@running-agent/core";
import type { JobError, JobRecord, JobStatus } from "./job-record.js";
import type { StoredAgentEvent } from "@running-agent/jobs";

/** A stored event with its position in the job's stream (the SSE event id). */
export interface StoredJobEvent {
  seq: number;
  event: StoredAgentEvent;
}

/** What a new job needs. */
export interface NewJob {
  id: string;
  repoUrl: string;
  task: string;
  userId?: string | undefined;
  hasGithubToken: boolean;
  retryOf?: string | undefined;
  createdAt: number;
}

interface JobRow {
  id: string;
  status: JobStatus;
  repo_url: string;
  task: string;
  user_id: string | null;
  has_github_token: number;
  retry_of: string | null;
  retried_by: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  phase: string | null;
  result_json: string | null;
  error_json: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  repo_url TEXT NOT NULL,
  task TEXT NOT NULL,
  user_id TEXT,
  has_github_token INTEGER NOT NULL DEFAULT 0,
  retry_of TEXT,
  retried_by TEXT,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  phase TEXT,
  result_json TEXT,
  error_json TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS job_events (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event_json TEXT NOT NULL,
  PRIMARY KEY (job_id, seq)
);
`;

/**
 * Jobs and their events in one SQLite file. Every write is synchronous and committed before
 * it returns, so a killed server loses nothing it has answered for.
 */
export class JobStore {
  private readonly database: Database.Database;

  constructor(path: string) {
    this.database = new Database(path);
    this.database.pragma("journal_mode = WAL");
    // In WAL mode NORMAL keeps every commit across a process crash (SIGKILL); only a power loss can undo the last ones.
    this.database.pragma("synchronous = NORMAL");
    this.database.pragma("busy_timeout = 5000");
    this.database.exec(SCHEMA);
  }

  /** Adds a queued job. */
  insert(job: NewJob): JobRecord {
    this.database
      .prepare(
        `INSERT INTO jobs (id, status, repo_url, task, user_id, has_github_token, retry_of, created_at)
         VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)`,
      )
      .run(job.id, job.repoUrl, job.task, job.userId ?? null, job.hasGithubToken ? 1 : 0, job.retryOf ?? null, job.createdAt);
    return this.get(job.id)!;
  }

  /** Adds a retry of `previousId` and links the two, in one transaction. */
  insertRetry(previousId: string, job: NewJob): JobRecord {
    this.database.transaction(() => {
      this.insert({ ...job, retryOf: previousId });
      this.database.prepare("UPDATE jobs SET retried_by = ? WHERE id = ?").run(job.id, previousId);
    })();
    return this.get(job.id)!;
  }

  get(id: string): JobRecord | undefined {
    const row = this.database.prepare("SELECT * FROM jobs WHERE id = ?").get(id) as JobRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** Newest first. */
  list(options: { limit: number; status?: JobStatus | undefined; userId?: string | undefined }): JobRecord[] {
    const where: string[] = [];
    const values: unknown[] = [];
    if (options.status) {
      where.push("status = ?");
      values.push(options.status);
    }
    if (options.userId) {
      where.push("user_id = ?");
      values.push(options.userId);
    }
    const sql = `SELECT * FROM jobs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, rowid DESC LIMIT ?`;
    return (this.database.prepare(sql).all(...values, options.limit) as JobRow[]).map(toRecord);
  }

  /** The oldest queued jobs, in submission order. */
  nextQueued(limit: number): JobRecord[] {
    return (this.database.prepare("SELECT * FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT ?").all(limit) as JobRow[]).map(toRecord);
  }

  countByStatus(): Partial<Record<JobStatus, number>> {
    const rows = this.database.prepare("SELECT status, COUNT(*) AS count FROM jobs GROUP BY status").all() as { status: JobStatus; count: number }[];
    return Object.fromEntries(rows.map((row) => [row.status, row.count]));
  }

  markRunning(id: string, at: number): void {
    this.database.prepare("UPDATE jobs SET status = 'running', started_at = ?, finished_at = NULL WHERE id = ? AND status = 'queued'").run(at, id);
  }

  setPhase(id: string, phase: Phase): void {
    this.database.prepare("UPDATE jobs SET phase = ? WHERE id = ?").run(phase, id);
  }

  /** Ends a job. Only a queued or running job can end; returns false when it had already ended. */
  finish(id: string, status: JobStatus, at: number, outcome: { result?: AgentTaskResult; error?: JobError }): boolean {
    const info = this.database
      .prepare("UPDATE jobs SET status = ?, finished_at = ?, result_json = ?, error_json = ? WHERE id = ? AND status IN ('queued', 'running')")
      .run(
        status,
        at,
        outcome.result ? JSON.stringify(outcome.result) : null,
        outcome.error ? JSON.stringify(outcome.error) : null,
        id,
      );
    return info.changes > 0;
  }

  appendEvent(id: string, event: StoredAgentEvent): number {
    const row = this.database.prepare("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM job_events WHERE job_id = ?").get(id) as { next: number };
    this.database.prepare("INSERT INTO job_events (job_id, seq, event_json) VALUES (?, ?, ?)").run(id, row.next, JSON.stringify(event));
    return row.next;
  }

  /** Events after `afterSeq`, in order. */
  events(id: string, afterSeq = 0): StoredJobEvent[] {
    const rows = this.database.prepare("SELECT seq, event_json FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq").all(id, afterSeq) as {
      seq: number;
      event_json: string;
    }[];
    return rows.map((row) => ({ seq: row.seq, event: JSON.parse(row.event_json) as StoredAgentEvent }));
  }

  /** Jobs left `running` by a server that died. */
  listRunning(): JobRecord[] {
    return (this.database.prepare("SELECT * FROM jobs WHERE status = 'running' ORDER BY created_at").all() as JobRow[]).map(toRecord);
  }

  close(): void {
    if (this.database.open) this.database.close();
  }
}

function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    status: row.status,
    repoUrl: row.repo_url,
    task: row.task,
    userId: row.user_id ?? undefined,
    hasGithubToken: row.has_github_token === 1,
    retryOf: row.retry_of ?? undefined,
    retriedBy: row.retried_by ?? undefined,
    createdAt: row.created_at,
    startedAt: row.started_at ?? undefined,
    finishedAt: row.finished_at ?? undefined,
    phase: (row.phase ?? undefined) as Phase | undefined,
    result: row.result_json ? (JSON.parse(row.result_json) as AgentTaskResult) : undefined,
    error: row.error_json ? (JSON.parse(row.error_json) as JobError) : undefined,
  };
}
