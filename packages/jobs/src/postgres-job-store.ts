import { randomUUID } from "node:crypto";
import pg from "pg";
import PgBoss from "pg-boss";
import type { Phase } from "@running-agent/core";
import { JobError, JobErrorCode } from "./job-error.js";
import type { JobFailure, JobListFilter, JobRecord, JobSecrets, JobStatus, StoredJobEvent, SubmitJobInput } from "./job-record.js";
import type { ClaimedJob, JobOutcome, JobStore, WorkerRecord } from "./job-store.js";
import { prepareSubmission } from "./prepare-submission.js";
import { createSecretBox, type SecretBox } from "./secret-box.js";
import { expiredOutcome } from "./sqlite-job-store.js";

/** Settings for {@link openPostgresJobStore}. */
export interface PostgresJobStoreOptions {
  /** `postgres://user:password@host:port/database` (or a socket folder as `?host=`). */
  connectionString: string;
  /** The operator's key for job secrets: 32 bytes as 64 hex digits or base64. Needed to submit or run a job with secrets. */
  secretKey?: string | undefined;
  /** The pg-boss queue that carries the jobs. Default `running-agent-jobs`. */
  queueName?: string;
  /** The most connections this process opens. Default 10. */
  maxConnections?: number;
  /** How often pg-boss's maintenance runs (archive, and the backstop expiry of deliveries). Default 60 s. */
  maintenanceIntervalSeconds?: number;
  /**
   * How long pg-boss lets a delivery stay active before it hands it out again. Our own lease is
   * what keeps a running job; this only rescues a delivery whose worker died between taking it
   * and marking the job running (a redelivery of a job that runs is dropped). Default 600 s.
   */
  deliveryExpirySeconds?: number;
  /** Told about connection errors the store survives (a database restart). */
  onError?: (error: Error) => void;
}

const SCHEMA = `
CREATE SEQUENCE IF NOT EXISTS running_agent_job_revision;
CREATE TABLE IF NOT EXISTS running_agent_jobs (
  id uuid PRIMARY KEY,
  key text UNIQUE,
  status text NOT NULL,
  spec jsonb NOT NULL,
  labels jsonb NOT NULL,
  has_secrets boolean NOT NULL,
  sealed_secrets text,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL,
  retry_delay_ms integer NOT NULL,
  queue_job_id uuid NOT NULL,
  worker_id text,
  lease_expires_at timestamptz,
  cancel_requested boolean NOT NULL DEFAULT false,
  created_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint,
  phase text,
  result jsonb,
  error jsonb,
  revision bigint NOT NULL DEFAULT nextval('running_agent_job_revision')
);
CREATE INDEX IF NOT EXISTS running_agent_jobs_by_revision ON running_agent_jobs (revision);
CREATE INDEX IF NOT EXISTS running_agent_jobs_running ON running_agent_jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX IF NOT EXISTS running_agent_jobs_by_created ON running_agent_jobs (created_at DESC);
CREATE TABLE IF NOT EXISTS running_agent_job_events (
  job_id uuid NOT NULL,
  seq integer NOT NULL,
  event text NOT NULL,
  PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS running_agent_workers (
  id text PRIMARY KEY,
  hostname text NOT NULL,
  pid integer NOT NULL,
  started_at bigint NOT NULL,
  seen_at timestamptz NOT NULL
);
`;

const NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
const NEXT_REVISION = "nextval('running_agent_job_revision')";
const DEFAULT_DELIVERY_EXPIRY_SECONDS = 10 * 60;

interface JobRow {
  id: string;
  key: string | null;
  status: JobStatus;
  spec: JobRecord["spec"];
  labels: Record<string, string>;
  has_secrets: boolean;
  sealed_secrets: string | null;
  attempts: number;
  max_attempts: number;
  retry_delay_ms: number;
  queue_job_id: string;
  worker_id: string | null;
  cancel_requested: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  phase: string | null;
  result: JobRecord["result"] | null;
  error: JobFailure | null;
  revision: string;
}

type Executor = Pick<pg.PoolClient, "query">;

