/** GitHub's error documentation link, as its error bodies carry one. */
export const DOCUMENTATION_URL = "https://docs.github.com/rest";

/** An HTTP answer with GitHub's error body, thrown by route handlers. */
export class GitHubHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message));
  }
}

/** `{ message, documentation_url, status }`, GitHub's `basic-error`. */
export function basicError(status: number, message: string, headers: Record<string, string> = {}): GitHubHttpError {
  return new GitHubHttpError(status, { message, documentation_url: DOCUMENTATION_URL, status: String(status) }, headers);
}

/** 422 with GitHub's `validation-error` body. */
export function validationFailed(errors: Array<Record<string, unknown>>): GitHubHttpError {
  return new GitHubHttpError(422, { message: "Validation Failed", errors, documentation_url: DOCUMENTATION_URL, status: "422" });
}

export const notFound = (): GitHubHttpError => basicError(404, "Not Found");
export const badCredentials = (): GitHubHttpError => basicError(401, "Bad credentials");
export const requiresAuthentication = (): GitHubHttpError => basicError(401, "Requires authentication");
