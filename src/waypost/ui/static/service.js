// One service: its instances with every check, live; maintenance,
// deregistration, and the command lines that ask for it.

import { api, watch } from "./api.js";
import { ago, announce, badge, confirmAction, copyText, esc, explain, notice } from "./util.js";

const MAINT_PREFIX = "_service_maintenance:";
const NODE_MAINT = "_node_maintenance";

let agentNode = null;

async function localNode() {
  if (agentNode !== null) return agentNode;
  try {
    agentNode = (await api("/v1/agent/self")).data.Config.NodeName;
  } catch {
    agentNode = "";
  }
  return agentNode;
}

export function render(main, { params: [name], signal }) {
  const host = location.host;
  const lines = [
    ["curl", `curl -s 'http://${host}/v1/health/service/${encodeURIComponent(name)}?passing'`],
    ["dig", `dig @127.0.0.1 -p 8600 ${name}.service.consul SRV`],
    ["waypost", `waypost instances ${name} --passing --http-addr ${host}`],
  ];
  main.innerHTML = `
    <nav aria-label="Breadcrumb" class="crumbs"><a href="#/services">Services</a> <span aria-hidden="true">›</span> <span>${esc(name)}</span></nav>
    <div class="page-head"><h1>${esc(name)}</h1><p class="muted" id="inst-count" aria-live="polite"></p></div>
    <div id="svc-notice" hidden></div>
    <section aria-labelledby="cmd-title" class="card">
      <h2 id="cmd-title">Ask for it</h2>
      <ul class="commands">${lines.map(([what, line], i) => `
        <li><span class="cmd-kind">${what}</span><code id="cmd-${i}">${esc(line)}</code>
          <button type="button" class="copy" data-line="${i}" aria-describedby="cmd-${i}">Copy ${what}</button></li>`).join("")}
      </ul>
    </section>
    <section aria-labelledby="inst-title">
      <h2 id="inst-title">Instances</h2>
      <div id="instances"><p class="muted">Loading…</p></div>
    </section>`;
  const message = main.querySelector("#svc-notice");
  const list = main.querySelector("#instances");
  const count = main.querySelector("#inst-count");
  const seen = new Map(); // check key -> [status, when this page saw it change]

  main.querySelector(".commands").addEventListener("click", async (event) => {
    const button = event.target.closest("button.copy");
    if (!button) return;
    const line = lines[Number(button.dataset.line)];
    const ok = await copyText(line[1]);
    if (!ok) window.getSelection().selectAllChildren(main.querySelector(`#cmd-${button.dataset.line}`));
    announce(ok ? `Copied the ${line[0]} line.` : `Selected the ${line[0]} line; press Ctrl+C to copy.`);
    button.textContent = ok ? "Copied" : "Selected";
    setTimeout(() => { button.textContent = `Copy ${line[0]}`; }, 1500);
  });

  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const { action, id, node } = button.dataset;
    try {
      if (action === "maint-on" || action === "maint-off") {
        const enable = action === "maint-on";
        const reason = enable ? "&reason=" + encodeURIComponent("set from the waypost dashboard") : "";
        await api(`/v1/agent/service/maintenance/${encodeURIComponent(id)}?enable=${enable}${reason}`, { method: "PUT" });
        announce(`Maintenance ${enable ? "enabled" : "disabled"} for ${id}.`);
      } else if (action === "deregister") {
        const sure = await confirmAction({
          title: `Deregister ${id}?`,
          text: `This removes instance ${id} of ${name} on node ${node} and all its checks. Clients stop seeing it at once.`,
          action: "Deregister",
        });
        if (!sure) return;
        if (node === (await localNode())) {
          await api(`/v1/agent/service/deregister/${encodeURIComponent(id)}`, { method: "PUT" });
        } else {
          await api("/v1/catalog/deregister", { method: "PUT", json: { Node: node, ServiceID: id } });
        }
        announce(`Deregistered ${id}.`);
      }
    } catch (error) {
      notice(message, "error", explain(error));
    }
  });

  localNode().then(() => watch(`/v1/health/service/${encodeURIComponent(name)}`, {
    signal,
    onData(entries) {
      notice(message, "info", "");
      entries = entries || [];
      count.textContent = `${entries.length} instance${entries.length === 1 ? "" : "s"}`;
      const focused = document.activeElement && document.activeElement.dataset.key;
      list.innerHTML = entries.length ? entries.map((e) => instance(e, seen)).join("")
        : `<p class="muted">No instances registered. This page updates when one is.</p>`;
      if (focused) {
        const again = list.querySelector(`[data-key="${CSS.escape(focused)}"]`);
        if (again) again.focus();
      }
    },
    onError(error) {
      notice(message, "error", explain(error));
    },
  }));
}

