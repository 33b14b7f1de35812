// Services: one blocking query on /v1/internal/ui/services for the whole
// catalog (not one per service), filtered in the browser.

import { watch } from "./api.js";
import { STATUSES, badge, esc, explain, notice, recordPassing, sparkline } from "./util.js";

const PAGE = 100;

export function render(main, { signal }) {
  main.innerHTML = `
    <div class="page-head">
      <h1>Services</h1>
      <p class="muted" id="svc-count" aria-live="polite"></p>
    </div>
    <div id="svc-notice" hidden></div>
    <form class="filters" role="search" aria-label="Filter services">
      <div class="field">
        <label for="svc-search">Name</label>
        <input id="svc-search" type="search" placeholder="Search by name" autocomplete="off">
      </div>
      <div class="field">
        <label for="svc-tag">Tag</label>
        <select id="svc-tag"><option value="">Any tag</option></select>
      </div>
      <div class="field">
        <label for="svc-status">Status</label>
        <select id="svc-status">
          <option value="">Any status</option>
          <option value="passing">All passing</option>
          <option value="warning">Some warning</option>
          <option value="critical">Some critical</option>
          <option value="maintenance">Some in maintenance</option>
        </select>
      </div>
    </form>
    <div class="table-wrap">
      <table class="services">
        <caption class="sr-only">Services, their tags, instances by status and passing instances over the last hour</caption>
        <thead><tr>
          <th scope="col">Service</th><th scope="col">Tags</th>
          <th scope="col">Instances</th><th scope="col">Passing, last hour</th>
        </tr></thead>
        <tbody id="svc-rows"><tr><td colspan="4" class="muted">Loading…</td></tr></tbody>
      </table>
    </div>
    <button type="button" id="svc-more" hidden></button>`;
  const rows = main.querySelector("#svc-rows");
  const count = main.querySelector("#svc-count");
  const search = main.querySelector("#svc-search");
  const tagSelect = main.querySelector("#svc-tag");
  const statusSelect = main.querySelector("#svc-status");
  const message = main.querySelector("#svc-notice");
  main.querySelector("form").addEventListener("submit", (e) => e.preventDefault());
  const more = main.querySelector("#svc-more");
  let services = null;
  let limit = PAGE;

  const draw = () => {
    if (!services) return;
    const needle = search.value.trim().toLowerCase();
    const tag = tagSelect.value;
    const status = statusSelect.value;
    const shown = services.filter((s) => {
      if (needle && !s.Name.toLowerCase().includes(needle)
        && !s.Tags.some((t) => t.toLowerCase().includes(needle))) return false;
      if (tag && !s.Tags.includes(tag)) return false;
      if (status === "passing") return s.InstancesPassing === s.InstanceCount;
      if (status) return s[`Instances${status[0].toUpperCase()}${status.slice(1)}`] > 0;
      return true;
    });
    count.textContent = shown.length === services.length
      ? `${services.length} services`
      : `${shown.length} of ${services.length} services`;
    const now = Date.now();
    // A page of rows at a time: a table of thousands lays out slowly, and
    // the filters find a service faster than scrolling does.
    const page = shown.slice(0, limit);
    rows.innerHTML = page.length ? page.map((s) => row(s, now)).join("")
      : `<tr><td colspan="4" class="muted">No service matches.</td></tr>`;
    more.hidden = shown.length <= limit;
    more.textContent = `Show ${Math.min(PAGE, shown.length - limit)} more of ${shown.length - limit} not shown`;
  };
  more.addEventListener("click", () => {
    limit += PAGE;
    draw();
  });

  for (const input of [search, tagSelect, statusSelect]) {
    input.addEventListener("input", () => {
      limit = PAGE;
      draw();
    });
  }

  watch("/v1/internal/ui/services", {
    signal,
    onData(data, { response }) {
      performance.mark("svc-data");
      services = data || [];
      const hidden = response.headers.get("X-Consul-Results-Filtered-By-ACLs") === "true";
      notice(message, "info", hidden
        ? "Some services are hidden: the ACL token in use may not read them. Enter another token in \"ACL token\" above to see more."
        : "");
      recordPassing(services.map((s) => [s.Name, s.InstancesPassing]));
      performance.mark("svc-recorded");
      const tags = [...new Set(services.flatMap((s) => s.Tags))].sort();
      const chosen = tagSelect.value;
      tagSelect.innerHTML = `<option value="">Any tag</option>${tags
        .map((t) => `<option${t === chosen ? " selected" : ""}>${esc(t)}</option>`).join("")}`;
      performance.mark("svc-tags");
      draw();
      performance.mark("svc-drawn");
    },
    onError(error) {
      notice(message, "error", explain(error));
      if (error.isDenied) rows.innerHTML = `<tr><td colspan="4" class="muted">Nothing to show with this token.</td></tr>`;
    },
  });
}

function row(s, now) {
  const counts = STATUSES.filter((st) => s[`Instances${st[0].toUpperCase()}${st.slice(1)}`] > 0)
    .map((st) => badge(st, `${s[`Instances${st[0].toUpperCase()}${st.slice(1)}`]} ${st}`)).join(" ");
  const worst = ["maintenance", "critical", "warning"].find(
    (st) => s[`Instances${st[0].toUpperCase()}${st.slice(1)}`] > 0) || "passing";
  return `<tr data-service="${esc(s.Name)}" data-status="${worst}">
    <th scope="row"><span class="dot s-${worst}" aria-hidden="true"></span><a href="#/services/${encodeURIComponent(s.Name)}">${esc(s.Name)}</a></th>
    <td class="tags">${s.Tags.map((t) => `<span class="tag">${esc(t)}</span>`).join(" ")}</td>
    <td class="counts"><span class="total">${s.InstanceCount}</span> ${counts}</td>
    <td class="sparkcell">${sparkline(s.Name, s.InstanceCount, now)}</td>
  </tr>`;
}
