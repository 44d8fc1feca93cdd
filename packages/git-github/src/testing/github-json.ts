import type { CommitFacts } from "./git-plumbing.js";
import type { ServerComment, ServerIssue, ServerLabel, ServerRepository, ServerCommitStatus } from "./github-server-model.js";

/** Base URLs the JSON points at. */
export interface JsonUrls {
  /** Web pages, `http://127.0.0.1:PORT`. */
  web: string;
  /** The REST API, `http://127.0.0.1:PORT/api/v3`. */
  api: string;
}

/** Users get stable ids from their login so that the same user always has the same id. */
export function userId(login: string): number {
  let hash = 7;
  for (const character of login.toLowerCase()) hash = (hash * 31 + character.charCodeAt(0)) % 2_000_000_000;
  return hash + 1;
}

function nodeId(kind: string, id: number): string {
  return Buffer.from(`${kind}:${id}`).toString("base64url");
}

/** GitHub's `simple-user`. */
export function simpleUserJson(urls: JsonUrls, login: string) {
  // Bot logins (`name[bot]`) need escaping to be URIs, as GitHub escapes them.
  const escaped = encodeURIComponent(login);
  const api = `${urls.api}/users/${escaped}`;
  const id = userId(login);
  return {
    login,
    id,
    node_id: nodeId("User", id),
    avatar_url: `${urls.web}/avatars/${escaped}`,
    gravatar_id: "",
    url: api,
    html_url: `${urls.web}/${escaped}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: login.endsWith("[bot]") ? "Bot" : "User",
    site_admin: false,
  };
}

const REPOSITORY_URL_TEMPLATES: Array<[string, string]> = [
  ["archive_url", "/{archive_format}{/ref}"],
  ["assignees_url", "/assignees{/user}"],
  ["blobs_url", "/git/blobs{/sha}"],
  ["branches_url", "/branches{/branch}"],
  ["collaborators_url", "/collaborators{/collaborator}"],
  ["comments_url", "/comments{/number}"],
  ["commits_url", "/commits{/sha}"],
  ["compare_url", "/compare/{base}...{head}"],
  ["contents_url", "/contents/{+path}"],
  ["contributors_url", "/contributors"],
  ["deployments_url", "/deployments"],
  ["downloads_url", "/downloads"],
  ["events_url", "/events"],
  ["forks_url", "/forks"],
  ["git_commits_url", "/git/commits{/sha}"],
  ["git_refs_url", "/git/refs{/sha}"],
  ["git_tags_url", "/git/tags{/sha}"],
  ["hooks_url", "/hooks"],
  ["issue_comment_url", "/issues/comments{/number}"],
  ["issue_events_url", "/issues/events{/number}"],
  ["issues_url", "/issues{/number}"],
  ["keys_url", "/keys{/key_id}"],
  ["labels_url", "/labels{/name}"],
  ["languages_url", "/languages"],
  ["merges_url", "/merges"],
  ["milestones_url", "/milestones{/number}"],
  ["notifications_url", "/notifications{?since,all,participating}"],
  ["pulls_url", "/pulls{/number}"],
  ["releases_url", "/releases{/id}"],
  ["stargazers_url", "/stargazers"],
  ["statuses_url", "/statuses/{sha}"],
  ["subscribers_url", "/subscribers"],
  ["subscription_url", "/subscription"],
  ["tags_url", "/tags"],
  ["teams_url", "/teams"],
  ["trees_url", "/git/trees{/sha}"],
];

/** What the caller may do, as GitHub reports it on repositories; absent for App installation tokens. */
export type RepositoryPermissionsJson = { admin: boolean; maintain: boolean; push: boolean; triage: boolean; pull: boolean } | undefined;

/** GitHub's `repository` (inside pull requests) and, with the extra fields, `full-repository`. */
export function repositoryJson(urls: JsonUrls, repository: ServerRepository, permissions: RepositoryPermissionsJson, pushedAt: string | null) {
  const fullName = `${repository.owner}/${repository.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const openIssues = [...repository.issues.values()].filter((issue) => issue.state === "open").length;
  const templated = Object.fromEntries(REPOSITORY_URL_TEMPLATES.map(([key, suffix]) => [key, `${api}${suffix}`]));
  return {
    id: repository.id,
    node_id: nodeId("Repository", repository.id),
    name: repository.name,
    full_name: fullName,
    owner: simpleUserJson(urls, repository.owner),
    private: repository.private,
    visibility: repository.private ? "private" : "public",
    html_url: `${urls.web}/${fullName}`,
    description: repository.description,
    fork: false,
    url: api,
    ...templated,
    clone_url: `${urls.web}/${fullName}.git`,
    git_url: `git://${new URL(urls.web).host}/${fullName}.git`,
    ssh_url: `git@${new URL(urls.web).hostname}:${fullName}.git`,
    svn_url: `${urls.web}/${fullName}`,
    mirror_url: null,
    homepage: null,
    language: null,
    forks: 0,
    forks_count: 0,
    stargazers_count: 0,
    watchers: 0,
    watchers_count: 0,
    size: 0,
    default_branch: repository.defaultBranch,
    open_issues: openIssues,
    open_issues_count: openIssues,
    is_template: false,
    topics: [],
    has_issues: true,
    has_projects: false,
    has_wiki: false,
    has_pages: false,
    has_downloads: true,
    has_discussions: false,
    archived: repository.archived,
    disabled: false,
    license: null,
    pushed_at: pushedAt,
    created_at: repository.createdAt,
    updated_at: repository.createdAt,
    allow_forking: true,
    ...(permissions ? { permissions } : {}),
    // full-repository only.
    network_count: 0,
    subscribers_count: 0,
  };
}

/** GitHub's `label`. */
export function labelJson(urls: JsonUrls, repository: ServerRepository, label: ServerLabel) {
  return {
    id: label.id,
    node_id: nodeId("Label", label.id),
    url: `${urls.api}/repos/${repository.owner}/${repository.name}/labels/${encodeURIComponent(label.name)}`,
    name: label.name,
    description: label.description,
    color: label.color,
    default: false,
  };
}

/** GitHub's `commit`, as inside a branch. */
export function commitJson(urls: JsonUrls, repository: ServerRepository, commit: CommitFacts) {
  const api = `${urls.api}/repos/${repository.owner}/${repository.name}`;
  return {
    sha: commit.sha,
    node_id: nodeId("Commit", Number.parseInt(commit.sha.slice(0, 8), 16)),
    url: `${api}/commits/${commit.sha}`,
    html_url: `${urls.web}/${repository.owner}/${repository.name}/commit/${commit.sha}`,
    comments_url: `${api}/commits/${commit.sha}/comments`,
    commit: {
      url: `${api}/git/commits/${commit.sha}`,
      author: commit.author,
      committer: commit.committer,
      message: commit.message,
      tree: { sha: commit.tree, url: `${api}/git/trees/${commit.tree}` },
      comment_count: 0,
    },
    // Git identities are not mapped to GitHub users here.
    author: null,
    committer: null,
    parents: commit.parents.map((sha) => ({ sha, url: `${api}/commits/${sha}`, html_url: `${urls.web}/${repository.owner}/${repository.name}/commit/${sha}` })),
  };
}

/** GitHub's `branch-with-protection`. */
export function branchJson(urls: JsonUrls, repository: ServerRepository, name: string, commit: CommitFacts) {
  const api = `${urls.api}/repos/${repository.owner}/${repository.name}`;
  return {
    name,
    commit: commitJson(urls, repository, commit),
    _links: { html: `${urls.web}/${repository.owner}/${repository.name}/tree/${name}`, self: `${api}/branches/${encodeURIComponent(name)}` },
    protected: false,
    protection: { enabled: false, required_status_checks: { enforcement_level: "off", contexts: [], checks: [] } },
    protection_url: `${api}/branches/${encodeURIComponent(name)}/protection`,
  };
}

/** GitHub's `short-branch`. */
export function shortBranchJson(urls: JsonUrls, repository: ServerRepository, name: string, sha: string) {
  return { name, commit: { sha, url: `${urls.api}/repos/${repository.owner}/${repository.name}/commits/${sha}` }, protected: false };
}

function teamJson(urls: JsonUrls, organization: string, slug: string) {
  const id = userId(`${organization}/${slug}`);
  return {
    id,
    node_id: nodeId("Team", id),
    url: `${urls.api}/organizations/${userId(organization)}/team/${id}`,
    html_url: `${urls.web}/orgs/${organization}/teams/${slug}`,
    name: slug,
    slug,
    description: null,
    privacy: "closed",
    notification_setting: "notifications_enabled",
    permission: "pull",
    members_url: `${urls.api}/organizations/${userId(organization)}/team/${id}/members{/member}`,
    repositories_url: `${urls.api}/organizations/${userId(organization)}/team/${id}/repos`,
    parent: null,
    type: "organization",
  };
}

/** Facts about a pull request's branches that live in git. */
export interface PullRequestGitFacts {
  headSha: string;
  baseSha: string;
  commits: number;
  additions: number;
  deletions: number;
  changedFiles: number;
  pushedAt: string | null;
}

/** GitHub's `author_association` for a login on a repository (owner, collaborator or none). */
export function authorAssociation(repository: ServerRepository, login: string): string {
  if (login.toLowerCase() === repository.owner.toLowerCase()) return "OWNER";
  return repository.collaborators.has(login.toLowerCase()) ? "COLLABORATOR" : "NONE";
}

/** GitHub's `pull-request-simple` (`full = false`) or `pull-request`. */
export function pullRequestJson(urls: JsonUrls, repository: ServerRepository, issue: ServerIssue, facts: PullRequestGitFacts, permissions: RepositoryPermissionsJson, full: boolean) {
  const pull = issue.pull!;
  const fullName = `${repository.owner}/${repository.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const html = `${urls.web}/${fullName}/pull/${issue.number}`;
  const repo = repositoryJson(urls, repository, permissions, facts.pushedAt);
  const labels = issue.labels.map((name) => labelJson(urls, repository, repository.labels.get(name.toLowerCase())!));
  const assignees = issue.assignees.map((login) => simpleUserJson(urls, login));
  const simple = {
    url: `${api}/pulls/${issue.number}`,
    id: issue.id,
    node_id: nodeId("PullRequest", issue.id),
    html_url: html,
    diff_url: `${html}.diff`,
    patch_url: `${html}.patch`,
    issue_url: `${api}/issues/${issue.number}`,
    commits_url: `${api}/pulls/${issue.number}/commits`,
    review_comments_url: `${api}/pulls/${issue.number}/comments`,
    review_comment_url: `${api}/pulls/comments{/number}`,
    comments_url: `${api}/issues/${issue.number}/comments`,
    statuses_url: `${api}/statuses/${facts.headSha}`,
    number: issue.number,
    state: issue.state,
    locked: false,
    title: issue.title,
    user: simpleUserJson(urls, issue.user),
    body: issue.body,
    labels,
    milestone: null,
    active_lock_reason: null,
    created_at: issue.createdAt,
    updated_at: issue.updatedAt,
    closed_at: issue.closedAt,
    merged_at: null,
    merge_commit_sha: null,
    assignee: assignees[0] ?? null,
    assignees,
    requested_reviewers: pull.requestedReviewers.map((login) => simpleUserJson(urls, login)),
    requested_teams: pull.requestedTeams.map((slug) => teamJson(urls, repository.owner, slug)),
    head: { label: `${repository.owner}:${pull.head}`, ref: pull.head, sha: facts.headSha, user: simpleUserJson(urls, repository.owner), repo },
    base: { label: `${repository.owner}:${pull.base}`, ref: pull.base, sha: facts.baseSha, user: simpleUserJson(urls, repository.owner), repo },
    _links: {
      self: { href: `${api}/pulls/${issue.number}` },
      html: { href: html },
      issue: { href: `${api}/issues/${issue.number}` },
      comments: { href: `${api}/issues/${issue.number}/comments` },
      review_comments: { href: `${api}/pulls/${issue.number}/comments` },
      review_comment: { href: `${api}/pulls/comments{/number}` },
      commits: { href: `${api}/pulls/${issue.number}/commits` },
      statuses: { href: `${api}/statuses/${facts.headSha}` },
    },
    author_association: authorAssociation(repository, issue.user),
    auto_merge: null,
    draft: pull.draft,
  };
  if (!full) return simple;
  return {
    ...simple,
    merged: false,
    mergeable: null,
    rebaseable: null,
    mergeable_state: "unknown",
    merged_by: null,
    comments: [...repository.comments.values()].filter((comment) => comment.issueNumber === issue.number).length,
    review_comments: 0,
    maintainer_can_modify: false,
    commits: facts.commits,
    additions: facts.additions,
    deletions: facts.deletions,
    changed_files: facts.changedFiles,
  };
}

/** GitHub's `issue` (pull requests are issues too, with a `pull_request` member). */
export function issueJson(urls: JsonUrls, repository: ServerRepository, issue: ServerIssue) {
  const fullName = `${repository.owner}/${repository.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const assignees = issue.assignees.map((login) => simpleUserJson(urls, login));
  return {
    id: issue.id,
    node_id: nodeId("Issue", issue.id),
    url: `${api}/issues/${issue.number}`,
    repository_url: api,
    labels_url: `${api}/issues/${issue.number}/labels{/name}`,
    comments_url: `${api}/issues/${issue.number}/comments`,
    events_url: `${api}/issues/${issue.number}/events`,
    html_url: `${urls.web}/${fullName}/${issue.pull ? "pull" : "issues"}/${issue.number}`,
    number: issue.number,
    state: issue.state,
    title: issue.title,
    body: issue.body,
    user: simpleUserJson(urls, issue.user),
    labels: issue.labels.map((name) => labelJson(urls, repository, repository.labels.get(name.toLowerCase())!)),
    assignee: assignees[0] ?? null,
    assignees,
    milestone: null,
    locked: false,
    active_lock_reason: null,
    comments: [...repository.comments.values()].filter((comment) => comment.issueNumber === issue.number).length,
    ...(issue.pull
      ? {
          pull_request: {
            url: `${api}/pulls/${issue.number}`,
            html_url: `${urls.web}/${fullName}/pull/${issue.number}`,
            diff_url: `${urls.web}/${fullName}/pull/${issue.number}.diff`,
            patch_url: `${urls.web}/${fullName}/pull/${issue.number}.patch`,
            merged_at: null,
          },
          draft: issue.pull.draft,
        }
      : {}),
    closed_at: issue.closedAt,
    created_at: issue.createdAt,
    updated_at: issue.updatedAt,
    author_association: authorAssociation(repository, issue.user),
  };
}

/** GitHub's `issue-comment`. */
export function commentJson(urls: JsonUrls, repository: ServerRepository, comment: ServerComment) {
  const fullName = `${repository.owner}/${repository.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const issue = repository.issues.get(comment.issueNumber);
  return {
    id: comment.id,
    node_id: nodeId("IssueComment", comment.id),
    url: `${api}/issues/comments/${comment.id}`,
    html_url: `${urls.web}/${fullName}/${issue?.pull ? "pull" : "issues"}/${comment.issueNumber}#issuecomment-${comment.id}`,
    issue_url: `${api}/issues/${comment.issueNumber}`,
    body: comment.body,
    user: simpleUserJson(urls, comment.user),
    created_at: comment.createdAt,
    updated_at: comment.updatedAt,
    author_association: authorAssociation(repository, comment.user),
  };
}

/** GitHub's `public-user` (`private = false`, no extra members allowed) or `private-user` (the caller's own account). */
export function userJson(urls: JsonUrls, login: string, createdAt: string, isPrivate: boolean) {
  const base = {
    ...simpleUserJson(urls, login),
    user_view_type: isPrivate ? "private" : "public",
    name: null,
    company: null,
    blog: "",
    location: null,
    email: null,
    hireable: null,
    bio: null,
    twitter_username: null,
    public_repos: 0,
    public_gists: 0,
    followers: 0,
    following: 0,
    created_at: createdAt,
    updated_at: createdAt,
  };
  if (!isPrivate) return base;
  return { ...base, private_gists: 0, total_private_repos: 0, owned_private_repos: 0, disk_usage: 0, collaborators: 0, two_factor_authentication: true };
}

/** GitHub's `integration`: a GitHub App as `GET /app` shows it to the App itself. */
export function integrationJson(urls: JsonUrls, app: { appId: number; slug: string; account: string; permissions: Record<string, string> }, createdAt: string) {
  return {
    id: app.appId,
    slug: app.slug,
    node_id: nodeId("Integration", app.appId),
    client_id: `Iv1.${app.appId.toString(16).padStart(16, "0")}`,
    owner: simpleUserJson(urls, app.account),
    name: app.slug,
    description: null,
    external_url: `${urls.web}/apps/${app.slug}`,
    html_url: `${urls.web}/apps/${app.slug}`,
    created_at: createdAt,
    updated_at: createdAt,
    permissions: app.permissions,
    events: [],
    installations_count: 1,
  };
}

/** GitHub's `status` (a commit status). */
export function commitStatusJson(urls: JsonUrls, repository: ServerRepository, status: ServerCommitStatus) {
  return {
    url: `${urls.api}/repos/${repository.owner}/${repository.name}/statuses/${status.sha}`,
    avatar_url: null,
    id: status.id,
    node_id: nodeId("StatusContext", status.id),
    state: status.state,
    description: status.description,
    target_url: status.targetUrl,
    context: status.context,
    created_at: status.createdAt,
    updated_at: status.updatedAt,
    creator: simpleUserJson(urls, status.creator),
  };
}
