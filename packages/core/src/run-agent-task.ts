import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { ErrorCode, RunningAgentError, abortedError, agentError } from "./errors.js";
import { EventLog } from "./event-log.js";
import { AgentTextParts } from "./agent-text-parts.js";
import { Redactor } from "./redactor.js";
import type { AgentTaskEvent, AgentTaskEventInput } from "./events.js";
import type { Phase } from "./phases.js";
import type { AgentTaskHandle, AgentTaskOptions, AgentTaskResult } from "./run-options.js";
import type { TaskContext } from "./loop/task-context.js";
import { validate } from "./loop/validate.js";
import { openSandbox } from "./loop/sandbox.js";
import { cloneIntoSandbox } from "./loop/clone.js";
import { runSetup } from "./loop/setup.js";
import { runAgent } from "./loop/agent.js";
import { collectChanges } from "./loop/collect.js";
import { verifyChanges } from "./loop/verify.js";
import { FollowUps } from "./loop/follow-ups.js";
import { commitOnBranch } from "./loop/commit.js";
import { pushTaskBranch } from "./loop/push.js";
import { openPullRequest } from "./loop/pull-request.js";
import { releaseSandbox, teardown } from "./loop/teardown.js";

/** The error code a phase's unexpected failure gets. */
const PHASE_ERROR_CODES: Record<Phase, ErrorCode> = {
  validate: ErrorCode.INVALID_OPTIONS,
  sandbox: ErrorCode.SANDBOX_CREATE_FAILED,
  clone: ErrorCode.CLONE_FAILED,
  setup: ErrorCode.SETUP_FAILED,
  agent: ErrorCode.AGENT_FAILED,
  collect: ErrorCode.COLLECT_FAILED,
  verify: ErrorCode.CHECKS_FAILED,
  commit: ErrorCode.COMMIT_FAILED,
  push: ErrorCode.PUSH_FAILED,
  "pull-request": ErrorCode.PULL_REQUEST_FAILED,
  teardown: ErrorCode.INTERNAL,
};

/**
 * Runs the whole loop: validate, open a sandbox, clone, set up, run the agent, collect the
 * changes, commit, push, open the change request, and tear everything down.
 * Resolves with the result; rejects with a {@link RunningAgentError} whose `phase` says where it failed.
 */
export async function runAgentTask(options: AgentTaskOptions): Promise<AgentTaskResult> {
  return startAgentTask(options).result;
}

/**
 * Starts the loop and returns at once with a handle: iterate its events, cancel it, await its result.
 * Each iteration of the handle replays the task's events from the first.
 */
export function startAgentTask(options: AgentTaskOptions): AgentTaskHandle {
  const taskId = options?.taskId ?? randomUUID();
  const log = new EventLog<AgentTaskEvent>();
  const controller = new AbortController();
  const context = createContext(taskId, options, controller, log);
  // Without `prepare` the loop always ends with a task result.
  const result = (runLoop(context, controller) as Promise<AgentTaskResult>).finally(() => log.close());
  // The handle's promise is observed by the caller; this keeps an unobserved rejection from crashing the process
  // when the caller only iterates events.
  result.catch(() => {});
  return {
    taskId,
    result,
    get events() {
      return log.items;
    },
    async cancel(reason?: string) {
      if (!controller.signal.aborted) {
        controller.abort(agentError(ErrorCode.ABORTED, reason ? `The task was cancelled: ${reason}` : "The task was cancelled."));
      }
      await result.then(
        () => undefined,
        () => undefined,
      );
    },
    say: (text: string) => context.followUps.say(text),
    [Symbol.asyncIterator]: () => log[Symbol.asyncIterator](),
  };
}