function aggregate(checks) {
  if (checks.some((c) => c.CheckID === NODE_MAINT || c.CheckID.startsWith(MAINT_PREFIX))) return "maintenance";
  if (checks.some((c) => c.Status === "critical")) return "critical";
  if (checks.some((c) => c.Status === "warning")) return "warning";
  return "passing";
}

function instance({ Node, Service, Checks }, seen) {
  const id = Service.ID;
  const status = aggregate(Checks);
  const inMaint = Checks.some((c) => c.CheckID === MAINT_PREFIX + id);
  const local = Node.Node === agentNode;
  const address = Service.Address || Node.Address;
  const meta = Object.entries(Service.Meta || {});
  const now = Date.now();
  const maintButton = local
    ? `<button type="button" data-action="${inMaint ? "maint-off" : "maint-on"}" data-id="${esc(id)}" data-key="maint:${esc(id)}" aria-pressed="${inMaint}">${inMaint ? "End maintenance" : "Start maintenance"}</button>`
    : `<span class="muted small">Maintenance is set on the agent of node ${esc(Node.Node)}.</span>`;
  return `
  <article class="card instance" data-instance="${esc(id)}" data-status="${status}" aria-labelledby="i-${esc(id)}">
    <header class="inst-head">
      <h3 id="i-${esc(id)}"><span class="dot s-${status}" aria-hidden="true"></span>${esc(id)}</h3>
      ${badge(status)}
      <div class="inst-actions">
        ${maintButton}
        <button type="button" class="danger" data-action="deregister" data-id="${esc(id)}" data-node="${esc(Node.Node)}" data-key="dereg:${esc(id)}">Deregister</button>
      </div>
    </header>
    <dl class="facts">
      <div><dt>Address</dt><dd>${esc(address)}</dd></div>
      <div><dt>Port</dt><dd>${esc(Service.Port)}</dd></div>
      <div><dt>Node</dt><dd>${esc(Node.Node)}</dd></div>
      <div><dt>Weights</dt><dd>passing ${esc(Service.Weights?.Passing ?? 1)}, warning ${esc(Service.Weights?.Warning ?? 1)}</dd></div>
      <div><dt>Tags</dt><dd>${(Service.Tags || []).map((t) => `<span class="tag">${esc(t)}</span>`).join(" ") || '<span class="muted">none</span>'}</dd></div>
      <div><dt>Meta</dt><dd>${meta.map(([k, v]) => `<code>${esc(k)}=${esc(v)}</code>`).join(" ") || '<span class="muted">none</span>'}</dd></div>
    </dl>
    <div class="table-wrap">
    <table class="checks">
      <caption class="sr-only">Checks of ${esc(id)}</caption>
      <thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Output</th><th scope="col">Last change</th></tr></thead>
      <tbody>${Checks.map((c) => check(c, seen, now)).join("")}</tbody>
    </table>
    </div>
  </article>`;
}

function check(c, seen, now) {
  const key = `${c.Node}/${c.CheckID}`;
  const before = seen.get(key);
  if (!before || before[0] !== c.Status) seen.set(key, [c.Status, before ? now : null]);
  const when = seen.get(key)[1];
  const change = `index ${c.ModifyIndex}${when ? `, ${ago(now - when)} (seen here)` : ""}`;
  return `<tr data-check="${esc(c.CheckID)}" data-status="${esc(c.Status)}">
    <th scope="row">${esc(c.Name || c.CheckID)}<div class="muted small">${esc(c.CheckID)}${c.Type ? ` · ${esc(c.Type)}` : ""}</div></th>
    <td>${badge(c.Status)}</td>
    <td><pre class="output">${esc(c.Output) || '<span class="muted">no output</span>'}</pre></td>
    <td class="small">${change}</td>
  </tr>`;
}
