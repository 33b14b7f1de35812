// The /v1 API as the pages use it: the token, errors, blocking queries.

const TOKEN_KEY = "waypost.token";

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, text) {
    super(text || `HTTP ${status}`);
    this.status = status;
  }
  get isDenied() {
    return this.status === 403;
  }
}

/** One request; JSON in and out unless `raw`. Throws ApiError on 4xx/5xx. */
export async function api(
  path,
  { method = "GET", body, signal, raw = false, json, missingOk = false } = {},
) {
  const headers = {};
  const token = getToken();
  if (token) headers["X-Consul-Token"] = token;
  if (json !== undefined) {
    body = JSON.stringify(json);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, { method, body, headers, signal, cache: "no-store" });
  const text = await response.text();
  const index = Number(response.headers.get("X-Consul-Index") || 0);
  if (response.status === 404 && missingOk) return { data: null, index, response };
  if (!response.ok) throw new ApiError(response.status, text.trim());
  let data = text;
  if (!raw) data = text ? JSON.parse(text) : null;
  return { data, index, response };
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

/** Resolves once the page is visible (at once if it is), or on abort. */
function visible(signal) {
  if (!document.hidden || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (document.hidden && !signal.aborted) return;
      document.removeEventListener("visibilitychange", done);
      resolve();
    };
    document.addEventListener("visibilitychange", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A blocking query kept open: `onData(data, result)` on the first answer and
 * after every change, until `signal` aborts. Consul's rules for the index:
 * reset when it goes backwards, never 0 once known. While the tab is hidden
 * the query is not held (a browser keeps six connections per host; hidden
 * tabs must not take them), and it resumes when the tab shows again.
 * `onError(error)` is told of failures; retries back off up to 10 s.
 */
export function watch(path, { signal, onData, onError, wait = "55s", missingOk = false }) {
  const status = document.getElementById("live");
  let index = 0;
  let failures = 0;
  (async () => {
    while (!signal.aborted) {
      await visible(signal);
      if (signal.aborted) return;
      const sep = path.includes("?") ? "&" : "?";
      const url = index ? `${path}${sep}index=${index}&wait=${wait}` : path;
      const request = new AbortController();
      const stop = () => request.abort();
      const hide = () => { if (document.hidden) request.abort(); };
      signal.addEventListener("abort", stop, { once: true });
      document.addEventListener("visibilitychange", hide);
      try {
        const result = await api(url, { signal: request.signal, missingOk });
        failures = 0;
        const next = result.index;
        const changed = !index || next !== index;
        index = next < index ? 0 : Math.max(next, 1);
        setLive(status, "live");
        if (changed) onData(result.data, result);
      } catch (error) {
        if (signal.aborted) return;
        if (request.signal.aborted) continue; // hidden: wait to be shown
        failures += 1;
        setLive(status, "error");
        if (onError) onError(error);
        await pause(Math.min(10000, 500 * 2 ** Math.min(failures, 5)), signal);
      } finally {
        signal.removeEventListener("abort", stop);
        document.removeEventListener("visibilitychange", hide);
      }
    }
  })();
}

/** A read repeated every `every` ms (for what has no blocking query). */
export function poll(fn, { signal, every }) {
  const status = document.getElementById("live");
  (async () => {
    while (!signal.aborted) {
      try {
        await fn();
        if (status.dataset.state !== "live") setLive(status, "polling", every);
      } catch (error) {
        if (signal.aborted) return;
        setLive(status, "error");
      }
      await pause(every, signal);
    }
  })();
}

function setLive(node, state, every = 0) {
  if (!node || node.dataset.state === state) return;
  node.dataset.state = state;
  node.textContent = {
    live: "live: updates as the registry changes",
    polling: `live: refreshed every ${every / 1000} s`,
  }[state] || "reconnecting…";
}
