// The KV browser: folders by `?keys&separator=/`, a key's value edited with
// a diff before saving, every save and delete guarded by `?cas=`.

import { api, watch } from "./api.js";
import { announce, confirmAction, diffLines, esc, explain, notice } from "./util.js";

const encodeKey = (key) => key.split("/").map(encodeURIComponent).join("/");

function decodeValue(b64) {
  if (b64 == null) return { text: "", binary: false };
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), binary: false };
  } catch {
    return { text: b64, binary: true };
  }
}

function crumbs(path) {
  const parts = path.split("/").filter(Boolean);
  let acc = "";
  const links = [`<a href="#/kv/">Key/Value</a>`];
  parts.forEach((part, i) => {
    acc += part + (i < parts.length - 1 || path.endsWith("/") ? "/" : "");
    links.push(i === parts.length - 1 ? `<span>${esc(part)}</span>` : `<a href="#/kv/${esc(encodeKey(acc))}">${esc(part)}</a>`);
  });
  return `<nav aria-label="Breadcrumb" class="crumbs">${links.join(' <span aria-hidden="true">›</span> ')}</nav>`;
}

export function render(main, { params: [path], signal }) {
  if (path === "" || path.endsWith("/")) folder(main, path, signal);
  else key(main, path, signal);
}

function folder(main, prefix, signal) {
  main.innerHTML = `${crumbs(prefix)}
    <div class="page-head"><h1>${prefix ? esc(prefix) : "Key/Value"}</h1></div>
    <div id="kv-notice" hidden></div>
    <div class="table-wrap"><table class="kv">
      <caption class="sr-only">Keys and folders under ${esc(prefix || "the root")}</caption>
      <thead><tr><th scope="col">Key</th></tr></thead>
      <tbody id="kv-rows"><tr><td class="muted">Loading…</td></tr></tbody>
    </table></div>
    <section class="card" aria-labelledby="new-title">
      <h2 id="new-title">New key</h2>
      <form id="kv-new" class="stack">
        <div class="field"><label for="new-key">Key</label>
          <div class="prefixed"><span class="muted">${esc(prefix)}</span><input id="new-key" required autocomplete="off" placeholder="name, or folder/"></div></div>
        <div class="field"><label for="new-value">Value</label><textarea id="new-value" rows="4"></textarea></div>
        <div class="actions"><button type="submit">Create</button></div>
      </form>
      <div id="new-notice" hidden></div>
    </section>`;
  const rows = main.querySelector("#kv-rows");
  const message = main.querySelector("#kv-notice");
  // Every key, folded here: Consul answers 404 for a folder with no keys
  // (a console error in the browser), but never for the root.
  watch("/v1/kv/?keys", {
    signal,
    missingOk: true,
    onData(all) {
      notice(message, "info", "");
      const keys = [];
      for (const k of all || []) {
        if (!k.startsWith(prefix) || k === prefix) continue;
        const cut = k.indexOf("/", prefix.length);
        const name = cut >= 0 ? k.slice(0, cut + 1) : k;
        if (keys[keys.length - 1] !== name) keys.push(name);
      }
      rows.innerHTML = keys.length ? keys.map((k) => {
        const label = k.slice(prefix.length);
        const isFolder = k.endsWith("/");
        return `<tr><th scope="row"><span class="kv-kind" aria-hidden="true">${isFolder ? "▸" : "•"}</span><a href="#/kv/${esc(encodeKey(k))}">${esc(label)}</a>${isFolder ? ' <span class="muted small">folder</span>' : ""}</th></tr>`;
      }).join("") : `<tr><td class="muted">No keys here yet.</td></tr>`;
    },
    onError(error) { notice(message, "error", explain(error)); },
  });
  main.querySelector("#kv-new").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = prefix + main.querySelector("#new-key").value.trim();
    const value = main.querySelector("#new-value").value;
    const out = main.querySelector("#new-notice");
    try {
      const { data } = await api(`/v1/kv/${encodeKey(name)}?cas=0`, { method: "PUT", body: value });
      if (data === true) {
        announce(`Created ${name}.`);
        location.hash = `#/kv/${encodeKey(name)}`;
      } else {
        notice(out, "error", `Not created: ${name} already exists. Open it to edit it.`);
      }
    } catch (error) {
      notice(out, "error", explain(error));
    }
  });
}

