import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLocalGitHost, createLocalSandbox, ErrorCode } from "@running-agent/core";
import { createTestRepository, type TestRepository } from "@running-agent/core/testing";
import { createDockerSandbox } from "@running-agent/sandbox-docker";
import { startApiServer, type ApiServer, type ApiServerOptions } from "./api-server.js";
import { createGatedTaskRunner } from "./gated-task-runner.js";
import { readServerSentEvents } from "./read-server-sent-events.js";

const API_KEY = "test-api-key-5f2c1a";
const REPO = "/srv/repos/demo.git";

let directory: string;
let server: ApiServer | undefined;
let runner: ReturnType<typeof createGatedTaskRunner>;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), "http-api-test-"));
  runner = createGatedTaskRunner();
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(directory, { recursive: true, force: true });
});

async function start(overrides: Partial<ApiServerOptions> = {}): Promise<ApiServer> {
  server = await startApiServer({
    databasePath: join(directory, "jobs.db"),
    runTask: runner.runTask,
    // Stands in for the local Git host: absolute paths only.
    supportsRepo: (repo) => repo.startsWith("/"),
    gitHostDescription: "local: absolute paths",
    apiKey: API_KEY,
    concurrency: 1,
    ...overrides,
  });
  return server;
}

/** A fetch Response whose JSON the tests read freely. */
type JsonResponse = Omit<Response, "json"> & { json(): Promise<any> };

