import { EventSource } from "eventsource";
import type { JobListView, JobResultView, JobStatusView, ServerConfigView } from "@running-agent/example-http-api/job-views";

/**
 * Where the API is: `?api=` in the page URL, else VITE_API_URL at build time, else the API's
 * default address under the dev server, and the page's own origin for a build (the API serves it).
 */
export function apiUrlFromPage(): string {
  const fromQuery = new URLSearchParams(window.location.search).get("api");
  // The mode, not DEV: DEV follows NODE_ENV, which a build run under a test runner inherits.
  const fallback = import.meta.env.MODE === "development" ? "http://127.0.0.1:8787" : window.location.origin;
  return (fromQuery ?? import.meta.env.VITE_API_URL ?? fallback).replace(/\/+$/, "");
}

/** Jobs per page of the list. */
export const PAGE_SIZE = 50;

/** `POST /submit`'s body; the advanced fields only where `GET /config` says the server takes them. */
export interface SubmitInput {
  repo_url: string;
  task: string;
  user_id?: string;
  base_branch?: string;
  model?: string;
  draft?: boolean;
  labels?: string[];
}

/** `GET /jobs`' filters, applied by the server. */
export interface JobFilter {
  status?: string;
  repo_url?: string;
  user_id?: string;
  q?: string;
  offset?: number;
}

/** The API's JSON error, as an Error with its code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Calls the Running Agent HTTP API. The API key, when given, goes in the Authorization header of
 * every request, reads and streams included (a server with protected reads wants it there), never in a URL.
 */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}

  submit(input: SubmitInput): Promise<{ job_id: string; status: string }> {
    return this.request("POST", "/submit", input);
  }

  /** A page of jobs, filtered on the server. */
  listJobs(filter: JobFilter = {}): Promise<JobListView> {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const [name, value] of Object.entries(filter)) if (value !== undefined && value !== "") query.set(name, String(value));
    return this.request("GET", `/jobs?${query}`);
  }

  job(jobId: string): Promise<JobStatusView> {
    return this.request("GET", `/jobs/${encodeURIComponent(jobId)}`);
  }

  config(): Promise<ServerConfigView> {
    return this.request("GET", "/config");
  }

  /** The job's commit as a unified diff. */
  async diff(jobId: string): Promise<string> {
    const response = await fetch(`${this.baseUrl}/jobs/${encodeURIComponent(jobId)}/diff`, { headers: this.authorization() });
    if (!response.ok) throw await apiErrorOf(response);
    return response.text();
  }

  result(jobId: string): Promise<JobResultView> {
    return this.request("GET", `/result/${encodeURIComponent(jobId)}`);
  }

  cancel(jobId: string): Promise<{ job_id: string; status: string }> {
    return this.request("POST", `/jobs/${encodeURIComponent(jobId)}/cancel`);
  }

  retry(jobId: string): Promise<{ job_id: string; status: string }> {
    return this.request("POST", `/jobs/${encodeURIComponent(jobId)}/retry`);
  }

  /** Every job's status changes, as server-sent events. */
  statusEventsUrl(): string {
    return `${this.baseUrl}/events`;
  }

  /** The job's server-sent event stream. */
  eventsUrl(jobId: string): string {
    return `${this.baseUrl}/jobs/${encodeURIComponent(jobId)}/events`;
  }

  /** Follows a server-sent event stream; a fetch-based EventSource, since the browser's own sends no Authorization header. */
  openEvents(url: string): EventSource {
    const authorization = this.authorization();
    return new EventSource(url, { fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...authorization } }) });
  }

  private authorization(): Record<string, string> {
    return this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {};
  }

  private async request<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = this.authorization();
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    if (!response.ok) throw await apiErrorOf(response);
    return (await response.json()) as T;
  }
}

async function apiErrorOf(response: Response): Promise<ApiError> {
  const json = (await response.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined;
  return new ApiError(response.status, json?.error?.code ?? "http_error", json?.error?.message ?? `The API answered ${response.status}.`);
}
