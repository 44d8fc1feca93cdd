import { useCallback, useEffect, useMemo, useState } from "react";
import type { JobStatusView, ServerConfigView } from "@running-agent/example-http-api/job-views";
import { ApiClient, ApiError, apiUrlFromPage, type JobFilter } from "./api-client.js";
import { JobDetail } from "./job-detail.js";
import { JobList } from "./job-list.js";
import { SubmitForm } from "./submit-form.js";

const API_KEY_STORAGE = "running-agent-api-key";

/** The job id in the address bar (`/jobs/<id>`), if any. */
function jobIdFromPath(): string | undefined {
  const match = /^\/jobs\/([^/]+)\/?$/.exec(window.location.pathname);
  return match ? decodeURIComponent(match[1]!) : undefined;
}

/** The dashboard: submit and the live job list on the left, the selected job (a deep link, `/jobs/<id>`) on the right. */
export function App() {
  const [apiKey, setApiKey] = useState(() => window.sessionStorage.getItem(API_KEY_STORAGE) ?? "");
  const client = useMemo(() => new ApiClient(apiUrlFromPage(), apiKey), [apiKey]);
  const [config, setConfig] = useState<ServerConfigView | undefined>();
  const [jobs, setJobs] = useState<JobStatusView[]>([]);
  const [nextOffset, setNextOffset] = useState<number | null>(null);
  const [filter, setFilter] = useState<JobFilter>({});
  const [selectedId, setSelectedId] = useState<string | undefined>(jobIdFromPath);
  const [linkedJob, setLinkedJob] = useState<JobStatusView | undefined>();
  const [offline, setOffline] = useState(false);
  /** The server protects reads and the key is missing or wrong. */
  const [keyRefused, setKeyRefused] = useState(false);

  useEffect(() => {
    client.config().then(setConfig, () => undefined);
  }, [client]);

  const refresh = useCallback(async () => {
    try {
      const page = await client.listJobs(filter);
      setJobs(page.jobs);
      setNextOffset(page.next_offset);
      setOffline(false);
      setKeyRefused(false);
    } catch (caught) {
      setOffline(true);
      setKeyRefused(caught instanceof ApiError && caught.status === 401);
    }
  }, [client, filter]);

  // The list is re-read whenever the API reports a job's status or phase change, and on every
  // (re)connect, so that nothing missed while disconnected stays stale.
  useEffect(() => {
    void refresh();
    const source = client.openEvents(client.statusEventsUrl());
    source.addEventListener("open", () => void refresh());
    source.addEventListener("status", () => void refresh());
    source.addEventListener("error", () => setOffline(source.readyState !== source.OPEN));
    return () => source.close();
  }, [client, refresh]);

  // Back and forward move between the jobs the address bar named.
  useEffect(() => {
    const onPopState = () => setSelectedId(jobIdFromPath());
    window.addEventListener("popstate", onPopState);
    return () => window.removeEventListener("popstate", onPopState);
  }, []);

  const listed = jobs.find((job) => job.job_id === selectedId);
  // A deep-linked job that is not on the current page is read on its own.
  useEffect(() => {
    if (!selectedId || listed) return;
    let current = true;
    client.job(selectedId).then(
      (job) => current && setLinkedJob(job),
      () => current && setLinkedJob(undefined),
    );
    return () => {
      current = false;
    };
  }, [client, selectedId, listed]);

  const select = (jobId: string) => {
    setSelectedId(jobId);
    if (jobIdFromPath() !== jobId) window.history.pushState(null, "", `/jobs/${encodeURIComponent(jobId)}${window.location.search}`);
    void refresh();
  };
  const selected = listed ?? (linkedJob?.job_id === selectedId ? linkedJob : undefined);

  return (
    <div className="app">
      <header className="app-header">
        <h1>Running Agent</h1>
        <span className={offline ? "api offline" : "api"} data-testid="api-address">
          {offline && keyRefused ? `API key needed to read: ${client.baseUrl}` : offline ? `API unreachable: ${client.baseUrl}` : client.baseUrl}
        </span>
        <label className="api-key">
          API key
          <input
            type="password"
            value={apiKey}
            onChange={(event) => {
              setApiKey(event.target.value);
              window.sessionStorage.setItem(API_KEY_STORAGE, event.target.value);
            }}
            placeholder={config?.auth === "none" ? "this server needs none" : "if the server needs one"}
          />
        </label>
      </header>
      <main>
        <div className="column">
          <SubmitForm client={client} config={config} onSubmitted={select} />
          <JobList jobs={jobs} filter={filter} nextOffset={nextOffset} selectedId={selectedId} onSelect={select} onFilter={setFilter} />
        </div>
        <div className="column wide">
          {selected ? (
            <JobDetail key={selected.job_id} client={client} job={selected} phases={config?.phases ?? []} onRetried={select} />
          ) : (
            <p className="panel muted">{selectedId ? `Loading job ${selectedId}…` : "Select a job to follow its phases, log and change."}</p>
          )}
        </div>
      </main>
    </div>
  );
}
