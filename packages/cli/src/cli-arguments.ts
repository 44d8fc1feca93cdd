import { parseArgs, type ParseArgsConfig } from "node:util";
import { MODEL_PROVIDERS, type CheckSpec, type ChecksFailedPolicy } from "@running-agent/core";
import { UsageError } from "./usage-error.js";

/** Where the agent runs: the values `--sandbox` takes. */
export const SANDBOX_KINDS = ["local", "docker", "modal"] as const;
/** One of {@link SANDBOX_KINDS}. */
export type SandboxKind = (typeof SANDBOX_KINDS)[number];

/** What `running-agent run` was asked to do, checked and with defaults filled in. */
export interface RunCommandOptions {
  /** `--repo`: the repository's URL or local path. */
  repo: string;
  /** `--task`: what the agent is asked to do. */
  task: string;
  /** `--base`: the branch to start from and open the change request against. */
  baseBranch?: string;
  /** `--branch`: the branch the change is pushed to. */
  branch?: string;
  /** `--sandbox`: where the agent runs. */
  sandbox: SandboxKind;
  /** Local sandbox without bubblewrap. */
  unisolated: boolean;
  /** Keep the model's key on the host behind a loopback proxy. */
  modelProxy: boolean;
  /** Open the sandbox through a one-sandbox pool started at once (OpenCode starts and warms up while the task is checked). */
  pool: boolean;
  /** The image for the docker or modal sandbox. */
  image?: string;
  /** The Docker network: `bridge`, `host`, `none` or a network's name. */
  network?: string;
  /** `provider/model`. */
  model?: string;
  /** `--model-base-url`: an OpenAI-compatible server's base URL. */
  modelBaseUrl?: string;
  /** `--scripted-model`: no real model; a scripted one on loopback records the task in RUNNING_AGENT_TASK.md. */
  scriptedModel: boolean;
  /** `--title`: the change request's title. */
  title?: string;
  /** `--draft`: open the change request as a draft. */
  draft: boolean;
  /** `--label`, repeatable. */
  labels: string[];
  /** `--reviewer`, repeatable. */
  reviewers: string[];
  /** `--setup`, repeatable: commands run in the sandbox before the agent. */
  setupCommands: string[];
  /** `--prepared-cache`: the folder where the local sandbox keeps the workspace after setup, for later runs on the same commit and commands. */
  preparedCache?: string;
  /** `--check`: `auto`, or checks as `name=command` (or a bare command, named `check-N`). */
  checks?: CheckSpec[] | "auto";
  /** `--max-fix-rounds`. */
  maxFixRounds?: number;
  /** `--on-checks-failed`. */
  onChecksFailed?: ChecksFailedPolicy;
  /** `--timeout`, as milliseconds. */
  timeoutMs?: number;
  /** `--json`: the result as JSON on stdout. */
  json: boolean;
  /** From `--github-token` or GITHUB_TOKEN. */
  githubToken?: string;
  /** The GitHub REST API URL, for GitHub Enterprise Server. */
  githubApiUrl?: string;
  /** From `--gitlab-token` or GITLAB_TOKEN. */
  gitlabToken?: string;
  /** A self-managed GitLab's web URL; https repos on it (or on a host named gitlab.*) use GitLab. */
  gitlabUrl?: string;
}

/** A parsed command line. */
export type CliCommand =
  | {
      /** `--help`, `help` or `run --help`. */
      command: "help";
      /** Which help: the command list or the options of run. */
      topic: "main" | "run";
    }
  | {
      /** `--version`. */
      command: "version";
    }
  | {
      /** `run`. */
      command: "run";
      /** The checked options of run. */
      options: RunCommandOptions;
    };