function createContext(taskId: string, options: AgentTaskOptions, controller: AbortController, log: EventLog<AgentTaskEvent>): TaskContext {
  // Validation refuses secrets that are not a list of strings; until then only a list is taken.
  const redactor = new Redactor(Array.isArray(options?.secrets) ? options.secrets : []);
  const textParts = new AgentTextParts();
  const onEvent = options?.onEvent;
  return {
    taskId,
    startedAt: Date.now(),
    raw: options,
    signal: controller.signal,
    redactor,
    timings: {},
    hostFolders: [],
    summary: "",
    usage: { inputTokens: 0, outputTokens: 0, reasoningTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cost: 0, costSource: "unknown" },
    changes: [],
    agentRounds: [],
    followUps: new FollowUps(),
    emit(input: AgentTaskEventInput) {
      const redacted = redactor.redact({ ...input, taskId, at: Date.now() }) as AgentTaskEvent;
      // The log keeps every event for replay: agent text shares one string per part (see AgentTextParts).
      const event = redacted.type === "agent.text" ? textParts.share(redacted) : redacted;
      log.push(event);
      if (onEvent) {
        try {
          onEvent(event);
        } catch {
          // A listener's bug must not break the task.
        }
      }
    },
  };
}

/**
 * The loop up to and including setup (prepareRepository): the same validation, errors and teardown as a
 * task, no agent. Resolves with the context, which holds the repository, the commit and whether a kept
 * state was reused.
 */
export async function runPreparation(options: AgentTaskOptions, refresh: boolean): Promise<TaskContext> {
  const log = new EventLog<AgentTaskEvent>();
  const controller = new AbortController();
  const context = createContext(options.taskId ?? randomUUID(), options, controller, log);
  context.prepare = { refresh };
  try {
    await runLoop(context, controller);
  } finally {
    log.close();
  }
  return context;
}

