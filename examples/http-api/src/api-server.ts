import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { timingSafeEqual } from "node:crypto";
import { PHASES, type AgentTaskOptions, type SandboxProvider } from "@running-agent/core";
import { z } from "zod";
import { JobWorker, openSqliteJobStore, type JobStore, type RunTask } from "@running-agent/jobs";
import { JobQueue, JobRequestError, type JobStreamMessage } from "./job-queue.js";
import { createDashboardFiles } from "./dashboard-files.js";
import { FINISHED_STATUSES } from "./job-record.js";
import { toResultView, toStatusView, type ServerConfigView } from "./job-views.js";
import { CommitNotFoundError, DiffTooLargeError, readCommitDiff } from "./job-diff.js";
import { ListJobsQuerySchema, RetryRequestSchema, SubmitRequestSchema, checkRepoUrl, describeIssues, refusedSubmitFields, type SubmitFields } from "./submit-request.js";

/** Everything {@link startApiServer} takes. */
export interface ApiServerOptions {
  /** The embedded store's SQLite file (created when missing; locked while the server runs). Give this or `store`. */
  databasePath?: string;
  /** A job store of the caller's (PostgreSQL for several processes); closed with the server. */
  store?: JobStore;
  /** `both` (default): this process also runs jobs; `api`: it only serves, worker processes on the same store run the jobs. */
  role?: "api" | "both";
  /** Starts an agent task: core's `startAgentTask` (the default). */
  runTask?: RunTask;
  /** Sandbox, Git host, model and other options every task gets. */
  taskDefaults?: Partial<AgentTaskOptions>;
  /** Whether the configured Git host serves a repo reference. Default: `taskDefaults.gitHost.supports`, else any. */
  supportsRepo?: (repo: string) => boolean;
  /** Named in the error for an unsupported repo_url, e.g. `local: paths and file:// URLs`. */
  gitHostDescription?: string;
  /** A repo_url this server accepts, shown as the dashboard form's example (`GET /config`). Default: one that fits the Git host. */
  repoUrlExample?: string;
  /** Which advanced submit fields (base_branch, draft, labels, model) are accepted. Default: all but model. */
  submitFields?: SubmitFields;
  /** Largest diff `GET /jobs/{job_id}/diff` serves, in bytes. Default 5 MiB. */
  diffLimitBytes?: number;
  /** Required (as `Authorization: Bearer` or `x-api-key`) on write endpoints when set. */
  apiKey?: string | undefined;
  /**
   * Also require the API key on the read endpoints (status, result, jobs, both event streams;
   * `/health` and the dashboard's files stay open). The streams also take it as `?api_key=`,
   * since EventSource cannot send headers. Needs `apiKey`. Default false.
   */
  protectReads?: boolean;
  /** Longest a client may take to send a request's headers; then 408 and the connection closes. Default 10 000 ms. */
  headersTimeoutMs?: number;
  /** Longest a client may take to send a whole request, body included (slow senders are cut off with 408). Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** Jobs running at once in this process. Default: sized from free memory (about 0.5 GB per running OpenCode). */
  concurrency?: number;
  /** The worker's lease on a job it runs. Default 30 s. */
  leaseMs?: number;
  /** This process's worker id (its work folder is named after it). Default: a random one. */
  workerId?: string;
  /** Largest accepted request body in bytes. Default 64 KiB. */
  bodyLimitBytes?: number;
  /** `Access-Control-Allow-Origin`. Default `*`. */
  corsOrigin?: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** The dashboard's build folder: its files are served at `/` and below, wherever no endpoint answers. Default: none. */
  dashboardDirectory?: string | undefined;
  /**
   * At startup, before any job starts, remove the sandboxes a crashed process of this server left
   * (`taskDefaults.sandbox.reapOrphans({ olderThanMs: 0 })`, when the provider has it). Only for a
   * provider whose reapOrphans sees this server's sandboxes alone (e.g. Docker with this server's
   * label): it removes every one it sees. Default false.
   */
  reapOrphanSandboxes?: boolean;
  /** One line per request and job transition; never headers or bodies. */
  log?: (line: string) => void;
}

