/** Model providers OpenCode can reach without downloading anything. */
export const MODEL_PROVIDERS = ["google", "anthropic", "openai", "openai-compatible"] as const;
/** One of {@link MODEL_PROVIDERS}. */
export type ModelProvider = (typeof MODEL_PROVIDERS)[number];

/** Which model the agent uses. */
export interface ModelConfig {
  /** Who serves the model; `openai-compatible` is any server that speaks OpenAI's chat completions. */
  provider: ModelProvider;
  /** The model id, e.g. `gemini-2.5-pro`, `claude-sonnet-4-5`, `gpt-5`. */
  model: string;
  /**
   * API key. Defaults from the environment: GEMINI_API_KEY (or GOOGLE_GENERATIVE_AI_API_KEY),
   * ANTHROPIC_API_KEY, OPENAI_API_KEY; for `openai-compatible`, OPENAI_COMPATIBLE_API_KEY.
   */
  apiKey?: string;
  /** Base URL; required for `openai-compatible` (e.g. `http://127.0.0.1:8080/v1`). */
  baseURL?: string;
  /** Context and output limits: used for `openai-compatible` models, and to declare a built-in provider's model that OpenCode's bundled catalogue does not know yet. */
  limits?: {
    /** The context window, in tokens. */
    context: number;
    /** The most tokens one answer may have. */
    output: number;
  };
  /**
   * Prices per million tokens, in the model's currency, for models OpenCode's catalogue has no
   * price for (an OpenAI-compatible endpoint, a model newer than the catalogue). Without either,
   * the cost is reported as unknown, never as 0.
   */
  prices?: ModelPrices;
}

/** Prices per million tokens. */
export interface ModelPrices {
  /** Per million input (prompt) tokens. */
  input: number;
  /** Per million output tokens. */
  output: number;
  /** Default: `input`. */
  cacheRead?: number;
  /** Default: `input`. */
  cacheWrite?: number;
  /** Default: `output`. */
  reasoning?: number;
}

/** The seed's default model. */
export const DEFAULT_MODEL: Pick<ModelConfig, "provider" | "model"> = { provider: "google", model: "gemini-2.5-pro" };
