import { PHASES, agentError, ErrorCode, type AgentTaskEvent, type AgentTaskEventInput, type AgentTaskHandle, type AgentTaskOptions, type AgentTaskResult } from "@running-agent/core";

/** How a gated task ends when the test opens its gate. */
export type GatedOutcome = { status: "completed" | "no_changes"; branch?: string; commit?: string } | { error: { code: ErrorCode; message: string }; phase?: "validate" | "agent" };

/** One task the runner started. */
export interface GatedTask {
  options: AgentTaskOptions;
  handle: AgentTaskHandle;
  /** Ends the task: emits the remaining phases and settles the result. */
  finish(outcome: GatedOutcome): void;
  /** Emits an event as the running task, e.g. the agent's streamed text. */
  emit(input: AgentTaskEventInput): void;
  cancelled: boolean;
}

/**
 * A task runner for testing the HTTP layer without OpenCode: each task emits its first phases,
 * then waits until the test calls `finish`, or until it is cancelled. It keeps the handle's
 * contract (events in order through onEvent and the iterator, a result that rejects with a
 * RunningAgentError, cancel resolving once the task has ended).
 */
export function createGatedTaskRunner() {
  const tasks: GatedTask[] = [];
  const startWaiters = new Set<() => void>();

  function runTask(options: AgentTaskOptions): AgentTaskHandle {
    const taskId = options.taskId ?? `task-${tasks.length + 1}`;
    const events: AgentTaskEvent[] = [];
    const iteratorWakers = new Set<() => void>();
    let settled = false;
    let resolveResult!: (result: AgentTaskResult) => void;
    let rejectResult!: (error: unknown) => void;
    const result = new Promise<AgentTaskResult>((resolve, reject) => {
      resolveResult = resolve;
      rejectResult = reject;
    });
    result.catch(() => undefined);

    const emit = (input: AgentTaskEventInput): void => {
      const event = { ...input, taskId, at: Date.now() } as AgentTaskEvent;
      events.push(event);
      try {
        options.onEvent?.(event);
      } catch {
        // the contract: exceptions from onEvent are ignored
      }
      for (const wake of iteratorWakers) wake();
    };

    const finish = (outcome: GatedOutcome): void => {
      if (settled) return;
      settled = true;
      if ("error" in outcome) {
        const phase = outcome.phase ?? "agent";
        emit({ type: "phase", phase, status: "failed", durationMs: 5, error: outcome.error });
        emit({ type: "phase", phase: "teardown", status: "completed", durationMs: 1 });
        rejectResult(agentError(outcome.error.code, outcome.error.message, { phase }));
      } else {
        emit({ type: "agent.text", partId: "p1", delta: "Wrote the file.", text: "Wrote the file." });
        emit({ type: "phase", phase: "agent", status: "completed", durationMs: 5 });
        for (const phase of PHASES.slice(PHASES.indexOf("collect"))) {
          emit({ type: "phase", phase, status: "started" });
          if (phase === "pull-request" && outcome.status === "completed") emit({ type: "change-request", url: "local://repo/change-requests/1", number: 1, created: true });
          emit({ type: "phase", phase, status: "completed", durationMs: 1 });
        }
        resolveResult({
          taskId,
          status: outcome.status,
          repository: { id: options.repo },
          baseBranch: "main",
          ...(outcome.status === "completed"
            ? {
                branch: outcome.branch ?? options.branch ?? "running-agent/task",
                commit: outcome.commit ?? "0123456789abcdef0123456789abcdef01234567",
                pullRequest: { number: 1, url: "local://repo/change-requests/1", head: options.branch ?? "running-agent/task", base: "main", title: options.task, body: "", draft: false, created: true },
              }
            : {}),
          changes: outcome.status === "completed" ? [{ path: "hello.txt", status: "added" } as AgentTaskResult["changes"][number]] : [],
          summary: "Wrote the file.",
          model: "scripted/scripted-model",
          usage: { inputTokens: 10, outputTokens: 5, reasoningTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, cost: 0, costSource: "unknown" },
          agentRounds: [],
          timings: { validate: 1, agent: 5, total: 20 },
        });
      }
      for (const wake of iteratorWakers) wake();
    };

    const handle: AgentTaskHandle = {
      taskId,
      result,
      events,
      async cancel() {
        if (!settled) {
          task.cancelled = true;
          settled = true;
          emit({ type: "phase", phase: "agent", status: "failed", durationMs: 3, error: { code: ErrorCode.ABORTED, message: "The task was cancelled." } });
          emit({ type: "phase", phase: "teardown", status: "completed", durationMs: 1 });
          rejectResult(agentError(ErrorCode.ABORTED, "The task was cancelled.", { phase: "agent" }));
          for (const wake of iteratorWakers) wake();
        }
        await result.catch(() => undefined);
      },
      async say() {
        throw agentError(ErrorCode.AGENT_FINISHED, "The gated test runner takes no follow-up messages.");
      },
      async *[Symbol.asyncIterator]() {
        let index = 0;
        while (true) {
          while (index < events.length) yield events[index++]!;
          if (settled) return;
          await new Promise<void>((resolve) => {
            iteratorWakers.add(resolve);
          });
          iteratorWakers.clear();
        }
      },
    };
    const task: GatedTask = { options, handle, finish, emit, cancelled: false };
    tasks.push(task);
    // Like core: events start after the handle is returned.
    queueMicrotask(() => {
      emit({ type: "phase", phase: "validate", status: "started" });
      emit({ type: "phase", phase: "validate", status: "completed", durationMs: 1 });
      emit({ type: "phase", phase: "agent", status: "started" });
      emit({ type: "log", level: "info", message: `working on ${options.repo}` });
      for (const wake of startWaiters) wake();
    });
    return handle;
  }

  /** Resolves once `count` tasks have started and emitted their first events. */
  function waitForTasks(count: number): Promise<GatedTask[]> {
    return new Promise((resolve) => {
      const check = () => {
        if (tasks.length >= count && tasks.slice(0, count).every((task) => task.handle.events.length >= 4)) {
          startWaiters.delete(check);
          resolve(tasks.slice(0, count));
        }
      };
      startWaiters.add(check);
      check();
    });
  }

  return { runTask, tasks, waitForTasks };
}
