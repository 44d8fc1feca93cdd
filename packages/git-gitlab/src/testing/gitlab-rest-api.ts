import { accessLevel, accessLevels, AccessLevel, mayPushProtected, NO_ONE, type GitLabState, type ServerCommitStatus, type ServerIssue, type ServerMergeRequest, type ServerProject, type ServerToken } from "./gitlab-server-state.js";
import { userBasicJson, type BranchJson, type CommitStatusJson, type CurrentUserJson, type IssueNoteJson, type MemberJson, type MergeRequestJson, type ProjectJson, type ProtectedBranchJson, type ServerUser } from "./gitlab-json.js";

/** An HTTP answer with GitLab's error body, thrown by route handlers. */
export class GitLabHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${status}`);
  }
}

/** GitLab's `{ "message": "404 Project Not Found" }` shape. */
export const messageError = (status: number, message: unknown) => new GitLabHttpError(status, { message });
const unauthorized = () => messageError(401, "401 Unauthorized");
const forbidden = () => messageError(403, "403 Forbidden");
const projectNotFound = () => messageError(404, "404 Project Not Found");
/** Grape's answer for a missing required parameter. */
const missing = (name: string) => new GitLabHttpError(400, { error: `${name} is missing` });

/** Who is calling: a valid token, or nobody. */
export type Caller = { kind: "anonymous" } | { kind: "token"; token: ServerToken; user: ServerUser };

export interface RouteInput {
  caller: Caller;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

export interface Route {
  method: string;
  /** GitLab's path template, e.g. `/projects/:id/merge_requests`. */
  template: string;
  segments: string[];
  write: boolean;
  handle: (input: RouteInput) => Promise<{ status: number; body: unknown }> | { status: number; body: unknown };
}

/** The caller a request's `PRIVATE-TOKEN` or `Authorization: Bearer` header names; 401 for a token GitLab would not take. */
export function callerFor(state: GitLabState, headers: Record<string, string | string[] | undefined>): Caller {
  const privateToken = headers["private-token"];
  const authorization = headers.authorization;
  const given = typeof privateToken === "string" ? privateToken : typeof authorization === "string" && /^bearer\s/i.test(authorization) ? authorization.replace(/^bearer\s+/i, "") : undefined;
  if (given === undefined) return { kind: "anonymous" };
  const token = findToken(state, given);
  if (!token) throw unauthorized();
  return { kind: "token", token, user: state.users.get(token.userId)! };
}

/** A token that is known, not revoked and not expired. */
export function findToken(state: GitLabState, given: string): ServerToken | undefined {
  const token = state.tokens.get(given);
  if (!token || token.revoked || (token.expiresAt !== undefined && token.expiresAt <= Date.now())) return undefined;
  return token;
}

/** Whether a token's scopes allow REST reads, REST writes, git reads or git writes. */
export function hasScope(token: ServerToken, need: "read_api" | "api" | "read_repository" | "write_repository"): boolean {
  const scopes = new Set(token.scopes);
  if (scopes.has("api")) return true;
  if (need === "read_api") return scopes.has("read_api");
  if (need === "read_repository") return scopes.has("read_repository") || scopes.has("write_repository");
  if (need === "write_repository") return scopes.has("write_repository");
  return false;
}

export const insufficientScope = (scope: string) =>
  new GitLabHttpError(403, { error: "insufficient_scope", error_description: "The request requires higher privileges than provided by the access token.", scope });

/** The REST v4 operations the adapter calls, plus `GET .../merge_requests/:iid` for tests that read back. */
export function createRestRoutes(
  state: GitLabState,
  git: { branch: (project: ServerProject, name: string) => Promise<BranchCommit | undefined>; commitExists: (project: ServerProject, sha: string) => Promise<boolean> },
): Route[] {
  const routes: Route[] = [];
  const add = (method: string, template: string, handle: Route["handle"]) =>
    routes.push({ method, template, segments: template.split("/").filter(Boolean), write: method !== "GET", handle });

  const userOf = (caller: Caller) => (caller.kind === "token" ? caller.user : undefined);
  const projectFor = (caller: Caller, id: string): ServerProject => {
    const project = /^\d+$/.test(id) ? [...state.projects.values()].find((candidate) => candidate.id === Number(id)) : state.projects.get(id.toLowerCase());
    if (!project) throw projectNotFound();
    if (project.visibility !== "public" && accessLevel(state, project, userOf(caller)?.id) < AccessLevel.guest) throw projectNotFound();
    return project;
  };
  const requireLevel = (caller: Caller, project: ServerProject, level: number) => {
    if (caller.kind === "anonymous") throw unauthorized();
    if (accessLevel(state, project, caller.user.id) < level) throw forbidden();
  };
  const userJson = (id: number) => userBasicJson(state.users.get(id)!, state.webUrl);
  const mergeRequestJson = (project: ServerProject, mergeRequest: ServerMergeRequest, sha: string): MergeRequestJson => {
    const draft = DRAFT.test(mergeRequest.title);
    const assignees = mergeRequest.assigneeIds.map(userJson);
    return {
      id: mergeRequest.id,
      iid: mergeRequest.iid,
      project_id: project.id,
      title: mergeRequest.title,
      description: mergeRequest.description,
      state: mergeRequest.state,
      created_at: mergeRequest.createdAt,
      updated_at: mergeRequest.updatedAt,
      merged_at: null,
      closed_at: null,
      web_url: `${state.webUrl}/${project.path}/-/merge_requests/${mergeRequest.iid}`,
      target_branch: mergeRequest.targetBranch,
      source_branch: mergeRequest.sourceBranch,
      source_project_id: project.id,
      target_project_id: project.id,
      labels: [...mergeRequest.labels],
      draft,
      work_in_progress: draft,
      merge_status: "can_be_merged",
      sha,
      reference: `!${mergeRequest.iid}`,
      references: { short: `!${mergeRequest.iid}`, relative: `!${mergeRequest.iid}`, full: `${project.path}!${mergeRequest.iid}` },
      author: userJson(mergeRequest.authorId),
      assignee: assignees[0] ?? null,
      assignees,
      reviewers: mergeRequest.reviewerIds.map(userJson),
    };
  };
  const shaOf = async (project: ServerProject, branch: string) => (await git.branch(project, branch))?.id ?? "";
  const memberIds = (project: ServerProject, ids: unknown): number[] => {
    const list = Array.isArray(ids) ? ids : ids === undefined || ids === null ? [] : [ids];
    // GitLab drops ids of users who may not be assigned (not members of the project).
    return [...new Set(list.map(Number))].filter((id) => state.users.has(id) && accessLevel(state, project, id) >= AccessLevel.guest);
  };
  const labelList = (value: unknown): string[] =>
    (Array.isArray(value) ? value.map(String) : typeof value === "string" ? value.split(",") : []).map((label) => label.trim()).filter(Boolean);

  add("GET", "/user", ({ caller }) => {
    const user = userOf(caller);
    if (!user) throw unauthorized();
    const json: CurrentUserJson = { ...userBasicJson(user, state.webUrl), created_at: user.createdAt, bot: user.bot, email: user.email, commit_email: user.email, public_email: null };
    return { status: 200, body: json };
  });

  add("GET", "/users", ({ query }) => {
    const username = query.get("username");
    const users = [...state.users.values()].filter((user) => username === null || user.username.toLowerCase() === username.toLowerCase());
    return { status: 200, body: users.map((user) => userBasicJson(user, state.webUrl)) };
  });

  add("GET", "/projects/:id", ({ caller, params }) => {
    const project = projectFor(caller, params.id!);
    const levels = accessLevels(state, project, userOf(caller)?.id);
    const access = (level: number) => (level > 0 ? { access_level: level, notification_level: 3 } : null);
    const name = project.path.split("/").pop()!;
    const namespacePath = project.path.slice(0, project.path.lastIndexOf("/"));
    const json: ProjectJson = {
      id: project.id,
      name,
      path: name,
      description: project.description,
      name_with_namespace: project.path.split("/").join(" / "),
      path_with_namespace: project.path,
      created_at: project.createdAt,
      default_branch: project.defaultBranch,
      ssh_url_to_repo: `git@${new URL(state.webUrl).hostname}:${project.path}.git`,
      http_url_to_repo: `${state.webUrl}/${project.path}.git`,
      web_url: `${state.webUrl}/${project.path}`,
      visibility: project.visibility,
      archived: project.archived,
      empty_repo: false,
      merge_requests_enabled: true,
      namespace: { id: project.id + 100_000, name: namespacePath.split("/").pop()!, path: namespacePath.split("/").pop()!, kind: "group", full_path: namespacePath, avatar_url: null, web_url: `${state.webUrl}/groups/${namespacePath}` } as ProjectJson["namespace"],
      permissions: { project_access: access(levels.project), group_access: access(levels.group) },
    };
    return { status: 200, body: json };
  });

  add("GET", "/projects/:id/repository/branches/:branch", async ({ caller, params }) => {
    const project = projectFor(caller, params.id!);
    const branch = params.branch!;
    const commit = await git.branch(project, branch);
    if (!commit) throw messageError(404, "404 Branch Not Found");
    const level = accessLevel(state, project, userOf(caller)?.id);
    const developersMayPush = mayPushProtected(project, branch, AccessLevel.developer);
    const json: BranchJson = {
      name: branch,
      merged: false,
      protected: developersMayPush !== undefined,
      default: branch === project.defaultBranch,
      developers_can_push: developersMayPush ?? true,
      developers_can_merge: developersMayPush ?? true,
      can_push: mayPushProtected(project, branch, level) ?? level >= AccessLevel.developer,
      web_url: `${state.webUrl}/${project.path}/-/tree/${branch}`,
      commit,
    };
    return { status: 200, body: json };
  });

  // GitLab lets only Maintainers read the rules (its read_protected_branch policy); a Developer gets 403.
  add("GET", "/projects/:id/protected_branches", ({ caller, params }) => {
    const project = projectFor(caller, params.id!);
    requireLevel(caller, project, AccessLevel.maintainer);
    const accessJson = (level: number) => ({
      id: state.nextId(),
      access_level: level as 0 | 30 | 40 | 60,
      access_level_description: level === NO_ONE ? "No one" : level >= 60 ? "Admins" : level >= AccessLevel.maintainer ? "Maintainers" : "Developers + Maintainers",
      user_id: null,
      group_id: null,
    });
    const rules = [...project.protectedBranches].map(([name, pushLevel], index): ProtectedBranchJson => ({
      id: project.id * 1000 + index + 1,
      name,
      push_access_levels: [accessJson(pushLevel)],
      merge_access_levels: [accessJson(AccessLevel.maintainer)],
      allow_force_push: false,
      code_owner_approval_required: false,
    }));
    return { status: 200, body: rules };
  });

  add("GET", "/projects/:id/members/all/:user_id", ({ caller, params }) => {
    const project = projectFor(caller, params.id!);
    const user = state.users.get(Number(params.user_id));
    const level = user ? accessLevel(state, project, user.id) : 0;
    if (!user || level === 0) throw messageError(404, "404 Member Not Found");
    const json: MemberJson = { ...userBasicJson(user, state.webUrl), access_level: level as MemberJson["access_level"], created_at: user.createdAt, expires_at: null };
    return { status: 200, body: json };
  });

  const issueFor = (project: ServerProject, iid: string) => {
    const issue = project.issues.get(Number(iid));
    if (!issue) throw messageError(404, "404 Issue Not Found");
    return issue;
  };
  const noteJson = (project: ServerProject, issue: ServerIssue, note: ServerIssue["notes"][number]): IssueNoteJson => ({
    id: note.id,
    body: note.body,
    attachment: null,
    author: userJson(note.authorId),
    created_at: note.createdAt,
    updated_at: note.createdAt,
    system: false,
    noteable_id: issue.id,
    noteable_type: "Issue",
    noteable_iid: issue.iid,
    project_id: project.id,
    resolvable: false,
  });

  add("GET", "/projects/:id/issues/:issue_iid/notes", ({ caller, params }) => {
    const project = projectFor(caller, params.id!);
    const issue = issueFor(project, params.issue_iid!);
    return { status: 200, body: issue.notes.map((note) => noteJson(project, issue, note)) };
  });

  add("POST", "/projects/:id/issues/:issue_iid/notes", ({ caller, params, body }) => {
    const project = projectFor(caller, params.id!);
    requireLevel(caller, project, AccessLevel.guest);
    if (project.archived) throw forbidden();
    const issue = issueFor(project, params.issue_iid!);
    if (typeof body.body !== "string" || body.body.trim() === "") throw missing("body");
    const note = { id: state.nextId(), body: body.body, authorId: (caller as { user: ServerUser }).user.id, createdAt: state.now() };
    issue.notes.push(note);
    return { status: 201, body: noteJson(project, issue, note) };
  });

  add("GET", "/projects/:id/merge_requests", async ({ caller, params, query }) => {
    const project = projectFor(caller, params.id!);
    const wanted = query.get("state");
    const source = query.get("source_branch");
    const target = query.get("target_branch");
    const list = [...project.mergeRequests.values()]
      .filter((mergeRequest) => (!wanted || wanted === "all" || mergeRequest.state === wanted) && (!source || mergeRequest.sourceBranch === source) && (!target || mergeRequest.targetBranch === target))
      .sort((a, b) => b.iid - a.iid);
    return { status: 200, body: await Promise.all(list.map(async (mergeRequest) => mergeRequestJson(project, mergeRequest, await shaOf(project, mergeRequest.sourceBranch)))) };
  });

  add("GET", "/projects/:id/merge_requests/:iid", async ({ caller, params }) => {
    const project = projectFor(caller, params.id!);
    const mergeRequest = project.mergeRequests.get(Number(params.iid));
    if (!mergeRequest) throw messageError(404, "404 Not found");
    return { status: 200, body: mergeRequestJson(project, mergeRequest, await shaOf(project, mergeRequest.sourceBranch)) };
  });

  add("POST", "/projects/:id/merge_requests", async ({ caller, params, body }) => {
    const project = projectFor(caller, params.id!);
    requireLevel(caller, project, AccessLevel.developer);
    if (project.archived) throw forbidden();
    for (const name of ["source_branch", "target_branch", "title"]) {
      if (typeof body[name] !== "string" || (body[name] as string) === "") throw missing(name);
    }
    const sourceBranch = body.source_branch as string;
    const targetBranch = body.target_branch as string;
    if (sourceBranch === targetBranch) throw messageError(422, ["You can't use same project/branch for source and target"]);
    const sourceSha = await shaOf(project, sourceBranch);
    const missingBranches: Record<string, string[]> = {};
    if (!sourceSha) missingBranches.source_branch = ["does not exist"];
    if (!(await shaOf(project, targetBranch))) missingBranches.target_branch = ["does not exist"];
    if (Object.keys(missingBranches).length > 0) throw messageError(400, missingBranches);
    const existing = [...project.mergeRequests.values()].find((mergeRequest) => mergeRequest.state === "opened" && mergeRequest.sourceBranch === sourceBranch);
    if (existing) throw messageError(409, [`Another open merge request already exists for this source branch: !${existing.iid}`]);
    const now = state.now();
    const iid = project.mergeRequests.size + 1;
    const assigneeIds = memberIds(project, body.assignee_ids ?? body.assignee_id);
    const mergeRequest: ServerMergeRequest = {
      id: state.nextId(),
      iid,
      title: body.title as string,
      description: typeof body.description === "string" ? body.description : "",
      state: "opened",
      sourceBranch,
      targetBranch,
      authorId: (caller as { user: ServerUser }).user.id,
      labels: [...new Set(labelList(body.labels))],
      assigneeIds,
      reviewerIds: memberIds(project, body.reviewer_ids),
      createdAt: now,
      updatedAt: now,
    };
    project.mergeRequests.set(iid, mergeRequest);
    return { status: 201, body: mergeRequestJson(project, mergeRequest, sourceSha) };
  });

  add("PUT", "/projects/:id/merge_requests/:iid", async ({ caller, params, body }) => {
    const project = projectFor(caller, params.id!);
    const mergeRequest = project.mergeRequests.get(Number(params.iid));
    if (!mergeRequest) throw messageError(404, "404 Not found");
    requireLevel(caller, project, AccessLevel.developer);
    if (project.archived) throw forbidden();
    if (typeof body.title === "string") {
      if (body.title.trim() === "") throw messageError(400, { title: ["can't be blank"] });
      mergeRequest.title = body.title;
    }
    if (typeof body.description === "string") mergeRequest.description = body.description;
    if (typeof body.target_branch === "string") {
      if (!(await shaOf(project, body.target_branch))) throw messageError(400, { target_branch: ["does not exist"] });
      mergeRequest.targetBranch = body.target_branch;
    }
    if (body.labels !== undefined) mergeRequest.labels = [...new Set(labelList(body.labels))];
    if (body.add_labels !== undefined) mergeRequest.labels = [...new Set([...mergeRequest.labels, ...labelList(body.add_labels)])];
    if (body.remove_labels !== undefined) {
      const removed = new Set(labelList(body.remove_labels));
      mergeRequest.labels = mergeRequest.labels.filter((label) => !removed.has(label));
    }
    if (body.assignee_ids !== undefined) mergeRequest.assigneeIds = memberIds(project, body.assignee_ids);
    if (body.reviewer_ids !== undefined) mergeRequest.reviewerIds = memberIds(project, body.reviewer_ids);
    if (body.state_event === "close") mergeRequest.state = "closed";
    if (body.state_event === "reopen") mergeRequest.state = "opened";
    mergeRequest.updatedAt = state.now();
    return { status: 200, body: mergeRequestJson(project, mergeRequest, await shaOf(project, mergeRequest.sourceBranch)) };
  });

  const statusJson = (status: ServerCommitStatus): CommitStatusJson => ({
    id: status.id,
    sha: status.sha,
    ref: status.ref,
    status: status.status,
    name: status.name,
    target_url: status.targetUrl as string,
    description: status.description ?? undefined,
    created_at: status.createdAt,
    started_at: null,
    finished_at: status.status === "success" || status.status === "failed" || status.status === "canceled" ? status.createdAt : null,
    allow_failure: false,
    coverage: null,
    pipeline_id: null,
    author: userJson(status.authorId),
  });

  add("POST", "/projects/:id/statuses/:sha", async ({ caller, params, body }) => {
    const project = projectFor(caller, params.id!);
    requireLevel(caller, project, AccessLevel.developer);
    // The states gitbeaker declares (CommitablePipelineStatus); newer GitLab also takes `skipped`.
    const states = ["pending", "running", "success", "failed", "canceled"];
    if (typeof body.state !== "string") throw missing("state");
    if (!states.includes(body.state)) throw new GitLabHttpError(400, { error: "state does not have a valid value" });
    if (!(await git.commitExists(project, params.sha!))) throw messageError(404, "404 Commit Not Found");
    const status: ServerCommitStatus = {
      id: state.nextId(),
      sha: params.sha!,
      ref: typeof body.ref === "string" ? body.ref : project.defaultBranch,
      name: typeof body.name === "string" ? body.name : typeof body.context === "string" ? body.context : "default",
      status: body.state as ServerCommitStatus["status"],
      description: typeof body.description === "string" ? body.description.slice(0, 255) : null,
      targetUrl: typeof body.target_url === "string" ? body.target_url : null,
      authorId: (caller as { user: ServerUser }).user.id,
      createdAt: state.now(),
    };
    project.statuses.push(status);
    return { status: 201, body: statusJson(status) };
  });

  add("GET", "/projects/:id/repository/commits/:sha/statuses", ({ caller, params, query }) => {
    const project = projectFor(caller, params.id!);
    const name = query.get("name");
    const statuses = project.statuses.filter((status) => status.sha === params.sha && (name === null || status.name === name)).reverse();
    return { status: 200, body: statuses.map(statusJson) };
  });

  return routes;
}

/** A branch's head commit, in the shape of GitLab's branch entity. */
export type BranchCommit = BranchJson["commit"];

/** GitLab's draft markers at the start of a title. */
export const DRAFT = /^\s*(?:\[draft\]|\(draft\)|draft:)/i;
