// The shell: routes by the URL's fragment, the token field, the nav.
// Each page is a module exporting `render(main, { path, signal })`; the
// signal aborts when the page is left, which ends its blocking queries.

import { getToken, setToken } from "./api.js";
import { announce } from "./util.js";
import * as services from "./services.js";
import * as service from "./service.js";
import * as nodes from "./nodes.js";
import * as kv from "./kv.js";
import * as health from "./health.js";

const ROUTES = [
  [/^\/services\/(.+)$/, service, "services"],
  [/^\/services\/?$/, services, "services"],
  [/^\/nodes\/?$/, nodes, "nodes"],
  [/^\/kv\/(.*)$/, kv, "kv"],
  [/^\/health\/?$/, health, "health"],
];

let current = null;

function route() {
  const hash = location.hash;
  if (!hash.startsWith("#/")) {
    if (!current) location.replace("#/services");
    return;
  }
  const path = hash.slice(1);
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  if (current) current.abort();
  current = new AbortController();
  const main = document.getElementById("main");
  main.innerHTML = "";
  const live = document.getElementById("live");
  live.dataset.state = "idle";
  live.textContent = "connecting…";
  if (!found) {
    main.innerHTML = `<h1>Not found</h1><p>No page at this address. <a href="#/services">Go to services</a>.</p>`;
    return;
  }
  const [pattern, page, section] = found;
  const match = path.match(pattern);
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    if (link.dataset.page === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  page.render(main, { params: match.slice(1).map(decodeURIComponent), signal: current.signal });
  const heading = main.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · waypost`;
}

function setupToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  input.value = getToken();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    announce(input.value.trim() ? "Token saved; reloading data." : "Token cleared.");
    route();
  });
  document.getElementById("token-clear").addEventListener("click", () => {
    input.value = "";
    setToken("");
    announce("Token cleared; reloading data.");
    route();
  });
  document.getElementById("skip").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
}

setupToken();
window.addEventListener("hashchange", route);
route();
