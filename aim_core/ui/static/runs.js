// Runs page: AimQL search, a paged table sorted by the server, picked param/metric columns,
// selection for Compare, CSV, live refresh of running runs, writes with --allow-writes.
"use strict";

const REFRESH_MS = 3000;
const STORE = "aim-core.runs.columns";
const DEFAULTS = { q: "", sort: "creation_time", dir: "desc", page: 0, size: 100, param: null, metric: null, sel: [] };
const state = {
  ...Dash.readState(DEFAULTS),
  rows: [], count: 0,
  columns: { params: [], metrics: [] },
  info: { allow_writes: false },
};
if (state.param === null && state.metric === null) {
  const stored = JSON.parse(localStorage.getItem(STORE) || "null");
  if (stored) Object.assign(state, { param: stored.params, metric: stored.metrics });
}

const FIXED = [
  { id: "hash", title: "hash", get: (r) => r.hash },
  { id: "name", title: "name", get: (r) => r.name },
  { id: "experiment", title: "experiment", get: (r) => r.experiment },
  { id: "status", title: "status", get: (r) => r.status },
  { id: "creation_time", title: "created", get: (r) => r.creation_time },
  { id: "duration", title: "duration", get: (r) => r.duration },
];

function queryArgs() {
  const cols = state.param === null && state.metric === null
    ? { auto: "1" } : { param: state.param || [], metric: state.metric || [] };
  return { q: state.q, sort: state.sort, dir: state.dir, ...cols };
}

async function load() {
  const input = document.getElementById("q");
  try {
    const data = await Dash.api("/api/runs", {
      ...queryArgs(), offset: state.page * state.size, limit: state.size });
    Dash.showError(null, input);
    Object.assign(state, { rows: data.runs, count: data.count, columns: data.columns });
    state.param = data.shown.params;
    state.metric = data.shown.metrics;
    if (!data.runs.length && state.page > 0 && data.count) {
      state.page = Math.floor((data.count - 1) / state.size);
      return load();
    }
    render();
  } catch (err) {
    Dash.showError(err, input);
  }
}

function columns() {
  return [
    ...FIXED,
    ...state.param.map((key) => ({ id: "p:" + key, title: key, get: (r) => r.params[key] })),
    ...state.metric.map((key) => ({
      id: "m:" + key, title: Dash.columnTitle("m:" + key, state.columns.metrics), get: (r) => r.metrics[key],
    })),
  ];
}

function cell(col, row) {
  const v = col.get(row);
  if (col.id === "hash") return Dash.el("td", {}, Dash.runLink(v));
  if (col.id === "status") return Dash.el("td", {}, Dash.status(v, row.archived));
  if (col.id === "creation_time") return Dash.el("td", {}, Dash.time(v));
  if (col.id === "duration") return Dash.el("td", { class: "num" }, Dash.duration(v));
  return Dash.el("td", { class: typeof v === "number" ? "num" : null }, Dash.value(v));
}

function render() {
  const cols = columns();
  const selected = new Set(state.sel);
  const all = state.rows.length > 0 && state.rows.every((r) => selected.has(r.hash));
  Dash.fill(document.querySelector("#runs thead"), Dash.el("tr", {},
    Dash.el("th", {}, Dash.el("input", { type: "checkbox", id: "select-page", checked: all, title: "select this page" })),
    cols.map((c) => {
      const sorted = c.id === state.sort ? (state.dir === "asc" ? " sorted-asc" : " sorted-desc") : "";
      return Dash.el("th", { class: `sortable${sorted}`, dataset: { key: c.id } }, c.title);
    })));
  Dash.fill(document.querySelector("#runs tbody"), state.rows.map((row) => Dash.el("tr", { dataset: { hash: row.hash } },
    Dash.el("td", {}, Dash.el("input", { type: "checkbox", class: "pick", dataset: { hash: row.hash }, checked: selected.has(row.hash) })),
    cols.map((c) => cell(c, row)))));
  const first = state.count ? state.page * state.size + 1 : 0;
  const last = state.page * state.size + state.rows.length;
  document.getElementById("count").textContent = `${state.count} run${state.count === 1 ? "" : "s"}`;
  document.getElementById("range").textContent = `${first}–${last} of ${state.count}`;
  document.getElementById("prev").disabled = state.page === 0;
  document.getElementById("next").disabled = last >= state.count;
  document.getElementById("size").value = String(state.size);
  const compare = document.getElementById("compare");
  compare.disabled = state.sel.length < 2;
  compare.textContent = state.sel.length ? `Compare (${state.sel.length})` : "Compare";
  const csv = Dash.url("/api/runs.csv", queryArgs());
  document.getElementById("csv").href = csv.pathname + csv.search;
  Dash.pickers(document.getElementById("column-panel"), state.columns,
    { params: state.param, metrics: state.metric }, onPick);
  Dash.writeState(state, DEFAULTS);
  Dash.rendered();
}