const RUN_OPTIONS = {
  repo: { type: "string" },
  task: { type: "string" },
  base: { type: "string" },
  branch: { type: "string" },
  sandbox: { type: "string" },
  unisolated: { type: "boolean" },
  image: { type: "string" },
  network: { type: "string" },
  model: { type: "string" },
  "model-base-url": { type: "string" },
  "model-proxy": { type: "boolean" },
  "scripted-model": { type: "boolean" },
  pool: { type: "boolean" },
  title: { type: "string" },
  draft: { type: "boolean" },
  label: { type: "string", multiple: true },
  reviewer: { type: "string", multiple: true },
  setup: { type: "string", multiple: true },
  "prepared-cache": { type: "string" },
  check: { type: "string", multiple: true },
  "max-fix-rounds": { type: "string" },
  "on-checks-failed": { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
  "github-token": { type: "string" },
  "github-api-url": { type: "string" },
  "gitlab-token": { type: "string" },
  "gitlab-url": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

/**
 * Parses the command line (without `node` and the script). Throws {@link UsageError} with a
 * message that says what is wrong and how to fix it.
 */
export function parseCliArguments(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliCommand {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError("No command given. Use `running-agent run --repo <url|path> --task \"...\"`.");
  if (first === "--help" || first === "-h" || first === "help") return { command: "help", topic: rest[0] === "run" ? "run" : "main" };
  if (first === "--version" || first === "-v" || first === "-V") return { command: "version" };
  if (first !== "run") {
    throw new UsageError(first.startsWith("-") ? `Unknown option ${first} before the command.` : `Unknown command "${first}". The command is \`run\`.`);
  }
  return parseRunArguments(rest, env);
}

function parseRunArguments(argv: string[], env: NodeJS.ProcessEnv): CliCommand {
  let values: ReturnType<typeof parseRunValues>;
  try {
    values = parseRunValues(argv);
  } catch (error) {
    throw new UsageError(describeParseError(error));
  }
  if (values.help) return { command: "help", topic: "run" };

  const repo = requiredText(values.repo, "--repo", "the repository: an https:// URL or a local path");
  const task = requiredText(values.task, "--task", 'what the agent should do, e.g. --task "Add unit tests for the utils module"');
  const sandbox = values.sandbox ?? "local";
  if (!(SANDBOX_KINDS as readonly string[]).includes(sandbox)) {
    throw new UsageError(`--sandbox must be one of ${SANDBOX_KINDS.join(", ")}, not "${sandbox}".`);
  }
  if (values.unisolated && sandbox !== "local") {
    throw new UsageError("--unisolated applies only to --sandbox local.");
  }
  if (values.image !== undefined && sandbox === "local") {
    throw new UsageError("--image applies only to --sandbox docker or modal.");
  }
  if (values.network !== undefined && sandbox !== "docker") {
    throw new UsageError("--network applies only to --sandbox docker.");
  }
  if (values["prepared-cache"] !== undefined && sandbox !== "local") {
    throw new UsageError("--prepared-cache applies only to --sandbox local (a folder on this machine).");
  }
  if (values["prepared-cache"] !== undefined && values.setup === undefined) {
    throw new UsageError('--prepared-cache keeps what --setup leaves: give --setup too, e.g. --setup "npm ci".');
  }
  if (values["scripted-model"] && (values.model !== undefined || values["model-base-url"] !== undefined)) {
    throw new UsageError("--scripted-model is the model: leave out --model and --model-base-url.");
  }
  if (values.model !== undefined) checkModel(values.model);
  if (values["model-base-url"] !== undefined) {
    if (values.model === undefined) throw new UsageError("--model-base-url needs --model too, e.g. --model openai-compatible/<model>.");
    checkHttpUrl(values["model-base-url"], "--model-base-url");
  }
  if (values["github-api-url"] !== undefined) checkHttpUrl(values["github-api-url"], "--github-api-url");
  if (values["gitlab-url"] !== undefined) checkHttpUrl(values["gitlab-url"], "--gitlab-url");
  for (const [flag, list] of [["--label", values.label], ["--reviewer", values.reviewer], ["--setup", values.setup]] as const) {
    if (list?.some((item) => item.trim() === "")) throw new UsageError(`${flag} needs a non-empty value.`);
  }
  const checks = values.check === undefined ? undefined : parseChecks(values.check);
  const maxFixRounds = values["max-fix-rounds"] === undefined ? undefined : parseMaxFixRounds(values["max-fix-rounds"]);
  const onChecksFailed = values["on-checks-failed"];
  if (onChecksFailed !== undefined && !CHECKS_FAILED_POLICIES.includes(onChecksFailed as ChecksFailedPolicy)) {
    throw new UsageError(`--on-checks-failed must be one of ${CHECKS_FAILED_POLICIES.join(", ")}, not "${onChecksFailed}".`);
  }
  if ((maxFixRounds !== undefined || onChecksFailed !== undefined) && checks === undefined) {
    throw new UsageError("--max-fix-rounds and --on-checks-failed need --check too, e.g. --check auto or --check \"test=npm test\".");
  }
  const githubToken = values["github-token"] ?? nonEmpty(env.GITHUB_TOKEN);
  if (values["github-token"] !== undefined && values["github-token"].trim() === "") {
    throw new UsageError("--github-token is empty. Pass a token, or set GITHUB_TOKEN instead.");
  }
  const gitlabToken = values["gitlab-token"] ?? nonEmpty(env.GITLAB_TOKEN);
  if (values["gitlab-token"] !== undefined && values["gitlab-token"].trim() === "") {
    throw new UsageError("--gitlab-token is empty. Pass a token, or set GITLAB_TOKEN instead.");
  }

  return {
    command: "run",
    options: {
      repo,
      task,
      sandbox: sandbox as SandboxKind,
      unisolated: values.unisolated ?? false,
      modelProxy: values["model-proxy"] ?? false,
      scriptedModel: values["scripted-model"] ?? false,
      pool: values.pool ?? false,
      draft: values.draft ?? false,
      json: values.json ?? false,
      labels: values.label ?? [],
      reviewers: values.reviewer ?? [],
      setupCommands: values.setup ?? [],
      ...optional("baseBranch", values.base, "--base"),
      ...optional("branch", values.branch, "--branch"),
      ...optional("image", values.image, "--image"),
      ...optional("network", values.network, "--network"),
      ...optional("title", values.title, "--title"),
      ...optional("preparedCache", values["prepared-cache"], "--prepared-cache"),
      ...(values.model !== undefined ? { model: values.model } : {}),
      ...(values["model-base-url"] !== undefined ? { modelBaseUrl: values["model-base-url"] } : {}),
      ...(values["github-api-url"] !== undefined ? { githubApiUrl: values["github-api-url"] } : {}),
      ...(values.timeout !== undefined ? { timeoutMs: parseDuration(values.timeout) } : {}),
      ...(checks !== undefined ? { checks } : {}),
      ...(maxFixRounds !== undefined ? { maxFixRounds } : {}),
      ...(onChecksFailed !== undefined ? { onChecksFailed: onChecksFailed as ChecksFailedPolicy } : {}),
      ...(githubToken !== undefined ? { githubToken } : {}),
      ...(values["gitlab-url"] !== undefined ? { gitlabUrl: values["gitlab-url"] } : {}),
      ...(gitlabToken !== undefined ? { gitlabToken } : {}),
    },
  };
}

function parseRunValues(argv: string[]) {
  return parseArgs({ args: argv, options: RUN_OPTIONS, strict: true, allowPositionals: false }).values;
}

/**
 * Reads a duration: a number with an optional unit `ms`, `s`, `m` or `h` (seconds without one).
 * Returns milliseconds.
 */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const units = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
  const milliseconds = match ? Number(match[1]) * units[(match[2] ?? "s") as keyof typeof units] : Number.NaN;
  if (!Number.isFinite(milliseconds) || milliseconds <= 0) {
    throw new UsageError(`--timeout must be a positive duration such as 90s, 20m or 1h, not "${text}".`);
  }
  return Math.round(milliseconds);
}

const CHECKS_FAILED_POLICIES: readonly ChecksFailedPolicy[] = ["draft", "fail", "open"];

/** `--check auto` alone, or checks as `name=command`; a bare command is named `check-N`. */
export function parseChecks(values: readonly string[]): CheckSpec[] | "auto" {
  if (values.includes("auto")) {
    if (values.length > 1) throw new UsageError("--check auto detects the checks; give it alone, or list the checks yourself.");
    return "auto";
  }
  return values.map((value, index) => {
    const named = /^([A-Za-z0-9._:-]{1,64})=(.*)$/s.exec(value);
    const [name, command] = named ? [named[1]!, named[2]!] : [`check-${index + 1}`, value];
    if (command.trim() === "") throw new UsageError(`--check "${value}" has no command; use --check "name=command", e.g. --check "test=npm test".`);
    return { name, command };
  });
}

function parseMaxFixRounds(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || value > 10) throw new UsageError(`--max-fix-rounds must be a whole number from 0 to 10, not "${text}".`);
  return value;
}

function checkModel(model: string): void {
  const slash = model.indexOf("/");
  const provider = model.slice(0, slash);
  if (slash < 1 || slash === model.length - 1) {
    throw new UsageError(`--model must be provider/model, e.g. google/gemini-2.5-pro, not "${model}".`);
  }
  if (!(MODEL_PROVIDERS as readonly string[]).includes(provider)) {
    throw new UsageError(`--model's provider must be one of ${MODEL_PROVIDERS.join(", ")}, not "${provider}".`);
  }
}

function checkHttpUrl(text: string, flag: string): void {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new UsageError(`${flag} must be an http(s) URL, not "${text}".`);
  }
  if (url.username || url.password) throw new UsageError(`${flag} must not contain credentials.`);
}

