import { revParse } from "./git-plumbing.js";
import { basicError, notFound, validationFailed } from "./github-http-error.js";
import { integrationJson, type JsonUrls } from "./github-json.js";
import { isSafeRef, page, type RouteKit, type RouteRequest } from "./github-rest-api.js";
import type { ServerApp, ServerCheckRun, ServerRepository } from "./github-server-model.js";

const STATUSES: ReadonlyArray<ServerCheckRun["status"]> = ["queued", "in_progress", "completed"];
const CONCLUSIONS: ReadonlyArray<NonNullable<ServerCheckRun["conclusion"]>> = ["success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required"];

/**
 * Check runs (`checks/create`, `checks/update`, `checks/get`, `checks/list-for-ref`). As on
 * GitHub, only a GitHub App (an installation token with `checks: write`) creates and updates
 * them, and only its own; a personal access token is answered 403.
 */
export function addCheckRunRoutes(kit: RouteKit): void {
  const { state, add, repositoryFor } = kit;

  /** The App behind the request's installation token, allowed to write checks; 403 otherwise. */
  const writingApp = (request: RouteRequest): ServerApp => {
    const caller = request.caller;
    if (caller.kind !== "token" || caller.record.kind !== "installation") throw basicError(403, "You must authenticate via a GitHub App.");
    const app = [...state.apps.values()].find((candidate) => candidate.mintedTokens.includes(caller.record.token));
    if (!app || caller.record.installationPermissions?.checks !== "write") throw basicError(403, "Resource not accessible by integration");
    return app;
  };
  /** Applies `status`, `conclusion`, times, output and links from a create or update body. */
  const apply = (run: ServerCheckRun, body: Record<string, unknown>) => {
    const { status, conclusion, started_at: startedAt, completed_at: completedAt, output, details_url: detailsUrl, external_id: externalId } = body;
    if (status !== undefined && !STATUSES.includes(status as ServerCheckRun["status"])) throw validationFailed([{ resource: "CheckRun", field: "status", code: "invalid" }]);
    if (conclusion !== undefined && !CONCLUSIONS.includes(conclusion as NonNullable<ServerCheckRun["conclusion"]>)) throw validationFailed([{ resource: "CheckRun", field: "conclusion", code: "invalid" }]);
    // GitHub marks a run completed when a conclusion is given, and wants one for a completed run.
    const nextStatus = conclusion !== undefined ? "completed" : ((status as ServerCheckRun["status"] | undefined) ?? run.status);
    if (nextStatus === "completed" && conclusion === undefined && run.conclusion === null) {
      throw validationFailed([{ resource: "CheckRun", code: "custom", field: "conclusion", message: "conclusion is required when status is completed" }]);
    }
    if (output !== undefined) {
      const given = output as Record<string, unknown> | null;
      if (typeof given !== "object" || given === null || typeof given.title !== "string" || typeof given.summary !== "string") {
        throw validationFailed([{ resource: "CheckRun", field: "output", code: "custom", message: "output needs a title and a summary" }]);
      }
      if (given.summary.length > 65535) throw validationFailed([{ resource: "CheckRun", field: "output.summary", code: "custom", message: "summary is too long (maximum is 65535 characters)" }]);
      run.output = { title: given.title, summary: given.summary, text: typeof given.text === "string" ? given.text : null };
    }
    run.status = nextStatus;
    if (conclusion !== undefined) run.conclusion = conclusion as ServerCheckRun["conclusion"];
    if (typeof startedAt === "string") run.startedAt = startedAt;
    else if (nextStatus !== "queued" && run.startedAt === null) run.startedAt = state.now();
    if (typeof completedAt === "string") run.completedAt = completedAt;
    else if (nextStatus === "completed" && run.completedAt === null) run.completedAt = state.now();
    if (typeof detailsUrl === "string") run.detailsUrl = detailsUrl;
    if (typeof externalId === "string") run.externalId = externalId;
  };
  const runFor = (repository: ServerRepository, id: string | undefined) => {
    const run = repository.checkRuns.get(Number(id));
    if (!run) throw notFound();
    return run;
  };

  add("POST", "/repos/{owner}/{repo}/check-runs", async (request) => {
    const repository = repositoryFor(request);
    const app = writingApp(request);
    if (repository.archived) throw basicError(403, "Repository was archived so is read-only.");
    const { name, head_sha: headSha } = request.body;
    if (typeof name !== "string" || name.trim() === "") throw validationFailed([{ resource: "CheckRun", field: "name", code: "missing_field" }]);
    if (typeof headSha !== "string" || !/^[0-9a-f]{40}$/.test(headSha) || !(await revParse(repository.gitDir, headSha))) {
      throw validationFailed([{ resource: "CheckRun", field: "head_sha", code: "invalid", message: "No commit found for SHA: " + String(headSha) }]);
    }
    const run: ServerCheckRun = { id: state.nextId(), appId: app.appId, name, headSha, status: "queued", conclusion: null, startedAt: null, completedAt: null, externalId: null, detailsUrl: null, output: { title: null, summary: null, text: null } };
    apply(run, request.body);
    repository.checkRuns.set(run.id, run);
    return { status: 201, body: await checkRunJson(kit, repository, run) };
  });

  add("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", async (request) => {
    const repository = repositoryFor(request);
    const app = writingApp(request);
    const run = runFor(repository, request.params.check_run_id);
    if (run.appId !== app.appId) throw basicError(403, "Invalid app_id `" + app.appId + "` - check run can only be modified by the GitHub App that created it.");
    apply(run, request.body);
    return { status: 200, body: await checkRunJson(kit, repository, run) };
  });

  add("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", async (request) => {
    const repository = repositoryFor(request);
    return { status: 200, body: await checkRunJson(kit, repository, runFor(repository, request.params.check_run_id)) };
  });

  add("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", async (request) => {
    const repository = repositoryFor(request);
    const ref = request.params.ref!;
    const sha = /^[0-9a-f]{40}$/.test(ref) ? ref : isSafeRef(ref) ? await revParse(repository.gitDir, `refs/heads/${ref}`) : undefined;
    if (!sha) throw validationFailed([{ resource: "Commit", field: "ref", code: "invalid", message: `No commit found for SHA: ${ref}` }]);
    const name = request.query.get("check_name");
    const status = request.query.get("status");
    // Newest first, as GitHub lists them.
    const runs = [...repository.checkRuns.values()].filter((run) => run.headSha === sha && (!name || run.name === name) && (!status || run.status === status)).reverse();
    return { status: 200, body: { total_count: runs.length, check_runs: await Promise.all(page(request.query, runs).map((run) => checkRunJson(kit, repository, run))) } };
  });
}

