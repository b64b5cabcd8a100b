// Params page: a parallel-coordinates chart of chosen params and last metric values, one
// line per run, coloured by a metric; brushing an axis narrows the run table below.
"use strict";

const MAX_ROWS = 20000, TABLE_ROWS = 1000;
const DEFAULTS = { q: "", dims: null, color: "", brush: [] };
const state = { ...Dash.readState(DEFAULTS), rows: [], columns: { params: [], metrics: [] }, count: 0 };

async function load() {
  const input = document.getElementById("q");
  const picks = state.dims === null ? { auto: "1" } : {
    param: state.dims.filter((d) => d.startsWith("p:")).map((d) => d.slice(2)),
    metric: state.dims.filter((d) => d.startsWith("m:")).map((d) => d.slice(2)),
  };
  try {
    const data = await Dash.api("/api/runs", { q: state.q, limit: MAX_ROWS, ...picks });
    Dash.showError(null, input);
    Object.assign(state, { rows: data.runs, columns: data.columns, count: data.count });
    if (state.dims === null) {
      state.dims = [...data.shown.params.map((k) => "p:" + k), ...data.shown.metrics.slice(0, 1).map((k) => "m:" + k)];
    }
  } catch (err) {
    Dash.showError(err, input);
    state.rows = [];
  }
}

