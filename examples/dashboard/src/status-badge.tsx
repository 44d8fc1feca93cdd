import type { JobStatus } from "@running-agent/example-http-api/job-views";

/** A job's status as a coloured label. */
export function StatusBadge({ status }: { status: JobStatus }) {
  return <span className={`badge badge-${status}`}>{status.replace("_", " ")}</span>;
}
