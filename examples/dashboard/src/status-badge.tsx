import type { JobStatus } from "@running-agent/example-http-api/job-views";

/** A job's status as a coloured label. */
export function StatusBadge({ status }: { status: JobStatus }) {
  return <span className={`badge badge-${status}`}>{status.replace("_", " ")}</span>;
}

/** Marks a pull request opened as a draft (asked for, or the checks failed). */
export function DraftBadge() {
  return (
    <span className="badge badge-draft" data-testid="draft-badge">
      draft PR
    </span>
  );
}
