import type { Octokit } from "@octokit/rest";
import type { IssueTarget } from "./task-trigger.js";

/** A review comment as the request shows it. */
export interface ReviewRequestComment {
  id: number;
  path: string;
  line?: number | null;
  body: string;
  diffHunk: string;
  /** Earlier comments of the thread this one answers, oldest first. */
  thread: Array<{ author: string; body: string }>;
}

/** A review turned into a request for the agent: its text and the comments whose threads get an answer. */
export interface ReviewRequest {
  request: string;
  threads: number[];
}

/**
 * Reads a review on a pull request with its comments (and, for replies, the threads they
 * answer) and says what it asks for; undefined when it asks for nothing (no body, no comment).
 */
export async function readReviewRequest(octokit: Octokit, target: IssueTarget, reviewId: number): Promise<ReviewRequest | undefined> {
  const where = { owner: target.owner, repo: target.repo, pull_number: target.issueNumber };
  const { data: review } = await octokit.rest.pulls.getReview({ ...where, review_id: reviewId });
  const inReview = await octokit.paginate(octokit.rest.pulls.listCommentsForReview, { ...where, review_id: reviewId, per_page: 100 });
  const everyComment = inReview.some((comment) => comment.in_reply_to_id) ? await octokit.paginate(octokit.rest.pulls.listReviewComments, { ...where, per_page: 100 }) : [];
  const comments: ReviewRequestComment[] = inReview.map((comment) => ({
    id: comment.id,
    path: comment.path,
    line: comment.line ?? comment.original_line ?? null,
    body: comment.body,
    diffHunk: comment.diff_hunk,
    thread: comment.in_reply_to_id
      ? everyComment
          .filter((earlier) => (earlier.id === comment.in_reply_to_id || earlier.in_reply_to_id === comment.in_reply_to_id) && earlier.id < comment.id)
          .map((earlier) => ({ author: earlier.user?.login ?? "someone", body: earlier.body }))
      : [],
  }));
  const text = describeReview(review.user?.login ?? "someone", review.body ?? "", comments);
  return text === undefined ? undefined : { request: text, threads: comments.map((comment) => comment.id) };
}

/** The request's text: one line to name it (the commit's title), the review's words, then each comment where it points. */
export function describeReview(reviewer: string, body: string, comments: readonly ReviewRequestComment[]): string | undefined {
  if (body.trim() === "" && comments.length === 0) return undefined;
  const parts = [`Address the review by @${reviewer}`];
  if (body.trim() !== "") parts.push(body.trim());
  for (const comment of comments) {
    const where = comment.line ? `${comment.path} line ${comment.line}` : comment.path;
    const thread = comment.thread.map((earlier) => `  @${earlier.author} wrote before: ${earlier.body.trim()}`);
    parts.push([`On ${where}:`, ...thread, comment.body.trim(), "```diff", comment.diffHunk, "```"].join("\n"));
  }
  return parts.join("\n\n");
}