function post(path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${API_KEY}` }): Promise<JsonResponse> {
  return fetch(`${server!.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function getJson(path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${server!.url}${path}`);
  return { status: response.status, body: (await response.json()) as any };
}

/** Reads the job until `check` holds: a worker stores what happens a few milliseconds after it happens. */
async function waitForJob(jobId: string, check: (job: any) => boolean): Promise<any> {
  for (;;) {
    const { body } = await getJson(`/status/${jobId}`);
    if (check(body)) return body;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitForStatus(jobId: string, wanted: string): Promise<any> {
  for (;;) {
    const { body } = await getJson(`/status/${jobId}`);
    if (body.status === wanted) return body;
    if (body.status !== "queued" && body.status !== "running") throw new Error(`job ${jobId} ended ${body.status}, wanted ${wanted}: ${JSON.stringify(body.error)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the seed's endpoints", () => {
  it("submit answers { job_id, status: queued }, then status, result, jobs and health tell the job's story", async () => {
    await start();
    const submitted = await post("/submit", { repo_url: REPO, task: "Add unit tests for the utils module", user_id: "ada" });
    expect(submitted.status).toBe(200);
    const { job_id: jobId, ...rest } = await submitted.json();
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
    expect(rest).toEqual({ status: "queued" });

    const [task] = await runner.waitForTasks(1);
    // The branch is decided at submit: every attempt of the job pushes to it.
    expect(task!.options).toMatchObject({ repo: REPO, task: "Add unit tests for the utils module", taskId: jobId, branch: expect.stringMatching(/^running-agent\/add-unit-tests-for-the-utils-module-[0-9a-f]{8}$/) });
    expect(task!.options.gitToken).toBeUndefined();
    const running = await waitForJob(jobId, (job) => job.phase === "agent");
    expect(running).toMatchObject({ job_id: jobId, status: "running", phase: "agent", user_id: "ada", pr_url: null, error: null });

    task!.finish({ status: "completed" });
    const done = await waitForStatus(jobId, "completed");
    expect(done.pr_url).toBe("local://repo/change-requests/1");
    expect(Date.parse(done.finished_at)).toBeGreaterThanOrEqual(Date.parse(done.started_at));

    const result = await getJson(`/result/${jobId}`);
    expect(result.status).toBe(200);
    expect(result.body).toMatchObject({
      job_id: jobId,
      status: "completed",
      pr_url: "local://repo/change-requests/1",
      pull_request: { number: 1, url: "local://repo/change-requests/1" },
      branch: task!.options.branch,
      changes: [{ path: "hello.txt", status: "added" }],
      timings: { validate: 1, agent: 5, total: 20 },
      error: null,
    });
    expect(result.body.logs.some((line: string) => line.includes("phase validate completed"))).toBe(true);
    expect(result.body.logs.some((line: string) => line.endsWith("opened change request #1: local://repo/change-requests/1"))).toBe(true);
    expect(result.body.logs.filter((line: string) => line.includes("agent: Wrote the file."))).toHaveLength(1);

    const jobs = await getJson("/jobs");
    expect(jobs.body.jobs.map((job: any) => job.job_id)).toEqual([jobId]);
    const health = await getJson("/health");
    expect(health.body).toMatchObject({ status: "ok", running: 0, jobs: { completed: 1 }, auth: "api-key" });
  });

  it("a failed task keeps its typed error, and its phase timings", async () => {
    await start();
    const { job_id: jobId } = await (await post("/submit", { repo_url: REPO, task: "fail" })).json();
    const [task] = await runner.waitForTasks(1);
    task!.finish({ error: { code: ErrorCode.MODEL_ERROR, message: "The model answered 400." } });
    const failed = await waitForStatus(jobId, "failed");
    expect(failed.error).toEqual({ code: "MODEL_ERROR", message: "The model answered 400.", phase: "agent" });
    const result = await getJson(`/result/${jobId}`);
    expect(result.body.timings).toMatchObject({ validate: 1, agent: 5 });
    expect(result.body.timings.total).toBeGreaterThanOrEqual(0);
    expect(result.body.pr_url).toBeNull();
  });

  it("runs at most `concurrency` jobs at once, oldest first", async () => {
    await start({ concurrency: 1 });
    const first = (await (await post("/submit", { repo_url: REPO, task: "one" })).json()).job_id;
    const second = (await (await post("/submit", { repo_url: REPO, task: "two" })).json()).job_id;
    await runner.waitForTasks(1);
    expect((await getJson(`/status/${second}`)).body.status).toBe("queued");
    expect(runner.tasks).toHaveLength(1);
    runner.tasks[0]!.finish({ status: "no_changes" });
    await waitForStatus(first, "no_changes");
    const [, secondTask] = await runner.waitForTasks(2);
    expect(secondTask!.options.task).toBe("two");
    secondTask!.finish({ status: "completed" });
    await waitForStatus(second, "completed");
    expect((await getJson("/jobs?status=completed")).body.jobs.map((job: any) => job.job_id)).toEqual([second]);
  });
});

describe("bad input", () => {
  it("answers each mistake with the right 4xx and a JSON error naming it, and stores nothing", async () => {
    await start();
    const cases: { name: string; response: Promise<JsonResponse | Response>; status: number; code: string; message: RegExp }[] = [
      { name: "malformed JSON", response: post("/submit", '{"repo_url": "/srv/x",'), status: 400, code: "invalid_json", message: /not valid JSON/ },
      { name: "JSON that is not an object", response: post("/submit", "[1,2]"), status: 400, code: "invalid_json", message: /must be an object/ },
      { name: "empty body", response: post("/submit", ""), status: 400, code: "body_required", message: /needs a JSON body/ },
      { name: "missing task", response: post("/submit", { repo_url: REPO }), status: 400, code: "invalid_request", message: /task is required/ },
      { name: "missing repo_url", response: post("/submit", { task: "x" }), status: 400, code: "invalid_request", message: /repo_url is required/ },
      { name: "blank task", response: post("/submit", { repo_url: REPO, task: "   " }), status: 400, code: "invalid_request", message: /task is empty/ },
      { name: "task of the wrong type", response: post("/submit", { repo_url: REPO, task: 42 }), status: 400, code: "invalid_request", message: /task must be a string/ },
      { name: "empty github_token", response: post("/submit", { repo_url: REPO, task: "x", github_token: "" }), status: 400, code: "invalid_request", message: /github_token is empty/ },
      { name: "unknown field", response: post("/submit", { repo_url: REPO, task: "x", branch: "y" }), status: 400, code: "invalid_request", message: /Unknown field: branch/ },
      { name: "repo of the wrong kind", response: post("/submit", { repo_url: "ssh://git@example.invalid/a/b.git", task: "x" }), status: 400, code: "unsupported_repo_url", message: /local: absolute paths/ },
      { name: "credentials in the URL", response: post("/submit", { repo_url: "https://user:secret@example.invalid/a.git", task: "x" }), status: 400, code: "unsupported_repo_url", message: /must not contain credentials/ },
      { name: "not JSON content type", response: post("/submit", "repo_url=x", { authorization: `Bearer ${API_KEY}`, "content-type": "application/x-www-form-urlencoded" }), status: 415, code: "unsupported_media_type", message: /application\/json/ },
      { name: "huge body", response: post("/submit", { repo_url: REPO, task: "x".repeat(200_000) }), status: 413, code: "body_too_large", message: /limit is 65536/ },
      {
        name: "huge chunked body (no content-length)",
        response: fetch(`${server!.url}/submit`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
          body: new Blob([JSON.stringify({ repo_url: REPO, task: "y".repeat(100_000) })]).stream(),
          duplex: "half",
        } as RequestInit),
        status: 413,
        code: "body_too_large",
        message: /over the limit of 65536 bytes/,
      },
      { name: "no API key", response: post("/submit", { repo_url: REPO, task: "x" }, {}), status: 401, code: "api_key_required", message: /Authorization: Bearer/ },
      { name: "wrong API key", response: post("/submit", { repo_url: REPO, task: "x" }, { authorization: "Bearer nope" }), status: 401, code: "api_key_invalid", message: /wrong/ },
      { name: "wrong API key in x-api-key", response: post("/submit", { repo_url: REPO, task: "x" }, { "x-api-key": `${API_KEY}x` }), status: 401, code: "api_key_invalid", message: /wrong/ },
      { name: "unknown endpoint", response: fetch(`${server!.url}/nope`), status: 404, code: "not_found", message: /No endpoint \/nope/ },
      { name: "wrong method", response: fetch(`${server!.url}/submit`), status: 405, code: "method_not_allowed", message: /takes POST/ },
      { name: "unknown job status", response: fetch(`${server!.url}/status/does-not-exist`), status: 404, code: "job_not_found", message: /does-not-exist/ },
      { name: "unknown job result", response: fetch(`${server!.url}/result/does-not-exist`), status: 404, code: "job_not_found", message: /does-not-exist/ },
      { name: "unknown job events", response: fetch(`${server!.url}/jobs/does-not-exist/events`), status: 404, code: "job_not_found", message: /does-not-exist/ },
      { name: "unknown job cancel", response: post("/jobs/does-not-exist/cancel", ""), status: 404, code: "not_found", message: /does-not-exist/ },
      { name: "unknown job retry", response: post("/jobs/does-not-exist/retry", ""), status: 404, code: "not_found", message: /does-not-exist/ },
      { name: "bad list limit", response: fetch(`${server!.url}/jobs?limit=0`), status: 400, code: "invalid_query", message: /limit must be at least 1/ },
      { name: "bad percent-encoding", response: fetch(`${server!.url}/status/%E0%A4%A`), status: 400, code: "invalid_path", message: /percent-encoding/ },
    ];
    for (const testCase of cases) {
      const response = await testCase.response;
      const body: any = await response.json();
      expect({ name: testCase.name, status: response.status, code: body.error?.code }).toEqual({ name: testCase.name, status: testCase.status, code: testCase.code });
      expect(body.error.message, testCase.name).toMatch(testCase.message);
    }
    expect((await getJson("/jobs")).body.jobs).toEqual([]);
    expect((await getJson("/health")).body.jobs).toEqual({});
    expect(runner.tasks).toHaveLength(0);
  });

  it("without an API key configured, write endpoints are open", async () => {
    await start({ apiKey: undefined });
    const response = await post("/submit", { repo_url: REPO, task: "x" }, {});
    expect(response.status).toBe(200);
    expect((await getJson("/health")).body.auth).toBe("none");
  });

  it("answers CORS preflights for the dashboard", async () => {
    await start({ corsOrigin: "http://127.0.0.1:5173" });
    const preflight = await fetch(`${server!.url}/submit`, {
      method: "OPTIONS",
      headers: { origin: "http://127.0.0.1:5173", "access-control-request-method": "POST", "access-control-request-headers": "content-type, authorization" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:5173");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");
    expect((await fetch(`${server!.url}/jobs`)).headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:5173");
  });
});

/** What a raw client saw: the bytes it got back, how it ended, and how much of its request it had sent. */
interface RawExchange {
  answer: string;
  ended: "closed" | "reset";
  bytesSent: number;
}

/**
 * A raw socket client: sends `head`, then `body` pieces one after another (each when the last was
 * taken, after `gapMs`), and stops sending once an answer arrives. Resolves when the server closes,
 * or (then closing itself) once the answer holds a JSON error body.
 */
function rawRequest(port: number, head: string, body: { next(): string | undefined }, gapMs = 0): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let answer = "";
    let bytesSent = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (ended: RawExchange["ended"]) => {
      clearTimeout(timer);
      resolve({ answer, ended, bytesSent });
    };
    socket.on("data", (data: Buffer) => {
      answer += data.toString("latin1");
      if (/\r\n\r\n\{"error":.*\}\}$/s.test(answer)) {
        finish("closed");
        socket.destroy();
      }
    });
    socket.on("error", () => finish("reset"));
    socket.on("close", () => finish("closed"));
    const sendNext = (): void => {
      if (answer !== "" || socket.destroyed) return;
      const piece = body.next();
      if (piece === undefined) return;
      bytesSent += Buffer.byteLength(piece);
      const flushed = socket.write(piece);
      const again = () => (gapMs > 0 ? (timer = setTimeout(sendNext, gapMs)) : setImmediate(sendNext));
      if (flushed) again();
      else socket.once("drain", again);
    };
    socket.write(head, () => sendNext());
  });
}