function key(main, name, signal) {
  const parent = name.includes("/") ? name.slice(0, name.lastIndexOf("/") + 1) : "";
  main.innerHTML = `${crumbs(name)}
    <div class="page-head"><h1>${esc(name)}</h1><p class="muted small" id="kv-meta" aria-live="polite"></p></div>
    <div id="kv-notice" hidden></div>
    <form id="kv-edit" class="stack card">
      <div class="field"><label for="kv-value">Value</label>
        <textarea id="kv-value" rows="10" spellcheck="false"></textarea></div>
      <div class="actions">
        <button type="button" id="kv-review">Review changes</button>
        <button type="submit" id="kv-save" disabled>Save</button>
        <button type="button" id="kv-revert">Revert</button>
        <button type="button" id="kv-delete" class="danger">Delete</button>
      </div>
    </form>
    <section id="kv-diff-box" class="card" aria-labelledby="diff-title" hidden>
      <h2 id="diff-title">Changes to save</h2>
      <pre id="kv-diff" class="diff" tabindex="0"></pre>
    </section>`;
  const textarea = main.querySelector("#kv-value");
  const meta = main.querySelector("#kv-meta");
  const message = main.querySelector("#kv-notice");
  const save = main.querySelector("#kv-save");
  const diffBox = main.querySelector("#kv-diff-box");
  let loaded = null; // { text, index, binary }
  let latest = 0;
  const dirty = () => loaded && textarea.value !== loaded.text;
  const showMeta = () => {
    if (!loaded) return;
    meta.textContent = `ModifyIndex ${loaded.index}${latest > loaded.index ? ` · changed since loaded (now ${latest})` : ""}${loaded.binary ? " · binary value, shown as base64" : ""}`;
  };

  const load = (entry) => {
    const value = decodeValue(entry.Value);
    loaded = { text: value.text, index: entry.ModifyIndex, binary: value.binary };
    latest = entry.ModifyIndex;
    textarea.value = value.text;
    textarea.readOnly = value.binary;
    save.disabled = true;
    diffBox.hidden = true;
    showMeta();
  };

  // Its own controller: deleting the key stops the watch first, so the
  // page does not ask for a key it removed (a 404).
  let watching = null;
  const startWatch = () => {
    const mine = new AbortController();
    watching = mine;
    signal.addEventListener("abort", () => mine.abort(), { once: true });
    watchKey(mine.signal);
  };
  const watchKey = (keySignal) => watch(`/v1/kv/${encodeKey(name)}`, {
    signal: keySignal,
    missingOk: true,
    onData(entries) {
      if (!entries || !entries.length) {
        if (loaded) {
          notice(message, "error", "This key was deleted by someone else. Saving would create it again only if you reload first.");
          latest = Infinity;
        } else {
          notice(message, "info", "No such key. Go back to the folder to create it.");
          main.querySelector("#kv-edit").hidden = true;
        }
        return;
      }
      const entry = entries[0];
      if (!loaded || !dirty()) {
        load(entry);
        // Our own save wakes this too: its "Saved." stays.
        if (!message.classList.contains("ok")) notice(message, "info", "");
      } else {
        latest = entry.ModifyIndex;
        showMeta();
        notice(message, "info", `Someone changed this key (now index ${latest}) while you were editing. Saving will be refused; revert to see their value.`);
      }
    },
    onError(error) { notice(message, "error", explain(error)); },
  });
  startWatch();

  textarea.addEventListener("input", () => {
    save.disabled = true;
    diffBox.hidden = true;
  });
  main.querySelector("#kv-review").addEventListener("click", () => {
    if (!loaded) return;
    const lines = diffLines(loaded.text, textarea.value);
    const changed = lines.some((l) => l.kind !== "same");
    main.querySelector("#kv-diff").innerHTML = changed
      ? lines.map((l) => `<span class="d-${l.kind}">${l.kind === "add" ? "+ " : l.kind === "del" ? "- " : "  "}${esc(l.text)}</span>`).join("\n")
      : '<span class="muted">No changes.</span>';
    diffBox.hidden = false;
    save.disabled = !changed;
    announce(changed ? "Review the changes, then save." : "No changes to save.");
    (changed ? save : main.querySelector("#kv-diff")).focus();
  });
  main.querySelector("#kv-revert").addEventListener("click", async () => {
    try {
      const { data } = await api(`/v1/kv/${encodeKey(name)}`, { signal, missingOk: true });
      if (data && data.length) load(data[0]);
      notice(message, "info", "");
      announce("Reverted to the stored value.");
    } catch (error) {
      notice(message, "error", explain(error));
    }
  });
  main.querySelector("#kv-edit").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!loaded || save.disabled) return;
    try {
      const { data } = await api(`/v1/kv/${encodeKey(name)}?cas=${loaded.index}`, { method: "PUT", body: textarea.value });
      if (data === true) {
        loaded = { ...loaded, text: textarea.value };
        save.disabled = true;
        diffBox.hidden = true;
        notice(message, "ok", "Saved.");
        announce("Saved.");
      } else {
        notice(message, "error", `Not saved: the key changed since you loaded it (you loaded index ${loaded.index}${Number.isFinite(latest) && latest > loaded.index ? `, it is now at ${latest}` : ""}). The check-and-set was refused so the other change is not lost; revert to see it, then edit again.`);
      }
    } catch (error) {
      notice(message, "error", explain(error));
    }
  });
  main.querySelector("#kv-delete").addEventListener("click", async () => {
    if (!loaded) return;
    const sure = await confirmAction({ title: `Delete ${name}?`, text: `The key ${name} and its value are removed.`, action: "Delete" });
    if (!sure) return;
    watching.abort();
    try {
      const { data } = await api(`/v1/kv/${encodeKey(name)}?cas=${loaded.index}`, { method: "DELETE" });
      if (data === true) {
        announce(`Deleted ${name}.`);
        location.hash = `#/kv/${encodeKey(parent)}`;
        return;
      }
      notice(message, "error", "Not deleted: the key changed since you loaded it; revert to see the new value.");
    } catch (error) {
      notice(message, "error", explain(error));
    }
    startWatch();
  });
}