function requiredText(value: string | undefined, flag: string, what: string): string {
  if (value === undefined) throw new UsageError(`${flag} is required: ${what}.`);
  if (value.trim() === "") throw new UsageError(`${flag} is empty: give ${what}.`);
  return value;
}

function optional<K extends string>(key: K, value: string | undefined, flag: string): { [P in K]?: string } {
  if (value === undefined) return {};
  if (value.trim() === "") throw new UsageError(`${flag} needs a non-empty value.`);
  return { [key]: value } as { [P in K]?: string };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== "" ? value : undefined;
}

/** Turns node:util's parse errors into messages that name the flag and the fix. */
function describeParseError(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const flag = /'(--?[\w-]+)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) {
    const suggestion = closestOption(flag.replace(/^-+/, ""));
    return `Unknown option ${flag}.${suggestion ? ` Did you mean --${suggestion}?` : ""}`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag) {
    const name = flag.replace(/^-+/, "");
    const option = (RUN_OPTIONS as Record<string, { type: string }>)[name];
    return option?.type === "boolean" ? `--${name} is a switch and takes no value.` : `--${name} needs a value.`;
  }
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
    const argument = /'([^']*)'/.exec(message)?.[1];
    return `Unexpected argument "${argument ?? ""}". Every value needs its flag, e.g. --task "...". Quote values with spaces.`;
  }
  return message;
}

function closestOption(name: string): string | undefined {
  let best: { option: string; distance: number } | undefined;
  for (const option of Object.keys(RUN_OPTIONS)) {
    const distance = editDistance(name, option);
    if (!best || distance < best.distance) best = { option, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(name.length / 3)) ? best.option : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