function onPick(kind, key, checked) {
  const field = kind === "params" ? "param" : "metric";
  const list = state[field].filter((k) => k !== key);
  if (checked) list.push(key);
  state[field] = list;
  localStorage.setItem(STORE, JSON.stringify({ params: state.param, metrics: state.metric }));
  load();
}

function onSort(event) {
  const th = event.target.closest("th.sortable");
  if (!th) return;
  const key = th.dataset.key;
  state.dir = state.sort === key && state.dir === "asc" ? "desc" : "asc";
  state.sort = key;
  state.page = 0;
  load();
}

function onSelect(event) {
  const box = event.target;
  const hashes = box.id === "select-page" ? state.rows.map((r) => r.hash) : [box.dataset.hash];
  if (!box.classList.contains("pick") && box.id !== "select-page") return;
  const sel = new Set(state.sel);
  hashes.forEach((h) => (box.checked ? sel.add(h) : sel.delete(h)));
  state.sel = [...sel];
  render();
}

async function refreshActive() {
  const active = state.rows.filter((r) => r.active).map((r) => r.hash);
  if (!active.length) return;
  const data = await Dash.api("/api/runs", { hash: active, param: state.param, metric: state.metric });
  const fresh = new Map(data.runs.map((r) => [r.hash, r]));
  state.rows = state.rows.map((r) => fresh.get(r.hash) || r);
  render();
  document.getElementById("refresh").textContent =
    `live: ${active.length} active, updated ${Dash.time(Date.now() / 1000).slice(11)}`;
}

async function onAction(event) {
  const action = event.target.dataset.action;
  if (!action) return;
  const hashes = [...state.sel];
  if (!hashes.length) return alert("Select runs with the checkboxes first.");
  if (!confirm(`${action} ${hashes.length} run(s)? ${action === "delete" ? "This cannot be undone." : ""}`)) return;
  for (const hash of hashes) {
    try {
      if (action === "delete") await Dash.write("DELETE", `/api/runs/${encodeURIComponent(hash)}`);
      else await Dash.write("POST", `/api/runs/${encodeURIComponent(hash)}/${action}`);
    } catch (err) {
      alert(`${hash}: ${err.message}`);
    }
  }
  state.sel = [];
  load();
}

function bind() {
  const on = (id, event, fn) => document.getElementById(id).addEventListener(event, fn);
  on("search", "submit", (event) => {
    event.preventDefault();
    state.q = document.getElementById("q").value.trim();
    state.page = 0;
    load();
  });
  on("prev", "click", () => { state.page = Math.max(0, state.page - 1); load(); });
  on("next", "click", () => { state.page += 1; load(); });
  on("size", "change", (e) => { state.size = Number(e.target.value); state.page = 0; load(); });
  on("compare", "click", () => { location.href = Dash.url("/compare", { run: state.sel }).href; });
  on("actions", "click", onAction);
  document.querySelector("#runs thead").addEventListener("click", onSort);
  document.querySelector("#runs").addEventListener("change", onSelect);
}

async function main() {
  document.getElementById("q").value = state.q;
  bind();
  const [info] = await Promise.all([Dash.header(), load()]);
  state.info = info;
  document.getElementById("actions").hidden = !info.allow_writes;
  setInterval(() => refreshActive().catch(() => {}), REFRESH_MS);
  Dash.ready();
}

main();
