/**
 * The environment variable that holds the model's API key inside the sandbox. The key is
 * given to the sandbox as a secret under this name and OpenCode's config refers to it as
 * `{env:...}`, so it is never on a command line or in the config text.
 */
export const MODEL_API_KEY_ENV = "RUNNING_AGENT_MODEL_API_KEY";
