import { defaultConcurrency } from "@running-agent/jobs";
import { z } from "zod";

/** What a process does: serve the API, run jobs, or both (the embedded one-command start). */
export type ServerRole = "api" | "worker" | "both";

/** Everything the server reads from its environment, checked. */
export interface ServerConfig {
  host: string;
  port: number;
  databasePath: string;
  /** `postgres://…`: the shared PostgreSQL store (any number of API and worker processes); undefined: the embedded SQLite file. */
  databaseUrl: string | undefined;
  /** The key job secrets are sealed with in PostgreSQL (same on every process). */
  secretKey: string | undefined;
  role: ServerRole;
  apiKey: string | undefined;
  /** Whether the read endpoints need the API key too. */
  protectReads: boolean;
  /** node:http's headersTimeout and requestTimeout: slow senders are cut off with 408. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Jobs this process runs at once: RUNNING_AGENT_CONCURRENCY, else sized from free memory (about 0.5 GB per running OpenCode). */
  concurrency: number;
  bodyLimitBytes: number;
  corsOrigin: string;
  /** `local`: bubblewrap; `local-unisolated`: plain child processes (only where bubblewrap cannot run); `docker`: a container per task. */
  sandbox: "local" | "local-unisolated" | "docker" | "modal";
  /** For the `modal` sandbox: the Modal app and image (undefined: the package's defaults). Credentials come from MODAL_TOKEN_ID / MODAL_TOKEN_SECRET as the SDK reads them. */
  modal: { app: string | undefined; image: string | undefined };
  /** For the `docker` sandbox: the image (undefined: the package's default image) and the network tasks join (undefined: the package's default, `bridge`). */
  docker: { image: string | undefined; network: "bridge" | "host" | "none" | { name: string } | undefined };
  /** Sandboxes held ready (OpenCode started) for tasks on the configured model: 0 = no pool; and how long an unused one lives (undefined: core's default). */
  pool: { size: number; idleTimeoutMs: number | undefined };
  /** Repositories kept prepared (clone + setup done) by the worker: tasks on one get its setup commands and start from its state. Empty: none. */
  preparedRepos: PreparedRepoConfig[];
  /** The built dashboard to serve at `/`; undefined: none (main.ts falls back to the dashboard's `dist` when it exists). */
  dashboardDirectory: string | undefined;
  /** `local`: paths and file:// URLs on this machine; `github`: GitHub or GitHub Enterprise Server; `gitlab`: GitLab.com or self-managed GitLab. */
  gitHost: "local" | "github" | "gitlab";
  /** `scripted`: the offline scripted model; otherwise `provider/model` for core; undefined: core's default (Gemini). */
  model: string | undefined;
  /** Delay per answer of the scripted model. */
  scriptedModelDelayMs: number;
  /** The advanced submit fields accepted (base_branch, draft, labels), and the models a submit may choose. */
  submitFields: { baseBranch: boolean; draft: boolean; labels: boolean; models: string[] };
  github: { token: string | undefined; apiUrl: string | undefined; webUrl: string | undefined; gitUrl: string | undefined };
  gitlab: { token: string | undefined; url: string | undefined };
}

/** One entry of RUNNING_AGENT_PREPARED_REPOS. */
export interface PreparedRepoConfig {
  /** The repository as jobs name it in `repo_url` (compared as written, trailing slashes aside). */
  repo: string;
  /** The setup commands every task on this repository runs (or starts from the state they left). */
  setup: string[];
  /** The base branch kept prepared; undefined: the repository's default branch. */
  baseBranch: string | undefined;
  /** How often the base branch's head is read (a moved head prepares again). */
  everyMs: number;
  /** Sandboxes held ready from the repository's current prepared state (0: none); default RUNNING_AGENT_POOL_SIZE. */
  pool: number;
}

const DEFAULT_PREPARED_EVERY_MS = 30 * 60_000;