/**
 * The fleet store: PostgreSQL, with pg-boss carrying the deliveries (claimed with `SKIP LOCKED`,
 * retried with backoff, expired as a backstop) and three tables of its own for what pg-boss does
 * not model: the job as users see it (status, lease, cancel flag, result), its events, and the
 * workers' heartbeats. Any number of API and worker processes on any number of machines share it.
 * Job secrets are sealed with the operator's key (AES-256-GCM).
 */
export async function openPostgresJobStore(options: PostgresJobStoreOptions): Promise<JobStore> {
  const secretBox = options.secretKey !== undefined ? createSecretBox(options.secretKey) : undefined;
  const onError = options.onError ?? (() => undefined);
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.maxConnections ?? 10, connectionTimeoutMillis: 10_000 });
  // An idle client's connection dropping (a database restart) must not crash the process.
  pool.on("error", onError);
  const boss = new PgBoss({
    db: { executeSql: (text: string, values: unknown[]) => pool.query(text, values) },
    schedule: false,
    supervise: true,
    maintenanceIntervalSeconds: options.maintenanceIntervalSeconds ?? 60,
  });
  boss.on("error", onError);
  const queueName = options.queueName ?? "running-agent-jobs";
  try {
    await pool.query(SCHEMA);
    await boss.start();
    if (!(await boss.getQueue(queueName))) {
      await boss.createQueue(queueName, { name: queueName, policy: "standard", expireInSeconds: options.deliveryExpirySeconds ?? DEFAULT_DELIVERY_EXPIRY_SECONDS }).catch(async (error: unknown) => {
        // Another process created it at the same moment.
        if (!(await boss.getQueue(queueName))) throw error;
      });
    }
  } catch (cause) {
    await boss.stop({ graceful: false, wait: false, close: false }).catch(() => undefined);
    await pool.end().catch(() => undefined);
    throw new JobError(JobErrorCode.STORE_UNAVAILABLE, `Cannot open the PostgreSQL job store: ${(cause as Error).message}`, { cause });
  }
  return new PostgresJobStore(pool, boss, queueName, secretBox, options.deliveryExpirySeconds ?? DEFAULT_DELIVERY_EXPIRY_SECONDS);
}

class PostgresJobStore implements JobStore {
  readonly kind = "postgres" as const;
  readonly secretStorage = "encrypted" as const;

  constructor(
    private readonly pool: pg.Pool,
    private readonly boss: PgBoss,
    private readonly queueName: string,
    private readonly secretBox: SecretBox | undefined,
    private readonly deliveryExpirySeconds: number,
  ) {}

  async submit(input: SubmitJobInput): Promise<{ job: JobRecord; created: boolean }> {
    const prepared = prepareSubmission(input);
    if (prepared.secrets && !this.secretBox) {
      throw new JobError(JobErrorCode.SECRET_KEY_INVALID, "This job has secrets, and the PostgreSQL store has no key to seal them with: set secretKey (RUNNING_AGENT_SECRET_KEY) on every API and worker process.");
    }
    if (prepared.key !== undefined) {
      const existing = await this.getByKey(prepared.key);
      if (existing) return { job: existing, created: false };
    }
    const sealed = prepared.secrets ? this.secretBox!.seal(JSON.stringify(prepared.secrets), prepared.id) : null;
    const inserted = await this.transaction(async (client) => {
      const { rowCount } = await client.query(
        `INSERT INTO running_agent_jobs (id, key, status, spec, labels, has_secrets, sealed_secrets, max_attempts, retry_delay_ms, queue_job_id, created_at)
         VALUES ($1, $2, 'queued', $3, $4, $9, $5, $6, $7, $1, $8) ON CONFLICT (key) DO NOTHING`,
        [prepared.id, prepared.key ?? null, JSON.stringify(prepared.spec), JSON.stringify(prepared.labels), sealed, prepared.maxAttempts, prepared.retryDelayMs, prepared.createdAt, prepared.hasSecrets],
      );
      if (rowCount === 0) return false;
      await this.deliver(client, prepared.id, prepared.id, 0, prepared.retryDelayMs);
      return true;
    });
    if (!inserted) return { job: (await this.getByKey(prepared.key!))!, created: false };
    return { job: (await this.get(prepared.id))!, created: true };
  }

