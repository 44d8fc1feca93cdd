import type { TestRepository } from "@running-agent/core/offline";
import { protectionRuleCovers } from "../protection-rule.js";
import type { ServerUser } from "./gitlab-json.js";

/** GitLab's roles by access level. */
export const AccessLevel = {
  /** 10: sees the project, can comment on issues. */
  guest: 10,
  /** 20: reads the code and manages issues and labels. */
  reporter: 20,
  /** 30: pushes to unprotected branches and opens merge requests. */
  developer: 30,
  /** 40: pushes to protected branches and changes the project's settings. */
  maintainer: 40,
  /** 50: everything, including deleting the project. */
  owner: 50,
} as const;
/** A role name or a numeric access level. */
export type Role = keyof typeof AccessLevel | number;

/** A token the server accepts. */
export interface ServerToken {
  token: string;
  userId: number;
  kind: "personal" | "project" | "group";
  /** `api`, `read_api`, `read_repository`, `write_repository`. */
  scopes: string[];
  expiresAt?: number;
  revoked: boolean;
}

/** A merge request as the server holds it. */
export interface ServerMergeRequest {
  id: number;
  iid: number;
  title: string;
  description: string;
  state: "opened" | "closed" | "merged";
  sourceBranch: string;
  targetBranch: string;
  authorId: number;
  labels: string[];
  assigneeIds: number[];
  reviewerIds: number[];
  createdAt: string;
  updatedAt: string;
}

/** An external commit status (`POST /projects/:id/statuses/:sha`). */
export interface ServerCommitStatus {
  id: number;
  sha: string;
  ref: string;
  name: string;
  status: "pending" | "running" | "success" | "failed" | "canceled";
  description: string | null;
  targetUrl: string | null;
  authorId: number;
  createdAt: string;
}

/** An issue and its comments (notes), for bots that answer on issues. */
export interface ServerIssue {
  id: number;
  iid: number;
  title: string;
  description: string;
  authorId: number;
  labels: string[];
  createdAt: string;
  notes: Array<{ id: number; body: string; authorId: number; createdAt: string }>;
}

/** A project webhook: where GitLab POSTs events, with the secret token it sends as `X-Gitlab-Token`. */
export interface ServerWebhook {
  url: string;
  token: string | undefined;
  /** `note` (Note Hook) and `issues` (Issue Hook). */
  events: Set<"note" | "issues">;
}

/** A project: its bare repository, members, protected branches and merge requests. */
export interface ServerProject {
  id: number;
  /** `group/sub/project`. */
  path: string;
  repository: TestRepository;
  /** Where git http-backend finds it, relative to the server's root. */
  gitPath: string;
  defaultBranch: string;
  archived: boolean;
  visibility: "private" | "internal" | "public";
  description: string | null;
  createdAt: string;
  /** Direct members: user id to access level. */
  members: Map<number, number>;
  /**
   * Protection rules: a branch name, exact or with `*` wildcards (`release/*`), to GitLab's push
   * access level (30 Developer, 40 Maintainer, 60 Admin, 0 No one; GitLab's default: Maintainer).
   */
  protectedBranches: Map<string, number>;
  mergeRequests: Map<number, ServerMergeRequest>;
  issues: Map<number, ServerIssue>;
  webhooks: ServerWebhook[];
  /** Commit statuses, oldest first. */
  statuses: ServerCommitStatus[];
}

/** What the routes and the git handler share. */
export interface GitLabState {
  webUrl: string;
  users: Map<number, ServerUser>;
  tokens: Map<string, ServerToken>;
  projects: Map<string, ServerProject>;
  /** Group path (lower case) to members: user id to access level. Inherited by subgroups and their projects. */
  groups: Map<string, Map<number, number>>;
  nextId: () => number;
  now: () => string;
}

/** The highest of the caller's direct project access and its inherited group access. */
export function accessLevels(state: GitLabState, project: ServerProject, userId: number | undefined): { project: number; group: number } {
  if (userId === undefined) return { project: 0, group: 0 };
  let group = 0;
  const segments = project.path.toLowerCase().split("/");
  for (let length = 1; length < segments.length; length++) {
    group = Math.max(group, state.groups.get(segments.slice(0, length).join("/"))?.get(userId) ?? 0);
  }
  return { project: project.members.get(userId) ?? 0, group };
}

export function accessLevel(state: GitLabState, project: ServerProject, userId: number | undefined): number {
  const levels = accessLevels(state, project, userId);
  return Math.max(levels.project, levels.group);
}

export function levelOf(role: Role): number {
  return typeof role === "number" ? role : AccessLevel[role];
}

/** GitLab's rule for a branch several rules cover: the most permissive decides. `undefined` when the branch is not protected. */
export function mayPushProtected(project: ServerProject, branch: string, level: number): boolean | undefined {
  const pushLevels = [...project.protectedBranches].filter(([rule]) => protectionRuleCovers(rule, branch)).map(([, pushLevel]) => pushLevel);
  if (pushLevels.length === 0) return undefined;
  return pushLevels.some((pushLevel) => pushLevel !== NO_ONE && level >= pushLevel);
}

/** The push access level "No one". */
export const NO_ONE = 0;

