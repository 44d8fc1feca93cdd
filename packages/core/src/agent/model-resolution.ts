import { agentError, ErrorCode } from "../errors.js";
import { DEFAULT_MODEL, MODEL_PROVIDERS, type ModelConfig, type ModelPrices, type ModelProvider } from "../model.js";

/**
 * The part of an OpenCode provider config block that does not hold the key. The engine adds
 * `options.apiKey = "{env:NAME}"` so the key itself never appears in the config.
 */
export interface OpencodeProviderBlock {
  /** The AI SDK package OpenCode loads; only set for the OpenAI-compatible provider (built-ins know theirs). */
  npm?: string;
  /** The provider's display name. */
  name?: string;
  /** The AI SDK provider's options. */
  options: {
    /** The API's base URL, when not the provider's own. */
    baseURL?: string;
  };
  /** Model entries; needed for endpoints OpenCode's bundled catalogue does not know. */
  models?: Record<
    string,
    {
      /** The model's display name. */
      name: string;
      /** Whether the model takes tool calls (always true: the agent needs them). */
      tool_call: boolean;
      /** Its limits, in tokens. */
      limit: {
        /** The context window. */
        context: number;
        /** The most tokens one answer may have. */
        output: number;
      };
    }
  >;
}

/** A model config checked and completed with defaults, ready for the OpenCode engine. */
export interface ResolvedModel {
  /** Who serves the model. */
  provider: ModelProvider;
  /** The model id, e.g. `gemini-2.5-pro`. */
  model: string;
  /** `provider/model`, for results and logs. */
  label: string;
  /** The provider id inside OpenCode's config. */
  opencodeProviderId: string;
  /** The provider block for OpenCode's config (without the key). */
  opencodeProvider: OpencodeProviderBlock;
  /** The API key, when there is one. Secret: pass it to the sandbox as a secret, never in argv, config or logs. */
  apiKey?: string;
  /** Where the key came from (`options` or an env var name), for messages. */
  apiKeySource?: string;
  /** The base URL when one was set. */
  baseURL?: string;
  /** The host name of the model's API, for a network allow-list. */
  apiHost: string;
  /** The caller's prices, for a model OpenCode has none for. */
  prices?: ModelPrices;
}

interface ProviderFacts {
  keyEnv: readonly string[];
  apiHost: string;
  keyRequired: boolean;
}

const PROVIDER_FACTS: Record<ModelProvider, ProviderFacts> = {
  google: { keyEnv: ["GEMINI_API_KEY", "GOOGLE_GENERATIVE_AI_API_KEY"], apiHost: "generativelanguage.googleapis.com", keyRequired: true },
  anthropic: { keyEnv: ["ANTHROPIC_API_KEY"], apiHost: "api.anthropic.com", keyRequired: true },
  openai: { keyEnv: ["OPENAI_API_KEY"], apiHost: "api.openai.com", keyRequired: true },
  "openai-compatible": { keyEnv: ["OPENAI_COMPATIBLE_API_KEY"], apiHost: "", keyRequired: false },
};

/** Limits used for `openai-compatible` models when the caller gives none. */
export const DEFAULT_COMPATIBLE_LIMITS = {
  /** The context window, in tokens. */
  context: 128_000,
  /** The most tokens one answer may have. */
  output: 8_192,
} as const;

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:@/+-]*$/;

/**
 * Checks a model choice and fills in defaults: `provider/model` strings are parsed, the API key is
 * taken from the options or the environment, and the OpenCode provider block is built.
 *
 * - `undefined` means Gemini 2.5 Pro with `GEMINI_API_KEY` (or `GOOGLE_GENERATIVE_AI_API_KEY`).
 * - `openai-compatible` needs a `baseURL` (or `OPENAI_COMPATIBLE_BASE_URL` with the string form); its key is optional.
 * - For google, anthropic and openai, OpenCode's bundled model catalogue must know the model id, unless
 *   `limits` are given (then the model is declared in the config and any id works).
 *
 * Throws a RunningAgentError: `INVALID_MODEL` (malformed), `UNKNOWN_MODEL_PROVIDER`, or `MISSING_API_KEY`.
 */
