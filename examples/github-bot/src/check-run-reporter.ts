import type { Octokit } from "@octokit/rest";
import type { IssueTarget } from "./task-trigger.js";

/** How a run ended, as a check run's conclusion says it. */
export type CheckRunConclusion = "success" | "failure" | "cancelled" | "timed_out" | "neutral";

/**
 * A run as a check run on the commit it pushed: `in_progress` from the push (the run still
 * reports the pull request), then `completed` with a conclusion. Nothing is made for a run
 * that pushed nothing. GitHub lets only Apps write check runs, so the bot does this with an
 * App. Writes are serialized; a failed write goes to `onError` and never fails the task.
 */
export class CheckRunReporter {
  private checkRunId: number | undefined;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly octokit: Octokit,
    private readonly target: IssueTarget,
    private readonly name: string,
    private readonly startedAt: Date,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** The check run's id once it exists. */
  get id(): number | undefined {
    return this.checkRunId;
  }

  /** The commit is pushed: the check run starts on it, in progress. */
  pushed(commit: string, summary: string): Promise<void> {
    return this.enqueue(async () => {
      if (this.checkRunId !== undefined) return;
      const { data } = await this.octokit.rest.checks.create({
        owner: this.target.owner,
        repo: this.target.repo,
        name: this.name,
        head_sha: commit,
        status: "in_progress",
        started_at: this.startedAt.toISOString(),
        output: { title: "Running Agent is finishing", summary },
      });
      this.checkRunId = data.id;
    });
  }

  /** The run ended: the check run (when there is one) completes with a conclusion. */
  finish(conclusion: CheckRunConclusion, title: string, summary: string): Promise<void> {
    return this.enqueue(async () => {
      if (this.checkRunId === undefined) return;
      await this.octokit.rest.checks.update({
        owner: this.target.owner,
        repo: this.target.repo,
        check_run_id: this.checkRunId,
        conclusion,
        completed_at: new Date().toISOString(),
        output: { title, summary: summary.slice(0, 65_000) },
      });
    });
  }

  private enqueue(write: () => Promise<void>): Promise<void> {
    this.writes = this.writes.then(write).catch((error: unknown) => this.onError(error));
    return this.writes;
  }
}