const PreparedReposSchema = z
  .string()
  .transform((text, context) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      context.addIssue({ code: "custom", message: 'RUNNING_AGENT_PREPARED_REPOS must be JSON: [{"repo": "...", "setup": ["npm ci"], "baseBranch"?: "main", "everyMs"?: 1800000, "pool"?: 2}].' });
      return z.NEVER;
    }
  })
  .pipe(
    z
      .array(
        // Strict: a misspelt key (branch, every) is named instead of ignored.
        z.strictObject({
          repo: z.string({ error: "repo must be the repository's URL or path, as jobs give it." }).min(1, "repo must not be empty."),
          setup: z.array(z.string().min(1, "a setup command must not be empty."), { error: "setup must be a list of commands." }).min(1, "setup needs at least one command: a prepared state is what they leave behind."),
          baseBranch: z.string().min(1, "baseBranch must not be empty.").optional(),
          everyMs: z.number({ error: "everyMs must be a number." }).int("everyMs must be a whole number.").min(1_000, "everyMs must be at least 1000.").max(24 * 3_600_000, "everyMs must be at most 86400000.").optional(),
          pool: z.number({ error: "pool must be a number." }).int("pool must be a whole number.").min(0, "pool must be at least 0.").max(32, "pool must be at most 32.").optional(),
        }),
        { error: "RUNNING_AGENT_PREPARED_REPOS must be a JSON list of repositories." },
      )
      .superRefine((entries, context) => {
        const seen = new Set<string>();
        entries.forEach((entry, index) => {
          const repo = sameRepo(entry.repo);
          if (seen.has(repo)) context.addIssue({ code: "custom", path: [index, "repo"], message: `${entry.repo} is listed twice.` });
          seen.add(repo);
        });
      }),
  );

/** How a configured repo and a job's `repo_url` are compared: as written, without trailing slashes. */
export function sameRepo(repo: string): string {
  return repo.trim().replace(/\/+$/, "");
}

const whole = (name: string, min: number, max: number) =>
  z.coerce.number({ error: `${name} must be a number.` }).int(`${name} must be a whole number.`).min(min, `${name} must be at least ${min}.`).max(max, `${name} must be at most ${max}.`);

