import type { JobStatusView } from "@running-agent/example-http-api/job-views";
import { StatusBadge } from "./status-badge.js";

/** Every job, newest first; click one to follow it. */
export function JobList({ jobs, selectedId, onSelect }: { jobs: JobStatusView[]; selectedId: string | undefined; onSelect: (jobId: string) => void }) {
  return (
    <section className="panel job-list">
      <h2>Jobs</h2>
      {jobs.length === 0 ? (
        <p className="muted">No jobs yet.</p>
      ) : (
        <ul>
          {jobs.map((job) => (
            <li key={job.job_id}>
              <button type="button" className={job.job_id === selectedId ? "job selected" : "job"} onClick={() => onSelect(job.job_id)} data-job-id={job.job_id}>
                <StatusBadge status={job.status} />
                <span className="job-task">{job.task}</span>
                <span className="job-meta">
                  {job.repo_url} · {new Date(job.created_at).toLocaleTimeString()}
                  {job.phase && (job.status === "running" ? ` · ${job.phase}` : "")}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
