// Small helpers shared by the pages: escaping, badges, the sparkline, the
// diff, the confirmation dialog, copying, announcements.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text safe inside HTML (element content and quoted attributes). */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export const STATUSES = ["passing", "warning", "critical", "maintenance"];

export function badge(status, text = status) {
  return `<span class="badge s-${esc(status)}">${esc(text)}</span>`;
}

export function announce(text) {
  const node = document.getElementById("announce");
  node.textContent = "";
  setTimeout(() => { node.textContent = text; }, 20);
}

/** A message in the page: kind is "error", "ok" or "info". */
export function notice(node, kind, text) {
  node.hidden = !text;
  node.className = `notice ${kind}`;
  node.setAttribute("role", kind === "error" ? "alert" : "status");
  node.textContent = text || "";
}

/** How an API failure reads to a person. */
export function explain(error) {
  if (error && error.status === 403) {
    return `Permission denied: the ACL token in use may not read or change this (${error.message}). Enter a token with the needed rights in "ACL token" above.`;
  }
  if (error && error.status) return `The agent answered ${error.status}: ${error.message}`;
  return `The agent could not be reached (${error && error.message}); retrying.`;
}

/** Ask before a destructive action; resolves true when confirmed. */
export function confirmAction({ title, text, action }) {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-text").textContent = text;
  dialog.querySelector("#confirm-ok").textContent = action;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        resolve(dialog.returnValue === "ok");
        if (opener && opener.isConnected) opener.focus();
      },
      { once: true },
    );
    dialog.returnValue = "cancel";
    dialog.showModal();
  });
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Passing instances per service over the last hour, as this browser saw
 * them: kept in localStorage, one point per change (at most one a minute
 * when nothing changes), so a reload keeps the line.
 */
const HISTORY_KEY = "waypost.passing-history";
const HOUR = 3600 * 1000;
let history = null;
let savedAt = 0;

function loadHistory() {
  if (history) return history;
  try {
    history = JSON.parse(localStorage.getItem(HISTORY_KEY) || "{}") || {};
  } catch {
    history = {};
  }
  return history;
}

export function recordPassing(counts, now = Date.now()) {
  const all = loadHistory();
  for (const [name, passing] of counts) {
    const points = all[name] || (all[name] = []);
    const last = points[points.length - 1];
    if (!last || last[1] !== passing || now - last[0] > 60000) points.push([now, passing]);
    while (points.length > 2 && points[1][0] < now - HOUR) points.shift();
  }
  if (now - savedAt > 10000) {
    savedAt = now;
    try {
      localStorage.setItem(HISTORY_KEY, JSON.stringify(all));
    } catch {
      // Full storage: the line lives in memory only.
    }
  }
}

/** An SVG step line of passing instances over the last hour. */
export function sparkline(name, total, now = Date.now()) {
  const points = (loadHistory()[name] || []).filter((p, i, all) =>
    p[0] >= now - HOUR || (all[i + 1] && all[i + 1][0] >= now - HOUR));
  const width = 120;
  const height = 24;
  const top = Math.max(total, ...points.map((p) => p[1]), 1);
  const x = (t) => Math.max(0, ((t - (now - HOUR)) / HOUR) * width).toFixed(1);
  const y = (v) => (height - 2 - (v / top) * (height - 4)).toFixed(1);
  let path = "";
  points.forEach(([t, v], i) => {
    path += i ? ` H${x(t)} V${y(v)}` : `M${x(t)} ${y(v)}`;
  });
  const current = points.length ? points[points.length - 1][1] : 0;
  if (points.length) path += ` H${width}`;
  const low = points.length ? Math.min(...points.map((p) => p[1])) : 0;
  const label = points.length
    ? `Passing instances over the last hour: now ${current} of ${total}, lowest ${low}`
    : "No history yet";
  return `<svg class="spark" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" preserveAspectRatio="none" role="img" aria-label="${esc(label)}"><path class="spark-base" d="M0 ${height - 1} H${width}"/>${path ? `<path class="spark-line" d="${path}"/>` : ""}</svg>`;
}

/** Line diff (LCS) of two texts: [{kind: "same"|"add"|"del", text}]. */
export function diffLines(before, after) {
  const a = before.split("\n");
  const b = after.split("\n");
  if (a.length * b.length > 4_000_000) {
    return [...a.map((text) => ({ kind: "del", text })), ...b.map((text) => ({ kind: "add", text }))];
  }
  const table = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) { out.push({ kind: "same", text: a[i] }); i++; j++; }
    else if (table[i + 1][j] >= table[i][j + 1]) out.push({ kind: "del", text: a[i++] });
    else out.push({ kind: "add", text: b[j++] });
  }
  while (i < a.length) out.push({ kind: "del", text: a[i++] });
  while (j < b.length) out.push({ kind: "add", text: b[j++] });
  return out;
}

export function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}
