// The registry's own health: the self-preservation brake, heartbeats per
// second, store commit latency, and in cluster mode etcd's state. Read from
// /v1/agent/self and /v1/agent/metrics every 2 s (rates are differences
// between two reads).

import { api, poll } from "./api.js";
import { badge, esc, explain, notice } from "./util.js";

const EVERY = 2000;

function counter(metrics, name) {
  return [...metrics.Counters, ...metrics.Samples].filter((m) => m.Name === name)
    .reduce((acc, m) => ({ count: acc.count + m.Count, sum: acc.sum + m.Sum, max: Math.max(acc.max, m.Max || 0) }),
      { count: 0, sum: 0, max: 0 });
}

function gauge(metrics, name) {
  const found = metrics.Gauges.find((g) => g.Name === name);
  return found ? found.Value : null;
}

export function render(main, { signal }) {
  main.innerHTML = `
    <div class="page-head"><h1>Registry health</h1><p class="muted small">Refreshed every 2 s.</p></div>
    <div id="h-notice" hidden></div>
    <div class="grid">
      <section class="card" aria-labelledby="brake-title"><h2 id="brake-title">Self-preservation</h2><div id="brake"><p class="muted">Loading…</p></div></section>
      <section class="card" aria-labelledby="traffic-title"><h2 id="traffic-title">Heartbeats and store</h2><div id="traffic"><p class="muted">Loading…</p></div></section>
      <section class="card" aria-labelledby="catalog-title"><h2 id="catalog-title">Catalog</h2><div id="catalog"><p class="muted">Loading…</p></div></section>
      <section class="card" aria-labelledby="cluster-title"><h2 id="cluster-title">Cluster and etcd</h2><div id="cluster"><p class="muted">Loading…</p></div></section>
    </div>`;
  const message = main.querySelector("#h-notice");
  let previous = null;
  poll(async () => {
    try {
      const [self, metrics] = await Promise.all([
        api("/v1/agent/self", { signal }), api("/v1/agent/metrics", { signal }),
      ]);
      const now = performance.now();
      const sample = {
        at: now,
        beats: counter(metrics.data, "waypost.ttl_heartbeats"),
        commits: counter(metrics.data, "consul.raft.commitTime"),
      };
      // Cluster mode: a commit is an etcd transaction.
      const txns = metrics.data.Samples.filter((m) =>
        m.Name === "waypost.etcd_request_duration_seconds" && m.Labels.method === "Txn");
      if (txns.length) {
        sample.commits = txns.reduce((acc, m) => ({ count: acc.count + m.Count, sum: acc.sum + m.Sum, max: Math.max(acc.max, m.Max || 0) }),
          { count: 0, sum: 0, max: 0 });
      }
      notice(message, "info", "");
      drawBrake(main.querySelector("#brake"), self.data.Stats.self_preservation);
      drawTraffic(main.querySelector("#traffic"), self.data.Stats.waypost, sample, previous);
      drawCatalog(main.querySelector("#catalog"), self.data.Stats.waypost, metrics.data);
      await drawCluster(main.querySelector("#cluster"), self.data, metrics.data, signal);
      previous = sample;
    } catch (error) {
      if (!signal.aborted) notice(message, "error", explain(error));
      throw error;
    }
  }, { signal, every: EVERY });
}

function facts(rows) {
  return `<dl class="facts">${rows.map(([k, v]) => `<div><dt>${esc(k)}</dt><dd>${v}</dd></div>`).join("")}</dl>`;
}

