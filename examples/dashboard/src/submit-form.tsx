import { useState, type FormEvent } from "react";
import { ApiError, type ApiClient } from "./api-client.js";

/** The seed's submit form: a repository and a task. */
export function SubmitForm({ client, onSubmitted }: { client: ApiClient; onSubmitted: (jobId: string) => void }) {
  const [repoUrl, setRepoUrl] = useState("");
  const [task, setTask] = useState("");
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const { job_id: jobId } = await client.submit({ repo_url: repoUrl.trim(), task: task.trim() });
      setTask("");
      onSubmitted(jobId);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : `Could not reach the API at ${client.baseUrl}.`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel submit-form" onSubmit={submit}>
      <h2>New task</h2>
      <label>
        Repository
        <input name="repo_url" value={repoUrl} onChange={(event) => setRepoUrl(event.target.value)} placeholder="https://github.com/owner/repo.git" required />
      </label>
      <label>
        Task
        <textarea name="task" value={task} onChange={(event) => setTask(event.target.value)} placeholder="Add unit tests for the utils module" rows={3} required />
      </label>
      <button type="submit" disabled={busy}>
        {busy ? "Submitting…" : "Run agent"}
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
