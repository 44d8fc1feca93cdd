import type { BranchSchema, CommitStatusSchema, IssueNoteSchema, MemberSchema, MergeRequestSchema, ProjectSchema, ProtectedBranchSchema, SimpleUserSchema } from "@gitbeaker/core";

/*
 * The JSON the local server answers with, typed against the shapes `@gitbeaker/core` declares
 * for GitLab's REST v4 entities: a field the server sends with the wrong type, or a field the
 * adapter reads that the type lacks, fails the type check. GitLab's own OpenAPI description
 * (doc/api/openapi/openapi_v2.yaml in GitLab's source) is in no npm package; see the README.
 */

/** A user as the server holds it. */
export interface ServerUser {
  id: number;
  username: string;
  name: string;
  email: string;
  bot: boolean;
  createdAt: string;
}

/** The `UserBasic` entity (authors, assignees, reviewers, `GET /users`). */
export type UserBasicJson = Pick<SimpleUserSchema, "id" | "username" | "name" | "state" | "avatar_url" | "web_url"> & { locked: boolean };

/** `GET /user`: the current user, with the fields a bot reads. */
export type CurrentUserJson = UserBasicJson & Pick<SimpleUserSchema, "created_at"> & { bot: boolean; email: string; commit_email: string; public_email: string | null };

/** `GET /projects/:id`. GitLab sends `null` for an access the caller does not have (gitbeaker's type says otherwise). */
export type ProjectJson = Pick<
  ProjectSchema,
  | "id"
  | "name"
  | "path"
  | "description"
  | "name_with_namespace"
  | "path_with_namespace"
  | "created_at"
  | "default_branch"
  | "ssh_url_to_repo"
  | "http_url_to_repo"
  | "web_url"
  | "visibility"
  | "archived"
  | "empty_repo"
  | "merge_requests_enabled"
  | "namespace"
> & {
  permissions: { project_access: { access_level: number; notification_level: number } | null; group_access: { access_level: number; notification_level: number } | null };
};

/** `GET /projects/:id/repository/branches/:branch`. */
export type BranchJson = Pick<BranchSchema, "name" | "merged" | "protected" | "default" | "developers_can_push" | "developers_can_merge" | "can_push" | "web_url"> & {
  commit: Pick<BranchSchema["commit"], "id" | "short_id" | "title" | "message" | "author_name" | "author_email" | "authored_date" | "committer_name" | "committer_email" | "committed_date" | "parent_ids">;
};

/** `GET /projects/:id/protected_branches`: a rule, exact or with wildcards, and who may push and merge. */
export type ProtectedBranchJson = Pick<ProtectedBranchSchema, "id" | "name" | "push_access_levels" | "merge_access_levels" | "allow_force_push" | "code_owner_approval_required">;

/** `GET /projects/:id/members/all/:user_id`: a member, direct or through a group. GitLab sends `expires_at: null` for no expiry (gitbeaker's type says string). */
export type MemberJson = UserBasicJson & Pick<MemberSchema, "access_level"> & { created_at: string; expires_at: string | null };

/** `POST` and `GET /projects/:id/issues/:issue_iid/notes`. */
export type IssueNoteJson = Pick<IssueNoteSchema, "id" | "body" | "created_at" | "updated_at" | "system" | "noteable_id" | "noteable_type" | "noteable_iid" | "project_id" | "resolvable" | "attachment"> & {
  author: UserBasicJson;
};

/** The merge request entity (`POST`, `PUT`, `GET .../merge_requests(/:iid)`). */
export type MergeRequestJson = Pick<
  MergeRequestSchema,
  | "id"
  | "iid"
  | "project_id"
  | "title"
  | "description"
  | "state"
  | "created_at"
  | "updated_at"
  | "web_url"
  | "target_branch"
  | "source_branch"
  | "source_project_id"
  | "target_project_id"
  | "draft"
  | "work_in_progress"
  | "merge_status"
  | "sha"
  | "reference"
  | "merged_at"
  | "closed_at"
> & {
  labels: string[];
  author: UserBasicJson;
  assignee: UserBasicJson | null;
  assignees: UserBasicJson[];
  reviewers: UserBasicJson[];
  references: { short: string; relative: string; full: string };
};

/** `POST /projects/:id/statuses/:sha` and `GET /projects/:id/repository/commits/:sha/statuses`. */
export type CommitStatusJson = Pick<CommitStatusSchema, "id" | "sha" | "ref" | "status" | "name" | "target_url" | "description" | "created_at" | "allow_failure"> & {
  author: UserBasicJson;
  started_at: string | null;
  finished_at: string | null;
  coverage: number | null;
  pipeline_id: number | null;
};

export function userBasicJson(user: ServerUser, webUrl: string): UserBasicJson {
  return { id: user.id, username: user.username, name: user.name, state: "active", locked: false, avatar_url: `${webUrl}/uploads/-/system/user/avatar/${user.id}/avatar.png`, web_url: `${webUrl}/${user.username}` };
}
