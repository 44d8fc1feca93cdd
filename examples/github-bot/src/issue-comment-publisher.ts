import type { Octokit } from "@octokit/rest";
import type { IssueTarget } from "./task-trigger.js";

/**
 * Keeps one comment on an issue in step with a text that changes: the first write creates
 * the comment, later ones edit it. Writes are serialized, and bursts of changes are merged
 * into at most one edit per interval, so a chatty task does not hit GitHub's rate limits.
 */
export class IssueCommentPublisher {
  private commentId: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private writes: Promise<void> = Promise.resolve();
  private lastWriteAt = 0;
  private finished = false;

  constructor(
    private readonly octokit: Octokit,
    private readonly target: IssueTarget,
    private readonly render: () => string,
    private readonly intervalMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** The comment's id once it exists. */
  get id(): number | undefined {
    return this.commentId;
  }

  /** Writes now (queued behind a write in flight). */
  publishNow(): Promise<void> {
    this.cancelTimer();
    return this.enqueue();
  }

  /** Writes soon: at once if the last write is older than the interval, else when it is. */
  publishSoon(): void {
    if (this.timer || this.finished) return;
    const wait = Math.max(0, this.lastWriteAt + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.enqueue();
    }, wait);
  }

  /** Writes the final text and stops; later calls do nothing. */
  async finish(): Promise<void> {
    if (this.finished) return this.writes;
    this.cancelTimer();
    const last = this.enqueue();
    this.finished = true;
    await last;
  }

  private cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private enqueue(): Promise<void> {
    if (this.finished) return this.writes;
    this.writes = this.writes.then(() => this.write()).catch((error: unknown) => this.onError(error));
    return this.writes;
  }

  private async write(): Promise<void> {
    const body = this.render();
    const { owner, repo, issueNumber } = this.target;
    this.lastWriteAt = Date.now();
    if (this.commentId === undefined) {
      const created = await this.octokit.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body });
      this.commentId = created.data.id;
    } else {
      await this.octokit.rest.issues.updateComment({ owner, repo, comment_id: this.commentId, body });
    }
  }
}