/** GitHub's `check-run`, with the open pull requests whose head is its commit. */
async function checkRunJson(kit: RouteKit, repository: ServerRepository, run: ServerCheckRun) {
  const urls: JsonUrls = kit.state.urls;
  const fullName = `${repository.owner}/${repository.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const app = kit.state.apps.get(run.appId)!;
  const repo = { id: repository.id, url: api, name: repository.name };
  const pullRequests = [];
  for (const issue of repository.issues.values()) {
    if (!issue.pull || issue.state !== "open") continue;
    const headSha = await revParse(repository.gitDir, `refs/heads/${issue.pull.head}`);
    if (headSha !== run.headSha) continue;
    const baseSha = (await revParse(repository.gitDir, `refs/heads/${issue.pull.base}`)) ?? "0".repeat(40);
    pullRequests.push({ id: issue.id, number: issue.number, url: `${api}/pulls/${issue.number}`, head: { ref: issue.pull.head, sha: headSha, repo }, base: { ref: issue.pull.base, sha: baseSha, repo } });
  }
  return {
    id: run.id,
    head_sha: run.headSha,
    node_id: Buffer.from(`CheckRun:${run.id}`).toString("base64url"),
    external_id: run.externalId,
    url: `${api}/check-runs/${run.id}`,
    html_url: `${urls.web}/${fullName}/runs/${run.id}`,
    details_url: run.detailsUrl,
    status: run.status,
    conclusion: run.conclusion,
    started_at: run.startedAt,
    completed_at: run.completedAt,
    output: { ...run.output, annotations_count: 0, annotations_url: `${api}/check-runs/${run.id}/annotations` },
    name: run.name,
    check_suite: { id: run.id + 1_000_000 },
    app: integrationJson(urls, app, kit.state.startedAt),
    pull_requests: pullRequests,
  };
}
