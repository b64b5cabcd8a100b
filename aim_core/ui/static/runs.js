// Runs page: AimQL search, picked param/metric columns, sorting, live refresh, writes.
"use strict";

const REFRESH_MS = 3000;
const STORE = "aim-core.runs.columns";
const state = {
  q: new URLSearchParams(location.search).get("q") || "",
  picked: JSON.parse(localStorage.getItem(STORE) || "null"),
  sort: { key: "creation_time", dir: -1 },
  rows: [],
  columns: { params: [], metrics: [] },
  info: { allow_writes: false },
  selected: new Set(),
};

const FIXED = [
  { key: "hash", title: "hash", get: (r) => r.hash },
  { key: "name", title: "name", get: (r) => r.name },
  { key: "experiment", title: "experiment", get: (r) => r.experiment },
  { key: "status", title: "status", get: (r) => r.status },
  { key: "creation_time", title: "created", get: (r) => r.creation_time },
  { key: "duration", title: "duration", get: (r) => r.duration },
];

function columnArgs() {
  if (!state.picked) return { auto: "1" };
  return { param: state.picked.params, metric: state.picked.metrics };
}

async function load() {
  const error = document.getElementById("error");
  const input = document.getElementById("q");
  try {
    const data = await Dash.api("/api/runs", { q: state.q, ...columnArgs() });
    error.hidden = true;
    input.classList.remove("invalid");
    state.rows = data.runs;
    state.columns = data.columns;
    state.picked = data.shown;
    renderPickers();
    render();
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
    input.classList.toggle("invalid", err.status === 400);
  }
}

function metricTitle(key) {
  const col = state.columns.metrics.find((c) => c.key === key);
  if (!col) return key;
  const ctx = Object.keys(col.context).length ? ` (${Dash.context(col.context)})` : "";
  return col.name + ctx;
}

function allColumns() {
  const params = state.picked.params.map((key) => ({
    key: "p:" + key, title: key, get: (r) => r.params[key],
  }));
  const metrics = state.picked.metrics.map((key) => ({
    key: "m:" + key, title: metricTitle(key), get: (r) => r.metrics[key],
  }));
  return [...FIXED, ...params, ...metrics];
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function sortedRows(columns) {
  const col = columns.find((c) => c.key === state.sort.key) || FIXED[4];
  const rows = state.rows.slice();
  rows.sort((a, b) => {
    const va = col.get(a), vb = col.get(b);
    if (va === null || va === undefined || vb === null || vb === undefined) {
      return compare(va, vb);  // missing values last in both directions
    }
    return state.sort.dir * compare(va, vb);
  });
  return rows;
}

function cell(col, row) {
  const v = col.get(row);
  if (col.key === "hash") {
    return `<td class="mono"><a href="/runs/${Dash.esc(v)}">${Dash.esc(String(v).slice(0, 8))}</a></td>`;
  }
  if (col.key === "status") return `<td>${Dash.status(v)}${row.archived ? " <span class=\"tag\">archived</span>" : ""}</td>`;
  if (col.key === "creation_time") return `<td>${Dash.time(v)}</td>`;
  if (col.key === "duration") return `<td class="num">${Dash.duration(v)}</td>`;
  const num = typeof v === "number" ? ' class="num"' : "";
  return `<td${num}>${Dash.esc(Dash.value(v))}</td>`;
}

function render() {
  const columns = allColumns();
  const writes = state.info.allow_writes;
  const head = columns.map((c) => {
    const sorted = c.key === state.sort.key ? (state.sort.dir > 0 ? " sorted-asc" : " sorted-desc") : "";
    return `<th class="sortable${sorted}" data-key="${Dash.esc(c.key)}">${Dash.esc(c.title)}</th>`;
  }).join("");
  document.querySelector("#runs thead").innerHTML = `<tr>${writes ? "<th></th>" : ""}${head}</tr>`;
  const body = sortedRows(columns).map((row) => {
    const box = writes
      ? `<td><input type="checkbox" data-hash="${Dash.esc(row.hash)}"${state.selected.has(row.hash) ? " checked" : ""}></td>`
      : "";
    return `<tr data-hash="${Dash.esc(row.hash)}">${box}${columns.map((c) => cell(c, row)).join("")}</tr>`;
  }).join("");
  document.querySelector("#runs tbody").innerHTML = body;
  document.getElementById("count").textContent =
    `${state.rows.length} run${state.rows.length === 1 ? "" : "s"}`;
}

function renderPickers() {
  const boxes = (kind, cols, title) => cols.map((c) => {
    const checked = state.picked[kind].includes(c.key) ? " checked" : "";
    return `<label><input type="checkbox" data-kind="${kind}" value="${Dash.esc(c.key)}"${checked}> ${Dash.esc(title(c))}</label>`;
  }).join("") || '<span class="muted">none</span>';
  document.getElementById("param-cols").innerHTML = boxes("params", state.columns.params, (c) => c.key);
  document.getElementById("metric-cols").innerHTML = boxes("metrics", state.columns.metrics, (c) => metricTitle(c.key));
}

function onPick(event) {
  const box = event.target;
  if (!box.dataset.kind) return;
  const list = state.picked[box.dataset.kind].filter((k) => k !== box.value);
  if (box.checked) list.push(box.value);
  state.picked[box.dataset.kind] = list;
  localStorage.setItem(STORE, JSON.stringify(state.picked));
  load();
}

function onSort(event) {
  const th = event.target.closest("th.sortable");
  if (!th) return;
  const key = th.dataset.key;
  state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
  render();
}

async function refreshActive() {
  const active = state.rows.filter((r) => r.active).map((r) => r.hash);
  if (!active.length) return;
  const data = await Dash.api("/api/runs", { hash: active, ...columnArgs() });
  const fresh = new Map(data.runs.map((r) => [r.hash, r]));
  state.rows = state.rows.map((r) => fresh.get(r.hash) || r);
  render();
  document.getElementById("refresh").textContent = `live: ${active.length} active, updated ${Dash.time(Date.now() / 1000).slice(11)}`;
}

async function onAction(event) {
  const action = event.target.dataset.action;
  if (!action) return;
  const hashes = [...state.selected];
  if (!hashes.length) return alert("Select runs with the checkboxes first.");
  if (!confirm(`${action} ${hashes.length} run(s)? ${action === "delete" ? "This cannot be undone." : ""}`)) return;
  for (const hash of hashes) {
    try {
      if (action === "delete") await Dash.write("DELETE", `/api/runs/${hash}`);
      else await Dash.write("POST", `/api/runs/${hash}/${action}`);
    } catch (err) {
      alert(`${hash}: ${err.message}`);
    }
  }
  state.selected.clear();
  load();
}

async function main() {
  document.getElementById("q").value = state.q;
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = document.getElementById("q").value.trim();
    history.replaceState(null, "", state.q ? `?q=${encodeURIComponent(state.q)}` : location.pathname);
    load();
  });
  document.getElementById("columns").addEventListener("change", onPick);
  document.querySelector("#runs thead").addEventListener("click", onSort);
  document.querySelector("#runs tbody").addEventListener("change", (event) => {
    const hash = event.target.dataset.hash;
    if (hash) event.target.checked ? state.selected.add(hash) : state.selected.delete(hash);
  });
  document.getElementById("actions").addEventListener("click", onAction);
  const [info] = await Promise.all([Dash.header(), load()]);
  state.info = info;
  document.getElementById("actions").hidden = !info.allow_writes;
  if (info.allow_writes) render();
  setInterval(() => refreshActive().catch(() => {}), REFRESH_MS);
  Dash.ready();
}

main();