export function resolveModel(model: ModelConfig | string | undefined, env: Record<string, string | undefined> = process.env): ResolvedModel {
  const config = toModelConfig(model, env);
  const facts = PROVIDER_FACTS[config.provider];

  let baseURL: string | undefined;
  if (config.baseURL !== undefined) baseURL = checkBaseURL(config.baseURL);
  if (config.provider === "openai-compatible" && baseURL === undefined) {
    throw agentError(
      ErrorCode.INVALID_MODEL,
      'The "openai-compatible" provider needs a base URL: pass model: { provider: "openai-compatible", model, baseURL: "http://host:port/v1" } or set OPENAI_COMPATIBLE_BASE_URL.',
      // `missing` lets a front end (the CLI) say it in its own terms: a flag instead of the option.
      { phase: "validate", details: { provider: config.provider, missing: "baseURL" } },
    );
  }

  let apiKey: string | undefined;
  let apiKeySource: string | undefined;
  if (config.apiKey !== undefined) {
    if (config.apiKey.trim() === "") throw agentError(ErrorCode.MISSING_API_KEY, `The API key for "${config.provider}" is empty.`, { phase: "validate" });
    apiKey = config.apiKey;
    apiKeySource = "options";
  } else {
    for (const name of facts.keyEnv) {
      const value = env[name];
      if (value !== undefined && value.trim() !== "") {
        apiKey = value;
        apiKeySource = name;
        break;
      }
    }
  }
  if (apiKey === undefined && facts.keyRequired) {
    throw agentError(
      ErrorCode.MISSING_API_KEY,
      `No API key for "${config.provider}/${config.model}": set ${facts.keyEnv.join(" or ")}, or pass model: { provider: "${config.provider}", model: "${config.model}", apiKey }.`,
      { phase: "validate", details: { provider: config.provider, model: config.model, env: [...facts.keyEnv] } },
    );
  }
  // OpenCode substitutes `{env:NAME}` into its config text; control characters, quotes and backslashes
  // could break that text, and no real API key has them.
  if (apiKey !== undefined && /[\u0000-\u001f\u007f"\\]/.test(apiKey)) {
    throw agentError(
      ErrorCode.INVALID_MODEL,
      `The API key for "${config.provider}" contains a line break, a control character, a quote or a backslash; check how it was read.`,
      { phase: "validate" },
    );
  }

  const opencodeProvider: OpencodeProviderBlock =
    config.provider === "openai-compatible"
      ? {
          npm: "@ai-sdk/openai-compatible",
          name: "OpenAI-compatible endpoint",
          options: { baseURL: baseURL! },
          models: { [config.model]: { name: config.model, tool_call: true, limit: { ...(config.limits ?? DEFAULT_COMPATIBLE_LIMITS) } } },
        }
      : {
          options: baseURL === undefined ? {} : { baseURL },
          // OpenCode's bundled catalogue knows the built-in providers' models; limits let a newer model be used anyway.
          ...(config.limits ? { models: { [config.model]: { name: config.model, tool_call: true, limit: { ...config.limits } } } } : {}),
        };

  return {
    provider: config.provider,
    model: config.model,
    label: `${config.provider}/${config.model}`,
    opencodeProviderId: config.provider,
    opencodeProvider,
    ...(apiKey === undefined ? {} : { apiKey, apiKeySource }),
    ...(baseURL === undefined ? {} : { baseURL }),
    apiHost: baseURL === undefined ? facts.apiHost : new URL(baseURL).hostname,
    ...(config.prices === undefined ? {} : { prices: checkPrices(config.prices) }),
  };
}

function toModelConfig(model: ModelConfig | string | undefined, env: Record<string, string | undefined>): ModelConfig {
  if (model === undefined) return { ...DEFAULT_MODEL };
  if (typeof model === "string") {
    const text = model.trim();
    const slash = text.indexOf("/");
    if (slash <= 0 || slash === text.length - 1) {
      throw agentError(
        ErrorCode.INVALID_MODEL,
        `The model "${model}" is not of the form provider/model (e.g. "google/gemini-2.5-pro", "anthropic/claude-sonnet-4-5", "openai/gpt-5").`,
        { phase: "validate" },
      );
    }
    const provider = checkProvider(text.slice(0, slash));
    const config: ModelConfig = { provider, model: checkModelId(text.slice(slash + 1)) };
    const envBaseURL = env.OPENAI_COMPATIBLE_BASE_URL;
    if (provider === "openai-compatible" && envBaseURL) config.baseURL = envBaseURL;
    return config;
  }
  if (typeof model !== "object" || model === null) {
    throw agentError(ErrorCode.INVALID_MODEL, "The model must be a string like \"google/gemini-2.5-pro\" or an object { provider, model }.", { phase: "validate" });
  }
  const provider = checkProvider(model.provider);
  if (typeof model.model !== "string") throw agentError(ErrorCode.INVALID_MODEL, `The model id for "${provider}" must be a string.`, { phase: "validate" });
  if (model.apiKey !== undefined && typeof model.apiKey !== "string") throw agentError(ErrorCode.INVALID_MODEL, "The model's apiKey must be a string.", { phase: "validate" });
  if (model.baseURL !== undefined && typeof model.baseURL !== "string") throw agentError(ErrorCode.INVALID_MODEL, "The model's baseURL must be a string.", { phase: "validate" });
  if (model.limits !== undefined) {
    const { context, output } = model.limits;
    if (!Number.isInteger(context) || !Number.isInteger(output) || context <= 0 || output <= 0) {
      throw agentError(ErrorCode.INVALID_MODEL, "The model's limits must be positive integers { context, output }.", { phase: "validate" });
    }
  }
  return { ...model, provider, model: checkModelId(model.model) };
}

function checkProvider(provider: unknown): ModelProvider {
  if (typeof provider === "string" && (MODEL_PROVIDERS as readonly string[]).includes(provider)) return provider as ModelProvider;
  throw agentError(
    ErrorCode.UNKNOWN_MODEL_PROVIDER,
    `Unknown model provider "${String(provider)}". Use one of: ${MODEL_PROVIDERS.join(", ")} (any OpenAI-compatible endpoint works with "openai-compatible" and a baseURL).`,
    { phase: "validate", details: { provider: String(provider) } },
  );
}

function checkModelId(model: string): string {
  const id = model.trim();
  if (!MODEL_ID.test(id) || id.length > 200) {
    throw agentError(ErrorCode.INVALID_MODEL, `The model id "${model}" is empty or has characters a model id cannot have.`, { phase: "validate" });
  }
  return id;
}

function checkBaseURL(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw agentError(ErrorCode.INVALID_MODEL, `The model's baseURL "${value}" is not a URL; give e.g. "http://127.0.0.1:8080/v1".`, { phase: "validate" });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw agentError(ErrorCode.INVALID_MODEL, `The model's baseURL must be http or https, not ${url.protocol}`, { phase: "validate" });
  }
  if (url.username !== "" || url.password !== "") {
    throw agentError(ErrorCode.INVALID_MODEL, "The model's baseURL must not contain credentials; pass the key as apiKey.", { phase: "validate" });
  }
  return value.replace(/\/+$/, "");
}

function checkPrices(prices: unknown): ModelPrices {
  const fields = ["input", "output", "cacheRead", "cacheWrite", "reasoning"] as const;
  const valid =
    typeof prices === "object" &&
    prices !== null &&
    fields.every((field) => {
      const value = (prices as Record<string, unknown>)[field];
      return (value === undefined && field !== "input" && field !== "output") || (typeof value === "number" && Number.isFinite(value) && value >= 0);
    });
  if (!valid) {
    throw agentError(ErrorCode.INVALID_MODEL, "The model's prices must be { input, output, cacheRead?, cacheWrite?, reasoning? }: numbers of 0 or more per million tokens.", { phase: "validate" });
  }
  const { input, output, cacheRead, cacheWrite, reasoning } = prices as ModelPrices;
  return { input, output, ...(cacheRead !== undefined ? { cacheRead } : {}), ...(cacheWrite !== undefined ? { cacheWrite } : {}), ...(reasoning !== undefined ? { reasoning } : {}) };
}