function drawBrake(node, b) {
  const engaged = b.Engaged === "true";
  const enabled = b.Enabled === "true";
  const since = engaged ? new Date(Date.now() - Number(b.EngagedSeconds) * 1000) : null;
  const state = !enabled ? badge("maintenance", "off") : engaged ? badge("critical", "engaged") : badge("passing", "not engaged");
  const why = engaged
    ? `${b.QuietChecks} of ${b.LiveChecks} TTL checks went quiet (threshold ${(Number(b.Threshold) * 100).toFixed(0)} %, at least ${b.MinQuiet}): TTL expiry and reaping are held.`
    : `Engages when over ${(Number(b.Threshold) * 100).toFixed(0)} % (and at least ${b.MinQuiet}) of TTL checks go quiet within ${b.WindowSeconds} s.`;
  node.innerHTML = `<p class="big" data-engaged="${engaged}">${state}</p><p>${esc(why)}</p>${facts([
    ["Since", since ? `${esc(since.toLocaleString())} (${Number(b.EngagedSeconds).toFixed(0)} s)` : "—"],
    ["Last event", esc(b.LastEvent || "none since start")],
    ["Quiet / live TTL checks", `${esc(b.QuietChecks)} / ${esc(b.LiveChecks)}`],
    ["Expiries in the window", esc(b.RecentExpiries)],
    ["Engagements since start", esc(b.Engagements)],
  ])}`;
}

function drawTraffic(node, stats, sample, previous) {
  let beats = "measuring…";
  let commit = "measuring…";
  if (previous) {
    const seconds = (sample.at - previous.at) / 1000;
    beats = `${((sample.beats.count - previous.beats.count) / seconds).toFixed(1)} /s`;
    const commits = sample.commits.count - previous.commits.count;
    commit = commits > 0
      ? `${(((sample.commits.sum - previous.commits.sum) / commits)).toFixed(2)} ms mean of ${commits} in the last ${seconds.toFixed(0)} s`
      : "no commits in the last interval";
  }
  const overall = sample.commits.count
    ? `${(sample.commits.sum / sample.commits.count).toFixed(2)} ms mean, ${sample.commits.max.toFixed(2)} ms max of ${sample.commits.count}`
    : "none yet";
  node.innerHTML = `<p class="big" id="beats-rate">${esc(beats)}</p><p class="muted small">TTL heartbeats received</p>${facts([
    ["Heartbeats since start", esc(sample.beats.count)],
    ["Store", esc(stats.store)],
    ["Commit latency, recent", esc(commit)],
    ["Commit latency, since start", esc(overall)],
  ])}`;
}

function drawCatalog(node, stats, metrics) {
  node.innerHTML = facts([
    ["Index", esc(stats.index)],
    ["Nodes", esc(stats.nodes)],
    ["Service instances", esc(stats.services)],
    ["Checks", esc(stats.checks)],
    ["KV entries", esc(stats.kv)],
    ["Blocking queries waiting", esc(gauge(metrics, "consul.rpc.queries_blocking") ?? 0)],
    ["Uptime", `${(Number(stats.uptime_seconds) / 60).toFixed(1)} min`],
    ["waypost version", esc(stats.version)],
  ]);
}

async function drawCluster(node, self, metrics, signal) {
  const consul = self.Stats.consul;
  // An agent of a cluster is not its own bootstrap member (its gossip tags).
  const clustered = self.Member.Tags.bootstrap === "0";
  if (!clustered) {
    node.innerHTML = `<p>${badge("passing", "single agent")}</p><p class="small">This agent is its own leader; its store is ${esc(self.Stats.waypost.store)}. No etcd.</p>`;
    return;
  }
  let servers = [];
  let error = "";
  try {
    servers = (await api("/v1/operator/raft/configuration", { signal })).data.Servers || [];
  } catch (e) {
    error = explain(e);
  }
  const leader = consul.leader_addr;
  const lag = gauge(metrics, "waypost.etcd_replica_lag_revisions");
  node.innerHTML = `<p>${leader ? badge("passing", "etcd has a leader") : badge("critical", "etcd unreachable or leaderless")}</p>${facts([
    ["etcd leader", esc(leader || "none known")],
    ["etcd revision", esc(gauge(metrics, "waypost.etcd_revision") ?? "—")],
    ["Replica lag", `${esc(lag ?? "—")} revisions`],
  ])}${error ? `<p class="notice error" role="alert">${esc(error)}</p>` : `
  <table class="legend"><caption>etcd members</caption><thead><tr><th scope="col">Member</th><th scope="col">Peer address</th><th scope="col">Role</th></tr></thead>
  <tbody>${servers.map((s) => `<tr><th scope="row">${esc(s.Node)}</th><td>${esc(s.Address)}</td><td>${s.Leader ? badge("passing", "leader") : "follower"}</td></tr>`).join("")}</tbody></table>`}`;
}
