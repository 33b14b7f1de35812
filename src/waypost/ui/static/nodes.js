// Nodes and the registry's members: the consistent-hash ring as a circle.

import { api, poll, watch } from "./api.js";
import { badge, esc, explain, notice } from "./util.js";

const PALETTE = 8; // member colours: .m0 … .m7 in style.css

export function render(main, { signal }) {
  main.innerHTML = `
    <div class="page-head"><h1>Nodes</h1><p class="muted" id="node-count" aria-live="polite"></p></div>
    <div id="node-notice" hidden></div>
    <div class="table-wrap">
      <table class="nodes">
        <caption class="sr-only">Nodes, their address, health, services and checks</caption>
        <thead><tr><th scope="col">Node</th><th scope="col">Address</th><th scope="col">Health</th><th scope="col">Services</th><th scope="col">Checks</th></tr></thead>
        <tbody id="node-rows"><tr><td colspan="5" class="muted">Loading…</td></tr></tbody>
      </table>
    </div>
    <section aria-labelledby="ring-title" class="card ring-card">
      <h2 id="ring-title">Registry members</h2>
      <div id="ring-notice" hidden></div>
      <div class="ring-layout">
        <div id="ring-figure"></div>
        <div id="ring-legend"></div>
      </div>
    </section>`;
  const rows = main.querySelector("#node-rows");
  const message = main.querySelector("#node-notice");
  watch("/v1/internal/ui/nodes", {
    signal,
    onData(data) {
      notice(message, "info", "");
      data = data || [];
      main.querySelector("#node-count").textContent = `${data.length} node${data.length === 1 ? "" : "s"}`;
      rows.innerHTML = data.map(nodeRow).join("") || `<tr><td colspan="5" class="muted">No nodes.</td></tr>`;
    },
    onError(error) { notice(message, "error", explain(error)); },
  });
  const ringNotice = main.querySelector("#ring-notice");
  poll(async () => {
    try {
      const { data } = await api("/ui/api/ring", { signal });
      notice(ringNotice, "info", "");
      drawRing(main.querySelector("#ring-figure"), main.querySelector("#ring-legend"), data);
    } catch (error) {
      if (!signal.aborted) notice(ringNotice, "error", explain(error));
      throw error;
    }
  }, { signal, every: 5000 });
}

function nodeRow(n) {
  const nodeChecks = n.Checks.filter((c) => !c.ServiceID);
  let health = "passing";
  if (nodeChecks.some((c) => c.CheckID === "_node_maintenance")) health = "maintenance";
  else if (nodeChecks.some((c) => c.Status === "critical")) health = "critical";
  else if (nodeChecks.some((c) => c.Status === "warning")) health = "warning";
  const tally = { passing: 0, warning: 0, critical: 0 };
  for (const c of n.Checks) tally[c.Status] = (tally[c.Status] || 0) + 1;
  const names = [...new Set(n.Services.map((s) => s.Service))].sort();
  const shown = names.slice(0, 6).map((s) => `<a href="#/services/${encodeURIComponent(s)}">${esc(s)}</a>`).join(", ");
  return `<tr data-node="${esc(n.Node)}">
    <th scope="row"><span class="dot s-${health}" aria-hidden="true"></span>${esc(n.Node)}</th>
    <td>${esc(n.Address)}</td>
    <td>${badge(health)}</td>
    <td>${n.Services.length} ${names.length ? `<span class="small">(${shown}${names.length > 6 ? `, +${names.length - 6}` : ""})</span>` : ""}</td>
    <td class="small">${Object.entries(tally).filter(([, v]) => v).map(([k, v]) => `${v} ${k}`).join(", ") || "none"}</td>
  </tr>`;
}

function point(turn, radius) {
  const angle = turn * 2 * Math.PI - Math.PI / 2;
  return [100 + radius * Math.cos(angle), 100 + radius * Math.sin(angle)];
}

