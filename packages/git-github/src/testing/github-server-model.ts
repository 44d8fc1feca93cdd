/** The records the local GitHub-compatible server keeps in memory. */

/** What a user token may do on the repositories it reaches. */
export type RepositoryPermission = "pull" | "push" | "admin";

/** A token the server accepts. */
export interface ServerToken {
  token: string;
  /** The user (or `APP-SLUG[bot]`) the token acts as. */
  login: string;
  kind: "user" | "installation";
  permission: RepositoryPermission;
  /** `all`, or the lower-cased `owner/name` of every repository it reaches. */
  repositories: "all" | Set<string>;
  /** For installation tokens: the App permissions GitHub reports, e.g. `{ contents: "write" }`. */
  installationPermissions?: Record<string, "read" | "write">;
  /** Milliseconds since the epoch; undefined for tokens that never expire. */
  expiresAt?: number;
  revoked: boolean;
}

/** A GitHub App installed on one account. */
export interface ServerApp {
  appId: number;
  slug: string;
  installationId: number;
  /** The account the App is installed on (lower case). */
  account: string;
  publicKeyPem: string;
  permissions: Record<string, "read" | "write">;
  /** How long minted tokens live, in seconds. */
  tokenLifetimeSeconds: number;
  /** Every token minted, in order (for tests that check refreshes). */
  mintedTokens: string[];
}

/** A label defined in a repository. */
export interface ServerLabel {
  id: number;
  name: string;
  color: string;
  description: string | null;
}

/** An issue or a pull request (GitHub numbers both from one sequence). */
export interface ServerIssue {
  id: number;
  number: number;
  title: string;
  body: string | null;
  state: "open" | "closed";
  /** The author's login. */
  user: string;
  labels: string[];
  assignees: string[];
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  /** Set for pull requests. */
  pull?: {
    head: string;
    base: string;
    draft: boolean;
    requestedReviewers: string[];
    requestedTeams: string[];
  };
}

/** A comment on an issue or pull request. */
export interface ServerComment {
  id: number;
  issueNumber: number;
  body: string;
  user: string;
  createdAt: string;
  updatedAt: string;
}

/** A commit status (`POST /repos/{owner}/{repo}/statuses/{sha}`). */
export interface ServerCommitStatus {
  id: number;
  sha: string;
  state: "error" | "failure" | "pending" | "success";
  context: string;
  description: string | null;
  targetUrl: string | null;
  creator: string;
  createdAt: string;
  updatedAt: string;
}

/** A reaction on an issue, an issue comment, a review comment or (through GraphQL) a review. */
export interface ServerReaction {
  id: number;
  subject: { kind: "issue" | "issue-comment" | "review-comment" | "review"; id: number };
  content: "+1" | "-1" | "laugh" | "confused" | "heart" | "hooray" | "rocket" | "eyes";
  user: string;
  createdAt: string;
}

/** A pull request review (`PENDING` until submitted). */
export interface ServerReview {
  id: number;
  pullNumber: number;
  user: string;
  body: string;
  state: "PENDING" | "COMMENTED" | "APPROVED" | "CHANGES_REQUESTED";
  commitId: string;
  submittedAt: string | null;
}

/** A review comment on a line of a pull request's diff, or a reply in its thread. */
export interface ServerReviewComment {
  id: number;
  pullNumber: number;
  reviewId: number;
  /** The thread's first comment, for replies. */
  inReplyTo?: number;
  path: string;
  line: number;
  side: "LEFT" | "RIGHT";
  commitId: string;
  diffHunk: string;
  body: string;
  user: string;
  createdAt: string;
  updatedAt: string;
}

/** A check run, made by a GitHub App on a commit. */
export interface ServerCheckRun {
  id: number;
  appId: number;
  name: string;
  headSha: string;
  status: "queued" | "in_progress" | "completed";
  conclusion: "success" | "failure" | "neutral" | "cancelled" | "skipped" | "timed_out" | "action_required" | null;
  startedAt: string | null;
  completedAt: string | null;
  externalId: string | null;
  detailsUrl: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
}

/** A repository: its bare git directory and its issues, pull requests, labels and comments. */
export interface ServerRepository {
  id: number;
  owner: string;
  name: string;
  gitDir: string;
  defaultBranch: string;
  private: boolean;
  archived: boolean;
  description: string | null;
  createdAt: string;
  /** Logins that may be assigned or asked for review, besides the owner. */
  collaborators: Set<string>;
  labels: Map<string, ServerLabel>;
  issues: Map<number, ServerIssue>;
  comments: Map<number, ServerComment>;
  /** Commit statuses, oldest first. */
  statuses: ServerCommitStatus[];
  /** Reactions, oldest first. */
  reactions: ServerReaction[];
  reviews: Map<number, ServerReview>;
  reviewComments: Map<number, ServerReviewComment>;
  checkRuns: Map<number, ServerCheckRun>;
}
