import { startScriptedModelServer, type RecordedModelRequest, type ScriptedModelServer, type ScriptedStaticTurn, workingDirectoryOf } from "./scripted-model-server.js";
import type { ModelConfig } from "../model.js";

/** The file the offline model writes into the repository. */
export const OFFLINE_NOTE_FILE = "RUNNING_AGENT_TASK.md";

/** A scripted model on loopback, for a fully offline server: every task gets a note file and a summary. */
export interface OfflineModel {
  /** The config to pass as `model`: `openai-compatible` at the server, with its key. */
  model: ModelConfig;
  /** The scripted server behind it, for its recorded requests. */
  server: ScriptedModelServer;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Starts the scripted model server with a script that works for any number of tasks: a
 * conversation whose last message is not a tool result gets a `write` call that records the task
 * in {@link OFFLINE_NOTE_FILE}; one that just got the tool's answer gets a closing summary.
 * `delayMs` slows every answer down (to watch a job run, or to test a server stopping mid-job).
 */
export async function startOfflineModel(options: { delayMs?: number } = {}): Promise<OfflineModel> {
  const apiKey = "offline-model-key";
  const turn = (request: RecordedModelRequest): ScriptedStaticTurn => {
    const messages: { role?: string; content?: unknown }[] = request.body?.messages ?? [];
    const delay = options.delayMs ? { delayMs: options.delayMs } : {};
    if (messages.at(-1)?.role === "tool") return { text: `Recorded the task in ${OFFLINE_NOTE_FILE}.`, ...delay };
    const task = lastUserText(messages);
    return {
      toolCalls: [{ name: "write", arguments: { filePath: `${workingDirectoryOf(request)}/${OFFLINE_NOTE_FILE}`, content: `# Task\n\n${task}\n` } }],
      ...delay,
    };
  };
  const server = await startScriptedModelServer({ apiKey, afterScript: turn });
  return {
    model: { provider: "openai-compatible", model: "scripted-model", baseURL: server.url, apiKey },
    server,
    close: () => server.close(),
  };
}

function lastUserText(messages: { role?: string; content?: unknown }[]): string {
  const content = [...messages].reverse().find((message) => message.role === "user")?.content;
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part: { text?: string }) => part.text ?? "").join("\n");
  return "";
}