/** A running API server. */
export interface ApiServer extends AsyncDisposable {
  /** `http://host:port`, no trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly store: JobStore;
  readonly queue: JobQueue;
  /** This process's worker; undefined for `role: "api"`. */
  readonly worker: JobWorker | undefined;
  /** Stops listening, puts running jobs back in the queue (for another worker or the next start), closes streams and the store. */
  close(): Promise<void>;
}

/** A refusal with an HTTP status; answered as `{ error: { code, message } }`. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const DEFAULT_BODY_LIMIT = 64 * 1024;
/** Past this many bytes an oversized upload is cut off instead of drained. */
const DRAIN_LIMIT = 16 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;
const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_DIFF_LIMIT = 5 * 1024 * 1024;
/** Diffs kept in memory (a commit's diff never changes). */
const CACHED_DIFFS = 32;
const ENDPOINTS =
  "POST /submit, GET /status/{job_id}, GET /result/{job_id}, GET /jobs, GET /jobs/{job_id}, GET /jobs/{job_id}/diff, GET /health, GET /config, GET /jobs/{job_id}/events, GET /events, POST /jobs/{job_id}/cancel, POST /jobs/{job_id}/retry";

/** Starts the HTTP API on the given host and port, after recovering the jobs a previous process left. */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const log = options.log ?? (() => undefined);
  if (options.protectReads && !options.apiKey) throw new Error("protectReads needs an apiKey: there is no key to ask readers for.");
  const headersTimeout = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const requestTimeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  // node:http refuses a headers timeout longer than the request timeout; say so in our words.
  if (headersTimeout > requestTimeout) throw new Error(`headersTimeoutMs (${headersTimeout}) must not be longer than requestTimeoutMs (${requestTimeout}).`);
  if (!options.store && !options.databasePath) throw new TypeError("startApiServer needs databasePath (the embedded store) or store.");
  // The embedded store refuses a second process on the file (STORE_LOCKED) before any row is read or written.
  const store = options.store ?? openSqliteJobStore({ path: options.databasePath! });
  const worker =
    options.role === "api"
      ? undefined
      : new JobWorker({
          store,
          ...(options.runTask ? { runTask: options.runTask } : {}),
          taskDefaults: options.taskDefaults ?? {},
          ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
          ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
          ...(options.workerId !== undefined ? { workerId: options.workerId } : {}),
          secrets: options.apiKey ? [options.apiKey] : [],
          log,
        });
  const queue = new JobQueue({ store, worker, log });
  // Held by this process alone (the lock), an embedded store's leftover sandboxes are all a dead predecessor's.
  if (options.reapOrphanSandboxes && store.kind === "embedded") await reapOrphanSandboxes(options.taskDefaults?.sandbox, log);

  const gitHost = options.taskDefaults?.gitHost;
  const supportsRepo = options.supportsRepo ?? (gitHost ? (repo: string) => gitHost.supports(repo) : () => true);
  const gitHostDescription = options.gitHostDescription ?? gitHost?.hostId ?? "any";
  const repoUrlExample = options.repoUrlExample ?? defaultRepoUrlExample(gitHost?.hostId);
  const submitFields = options.submitFields ?? {};
  const diffLimit = options.diffLimitBytes ?? DEFAULT_DIFF_LIMIT;
  const diffs = new Map<string, Promise<string>>();
  const bodyLimit = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const corsOrigin = options.corsOrigin ?? "*";
  const dashboardFiles = options.dashboardDirectory ? createDashboardFiles(options.dashboardDirectory) : undefined;
  const streams = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  // Node checks both timeouts every connectionsCheckingInterval (30 s by default): check often enough for short limits.
  const connectionsCheckingInterval = Math.max(100, Math.min(1000, Math.floor(headersTimeout / 4)));
  const server = createServer({ headersTimeout, requestTimeout, connectionsCheckingInterval }, (request, response) => {
    const startedAt = Date.now();
    response.setHeader("access-control-allow-origin", corsOrigin);
    response.setHeader("vary", "origin");
    handle(request, response)
      .catch((error: unknown) => {
        if (error instanceof HttpError || error instanceof JobRequestError) {
          sendJson(response, error.status, { error: { code: error.code, message: error.message } });
        } else {
          log(`internal error on ${request.method} ${pathOf(request)}: ${error instanceof Error ? error.message : String(error)}`);
          sendJson(response, 500, { error: { code: "internal", message: "Internal server error." } });
        }
      })
      .finally(() => {
        // Writes and refusals are logged; successful reads (dashboards poll) are not.
        if (!streams.has(response) && ((request.method !== "GET" && request.method !== "HEAD") || response.statusCode >= 400)) {
          log(`${request.method} ${pathOf(request)} ${response.statusCode} ${Date.now() - startedAt}ms`);
        }
      });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://localhost");
    const method = request.method ?? "GET";
    let segments: string[];
    try {
      segments = url.pathname.split("/").filter((segment) => segment.length > 0).map(decodeURIComponent);
    } catch {
      throw new HttpError(400, "invalid_path", "The path is not valid percent-encoding.");
    }

    if (method === "OPTIONS") {
      response.writeHead(204, {
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": "content-type, authorization, x-api-key, last-event-id",
        "access-control-max-age": "600",
      });
      response.end();
      return;
    }

    const route = matchRoute(segments);
    // Endpoints come first: a file never shadows one.
    if (!route && dashboardFiles && (method === "GET" || method === "HEAD") && dashboardFiles(request, response)) return;
    if (!route) throw new HttpError(404, "not_found", `No endpoint ${url.pathname}. Endpoints: ${ENDPOINTS}.`);
    // A deep link into the dashboard (`/jobs/<id>` typed in the address bar): the page, which then reads the job as JSON.
    if (route.name === "job" && method === "GET" && dashboardFiles && prefersHtml(request)) {
      request.url = "/";
      if (dashboardFiles(request, response)) return;
    }
    if (route.allowed !== method) {
      response.setHeader("allow", route.allowed);
      throw new HttpError(405, "method_not_allowed", `${url.pathname} takes ${route.allowed}, not ${method}.`);
    }
    if (route.allowed === "POST") checkApiKey(request);
    else if (options.protectReads && route.name !== "health" && route.name !== "config") checkApiKey(request, route.name === "events" || route.name === "all-events" ? url : undefined);

    switch (route.name) {
      case "health": {
        const jobs = await queue.countByStatus();
        sendJson(response, 200, { status: "ok", running: jobs.running ?? 0, concurrency: worker?.concurrency ?? 0, jobs, auth: options.apiKey ? "api-key" : "none", role: options.role ?? "both", store: store.kind });
        return;
      }
      case "config": {
        const config: ServerConfigView = {
          git_host: { id: gitHost?.hostId ?? null, description: gitHostDescription, repo_url_example: repoUrlExample },
          auth: options.apiKey ? "api-key" : "none",
          protect_reads: options.protectReads ?? false,
          submit: { base_branch: submitFields.baseBranch !== false, draft: submitFields.draft !== false, labels: submitFields.labels !== false, models: [...(submitFields.models ?? [])] },
          phases: [...PHASES],
        };
        sendJson(response, 200, config);
        return;
      }
      case "submit": {
        const body = await readJsonBody(request, { required: true });
        const parsed = SubmitRequestSchema.safeParse(body);
        if (!parsed.success) throw new HttpError(400, "invalid_request", describeIssues(parsed.error));
        const repoProblem = checkRepoUrl(parsed.data.repo_url, supportsRepo, gitHostDescription);
        if (repoProblem) throw new HttpError(400, "unsupported_repo_url", repoProblem);
        const refused = refusedSubmitFields(parsed.data, submitFields);
        if (refused) throw new HttpError(400, "field_not_allowed", refused);
        const { checks, max_fix_rounds: maxFixRounds, on_checks_failed: onChecksFailed } = parsed.data;
        const verify = {
          ...(checks !== undefined ? { checks: checks === "auto" ? ("auto" as const) : checks.map(({ name, command, timeout_ms }) => ({ name, command, ...(timeout_ms !== undefined ? { timeoutMs: timeout_ms } : {}) })) } : {}),
          ...(maxFixRounds !== undefined ? { maxFixRounds } : {}),
          ...(onChecksFailed !== undefined ? { onChecksFailed } : {}),
        };
        const { base_branch: baseBranch, model, draft, labels } = parsed.data;
        const pullRequest = draft !== undefined || labels !== undefined ? { ...(draft !== undefined ? { draft } : {}), ...(labels !== undefined ? { labels } : {}) } : undefined;
        const job = await queue.submit({ repoUrl: parsed.data.repo_url, task: parsed.data.task, userId: parsed.data.user_id, githubToken: parsed.data.github_token, verify, baseBranch, model, pullRequest });
        sendJson(response, 200, { job_id: job.id, status: job.status });
        return;
      }
      case "status":
      case "job": {
        sendJson(response, 200, toStatusView(await findJob(route.id)));
        return;
      }
      case "result": {
        const job = await findJob(route.id);
        sendJson(response, 200, toResultView(job, await queue.events(job.id)));
        return;
      }
      case "jobs": {
        const parsed = ListJobsQuerySchema.safeParse(Object.fromEntries(url.searchParams));
        if (!parsed.success) throw new HttpError(400, "invalid_query", describeIssues(parsed.error));
        const { limit, offset } = parsed.data;
        // One more than asked says whether there is a next page.
        const jobs = await queue.list({ limit: limit + 1, offset, status: parsed.data.status, userId: parsed.data.user_id, repo: parsed.data.repo_url, search: parsed.data.q || undefined });
        sendJson(response, 200, { jobs: jobs.slice(0, limit).map(toStatusView), next_offset: jobs.length > limit ? offset + limit : null });
        return;
      }
      case "diff": {
        const job = await findJob(route.id);
        const { branch, commit } = job.result ?? {};
        if (!branch || !commit) throw new HttpError(409, "no_commit", `Job ${job.id} has no pushed commit (it is ${job.status}).`);
        if (!gitHost) throw new HttpError(409, "no_git_host", "This server has no Git host to read the diff from.");
        let diff = diffs.get(job.id);
        if (!diff) {
          diff = readCommitDiff({ gitHost, repo: job.repoUrl, branch, commit, maxBytes: diffLimit });
          diffs.set(job.id, diff);
          if (diffs.size > CACHED_DIFFS) diffs.delete(diffs.keys().next().value!);
          diff.catch(() => diffs.delete(job.id));
        }
        let text: string;
        try {
          text = await diff;
        } catch (error) {
          if (error instanceof DiffTooLargeError) throw new HttpError(413, "diff_too_large", error.message);
          if (error instanceof CommitNotFoundError) throw new HttpError(409, "commit_not_found", error.message);
          log(`diff of job ${job.id} failed: ${error instanceof Error ? error.message : String(error)}`);
          throw new HttpError(502, "diff_unavailable", `The diff of ${commit.slice(0, 12)} could not be read from the Git host.`);
        }
        response.writeHead(200, { "content-type": "text/x-diff; charset=utf-8", "content-length": Buffer.byteLength(text), "x-commit": commit, "cache-control": "no-cache" });
        response.end(text);
        return;
      }
      case "cancel": {
        await readJsonBody(request, { required: false });
        const job = await queue.cancel(route.id);
        sendJson(response, 200, { job_id: job.id, status: job.status });
        return;
      }
      case "retry": {
        const body = await readJsonBody(request, { required: false });
        const parsed = RetryRequestSchema.safeParse(body ?? {});
        if (!parsed.success) throw new HttpError(400, "invalid_request", describeIssues(parsed.error));
        const job = await queue.retry(route.id, parsed.data.github_token);
        sendJson(response, 200, { job_id: job.id, status: job.status, retry_of: route.id });
        return;
      }
      case "events": {
        streamEvents(request, response, (await findJob(route.id)).id, url);
        return;
      }
      case "all-events": {
        await streamStatuses(response);
        return;
      }
    }
  }

  async function findJob(id: string) {
    const job = await queue.get(id);
    if (!job) throw new HttpError(404, "job_not_found", `No job with id ${JSON.stringify(id)}.`);
    return job;
  }

  /** `streamUrl`: an event stream's URL, whose `api_key` parameter also counts (EventSource sends no headers). */
  function checkApiKey(request: IncomingMessage, streamUrl?: URL): void {
    if (!options.apiKey) return;
    const authorization = request.headers.authorization;
    const given = typeof request.headers["x-api-key"] === "string" ? request.headers["x-api-key"] : (authorization?.match(/^Bearer\s+(.+)$/i)?.[1] ?? streamUrl?.searchParams.get("api_key") ?? undefined);
    if (given === undefined) {
      throw new HttpError(401, "api_key_required", "This endpoint needs the API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.");
    }
    const expected = Buffer.from(options.apiKey);
    const actual = Buffer.from(given.trim());
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) throw new HttpError(401, "api_key_invalid", "The API key is wrong.");
  }

  async function readJsonBody(request: IncomingMessage, readOptions: { required: boolean }): Promise<unknown> {
    const declared = Number(request.headers["content-length"] ?? "0");
    if (declared > bodyLimit) {
      discardRest(request);
      throw new HttpError(413, "body_too_large", `The request body is ${declared} bytes; the limit is ${bodyLimit}.`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    // Leaving the loop early must not destroy the request: that resets the connection before the 413 is read.
    for await (const chunk of request.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > bodyLimit) break;
      chunks.push(chunk);
    }
    if (size > bodyLimit) {
      // Answered now, not once the client has sent it all (a chunked body declares no size).
      discardRest(request);
      throw new HttpError(413, "body_too_large", `The request body is over the limit of ${bodyLimit} bytes.`);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim().length === 0) {
      if (readOptions.required) throw new HttpError(400, "body_required", 'The request needs a JSON body, e.g. {"repo_url": "...", "task": "..."}.');
      return undefined;
    }
    const contentType = request.headers["content-type"] ?? "";
    if (!/^application\/json\s*(;|$)/i.test(contentType)) {
      throw new HttpError(415, "unsupported_media_type", `Send the body as JSON with 'Content-Type: application/json' (got ${contentType ? JSON.stringify(contentType) : "none"}).`);
    }
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new HttpError(400, "invalid_json", "The JSON body must be an object.");
      return value;
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new HttpError(400, "invalid_json", `The body is not valid JSON: ${error instanceof Error ? error.message : String(error)}.`);
    }
  }

  /** Server-sent events: the job's status, every stored event after Last-Event-ID, then live ones; ends with `end` once the job has ended. */
  function streamEvents(request: IncomingMessage, response: ServerResponse, id: string, url: URL): void {
    const lastEventId = request.headers["last-event-id"] ?? url.searchParams.get("last_event_id") ?? "0";
    const afterSeq = z.coerce.number().int().min(0).safeParse(lastEventId);
    if (!afterSeq.success) throw new HttpError(400, "invalid_last_event_id", "Last-Event-ID must be the id of an event from this stream (a whole number).");
    response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
    streams.add(response);
    const write = (message: JobStreamMessage): void => {
      if (message.kind === "event") {
        response.write(`id: ${message.seq}\nevent: agent-event\ndata: ${JSON.stringify(message.event)}\n\n`);
        return;
      }
      response.write(`event: status\ndata: ${JSON.stringify(toStatusView(message.job))}\n\n`);
      if (FINISHED_STATUSES.has(message.job.status)) {
        response.write(`event: end\ndata: ${JSON.stringify({ status: message.job.status })}\n\n`);
        response.end();
      }
    };
    // The watch replays the stored events after Last-Event-ID, then follows the store (whichever process runs the job).
    response.write("retry: 2000\n\n");
    const closed = new AbortController();
    const heartbeat = setInterval(() => response.write(": heartbeat\n\n"), HEARTBEAT_MS);
    response.on("close", () => {
      clearInterval(heartbeat);
      closed.abort();
      streams.delete(response);
    });
    void (async () => {
      for await (const message of queue.watch(id, afterSeq.data, closed.signal)) write(message);
    })()
      .catch((error: unknown) => log(`event stream of job ${id} failed: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => {
        if (!response.writableEnded) response.end();
      });
  }

  /** Server-sent `status` events for every job change, for live job lists. Clients re-read `GET /jobs` on (re)connect. */
  async function streamStatuses(response: ServerResponse): Promise<void> {
    const closed = new AbortController();
    // The watch starts from the store's revision before the headers go out: a client that has the headers misses nothing.
    const fromRevision = await store.currentRevision();
    void (async () => {
      for await (const job of queue.watchStatuses(closed.signal, fromRevision)) response.write(`event: status\ndata: ${JSON.stringify(toStatusView(job))}\n\n`);
    })().catch((error: unknown) => log(`status stream failed: ${error instanceof Error ? error.message : String(error)}`));
    response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive", "x-accel-buffering": "no" });
    streams.add(response);
    response.write("retry: 2000\n\n");
    const heartbeat = setInterval(() => response.write(": heartbeat\n\n"), HEARTBEAT_MS);
    response.on("close", () => {
      clearInterval(heartbeat);
      closed.abort();
      streams.delete(response);
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  }).catch(async (error: unknown) => {
    // A server that cannot listen lets go of the database (and its lock) and touches no job.
    await store.close();
    throw error;
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const host = options.host ?? "127.0.0.1";
  await worker?.start();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      // Running jobs go back to the queue for another worker or the next start.
      await worker?.stop();
      queue.close();
      for (const stream of streams) stream.end();
      for (const socket of sockets) socket.destroy();
      await stopped;
      await store.close();
    })();
    return closing;
  };

  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    store,
    queue,
    worker,
    close,
    [Symbol.asyncDispose]: close,
  };
}

type Route =
  | { name: "health" | "config" | "submit" | "jobs" | "all-events"; allowed: "GET" | "POST" }
  | { name: "status" | "result" | "job" | "diff" | "events" | "cancel" | "retry"; allowed: "GET" | "POST"; id: string };

function matchRoute(segments: string[]): Route | undefined {
  const [first, second, third, ...rest] = segments;
  if (rest.length > 0) return undefined;
  if (first === "health" && second === undefined) return { name: "health", allowed: "GET" };
  if (first === "config" && second === undefined) return { name: "config", allowed: "GET" };
  if (first === "submit" && second === undefined) return { name: "submit", allowed: "POST" };
  if (first === "jobs" && second === undefined) return { name: "jobs", allowed: "GET" };
  if (first === "events" && second === undefined) return { name: "all-events", allowed: "GET" };
  if ((first === "status" || first === "result") && second !== undefined && third === undefined) return { name: first, allowed: "GET", id: second };
  if (first === "jobs" && second !== undefined) {
    if (third === undefined) return { name: "job", allowed: "GET", id: second };
    if (third === "events") return { name: "events", allowed: "GET", id: second };
    if (third === "diff") return { name: "diff", allowed: "GET", id: second };
    if (third === "cancel" || third === "retry") return { name: third, allowed: "POST", id: second };
  }
  return undefined;
}

/** A browser navigating (its Accept names HTML), not a script reading JSON. */
function prefersHtml(request: IncomingMessage): boolean {
  return /\btext\/html\b/.test(request.headers.accept ?? "");
}

/** A repo_url the Git host serves, as the form's example. */
function defaultRepoUrlExample(hostId: string | undefined): string {
  if (hostId === "github") return "https://github.com/owner/repo.git";
  if (hostId === "gitlab") return "https://gitlab.com/group/project.git";
  return "/srv/repos/project.git";
}

function pathOf(request: IncomingMessage): string {
  return new URL(request.url ?? "/", "http://localhost").pathname;
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) {
    response.destroy();
    return;
  }
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

/**
 * Reads and drops the rest of a refused body, so that the connection ends cleanly after the
 * answer (closing on unread data resets it, and the client may never see the answer); past
 * DRAIN_LIMIT bytes the connection is cut. The request timeout bounds how long this takes.
 */
function discardRest(request: IncomingMessage): void {
  let size = 0;
  request.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size > DRAIN_LIMIT) request.socket.destroy();
  });
  request.resume();
}

/**
 * Removes the sandboxes a crashed process of this server left running. Runs before the server
 * listens, so no job of this process has a sandbox yet. A failure is logged, not fatal (Docker's
 * leftovers still end by themselves at their lifetime limit).
 */
async function reapOrphanSandboxes(sandbox: SandboxProvider | undefined, log: (line: string) => void): Promise<void> {
  if (!sandbox?.reapOrphans) return;
  try {
    const removed = await sandbox.reapOrphans({ olderThanMs: 0 });
    log(`removed ${removed} leftover ${sandbox.providerId} sandbox(es) of this server`);
  } catch (error) {
    log(`could not remove leftover ${sandbox.providerId} sandboxes of this server: ${error instanceof Error ? error.message : String(error)}`);
  }
}