// An axis per dim: numbers as they are, anything else as sorted categories.
function dimension(id) {
  const values = state.rows.map((r) => Dash.rowValue(r, id));
  const present = values.filter((v) => v !== null && v !== undefined);
  const numeric = present.length > 0 && present.every((v) => typeof v === "number");
  const dim = { id, label: Dash.esc(Dash.columnTitle(id, state.columns.metrics)), numeric };
  if (numeric) {
    dim.values = values.map((v) => (typeof v === "number" ? v : null));
  } else {
    const texts = [...new Set(present.map(Dash.value))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const index = new Map(texts.map((t, i) => [t, i]));
    dim.values = values.map((v) => (v === null || v === undefined ? null : index.get(Dash.value(v))));
    dim.tickvals = texts.map((_, i) => i);
    // parcoords draws tick texts as plain text (no markup), so they are not escaped
    dim.ticktext = texts.map((t) => (t.length > 48 ? t.slice(0, 47) + "…" : t));
    dim.range = [-0.5, Math.max(texts.length - 0.5, 0.5)];
  }
  return dim;
}

// The colour axis: the chosen one, "-" for none, by default the first metric axis.
function colorId() {
  if (state.color === "-") return null;
  return state.color || state.dims.find((d) => d.startsWith("m:")) || null;
}

function brushOf(index) {
  const found = state.brush.map((b) => b.split(":")).find((b) => Number(b[0]) === index);
  return found ? [Number(found[1]), Number(found[2])] : null;
}

function inRange(value, range) {
  if (value === null || value === undefined) return false;
  const ranges = Array.isArray(range[0]) ? range : [range];
  return ranges.some(([lo, hi]) => value >= lo && value <= hi);
}

async function draw() {
  const dims = state.dims.map(dimension);
  // A run needs a value on every axis to be drawn as a line.
  const complete = state.rows.map((_, i) => dims.every((d) => d.values[i] !== null));
  state.drawn = state.rows.filter((_, i) => complete[i]);
  state.dimsData = dims.map((d) => ({ ...d, values: d.values.filter((_, i) => complete[i]) }));
  const notice = document.getElementById("notice");
  const missing = state.rows.length - state.drawn.length;
  notice.hidden = !missing;
  notice.textContent = `${missing} run(s) lack a value on some axis and are left out of the chart and the table.`;
  const el = document.getElementById("parcoords");
  if (!dims.length || !state.drawn.length) {
    if (el.data) Plotly.purge(el);
    return;
  }
  const colorDim = state.dimsData.find((d) => d.id === colorId() && d.numeric);
  const trace = {
    type: "parcoords",
    dimensions: state.dimsData.map((d, i) => {
      const out = { label: d.label, values: d.values };
      if (!d.numeric) Object.assign(out, { tickvals: d.tickvals, ticktext: d.ticktext, range: d.range });
      const brush = brushOf(i);
      if (brush) out.constraintrange = brush;
      return out;
    }),
    line: colorDim
      ? { color: colorDim.values, colorscale: "Viridis", showscale: true, colorbar: { title: { text: colorDim.label } } }
      : { color: Charts.palette[0] },
  };
  await plotlyLoaded;
  await Plotly.react(el, [trace], { margin: { l: 70, r: 70, t: 40, b: 24 }, font: { size: 11 }, paper_bgcolor: "#fff" },
    { displaylogo: false, responsive: true });
  if (!el.dataset.bound) {
    el.dataset.bound = "1";
    el.on("plotly_restyle", onBrush);
  }
}

function onBrush() {
  const el = document.getElementById("parcoords");
  const dims = el.data[0].dimensions;
  state.brush = [];
  dims.forEach((d, i) => {
    const r = d.constraintrange;
    if (!r || !r.length) return;
    const range = Array.isArray(r[0]) ? r[0] : r;
    state.brush.push(`${i}:${Number(range[0].toPrecision(8))}:${Number(range[1].toPrecision(8))}`);
  });
  renderTable();
}

function filteredRows() {
  if (!state.drawn) return [];
  const el = document.getElementById("parcoords");
  const dims = el.data ? el.data[0].dimensions : [];
  return state.drawn.filter((_, i) => dims.every((d, j) => !d.constraintrange || !d.constraintrange.length
    || inRange(state.dimsData[j].values[i], d.constraintrange)));
}

function renderTable() {
  const rows = filteredRows();
  state.filtered = rows;
  const cols = state.dims;
  Dash.fill(document.querySelector("#table thead"), Dash.el("tr", {},
    Dash.el("th", {}, "hash"), Dash.el("th", {}, "name"), Dash.el("th", {}, "experiment"),
    cols.map((id) => Dash.el("th", {}, Dash.columnTitle(id, state.columns.metrics)))));
  Dash.fill(document.querySelector("#table tbody"), rows.slice(0, TABLE_ROWS).map((r) => Dash.el("tr", { dataset: { hash: r.hash } },
    Dash.el("td", {}, Dash.runLink(r.hash)), Dash.el("td", {}, Dash.value(r.name)), Dash.el("td", {}, Dash.value(r.experiment)),
    cols.map((id) => {
      const v = Dash.rowValue(r, id);
      return Dash.el("td", { class: typeof v === "number" ? "num" : null }, Dash.value(v));
    }))));
  const more = rows.length > TABLE_ROWS ? ` (first ${TABLE_ROWS} shown)` : "";
  document.getElementById("shown").textContent = `${rows.length} of ${state.drawn.length}${more}`;
  document.getElementById("count").textContent = `${state.count} run${state.count === 1 ? "" : "s"}`;
  Dash.writeState(state, DEFAULTS);
  Dash.rendered();
}

function renderControls() {
  const picked = { params: state.dims.filter((d) => d.startsWith("p:")).map((d) => d.slice(2)),
    metrics: state.dims.filter((d) => d.startsWith("m:")).map((d) => d.slice(2)) };
  Dash.pickers(document.getElementById("column-panel"), state.columns, picked, (kind, key, checked) => {
    const id = (kind === "params" ? "p:" : "m:") + key;
    state.dims = state.dims.filter((d) => d !== id);
    if (checked) state.dims.push(id);
    state.brush = [];
    refresh(true);
  });
  const metrics = state.columns.metrics.map((c) => "m:" + c.key);
  const options = [["", "first metric axis"], ["-", "none"], ...[...new Set([...state.dims, ...metrics])].map((id) => [id, Dash.columnTitle(id, state.columns.metrics)])];
  Dash.fill(document.getElementById("color"), options.map(([v, t]) => Dash.el("option", { value: v, selected: v === state.color }, t)));
}

async function refresh(reload) {
  if (reload) await load();
  renderControls();
  await draw();
  renderTable();
}

function downloadCsv() {
  const header = ["hash", "name", "experiment", ...state.dims.map((id) => Dash.columnTitle(id, state.columns.metrics))];
  const rows = (state.filtered || []).map((r) => [r.hash, r.name, r.experiment, ...state.dims.map((id) => Dash.rowValue(r, id))]);
  Dash.download("params.csv", Dash.csv(header, rows));
}

async function main() {
  document.getElementById("q").value = state.q;
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    state.q = document.getElementById("q").value.trim();
    state.brush = [];
    refresh(true);
  });
  document.getElementById("color").addEventListener("change", (e) => { state.color = e.target.value; refresh(false); });
  document.getElementById("clear").addEventListener("click", () => { state.brush = []; refresh(false); });
  document.getElementById("csv").addEventListener("click", downloadCsv);
  Dash.header();
  await refresh(true);
  Dash.ready();
}

main();
