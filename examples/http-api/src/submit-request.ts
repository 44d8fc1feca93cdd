import { z } from "zod";

/** A string field's type error: missing, or of another type. */
function stringError(name: string, purpose: string): (issue: { input?: unknown }) => string {
  return (issue) => (issue.input === undefined ? `${name} is required: ${purpose}` : `${name} must be a string.`);
}

/** `POST /submit`, with the seed's field names. Unknown fields are refused so that typos do not pass silently. */
export const SubmitRequestSchema = z.strictObject({
  repo_url: z
    .string({ error: stringError("repo_url", "the repository to work on (a URL, or a path for the local Git host).") })
    .trim()
    .min(1, "repo_url is empty.")
    .max(2048, "repo_url is longer than 2048 characters."),
  task: z
    .string({ error: stringError("task", "what the agent should do, in plain words.") })
    .trim()
    .min(1, "task is empty: say what the agent should do.")
    .max(20_000, "task is longer than 20000 characters."),
  github_token: z
    .string({ error: "github_token must be a string." })
    .min(1, "github_token is empty: leave it out to use the server's own credentials.")
    .max(1000, "github_token is longer than 1000 characters.")
    .optional(),
  user_id: z.string({ error: "user_id must be a string." }).trim().min(1, "user_id is empty.").max(200, "user_id is longer than 200 characters.").optional(),
  /** Checks run after the agent (see core's `checks`): `"auto"`, or `[{ name, command, timeout_ms? }]`. */
  checks: z
    .union(
      [
        z.literal("auto"),
        z
          .array(
            z.strictObject({
              name: z.string({ error: "checks[].name must be a string." }).regex(/^[A-Za-z0-9._:-]{1,64}$/, "checks[].name must be 1 to 64 letters, digits, '.', '_', ':' or '-'."),
              command: z.string({ error: "checks[].command must be a string." }).trim().min(1, "checks[].command is empty.").max(20_000, "checks[].command is longer than 20000 characters."),
              timeout_ms: z.number().int().min(1).max(2 ** 31 - 1).optional(),
            }),
          )
          .max(20, "at most 20 checks.")
          .refine((checks) => new Set(checks.map((check) => check.name)).size === checks.length, "checks[].name must be unique."),
      ],
      { error: 'checks must be "auto" or a list of { name, command, timeout_ms? }.' },
    )
    .optional(),
  max_fix_rounds: z.number({ error: "max_fix_rounds must be a number." }).int("max_fix_rounds must be a whole number.").min(0).max(10, "max_fix_rounds must be at most 10.").optional(),
  on_checks_failed: z.enum(["draft", "fail", "open"], { error: 'on_checks_failed must be "draft", "fail" or "open".' }).optional(),
  // The advanced fields: accepted only where the server's submit options allow them (GET /config says which).
  base_branch: z.string({ error: "base_branch must be a string." }).trim().min(1, "base_branch is empty: leave it out for the repository's default branch.").max(255, "base_branch is longer than 255 characters.").optional(),
  model: z.string({ error: "model must be a string." }).trim().regex(/^[^/\s]+\/\S+$/, 'model must be "provider/model".').optional(),
  draft: z.boolean({ error: "draft must be true or false." }).optional(),
  labels: z
    .array(z.string({ error: "labels[] must be strings." }).trim().min(1, "labels[] must not be empty.").max(50, "labels[] must be at most 50 characters."), { error: "labels must be a list of strings." })
    .max(10, "at most 10 labels.")
    .optional(),
});
export type SubmitRequest = z.infer<typeof SubmitRequestSchema>;

/** `POST /jobs/{id}/retry`: the body is optional. */
export const RetryRequestSchema = z.strictObject({
  github_token: z.string({ error: "github_token must be a string." }).min(1, "github_token is empty.").max(1000).optional(),
});

/** Which of the advanced submit fields a server accepts; the others are refused with 400 `field_not_allowed`. */
export interface SubmitFields {
  /** `base_branch`. Default true. */
  baseBranch?: boolean;
  /** `draft`. Default true. */
  draft?: boolean;
  /** `labels`. Default true. */
  labels?: boolean;
  /** The `model` values accepted (`provider/model`); none (the default): the field is refused, every job runs on the server's model. */
  models?: readonly string[];
}

/** The advanced fields of a parsed submit request that the server does not accept, as one sentence; undefined when all are accepted. */
export function refusedSubmitFields(request: SubmitRequest, fields: SubmitFields): string | undefined {
  const refused: string[] = [];
  if (request.base_branch !== undefined && fields.baseBranch === false) refused.push("base_branch");
  if (request.draft !== undefined && fields.draft === false) refused.push("draft");
  if (request.labels !== undefined && fields.labels === false) refused.push("labels");
  if (request.model !== undefined && !(fields.models ?? []).includes(request.model)) {
    return `${refused.length > 0 ? `This server does not accept ${refused.join(", ")}. ` : ""}model ${JSON.stringify(request.model)} is not one this server offers (${(fields.models ?? []).length > 0 ? (fields.models ?? []).join(", ") : "it runs every job on its own model"}).`;
  }
  return refused.length > 0 ? `This server does not accept ${refused.join(", ")} (GET /config lists what it accepts).` : undefined;
}

/** `GET /jobs` query. */
export const ListJobsQuerySchema = z.strictObject({
  limit: z.coerce.number({ error: "limit must be a number." }).int("limit must be a whole number.").min(1, "limit must be at least 1.").max(500, "limit must be at most 500.").default(100),
  offset: z.coerce.number({ error: "offset must be a number." }).int("offset must be a whole number.").min(0, "offset must be at least 0.").max(1_000_000).default(0),
  q: z.string().trim().max(200, "q is longer than 200 characters.").optional(),
  repo_url: z.string().min(1).max(2048).optional(),
  status: z.enum(["queued", "running", "completed", "no_changes", "failed", "cancelled", "interrupted"]).optional(),
  user_id: z.string().min(1).max(200).optional(),
});

/** Turns zod issues into one readable sentence, naming the fields. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === "unrecognized_keys") return `Unknown field${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.join(", ")}.`;
      return issue.message;
    })
    .join(" ");
}

/**
 * Checks what kind of repository reference this is before anything is stored: credentials in a
 * URL would end up in the database and in logs, so they are refused.
 */
export function checkRepoUrl(repoUrl: string, supportsRepo: (repo: string) => boolean, hostDescription: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(repoUrl)) {
    let url: URL;
    try {
      url = new URL(repoUrl);
    } catch {
      return `repo_url is not a valid URL: ${JSON.stringify(repoUrl)}.`;
    }
    // A password, or a bare user name on http(s) (the usual way to embed a token), would end up stored and logged.
    if (url.password || (url.username && /^https?:$/.test(url.protocol))) return "repo_url must not contain credentials: send the token as github_token instead.";
  }
  if (!supportsRepo(repoUrl)) return `repo_url ${JSON.stringify(repoUrl)} is not a repository this server's Git host (${hostDescription}) can serve.`;
  return undefined;
}