function arcPath(start, end, outer, inner) {
  const large = end - start > 0.5 ? 1 : 0;
  const [x1, y1] = point(start, outer);
  const [x2, y2] = point(end, outer);
  const [x3, y3] = point(end, inner);
  const [x4, y4] = point(start, inner);
  const f = (v) => v.toFixed(2);
  return `M${f(x1)} ${f(y1)} A${outer} ${outer} 0 ${large} 1 ${f(x2)} ${f(y2)} L${f(x3)} ${f(y3)} A${inner} ${inner} 0 ${large} 0 ${f(x4)} ${f(y4)}Z`;
}

function drawRing(figure, legend, ring) {
  const members = ring.Members.map((m) => m.Name);
  const colour = (name) => `m${members.indexOf(name) % PALETTE}`;
  const totalChecks = ring.Members.reduce((sum, m) => sum + m.Checks, 0);
  // An SVG arc cannot close on itself: a long one is drawn as two halves.
  const halves = (list) => list.flatMap(([start, end, owner]) => (end - start > 0.5
    ? [[start, (start + end) / 2, owner], [(start + end) / 2, end, owner]]
    : [[start, end, owner]]));
  // Outer band: the ring's arcs as they are (many small ones per member, as
  // its virtual nodes fall). Inner band: each member's share of the check
  // duty, one segment each.
  const outer = halves(ring.Arcs).map(([start, end, owner]) =>
    `<path class="arc ${colour(owner)}" d="${arcPath(start, end, 96, 80)}"/>`).join("");
  let at = 0;
  const duty = [];
  for (const m of ring.Members) {
    const share = totalChecks ? m.Checks / totalChecks : m.Share;
    if (share > 0) duty.push([at, at + share, m.Name]);
    at += share;
  }
  const inner = halves(duty).map(([start, end, owner]) =>
    `<path class="arc duty ${colour(owner)}" d="${arcPath(start, Math.min(end, 1), 72, 52)}"/>`).join("");
  const arcs = outer + inner;
  const summary = ring.Mode === "single"
    ? `One agent (${ring.Self}): it owns the whole ring and every check.`
    : `${members.length} members on a ring of ${ring.Points} points.`;
  figure.innerHTML = `<svg viewBox="0 0 200 200" width="240" height="240" role="img" aria-labelledby="ring-desc">
    <title id="ring-desc">Consistent-hash ring (outer band: each member's arcs; inner band: its share of the checks): ${esc(ring.Members.map((m) => `${m.Name} ${(m.Share * 100).toFixed(1)}% of keys, ${m.Checks} checks`).join("; "))}</title>
    ${arcs}
    <text x="100" y="104" text-anchor="middle" class="ring-label">${members.length}</text>
    <text x="100" y="118" text-anchor="middle" class="ring-sub">member${members.length === 1 ? "" : "s"}</text>
  </svg>`;
  legend.innerHTML = `<p class="small">${esc(summary)} Each check belongs to one member: the agent it runs on, or the ring's owner of its node and ID. Outer band: the ring's arcs; inner band: the checks each member owns.</p>
  <table class="legend">
    <caption class="sr-only">Members, their share of the ring and of the check duty</caption>
    <thead><tr><th scope="col">Member</th><th scope="col">Ring share</th><th scope="col">Checks owned</th></tr></thead>
    <tbody>${ring.Members.map((m) => `<tr data-member="${esc(m.Name)}">
      <th scope="row"><span class="swatch ${colour(m.Name)}" aria-hidden="true"></span>${esc(m.Name)}${m.Name === ring.Self ? " (this agent)" : ""}${m.Alive ? "" : ` ${badge("critical", "gone")}`}</th>
      <td>${(m.Share * 100).toFixed(1)} %</td>
      <td>${m.Checks}${totalChecks ? ` (${((m.Checks / totalChecks) * 100).toFixed(0)} %)` : ""}</td>
    </tr>`).join("")}</tbody>
  </table>`;
}