async function runLoop(context: TaskContext, controller: AbortController): Promise<AgentTaskResult | undefined> {
  const started = performance.now();
  const raw = context.raw;
  // The caller's signal and the task timeout both abort the same controller.
  // Validation refuses a signal that is not one; until then, only a real one is listened to.
  const signal = typeof raw?.signal?.addEventListener === "function" ? raw.signal : undefined;
  const onCallerAbort = () => controller.abort(abortedError(signal));
  if (signal?.aborted === true) onCallerAbort();
  signal?.addEventListener("abort", onCallerAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;

  const phase = async (name: Phase, body: () => Promise<void>): Promise<void> => {
    context.emit({ type: "phase", phase: name, status: "started" });
    const phaseStarted = performance.now();
    try {
      if (controller.signal.aborted) throw abortedError(controller.signal, name);
      await body();
      if (controller.signal.aborted) throw abortedError(controller.signal, name);
    } catch (error) {
      const failure = toTaskError(error, name, context);
      const durationMs = performance.now() - phaseStarted;
      context.timings[name] = durationMs;
      context.emit({ type: "phase", phase: name, status: "failed", durationMs, error: { code: failure.code, message: failure.message } });
      throw failure;
    }
    const durationMs = performance.now() - phaseStarted;
    context.timings[name] = durationMs;
    context.emit({ type: "phase", phase: name, status: "completed", durationMs });
  };
  const skip = (name: Phase) => context.emit({ type: "phase", phase: name, status: "skipped" });

  try {
    await phase("validate", () => validate(context));
    const options = context.options!;
    timer = setTimeout(() => {
      controller.abort(agentError(ErrorCode.TIMEOUT, `The task did not finish within ${options.timeoutMs} ms (timeoutMs).`));
    }, Math.max(1, options.timeoutMs - (Date.now() - context.startedAt)));
    await phase("sandbox", () => openSandbox(context));
    await phase("clone", () => cloneIntoSandbox(context));
    if (options.setupCommands.length > 0) await phase("setup", () => runSetup(context));
    else skip("setup");
    if (context.prepare) {
      await runTeardown(context);
      context.timings.total = performance.now() - started;
      return undefined;
    }
    await phase("agent", () => runAgent(context));
    await phase("collect", () => collectChanges(context));
    if (context.changes.length > 0 && (context.checks?.length ?? 0) > 0) await phase("verify", () => verifyChanges(context));
    else skip("verify");
    if (context.changes.length === 0) {
      skip("commit");
      skip("push");
      skip("pull-request");
    } else {
      // Nothing runs in the sandbox any more: it goes while the host commits, pushes and opens the change request.
      void releaseSandbox(context);
      await phase("commit", () => commitOnBranch(context));
      await phase("push", () => pushTaskBranch(context));
      await phase("pull-request", () => openPullRequest(context));
    }
  } catch (error) {
    await runTeardown(context);
    context.timings.total = performance.now() - started;
    throw error;
  } finally {
    context.followUps.close("the task has ended");
    if (timer) clearTimeout(timer);
    signal?.removeEventListener("abort", onCallerAbort);
  }
  await runTeardown(context);
  context.timings.total = performance.now() - started;
  return buildResult(context);
}

async function runTeardown(context: TaskContext): Promise<void> {
  context.emit({ type: "phase", phase: "teardown", status: "started" });
  const started = performance.now();
  await teardown(context);
  const durationMs = performance.now() - started;
  context.timings.teardown = durationMs;
  context.emit({ type: "phase", phase: "teardown", status: "completed", durationMs });
}

/** Codes that only echo a cancellation or a timeout; the task's own reason says more. */
const ECHO_OF_CANCELLATION = new Set<ErrorCode>([ErrorCode.ABORTED, ErrorCode.TIMEOUT, ErrorCode.AGENT_TIMEOUT]);

/** Every failure leaves the loop as a RunningAgentError with its phase and a redacted message. */
function toTaskError(error: unknown, phase: Phase, context: TaskContext): RunningAgentError {
  let failure: RunningAgentError;
  const echoesCancellation = !RunningAgentError.isInstance(error) || ECHO_OF_CANCELLATION.has(error.code);
  if (context.signal.aborted && echoesCancellation) {
    // A phase cut short by the cancellation or the timeout reports that, not how it happened to stop.
    failure = abortedError(context.signal, phase);
  } else if (RunningAgentError.isInstance(error)) {
    failure = error;
  } else if (error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError) {
    // A programming error's text ("Cannot read properties of null") says nothing a caller can act on.
    failure = agentError(PHASE_ERROR_CODES[phase], `The ${phase} phase failed with an internal ${error.name}; the error's cause holds it. Please report it.`, { cause: error });
  } else {
    const message = error instanceof Error ? error.message : String(error);
    failure = agentError(PHASE_ERROR_CODES[phase], `The ${phase} phase failed: ${message}`, { cause: error });
  }
  const redacted = context.redactor.redactText(failure.message);
  if (redacted !== failure.message || failure.phase === undefined) {
    const copy = new RunningAgentError({
      code: failure.code,
      message: redacted,
      phase: failure.phase ?? phase,
      ...(failure.details ? { details: context.redactor.redact(failure.details) } : {}),
      ...(redacted === failure.message ? { cause: failure.cause } : {}),
    });
    if (failure.stack && redacted === failure.message) copy.stack = failure.stack;
    return copy;
  }
  return failure;
}

function buildResult(context: TaskContext): AgentTaskResult {
  const options = context.options!;
  const repository = context.repository!;
  return {
    taskId: context.taskId,
    status: context.changes.length === 0 ? "no_changes" : "completed",
    repository: { id: repository.id, ...(repository.webUrl ? { webUrl: repository.webUrl } : {}) },
    baseBranch: context.baseBranch!,
    ...(context.branch ? { branch: context.branch } : {}),
    ...(context.commit ? { commit: context.commit } : {}),
    changes: context.changes,
    ...(context.pullRequest ? { pullRequest: context.pullRequest } : {}),
    summary: context.redactor.redactText(context.summary),
    model: `${options.model.provider}/${options.model.model}`,
    usage: context.usage,
    agentRounds: context.agentRounds,
    ...(context.sandboxMs !== undefined ? { sandboxMs: context.sandboxMs } : {}),
    timings: context.timings,
    ...(context.verification ? { verification: context.verification } : {}),
  };
}