describe("hostile clients", () => {
  it("answers a chunked body over the limit with 413 while it is still coming, also one that never ends, and stores nothing", async () => {
    await start();
    const piece = `${(64 * 1024).toString(16)}\r\n${"a".repeat(64 * 1024)}\r\n`;
    // An endless chunked body (here capped at 64 MiB, far past the 16 MiB the server drains).
    let pieces = 0;
    const endless = { next: () => (pieces++ < 1024 ? piece : undefined) };
    const head = `POST /submit HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-api-key: ${API_KEY}\r\ntransfer-encoding: chunked\r\n\r\n`;
    const exchange = await rawRequest(server!.port, head, endless);
    expect(exchange.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(exchange.answer).toContain('"code":"body_too_large"');
    expect(exchange.bytesSent).toBeLessThan(1024 * piece.length);
    // A declared length over the limit is refused the same way, before the body.
    const declared = await rawRequest(server!.port, `POST /submit HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-api-key: ${API_KEY}\r\ncontent-length: ${64 * 1024 * 1024}\r\n\r\n`, { next: () => "a".repeat(64 * 1024) });
    expect(declared.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect((await getJson("/jobs")).body.jobs).toEqual([]);
    expect(runner.tasks).toHaveLength(0);
  });

  it("cuts off a body sent a byte at a time, and headers sent a byte at a time, with 408 (requestTimeoutMs, headersTimeoutMs)", async () => {
    await start({ headersTimeoutMs: 1000, requestTimeoutMs: 1500 });
    const body = JSON.stringify({ repo_url: REPO, task: "t".repeat(400) });
    let offset = 0;
    const slowBody = { next: () => (offset < body.length ? body[offset++] : undefined) };
    const head = `POST /submit HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-api-key: ${API_KEY}\r\ncontent-length: ${body.length}\r\n\r\n`;
    const cut = await rawRequest(server!.port, head, slowBody, 50);
    expect(cut.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(cut.bytesSent).toBeLessThan(head.length + body.length);

    const headers = `GET /health HTTP/1.1\r\nhost: x\r\n${"x-padding: ".padEnd(2000, "p")}\r\n\r\n`;
    let sent = 0;
    const slowHeaders = await rawRequest(server!.port, "G", { next: () => (sent < headers.length - 1 ? headers[1 + sent++] : undefined) }, 50);
    expect(slowHeaders.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(runner.tasks).toHaveLength(0);
    // A client that sends at a normal pace is served.
    expect((await getJson("/health")).status).toBe(200);
  });

  it("with protectReads, every read endpoint but /health needs the key (streams also as ?api_key=)", async () => {
    await expect(startApiServer({ databasePath: join(directory, "other.db"), runTask: runner.runTask, protectReads: true })).rejects.toThrow(/protectReads needs an apiKey/);
    await start({ protectReads: true });
    const submitted = await post("/submit", { repo_url: REPO, task: "Secret plans", user_id: "ada" });
    const { job_id: jobId } = await submitted.json();
    const reads = ["/jobs", `/jobs/${jobId}`, `/status/${jobId}`, `/result/${jobId}`, `/jobs/${jobId}/events`, "/events"];
    for (const path of reads) {
      const open = await fetch(`${server!.url}${path}`);
      expect({ path, status: open.status }).toEqual({ path, status: 401 });
      const text = await open.text();
      expect(text).not.toContain("Secret plans");
      expect(text).not.toContain("ada");
      const wrong = await fetch(`${server!.url}${path}`, { headers: { authorization: "Bearer wrong-key-123" } });
      expect({ path, status: wrong.status }).toEqual({ path, status: 401 });
      await wrong.body?.cancel();
    }
    const listed = await fetch(`${server!.url}/jobs`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(((await listed.json()) as any).jobs).toMatchObject([{ job_id: jobId, user_id: "ada" }]);
    expect((await fetch(`${server!.url}/status/${jobId}`, { headers: { "x-api-key": API_KEY } })).status).toBe(200);
    // A key in the query counts only for the streams (EventSource sends no headers).
    expect((await fetch(`${server!.url}/jobs?api_key=${API_KEY}`)).status).toBe(401);
    const stream = await fetch(`${server!.url}/jobs/${jobId}/events?api_key=${API_KEY}`);
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toContain("text/event-stream");
    await stream.body?.cancel();
    expect((await getJson("/health")).status).toBe(200);
  });
});

describe("cancel", () => {
  it("cancels a queued job at once and a running one through its handle", async () => {
    await start({ concurrency: 1 });
    const runningId = (await (await post("/submit", { repo_url: REPO, task: "one" })).json()).job_id;
    const queuedId = (await (await post("/submit", { repo_url: REPO, task: "two" })).json()).job_id;
    const [task] = await runner.waitForTasks(1);

    const queuedCancel = await post(`/jobs/${queuedId}/cancel`, "");
    expect(await queuedCancel.json()).toEqual({ job_id: queuedId, status: "cancelled" });

    const runningCancel = await post(`/jobs/${runningId}/cancel`, "");
    expect(await runningCancel.json()).toEqual({ job_id: runningId, status: "cancelled" });
    expect(task!.cancelled).toBe(true);
    expect((await getJson(`/status/${runningId}`)).body.error).toMatchObject({ code: "ABORTED" });
    // The cancelled queued job never started.
    expect(runner.tasks).toHaveLength(1);

    const again = await post(`/jobs/${runningId}/cancel`, "");
    expect(again.status).toBe(409);
    expect((await again.json()).error.code).toBe("not_cancellable");
    expect((await post(`/jobs/${runningId}/cancel`, "", {})).status).toBe(401);
  });

  it("a cancelled job can be retried as a new job", async () => {
    await start();
    const jobId = (await (await post("/submit", { repo_url: REPO, task: "again" })).json()).job_id;
    await runner.waitForTasks(1);
    await post(`/jobs/${jobId}/cancel`, "");
    const retried = await (await post(`/jobs/${jobId}/retry`, "")).json();
    expect(retried).toMatchObject({ status: "queued", retry_of: jobId });
    const [, task] = await runner.waitForTasks(2);
    expect(task!.options.task).toBe("again");
    task!.finish({ status: "completed" });
    await waitForStatus(retried.job_id, "completed");
    expect((await getJson(`/status/${jobId}`)).body.retried_by).toBe(retried.job_id);
    const twice = await post(`/jobs/${jobId}/retry`, "");
    expect(twice.status).toBe(409);
    expect((await twice.json()).error.code).toBe("already_retried");
  });
});

describe("server-sent events", () => {
  it("replays past events on connect, streams live ones, and ends with the job", async () => {
    await start();
    const jobId = (await (await post("/submit", { repo_url: REPO, task: "stream" })).json()).job_id;
    const [task] = await runner.waitForTasks(1);

    const streamed = readServerSentEvents(`${server!.url}/jobs/${jobId}/events`, {
      onEvent: (event) => {
        // Finish the job once the replay (4 events and the status) has arrived.
        if (event.event === "status" && event.data.status === "running") task!.finish({ status: "completed" });
      },
    });
    const events = await streamed;
    const agentEvents = events.filter((event) => event.event === "agent-event");
    expect(agentEvents.map((event) => Number(event.id))).toEqual(agentEvents.map((_, index) => index + 1));
    expect(agentEvents[0]!.data).toMatchObject({ type: "phase", phase: "validate", status: "started", taskId: jobId });
    expect(agentEvents.some((event) => event.data.type === "change-request")).toBe(true);
    const statuses = events.filter((event) => event.event === "status").map((event) => event.data.status);
    expect(statuses).toEqual(["running", "completed"]);
    expect(events.at(-1)).toMatchObject({ event: "end", data: { status: "completed" } });

    // Reconnecting with Last-Event-ID gets only what came after it.
    const resumed = await readServerSentEvents(`${server!.url}/jobs/${jobId}/events`, { headers: { "last-event-id": "10" } });
    const resumedIds = resumed.filter((event) => event.event === "agent-event").map((event) => Number(event.id));
    expect(resumedIds).toEqual(agentEvents.map((event) => Number(event.id)).filter((id) => id > 10));
    expect(resumed.at(-1)!.event).toBe("end");
  });
});

describe("the all-jobs status stream", () => {
  it("GET /events tells a job list about every new, started and ended job", async () => {
    await start();
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    let sawAgentPhase!: () => void;
    const agentPhase = new Promise<void>((resolve) => (sawAgentPhase = resolve));
    const received = readServerSentEvents(`${server!.url}/events`, {
      onOpen: () => opened(),
      // Phase changes are published too, so that a list shows the phase the log shows.
      onEvent: (event) => event.data.status === "running" && event.data.phase === "agent" && sawAgentPhase(),
      until: (event) => event.event === "status" && event.data.status === "completed",
    });
    await open;
    const jobId = (await (await post("/submit", { repo_url: REPO, task: "watched" })).json()).job_id;
    const [task] = await runner.waitForTasks(1);
    await agentPhase;
    task!.finish({ status: "completed" });
    const events = await received;
    expect(events.every((event) => event.data.job_id === jobId)).toBe(true);
    expect(events.map((event) => event.data.status).filter((status, index, all) => status !== all[index - 1])).toEqual(["queued", "running", "completed"]);
    expect(events.at(-1)!.data.pr_url).toBe("local://repo/change-requests/1");
  });
});

describe("tokens and restarts", () => {
  it("passes github_token to the task, never writes it to the database or the logs, and redacts it from events", async () => {
    const token = "ghp_secretToken0123456789";
    const logLines: string[] = [];
    await start({ log: (line) => logLines.push(line) });
    const jobId = (await (await post("/submit", { repo_url: REPO, task: "with token", github_token: token })).json()).job_id;
    const [task] = await runner.waitForTasks(1);
    expect(task!.options.gitToken).toBe(token);
    expect(task!.options.secrets).toContain(token);
    // An event that carries the token (a bug upstream) is stored redacted.
    task!.options.onEvent!({ type: "log", level: "info", message: `leaked ${token}`, taskId: jobId, at: Date.now() });
    task!.finish({ status: "completed" });
    await waitForStatus(jobId, "completed");
    const result = (await getJson(`/result/${jobId}`)).body;
    expect(JSON.stringify(result)).not.toContain(token);
    expect(result.logs.some((line: string) => line.includes("leaked [REDACTED]"))).toBe(true);
    await server!.close();
    server = undefined;
    for (const file of await readdir(directory)) {
      expect((await readFile(join(directory, file))).includes(token), file).toBe(false);
    }
    expect(logLines.join("\n")).not.toContain(token);
    expect(logLines.join("\n")).not.toContain(API_KEY);
  });

  it("after a restart: the running job runs again on its branch, queued ones run, a token lost with the process is asked for again", async () => {
    await start({ concurrency: 1 });
    const runningId = (await (await post("/submit", { repo_url: REPO, task: "running" })).json()).job_id;
    const queuedId = (await (await post("/submit", { repo_url: REPO, task: "queued" })).json()).job_id;
    const queuedWithTokenId = (await (await post("/submit", { repo_url: REPO, task: "queued with token", github_token: "ghp_firstToken000" })).json()).job_id;
    const [first] = await runner.waitForTasks(1);
    await server!.close();

    runner = createGatedTaskRunner();
    await start({ concurrency: 1 });
    const [again] = await runner.waitForTasks(1);
    expect(again!.options).toMatchObject({ task: "running", branch: first!.options.branch });
    again!.finish({ status: "completed" });
    expect(await waitForStatus(runningId, "completed")).toMatchObject({ error: null });
    const [, queued] = await runner.waitForTasks(2);
    expect(queued!.options.task).toBe("queued");
    queued!.finish({ status: "completed" });
    await waitForStatus(queuedId, "completed");
    // The embedded store keeps tokens in memory only: the new process cannot run that job.
    const tokenLost = await waitForStatus(queuedWithTokenId, "failed");
    expect(tokenLost).toMatchObject({ error: { code: "SECRET_LOST" } });
    expect(runner.tasks.map((task) => task.options.task)).toEqual(["running", "queued"]);

    const withoutToken = await post(`/jobs/${queuedWithTokenId}/retry`, "");
    expect(withoutToken.status).toBe(409);
    expect(await withoutToken.json()).toMatchObject({ error: { code: "github_token_lost", message: expect.stringContaining("github_token") } });
    const retried = await (await post(`/jobs/${queuedWithTokenId}/retry`, { github_token: "ghp_firstToken000" })).json();
    const [, , retryTask] = await runner.waitForTasks(3);
    expect(retryTask!.options).toMatchObject({ task: "queued with token", gitToken: "ghp_firstToken000" });
    retryTask!.finish({ status: "completed" });
    await waitForStatus(retried.job_id, "completed");
  });
});

describe("leftover sandboxes at startup", () => {
  it("a reap that fails is logged and the server starts and runs its queued job; without reapOrphanSandboxes nothing is reaped", async () => {
    await start({ concurrency: 1 });
    await post("/submit", { repo_url: REPO, task: "running before the restart" });
    const queuedId = (await (await post("/submit", { repo_url: REPO, task: "queued before the restart" })).json()).job_id;
    await runner.waitForTasks(1);
    await server!.close();

    // A real Docker provider whose Engine is not there: reapOrphans rejects.
    const logLines: string[] = [];
    runner = createGatedTaskRunner();
    await start({
      taskDefaults: { sandbox: createDockerSandbox({ docker: { socketPath: join(directory, "no-engine.sock") }, labels: { "running-agent.http-api": "test" } }) },
      reapOrphanSandboxes: true,
      log: (line) => logLines.push(line),
    });
    expect(logLines.join("\n")).toMatch(/could not remove leftover docker sandboxes .*no-engine\.sock/);
    expect((await getJson("/health")).body).toMatchObject({ status: "ok" });
    // The job that was running when the server stopped went back to the queue, ahead of the queued one.
    const [rerun] = await runner.waitForTasks(1);
    expect(rerun!.options.task).toBe("running before the restart");
    rerun!.finish({ status: "completed" });
    const [, task] = await runner.waitForTasks(2);
    expect(task!.options.task).toBe("queued before the restart");
    task!.finish({ status: "completed" });
    await waitForStatus(queuedId, "completed");
    await server!.close();

    // The option is off by default: a provider that has reapOrphans (the local sandbox) is not asked.
    logLines.length = 0;
    await start({ taskDefaults: { sandbox: createLocalSandbox() }, log: (line) => logLines.push(line) });
    expect(logLines.join("\n")).not.toContain("leftover");
  });
});

describe("what the dashboard needs", () => {
  it("GET /config says which repo URLs and advanced fields the server accepts; submit refuses the others and passes the accepted ones to the task", async () => {
    await start({ submitFields: { draft: false, models: ["google/gemini-2.5-flash"] }, repoUrlExample: "/srv/repos/example.git" });
    expect((await getJson("/config")).body).toEqual({
      git_host: { id: null, description: "local: absolute paths", repo_url_example: "/srv/repos/example.git" },
      auth: "api-key",
      protect_reads: false,
      submit: { base_branch: true, draft: false, labels: true, models: ["google/gemini-2.5-flash"] },
      phases: ["validate", "sandbox", "clone", "setup", "agent", "collect", "verify", "commit", "push", "pull-request", "teardown"],
    });
    const refusedDraft = await post("/submit", { repo_url: REPO, task: "x", draft: true });
    expect(refusedDraft.status).toBe(400);
    expect((await refusedDraft.json()).error).toMatchObject({ code: "field_not_allowed", message: expect.stringContaining("draft") });
    const refusedModel = await post("/submit", { repo_url: REPO, task: "x", model: "openai/gpt-5" });
    expect((await refusedModel.json()).error).toMatchObject({ code: "field_not_allowed", message: expect.stringContaining("google/gemini-2.5-flash") });
    expect((await post("/submit", { repo_url: REPO, task: "x", labels: "bug" })).status).toBe(400);
    expect((await getJson("/jobs")).body.jobs).toEqual([]);

    const accepted = await post("/submit", { repo_url: REPO, task: "Advanced", base_branch: "develop", model: "google/gemini-2.5-flash", labels: ["agent", "docs"] });
    expect(accepted.status).toBe(200);
    const [task] = await runner.waitForTasks(1);
    expect(task!.options).toMatchObject({ baseBranch: "develop", model: "google/gemini-2.5-flash", pullRequest: { labels: ["agent", "docs"] } });
    task!.finish({ status: "completed" });
    const { job_id: jobId } = await accepted.json();
    await waitForStatus(jobId, "completed");
    expect((await getJson(`/result/${jobId}`)).body).toMatchObject({ base_branch: "main", model: "scripted/scripted-model", summary: "Wrote the file.", usage: { inputTokens: 10, outputTokens: 5 } });
  });

  it("GET /jobs filters by status, repository, user and text on the server, and pages with offset and next_offset", async () => {
    await start({ concurrency: 1 });
    const submit = async (body: object) => (await (await post("/submit", body)).json()).job_id as string;
    const ids: string[] = [];
    for (let index = 0; index < 5; index += 1) ids.push(await submit({ repo_url: index % 2 === 0 ? REPO : "/srv/repos/other.git", task: `Task number ${index}`, user_id: index < 2 ? "ada" : "bob" }));
    const listed = async (query: string) => ((await getJson(`/jobs?${query}`)).body as { jobs: { job_id: string }[]; next_offset: number | null });
    const idsOf = async (query: string) => (await listed(query)).jobs.map((job) => job.job_id);
    expect(await idsOf("repo_url=%2Fsrv%2Frepos%2Fother.git")).toEqual([ids[3], ids[1]]);
    expect(await idsOf("user_id=ada")).toEqual([ids[1], ids[0]]);
    expect(await idsOf("q=NUMBER%203")).toEqual([ids[3]]);
    expect(await idsOf("q=other&user_id=bob")).toEqual([ids[3]]);
    const firstPage = await listed("limit=2");
    expect(firstPage).toMatchObject({ next_offset: 2 });
    expect(firstPage.jobs.map((job) => job.job_id)).toEqual([ids[4], ids[3]]);
    expect(await listed("limit=2&offset=4")).toMatchObject({ jobs: [{ job_id: ids[0] }], next_offset: null });
    // The first job runs (concurrency 1); the rest wait.
    await runner.waitForTasks(1);
    expect(await idsOf("status=running")).toEqual([ids[0]]);
    expect((await getJson("/jobs?offset=-1")).status).toBe(400);
  });

  it("offers no retry for a job validation refused (it would fail the same way), and one for a later failure", async () => {
    await start();
    const refusedId = (await (await post("/submit", { repo_url: REPO, task: "refused" })).json()).job_id;
    const [refusedTask] = await runner.waitForTasks(1);
    refusedTask!.finish({ error: { code: ErrorCode.BASE_BRANCH_NOT_FOUND, message: "No branch develop." }, phase: "validate" });
    expect(await waitForStatus(refusedId, "failed")).toMatchObject({ retryable: false, error: { phase: "validate" } });
    const retried = await post(`/jobs/${refusedId}/retry`, {});
    expect(retried.status).toBe(409);
    expect((await retried.json()).error).toMatchObject({ code: "not_retryable", message: expect.stringContaining("BASE_BRANCH_NOT_FOUND") });

    const failedId = (await (await post("/submit", { repo_url: REPO, task: "fails later" })).json()).job_id;
    const [, failedTask] = await runner.waitForTasks(2);
    failedTask!.finish({ error: { code: ErrorCode.MODEL_ERROR, message: "The model answered 500." } });
    expect(await waitForStatus(failedId, "failed")).toMatchObject({ retryable: true });
    expect((await post(`/jobs/${failedId}/retry`, {})).status).toBe(200);
    expect((await getJson(`/status/${failedId}`)).body.retryable).toBe(false);
  });

  it("GET /jobs/{id} serves the dashboard's page to a browser (a deep link) and JSON to everyone else", async () => {
    const dashboard = join(directory, "dashboard");
    await mkdir(dashboard);
    await writeFile(join(dashboard, "index.html"), "<!doctype html><title>dashboard</title>");
    await start({ dashboardDirectory: dashboard });
    const { job_id: jobId } = await (await post("/submit", { repo_url: REPO, task: "linked" })).json();
    const page = await fetch(`${server!.url}/jobs/${jobId}`, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toContain("<title>dashboard</title>");
    expect((await getJson(`/jobs/${jobId}`)).body).toMatchObject({ job_id: jobId, task: "linked" });
    const noCommit = await getJson(`/jobs/${jobId}/diff`);
    expect(noCommit).toMatchObject({ status: 409, body: { error: { code: "no_commit" } } });
  });
});

describe("GET /jobs/{job_id}/diff against the local Git host", () => {
  const git = (cwd: string, ...args: string[]) =>
    promisify(execFile)("git", ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", ...args], { cwd, env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" } });

  /** Pushes one commit of `files` on top of main as `branch` (force: it replaces what the branch held) and returns its id. */
  async function pushCommit(repository: TestRepository, branch: string, files: Record<string, string>): Promise<string> {
    const work = await mkdtemp(join(directory, "work-"));
    await git(directory, "clone", "-q", "--branch", "main", repository.path, work);
    for (const [file, content] of Object.entries(files)) await writeFile(join(work, file), content);
    await git(work, "add", "-A");
    await git(work, "commit", "-q", "-m", `Change on ${branch}`);
    await git(work, "push", "-q", "--force", "origin", `HEAD:refs/heads/${branch}`);
    const commit = (await git(work, "rev-parse", "HEAD")).stdout.trim();
    await rm(work, { recursive: true, force: true });
    return commit;
  }

  /** Submits a job and finishes it as the gated runner's task with `branch` and `commit` as its pushed result. */
  async function jobWithCommit(repository: TestRepository, branch: string, commit: string): Promise<string> {
    const started = runner.tasks.length;
    const { job_id: jobId } = await (await post("/submit", { repo_url: repository.path, task: `diff of ${branch}` })).json();
    const tasks = await runner.waitForTasks(started + 1);
    tasks.at(-1)!.finish({ status: "completed", branch, commit });
    await waitForStatus(jobId, "completed");
    return jobId;
  }

  it("answers 413 diff_too_large over the server's limit, and 409 commit_not_found once the branch no longer holds the commit (force-pushed or deleted)", async () => {
    const repository = await createTestRepository({ "README.md": "# Sample\n" }, { parent: directory });
    // A limit of 2 KiB: a one-line change fits, a 4 KiB file does not.
    await start({ taskDefaults: { gitHost: createLocalGitHost() }, diffLimitBytes: 2048 });

    const small = await jobWithCommit(repository, "agent/small", await pushCommit(repository, "agent/small", { "note.md": "A short note.\n" }));
    const smallDiff = await fetch(`${server!.url}/jobs/${small}/diff`);
    expect(smallDiff.status).toBe(200);
    expect(await smallDiff.text()).toContain("+A short note.");

    const large = await jobWithCommit(repository, "agent/large", await pushCommit(repository, "agent/large", { "large.txt": "x".repeat(63).concat("\n").repeat(64) }));
    expect(await getJson(`/jobs/${large}/diff`)).toMatchObject({ status: 413, body: { error: { code: "diff_too_large", message: expect.stringContaining("larger than 2048 bytes") } } });

    // The job's commit, then the branch force-pushed to another commit: the job's commit is no longer on it.
    const replaced = await jobWithCommit(repository, "agent/replaced", await pushCommit(repository, "agent/replaced", { "note.md": "First try.\n" }));
    await pushCommit(repository, "agent/replaced", { "note.md": "Second try.\n" });
    expect(await getJson(`/jobs/${replaced}/diff`)).toMatchObject({ status: 409, body: { error: { code: "commit_not_found", message: expect.stringContaining("branch agent/replaced") } } });

    // The branch deleted after the job (say, the pull request was merged and its branch removed).
    await repository.git("branch", "-D", "agent/small");
    const deleted = await jobWithCommit(repository, "agent/small", (await getJson(`/result/${small}`)).body.commit);
    expect(await getJson(`/jobs/${deleted}/diff`)).toMatchObject({ status: 409, body: { error: { code: "commit_not_found", message: expect.stringContaining("agent/small no longer exists") } } });
    // Served once, a diff is kept: the first job's diff still answers from memory.
    expect((await fetch(`${server!.url}/jobs/${small}/diff`)).status).toBe(200);
  });
});
