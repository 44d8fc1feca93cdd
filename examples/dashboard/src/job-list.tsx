import { useState, type FormEvent } from "react";
import type { JobStatusView } from "@running-agent/example-http-api/job-views";
import { PAGE_SIZE, type JobFilter } from "./api-client.js";
import { DraftBadge, StatusBadge } from "./status-badge.js";

const STATUSES = ["queued", "running", "completed", "no_changes", "failed", "cancelled"] as const;

/** A page of jobs, newest first, filtered and paged by the server; click one to follow it. */
export function JobList({
  jobs,
  filter,
  nextOffset,
  selectedId,
  onSelect,
  onFilter,
}: {
  jobs: JobStatusView[];
  filter: JobFilter;
  nextOffset: number | null;
  selectedId: string | undefined;
  onSelect: (jobId: string) => void;
  onFilter: (filter: JobFilter) => void;
}) {
  const [draft, setDraft] = useState({ q: filter.q ?? "", repo_url: filter.repo_url ?? "", user_id: filter.user_id ?? "" });
  const offset = filter.offset ?? 0;
  const apply = (event: FormEvent) => {
    event.preventDefault();
    onFilter({ ...filter, q: draft.q.trim(), repo_url: draft.repo_url.trim(), user_id: draft.user_id.trim(), offset: 0 });
  };

  return (
    <section className="panel job-list" aria-labelledby="jobs-heading">
      <h2 id="jobs-heading">Jobs</h2>
      <form className="filters" role="search" aria-label="Filter jobs" onSubmit={apply}>
        <label>
          Search
          <input type="search" name="q" value={draft.q} onChange={(event) => setDraft({ ...draft, q: event.target.value })} placeholder="task or repository" />
        </label>
        <label>
          Status
          <select name="status" value={filter.status ?? ""} onChange={(event) => onFilter({ ...filter, status: event.target.value, offset: 0 })}>
            <option value="">any</option>
            {STATUSES.map((status) => (
              <option key={status} value={status}>
                {status.replace("_", " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Repository
          <input name="repo_url" value={draft.repo_url} onChange={(event) => setDraft({ ...draft, repo_url: event.target.value })} placeholder="exact repo_url" />
        </label>
        <label>
          User
          <input name="user_id" value={draft.user_id} onChange={(event) => setDraft({ ...draft, user_id: event.target.value })} placeholder="user id" />
        </label>
        <button type="submit">Filter</button>
      </form>
      {jobs.length === 0 ? (
        <p className="muted">{offset > 0 || filter.q || filter.status || filter.repo_url || filter.user_id ? "No jobs match." : "No jobs yet."}</p>
      ) : (
        <ul aria-label="Job list">
          {jobs.map((job) => (
            <li key={job.job_id}>
              <a
                href={`/jobs/${job.job_id}`}
                className={job.job_id === selectedId ? "job selected" : "job"}
                aria-current={job.job_id === selectedId ? "page" : undefined}
                onClick={(event) => {
                  event.preventDefault();
                  onSelect(job.job_id);
                }}
                data-job-id={job.job_id}
              >
                <span className="job-badges">
                  <StatusBadge status={job.status} />
                  {job.pr_draft && <DraftBadge />}
                </span>
                <span className="job-task">{job.task}</span>
                <span className="job-meta">
                  {job.repo_url}
                  {job.user_id ? ` · ${job.user_id}` : ""} · {new Date(job.created_at).toLocaleTimeString()}
                  {job.status === "running" && job.phase ? ` · ${job.phase}` : ""}
                </span>
              </a>
            </li>
          ))}
        </ul>
      )}
      {(offset > 0 || nextOffset !== null) && (
        <nav className="pager" aria-label="Pages">
          <button type="button" disabled={offset === 0} onClick={() => onFilter({ ...filter, offset: Math.max(0, offset - PAGE_SIZE) })}>
            Newer
          </button>
          <span data-testid="page-range">
            {jobs.length > 0 ? `${offset + 1}–${offset + jobs.length}` : "none"}
          </span>
          <button type="button" disabled={nextOffset === null} onClick={() => nextOffset !== null && onFilter({ ...filter, offset: nextOffset })}>
            Older
          </button>
        </nav>
      )}
    </section>
  );
}