const EnvironmentSchema = z.object({
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: whole("PORT", 0, 65535).default(8787),
  RUNNING_AGENT_DB: z.string().min(1).default("running-agent-jobs.db"),
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, "DATABASE_URL must be a postgres:// or postgresql:// URL.").optional(),
  RUNNING_AGENT_SECRET_KEY: z.string().min(1).optional(),
  RUNNING_AGENT_ROLE: z.enum(["api", "worker", "both"], { error: "RUNNING_AGENT_ROLE (or --role) must be api, worker or both." }).default("both"),
  RUNNING_AGENT_API_KEY: z.string().min(8, "RUNNING_AGENT_API_KEY must be at least 8 characters.").optional(),
  RUNNING_AGENT_PROTECT_READS: z.enum(["true", "false", "1", "0"], { error: "RUNNING_AGENT_PROTECT_READS must be true or false." }).default("false"),
  RUNNING_AGENT_HEADERS_TIMEOUT_MS: whole("RUNNING_AGENT_HEADERS_TIMEOUT_MS", 100, 3_600_000).default(10_000),
  RUNNING_AGENT_REQUEST_TIMEOUT_MS: whole("RUNNING_AGENT_REQUEST_TIMEOUT_MS", 100, 3_600_000).default(30_000),
  RUNNING_AGENT_CONCURRENCY: whole("RUNNING_AGENT_CONCURRENCY", 1, 64).optional(),
  RUNNING_AGENT_BODY_LIMIT: whole("RUNNING_AGENT_BODY_LIMIT", 1024, 16 * 1024 * 1024).default(64 * 1024),
  RUNNING_AGENT_CORS_ORIGIN: z.string().min(1).default("*"),
  RUNNING_AGENT_SANDBOX: z.enum(["local", "local-unisolated", "docker", "modal"], { error: "RUNNING_AGENT_SANDBOX must be local, local-unisolated, docker or modal." }).default("local"),
  RUNNING_AGENT_MODAL_APP: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "RUNNING_AGENT_MODAL_APP must be 1 to 64 letters, digits, dashes, dots or underscores.").optional(),
  RUNNING_AGENT_MODAL_IMAGE: z.string().min(1).optional(),
  RUNNING_AGENT_DOCKER_IMAGE: z.string().min(1).optional(),
  RUNNING_AGENT_DOCKER_NETWORK: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "RUNNING_AGENT_DOCKER_NETWORK must be bridge, host, none or the name of a Docker network.").optional(),
  RUNNING_AGENT_POOL_SIZE: whole("RUNNING_AGENT_POOL_SIZE", 0, 32).default(0),
  RUNNING_AGENT_POOL_IDLE_MS: whole("RUNNING_AGENT_POOL_IDLE_MS", 1_000, 24 * 3_600_000).optional(),
  RUNNING_AGENT_PREPARED_REPOS: PreparedReposSchema.optional(),
  RUNNING_AGENT_DASHBOARD_DIR: z.string().min(1).optional(),
  RUNNING_AGENT_GIT_HOST: z.enum(["local", "github", "gitlab"], { error: "RUNNING_AGENT_GIT_HOST must be local, github or gitlab." }).default("local"),
  RUNNING_AGENT_MODEL: z.string().min(1).optional(),
  RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS: whole("RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS", 0, 3_600_000).default(0),
  RUNNING_AGENT_SUBMIT_FIELDS: z
    .string()
    .regex(/^(none|(base_branch|draft|labels)(,(base_branch|draft|labels))*)$/, "RUNNING_AGENT_SUBMIT_FIELDS must be none or a comma-separated list of base_branch, draft, labels.")
    .default("base_branch,draft,labels"),
  RUNNING_AGENT_MODELS: z.string().regex(/^[^/\s,]+\/[^\s,]+(,[^/\s,]+\/[^\s,]+)*$/, "RUNNING_AGENT_MODELS must be a comma-separated list of provider/model.").optional(),
  GITHUB_TOKEN: z.string().min(1).optional(),
  GITHUB_API_URL: z.url("GITHUB_API_URL must be a URL.").optional(),
  GITHUB_WEB_URL: z.url("GITHUB_WEB_URL must be a URL.").optional(),
  GITHUB_GIT_URL: z.url("GITHUB_GIT_URL must be a URL.").optional(),
  GITLAB_TOKEN: z.string().min(1).optional(),
  GITLAB_URL: z.url("GITLAB_URL must be a URL.").optional(),
  GEMINI_API_KEY: z.string().optional(),
}).superRefine((env, context) => {
  // An embedded file is locked by one process: an API without a worker there, or a worker without an API, could never share it.
  if (env.RUNNING_AGENT_ROLE !== "both" && !env.DATABASE_URL) {
    context.addIssue({ code: "custom", path: ["RUNNING_AGENT_ROLE"], message: `role ${env.RUNNING_AGENT_ROLE} needs DATABASE_URL (PostgreSQL): the embedded database belongs to one process, which serves and runs jobs (role both).` });
  }
  if ((env.RUNNING_AGENT_PROTECT_READS === "true" || env.RUNNING_AGENT_PROTECT_READS === "1") && !env.RUNNING_AGENT_API_KEY) {
    context.addIssue({ code: "custom", path: ["RUNNING_AGENT_PROTECT_READS"], message: "protecting the read endpoints needs RUNNING_AGENT_API_KEY." });
  }
  if (env.RUNNING_AGENT_HEADERS_TIMEOUT_MS > env.RUNNING_AGENT_REQUEST_TIMEOUT_MS) {
    context.addIssue({ code: "custom", path: ["RUNNING_AGENT_HEADERS_TIMEOUT_MS"], message: "must not be longer than RUNNING_AGENT_REQUEST_TIMEOUT_MS." });
  }
  // The scripted model listens on this machine's loopback, which a container reaches only with host networking.
  const scripted = env.RUNNING_AGENT_MODEL === "scripted" || (env.RUNNING_AGENT_MODEL === undefined && !env.GEMINI_API_KEY);
  if (env.RUNNING_AGENT_SANDBOX === "docker" && scripted && env.RUNNING_AGENT_DOCKER_NETWORK !== "host") {
    context.addIssue({
      code: "custom",
      path: ["RUNNING_AGENT_DOCKER_NETWORK"],
      message: "the scripted model listens on this machine's loopback, which containers reach only with host networking: set RUNNING_AGENT_DOCKER_NETWORK=host, or configure a real model.",
    });
  }
});