  async get(id: string): Promise<JobRecord | undefined> {
    if (!isUuid(id)) return undefined;
    const { rows } = await this.query<JobRow>("SELECT * FROM running_agent_jobs WHERE id = $1", [id]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async getByKey(key: string): Promise<JobRecord | undefined> {
    const { rows } = await this.query<JobRow>("SELECT * FROM running_agent_jobs WHERE key = $1", [key]);
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(filter: JobListFilter): Promise<JobRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (filter.status) {
      values.push(filter.status);
      where.push(`status = $${values.length}`);
    }
    if (filter.label && Object.keys(filter.label).length > 0) {
      values.push(JSON.stringify(filter.label));
      where.push(`labels @> $${values.length}::jsonb`);
    }
    if (filter.repo !== undefined) {
      values.push(filter.repo);
      where.push(`spec->>'repo' = $${values.length}`);
    }
    if (filter.search) {
      // strpos on lower-cased text: no LIKE wildcards to escape in what the user typed.
      values.push(filter.search.toLowerCase());
      where.push(`(strpos(lower(spec->>'task'), $${values.length}) > 0 OR strpos(lower(spec->>'repo'), $${values.length}) > 0)`);
    }
    values.push(filter.limit, filter.offset ?? 0);
    const { rows } = await this.query<JobRow>(
      `SELECT * FROM running_agent_jobs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created_at DESC, revision DESC LIMIT $${values.length - 1} OFFSET $${values.length}`,
      values,
    );
    return rows.map(toRecord);
  }

  async countByStatus(): Promise<Partial<Record<JobStatus, number>>> {
    const { rows } = await this.query<{ status: JobStatus; count: string }>("SELECT status, COUNT(*) AS count FROM running_agent_jobs GROUP BY status");
    return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
  }

  async changedSince(revision: number, limit: number): Promise<JobRecord[]> {
    const { rows } = await this.query<JobRow>("SELECT * FROM running_agent_jobs WHERE revision > $1 ORDER BY revision LIMIT $2", [revision, limit]);
    return rows.map(toRecord);
  }

  async currentRevision(): Promise<number> {
    const { rows } = await this.query<{ revision: string | null }>("SELECT MAX(revision) AS revision FROM running_agent_jobs");
    return Number(rows[0]?.revision ?? 0);
  }

  async requestCancel(id: string, reason: string): Promise<JobRecord | undefined> {
    if (!isUuid(id)) return undefined;
    await this.transaction(async (client) => {
      const { rows } = await client.query<{ queue_job_id: string }>(
        `UPDATE running_agent_jobs SET status = 'cancelled', cancel_requested = true, finished_at = ${NOW_MS}, error = $2, sealed_secrets = NULL, revision = ${NEXT_REVISION}
         WHERE id = $1 AND status = 'queued' RETURNING queue_job_id`,
        [id, JSON.stringify({ code: "ABORTED", message: reason })],
      );
      if (rows[0]) await this.boss.cancel(this.queueName, rows[0].queue_job_id, { db: executorOf(client) });
      else await client.query(`UPDATE running_agent_jobs SET cancel_requested = true, revision = ${NEXT_REVISION} WHERE id = $1 AND status = 'running' AND NOT cancel_requested`, [id]);
    });
    return this.get(id);
  }

  async addLabels(id: string, labels: Record<string, string>): Promise<boolean> {
    if (!isUuid(id)) return false;
    const { rowCount } = await this.query(`UPDATE running_agent_jobs SET labels = labels || $2::jsonb, revision = ${NEXT_REVISION} WHERE id = $1`, [id, JSON.stringify(labels)]);
    return (rowCount ?? 0) > 0;
  }

  async events(id: string, afterSeq = 0): Promise<StoredJobEvent[]> {
    if (!isUuid(id)) return [];
    // seq is an integer column: a larger Last-Event-ID just means "after everything".
    const { rows } = await this.query<{ seq: number; event: string }>("SELECT seq, event FROM running_agent_job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq", [id, Math.min(afterSeq, 2_147_483_647)]);
    return rows.map((row) => ({ seq: row.seq, event: JSON.parse(row.event) as unknown }));
  }

  async registerWorker(worker: Omit<WorkerRecord, "seenAt">): Promise<void> {
    await this.query(
      "INSERT INTO running_agent_workers (id, hostname, pid, started_at, seen_at) VALUES ($1, $2, $3, $4, now()) ON CONFLICT (id) DO UPDATE SET seen_at = now()",
      [worker.id, worker.hostname, worker.pid, worker.startedAt],
    );
  }

  async unregisterWorker(workerId: string): Promise<void> {
    await this.query("DELETE FROM running_agent_workers WHERE id = $1", [workerId]);
  }

  async liveWorkers(withinMs: number): Promise<WorkerRecord[]> {
    const { rows } = await this.query<{ id: string; hostname: string; pid: number; started_at: string; seen_at: Date }>(
      "SELECT * FROM running_agent_workers WHERE seen_at >= now() - $1 * interval '1 millisecond'",
      [withinMs],
    );
    return rows.map((row) => ({ id: row.id, hostname: row.hostname, pid: row.pid, startedAt: Number(row.started_at), seenAt: row.seen_at.getTime() }));
  }

  async claim(workerId: string, limit: number, leaseMs: number): Promise<ClaimedJob[]> {
    if (limit <= 0) return [];
    const deliveries = await this.boss.fetch<{ jobId: string }>(this.queueName, { batchSize: limit });
    const claimed: ClaimedJob[] = [];
    for (const delivery of deliveries) {
      const jobId = delivery.data?.jobId;
      const { rows } = await this.query<JobRow>(
        `UPDATE running_agent_jobs SET status = 'running', worker_id = $3, lease_expires_at = now() + $4 * interval '1 millisecond', attempts = attempts + 1,
           started_at = COALESCE(started_at, ${NOW_MS}), revision = ${NEXT_REVISION}
         WHERE id = $1 AND queue_job_id = $2 AND status = 'queued' RETURNING *`,
        [jobId, delivery.id, workerId, leaseMs],
      );
      const row = rows[0];
      if (!row) {
        // A stale delivery: the job was cancelled, or delivered again under a newer id.
        await this.boss.complete(this.queueName, delivery.id);
        continue;
      }
      const { rows: last } = await this.query<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM running_agent_job_events WHERE job_id = $1", [row.id]);
      claimed.push({ job: toRecord(row), secrets: this.secretsOf(row), lastSeq: last[0]?.seq ?? 0 });
    }
    return claimed;
  }

  async renewLeases(workerId: string, jobIds: readonly string[], leaseMs: number): Promise<{ held: string[]; cancelRequested: string[] }> {
    await this.query("UPDATE running_agent_workers SET seen_at = now() WHERE id = $1", [workerId]);
    if (jobIds.length === 0) return { held: [], cancelRequested: [] };
    const { rows } = await this.query<{ id: string; cancel_requested: boolean }>(
      `UPDATE running_agent_jobs SET lease_expires_at = now() + $3 * interval '1 millisecond'
       WHERE id = ANY($1::uuid[]) AND worker_id = $2 AND status = 'running' AND lease_expires_at >= now() RETURNING id, cancel_requested`,
      [jobIds, workerId, leaseMs],
    );
    return { held: rows.map((row) => row.id), cancelRequested: rows.filter((row) => row.cancel_requested).map((row) => row.id) };
  }

  async appendEvents(workerId: string, jobId: string, events: readonly StoredJobEvent[], phase?: string): Promise<boolean> {
    return this.transaction(async (client) => {
      const { rows } = await client.query(
        `UPDATE running_agent_jobs SET phase = COALESCE($3, phase), revision = CASE WHEN $3::text IS NOT NULL AND phase IS DISTINCT FROM $3 THEN ${NEXT_REVISION} ELSE revision END
         WHERE id = $1 AND worker_id = $2 AND status = 'running' RETURNING id`,
        [jobId, workerId, phase ?? null],
      );
      if (rows.length === 0) return false;
      if (events.length > 0) {
        await client.query("INSERT INTO running_agent_job_events (job_id, seq, event) SELECT $1, * FROM unnest($2::integer[], $3::text[]) ON CONFLICT DO NOTHING", [
          jobId,
          events.map((event) => event.seq),
          events.map((event) => JSON.stringify(event.event)),
        ]);
      }
      return true;
    });
  }

  async finish(workerId: string, jobId: string, outcome: JobOutcome): Promise<boolean> {
    return this.transaction(async (client) => {
      const { rows } = await client.query<{ queue_job_id: string }>(
        `UPDATE running_agent_jobs SET status = $3, finished_at = ${NOW_MS}, result = $4, error = $5, worker_id = NULL, lease_expires_at = NULL, sealed_secrets = NULL, revision = ${NEXT_REVISION}
         WHERE id = $1 AND worker_id = $2 AND status = 'running' RETURNING queue_job_id`,
        [jobId, workerId, outcome.status, "result" in outcome ? JSON.stringify(outcome.result) : null, "error" in outcome ? JSON.stringify(outcome.error) : null],
      );
      if (!rows[0]) return false;
      await this.boss.complete(this.queueName, rows[0].queue_job_id, { db: executorOf(client) });
      return true;
    });
  }

  async requeue(workerId: string, jobId: string, error?: JobFailure): Promise<boolean> {
    return this.transaction(async (client) => {
      const { rows } = await client.query<{ queue_job_id: string; retry_delay_ms: number; attempts: number }>(
        `UPDATE running_agent_jobs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, attempts = attempts - $3, error = COALESCE($4, error), revision = ${NEXT_REVISION}
         WHERE id = $1 AND worker_id = $2 AND status = 'running' RETURNING queue_job_id, retry_delay_ms, attempts`,
        [jobId, workerId, error ? 0 : 1, error ? JSON.stringify(error) : null],
      );
      const row = rows[0];
      if (!row) return false;
      // A failure goes back through pg-boss's retry, which waits its backoff; a graceful stop is delivered again at once.
      if (!error) {
        await this.redeliver(client, jobId, row.queue_job_id, row.retry_delay_ms);
        return true;
      }
      const db = executorOf(client);
      await this.boss.fail(this.queueName, row.queue_job_id, { message: error.message }, { db });
      // pg-boss may have expired and handed out that delivery meanwhile (a long run): then it is gone, and a new one waits the backoff.
      const delivery = await this.boss.getJobById(this.queueName, row.queue_job_id, { db, includeArchive: false });
      if (delivery?.state !== "retry" && delivery?.state !== "created") {
        const delaySeconds = Math.ceil((row.retry_delay_ms * 2 ** Math.max(0, row.attempts - 1)) / 1000);
        await this.redeliver(client, jobId, row.queue_job_id, row.retry_delay_ms, delaySeconds);
      }
      return true;
    });
  }

  async recoverExpiredLeases(): Promise<{ requeued: string[]; failed: string[]; cancelled: string[] }> {
    const result = { requeued: [] as string[], failed: [] as string[], cancelled: [] as string[] };
    await this.transaction(async (client) => {
      const { rows } = await client.query<{ id: string; attempts: number; max_attempts: number; cancel_requested: boolean; worker_id: string; queue_job_id: string; retry_delay_ms: number }>(
        "SELECT id, attempts, max_attempts, cancel_requested, worker_id, queue_job_id, retry_delay_ms FROM running_agent_jobs WHERE status = 'running' AND lease_expires_at < now() FOR UPDATE SKIP LOCKED",
      );
      for (const row of rows) {
        const outcome = expiredOutcome(row);
        await client.query(
          `UPDATE running_agent_jobs SET status = $2, worker_id = NULL, lease_expires_at = NULL, error = $3,
             finished_at = CASE WHEN $2 = 'queued' THEN NULL ELSE ${NOW_MS} END, sealed_secrets = CASE WHEN $2 = 'queued' THEN sealed_secrets ELSE NULL END, revision = ${NEXT_REVISION}
           WHERE id = $1`,
          [row.id, outcome.status, JSON.stringify(outcome.error)],
        );
        if (outcome.status === "queued") {
          // The dead worker's delivery is still active in pg-boss: a new one goes out at once (a lost worker is no reason to wait), the old one is cancelled.
          await this.redeliver(client, row.id, row.queue_job_id, row.retry_delay_ms);
          result.requeued.push(row.id);
        } else {
          await this.boss.cancel(this.queueName, row.queue_job_id, { db: executorOf(client) });
          (outcome.status === "failed" ? result.failed : result.cancelled).push(row.id);
        }
      }
    });
    return result;
  }

  async close(): Promise<void> {
    await this.boss.stop({ graceful: false, wait: true, close: false }).catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  /** Sends a delivery for the job under `deliveryId`, due in `delaySeconds`. */
  private async deliver(client: Executor, jobId: string, deliveryId: string, delaySeconds: number, retryDelayMs: number): Promise<void> {
    await this.boss.send(this.queueName, { jobId }, {
      id: deliveryId,
      ...(delaySeconds > 0 ? { startAfter: delaySeconds } : {}),
      // pg-boss counts and delays retries; the job row decides when attempts are used up.
      retryLimit: 1000,
      retryDelay: Math.max(1, Math.round(retryDelayMs / 1000)),
      retryBackoff: true,
      expireInSeconds: this.deliveryExpirySeconds,
      db: executorOf(client),
    });
  }

  private async redeliver(client: Executor, jobId: string, previousDeliveryId: string, retryDelayMs: number, delaySeconds = 0): Promise<void> {
    const deliveryId = randomUUID();
    await client.query("UPDATE running_agent_jobs SET queue_job_id = $2 WHERE id = $1", [jobId, deliveryId]);
    await this.deliver(client, jobId, deliveryId, delaySeconds, retryDelayMs);
    await this.boss.cancel(this.queueName, previousDeliveryId, { db: executorOf(client) });
  }

  private secretsOf(row: JobRow): JobSecrets | JobError {
    if (!row.has_secrets) return {};
    if (!row.sealed_secrets) return new JobError(JobErrorCode.SECRET_UNREADABLE, `The secrets of job ${row.id} are gone from the store.`);
    if (!this.secretBox) {
      return new JobError(JobErrorCode.SECRET_KEY_INVALID, `Job ${row.id} has sealed secrets and this worker has no key: set secretKey (RUNNING_AGENT_SECRET_KEY) to the key the job was submitted with.`);
    }
    try {
      return JSON.parse(this.secretBox.open(row.sealed_secrets, row.id)) as JobSecrets;
    } catch (error) {
      return JobError.isInstance(error) ? error : new JobError(JobErrorCode.SECRET_UNREADABLE, `The secrets of job ${row.id} are not readable.`, { cause: error });
    }
  }

  private async query<Row extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<Row>> {
    try {
      return await this.pool.query<Row>(text, values);
    } catch (cause) {
      throw unavailable(cause);
    }
  }

  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (cause) {
      throw unavailable(cause);
    }
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw JobError.isInstance(error) ? error : unavailable(error);
    } finally {
      client.release();
    }
  }
}

function executorOf(client: Executor): PgBoss.Db {
  return { executeSql: (text: string, values: unknown[]) => client.query(text, values) };
}

function unavailable(cause: unknown): JobError {
  return new JobError(JobErrorCode.STORE_UNAVAILABLE, `The PostgreSQL job store failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}

function isUuid(id: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
}

function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    key: row.key ?? undefined,
    status: row.status,
    spec: row.spec,
    labels: row.labels,
    hasSecrets: row.has_secrets,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    workerId: row.worker_id ?? undefined,
    cancelRequested: row.cancel_requested,
    createdAt: Number(row.created_at),
    startedAt: row.started_at === null ? undefined : Number(row.started_at),
    finishedAt: row.finished_at === null ? undefined : Number(row.finished_at),
    phase: (row.phase ?? undefined) as Phase | undefined,
    result: row.result ?? undefined,
    error: row.error ?? undefined,
    revision: Number(row.revision),
  };
}
