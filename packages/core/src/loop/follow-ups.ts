import { agentError, ErrorCode, type RunningAgentError } from "../errors.js";

const MAX_MESSAGE_LENGTH = 100_000;

interface PendingMessage {
  text: string;
  delivered: () => void;
  refused: (error: RunningAgentError) => void;
}

/**
 * Instructions a caller sends to the running agent (`handle.say`). They queue until the agent's
 * current round ends, then go to the same OpenCode session together as one message. Once the
 * agent is done for good (its last round ended with nothing queued), the box closes: a later
 * message is refused with AGENT_FINISHED, and so is anything still queued when the task ends.
 */
export class FollowUps {
  #pending: PendingMessage[] = [];
  #closedBecause: string | undefined;

  /** Queues a message; resolves once it has been handed to the agent. */
  say(text: unknown): Promise<void> {
    if (typeof text !== "string" || text.trim() === "") {
      return Promise.reject(agentError(ErrorCode.INVALID_TASK, "say() needs a non-empty string: the instruction for the agent."));
    }
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(text) || text.length > MAX_MESSAGE_LENGTH) {
      return Promise.reject(agentError(ErrorCode.INVALID_TASK, `say() takes text of at most ${MAX_MESSAGE_LENGTH} characters without control characters (tabs and line breaks are fine).`));
    }
    if (this.#closedBecause !== undefined) return Promise.reject(this.#finished());
    return new Promise((delivered, refused) => this.#pending.push({ text: text.trim(), delivered, refused }));
  }

  /** Takes every queued message, joined into one; undefined when none. The senders' promises resolve. */
  take(): string | undefined {
    if (this.#pending.length === 0) return undefined;
    const taken = this.#pending.splice(0);
    for (const message of taken) message.delivered();
    return taken.map((message) => message.text).join("\n\n");
  }

  /** No more rounds will run: refuses what is queued and what comes later. */
  close(reason: string): void {
    if (this.#closedBecause !== undefined) return;
    this.#closedBecause = reason;
    for (const message of this.#pending.splice(0)) message.refused(this.#finished());
  }

  get closed(): boolean {
    return this.#closedBecause !== undefined;
  }

  #finished(): RunningAgentError {
    return agentError(
      ErrorCode.AGENT_FINISHED,
      `The agent is no longer working on this task (${this.#closedBecause}). Continue its branch with a new task: runAgentTask({ ..., branch: result.branch, task }).`,
    );
  }
}