/**
 * Reads the configuration from environment variables. Without a model setting and without
 * GEMINI_API_KEY the scripted model is used, so that a fresh checkout runs offline.
 * Throws an Error that lists every bad variable.
 */
export function loadServerConfig(environment: NodeJS.ProcessEnv): ServerConfig {
  // Empty variables count as unset (a common result of `VAR= command`).
  const present = Object.fromEntries(Object.entries(environment).filter(([, value]) => value !== undefined && value !== ""));
  const parsed = EnvironmentSchema.safeParse(present);
  if (!parsed.success) {
    throw new Error(`Bad configuration: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`);
  }
  const env = parsed.data;
  return {
    host: env.HOST,
    port: env.PORT,
    databasePath: env.RUNNING_AGENT_DB,
    databaseUrl: env.DATABASE_URL,
    secretKey: env.RUNNING_AGENT_SECRET_KEY,
    role: env.RUNNING_AGENT_ROLE,
    apiKey: env.RUNNING_AGENT_API_KEY,
    protectReads: env.RUNNING_AGENT_PROTECT_READS === "true" || env.RUNNING_AGENT_PROTECT_READS === "1",
    headersTimeoutMs: env.RUNNING_AGENT_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: env.RUNNING_AGENT_REQUEST_TIMEOUT_MS,
    concurrency: env.RUNNING_AGENT_CONCURRENCY ?? defaultConcurrency(),
    bodyLimitBytes: env.RUNNING_AGENT_BODY_LIMIT,
    corsOrigin: env.RUNNING_AGENT_CORS_ORIGIN,
    sandbox: env.RUNNING_AGENT_SANDBOX,
    docker: { image: env.RUNNING_AGENT_DOCKER_IMAGE, network: dockerNetworkOf(env.RUNNING_AGENT_DOCKER_NETWORK) },
    modal: { app: env.RUNNING_AGENT_MODAL_APP, image: env.RUNNING_AGENT_MODAL_IMAGE },
    pool: { size: env.RUNNING_AGENT_POOL_SIZE, idleTimeoutMs: env.RUNNING_AGENT_POOL_IDLE_MS },
    preparedRepos: (env.RUNNING_AGENT_PREPARED_REPOS ?? []).map((entry) => ({
      repo: entry.repo,
      setup: entry.setup,
      baseBranch: entry.baseBranch,
      everyMs: entry.everyMs ?? DEFAULT_PREPARED_EVERY_MS,
      pool: entry.pool ?? env.RUNNING_AGENT_POOL_SIZE,
    })),
    dashboardDirectory: env.RUNNING_AGENT_DASHBOARD_DIR,
    gitHost: env.RUNNING_AGENT_GIT_HOST,
    model: env.RUNNING_AGENT_MODEL ?? (env.GEMINI_API_KEY ? undefined : "scripted"),
    scriptedModelDelayMs: env.RUNNING_AGENT_SCRIPTED_MODEL_DELAY_MS,
    submitFields: {
      baseBranch: env.RUNNING_AGENT_SUBMIT_FIELDS.split(",").includes("base_branch"),
      draft: env.RUNNING_AGENT_SUBMIT_FIELDS.split(",").includes("draft"),
      labels: env.RUNNING_AGENT_SUBMIT_FIELDS.split(",").includes("labels"),
      models: env.RUNNING_AGENT_MODELS?.split(",") ?? [],
    },
    github: { token: env.GITHUB_TOKEN, apiUrl: env.GITHUB_API_URL, webUrl: env.GITHUB_WEB_URL, gitUrl: env.GITHUB_GIT_URL },
    gitlab: { token: env.GITLAB_TOKEN, url: env.GITLAB_URL },
  };
}

function dockerNetworkOf(name: string | undefined): ServerConfig["docker"]["network"] {
  if (name === undefined || name === "bridge" || name === "host" || name === "none") return name;
  return { name };
}
