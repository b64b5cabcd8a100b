// Metrics page: AimQL metric search drawn as charts. Series are grouped by any field (run,
// experiment, context keys, params) into colours, line styles and charts; the server
// aligns them on the chosen x-axis and aggregates each group (mean or median, a band).
"use strict";

const REFRESH_MS = 3000;
const MERGE_ABOVE = 40;  // raw lines per chart beyond which lines of one colour and style share a trace
const DEFAULTS = {
  q: "", color: ["run.hash"], style: ["metric.context"], chart: [],
  agg: "none", band: "none", raw: true, x: "step", smooth: 0, log: false, outliers: false, xr: [],
};
const state = { ...Dash.readState(DEFAULTS), data: null, fetched: "" };

const FIELD_TITLES = { "run.hash": "run", "run.name": "run name", "run.experiment": "experiment", "metric.context": "context" };

// ---- grouping fields ------------------------------------------------------------------

function fieldValue(field, series, run) {
  if (field === "metric.name") return series.name;
  if (field === "metric.context") return series.context;
  if (field.startsWith("metric.context.")) return series.context[field.slice(15)];
  if (field === "run.hash") return series.run;
  if (field === "run.name" || field === "run.experiment") return run[field.slice(4)];
  return run.params[field.slice(4)];
}

function fieldText(field, value) {
  const title = FIELD_TITLES[field] || field.replace(/^run\.|^metric\.context\./, "");
  if (field === "run.hash") {
    const run = state.data.runs[value];
    return `${title}=${run ? Dash.runLabel(run) : String(value).slice(0, 8)}`;
  }
  if (field === "metric.context") return Dash.context(value);
  return `${title}=${value === undefined || value === null ? "(none)" : Dash.value(value)}`;
}

// A key's identity: JSON with object keys sorted (the server sends contexts sorted).
function stable(value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stable(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value === undefined ? null : value);
}

function keyOf(fields, valueOf) {
  const values = fields.map((f) => valueOf(f));
  return { id: `[${values.map(stable).join(",")}]`, values, text: fields.map((f, i) => fieldText(f, values[i])).join(", ") };
}

// Order of keys (colours, styles, charts): numbers by value, anything else by its text.
function compareValues(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return Dash.value(a).localeCompare(Dash.value(b), undefined, { numeric: true });
}

function compareKeys(a, b) {
  for (let i = 0; i < Math.min(a.values.length, b.values.length); i++) {
    const c = compareValues(a.values[i], b.values[i]);
    if (c) return c;
  }
  return a.text.localeCompare(b.text, undefined, { numeric: true });
}

function availableFields() {
  const ctx = new Set(), params = new Set();
  for (const s of state.data.series) Object.keys(s.context).forEach((k) => ctx.add(k));
  for (const run of Object.values(state.data.runs)) Object.keys(run.params).forEach((k) => params.add(k));
  return ["run.hash", "run.name", "run.experiment", "metric.context",
    ...[...ctx].sort().map((k) => `metric.context.${k}`), ...[...params].sort().map((k) => `run.${k}`)];
}

function renderGroupPickers() {
  const fields = availableFields();
  for (const mode of ["color", "style", "chart"]) {
    const details = document.getElementById(`group-${mode}`);
    const chosen = state[mode];
    const names = [...new Set([...fields, ...chosen])];
    Dash.fill(details.querySelector(".panel"), Dash.el("fieldset", {}, names.map((f) => Dash.el("label", {},
      Dash.el("input", { type: "checkbox", value: f, dataset: { mode }, checked: chosen.includes(f) }),
      " ", FIELD_TITLES[f] || f))));
    details.querySelector("summary").textContent =
      `${{ color: "colour", style: "line style", chart: "chart" }[mode]}: ${chosen.map((f) => FIELD_TITLES[f] || f).join(", ") || "none"}`;
  }
}

// ---- data -------------------------------------------------------------------------------

function groupFields() {
  return [...new Set([...state.color, ...state.style, ...state.chart])];
}

function fetchArgs() {
  const args = { q: state.q, x: state.x };
  if (state.agg !== "none") {
    Object.assign(args, { agg: state.agg, band: state.band, raw: state.raw ? "1" : "0", group: groupFields() });
  }
  return args;
}

async function fetchData(force) {
  const args = fetchArgs();
  const id = JSON.stringify(args);
  if (!force && id === state.fetched && state.data) return;
  const input = document.getElementById("q");
  try {
    state.data = await Dash.api("/api/metrics", args);
    Dash.showError(null, input);
  } catch (err) {
    Dash.showError(err, input);
    state.data = { runs: {}, series: [], groups: [], truncated: false, names: [], unaligned: 0 };
  }
  state.fetched = id;
  fillAxisOptions();
}

function fillAxisOptions() {
  const select = document.getElementById("x-axis");
  const names = [...new Set([...state.data.names, ...(state.x.startsWith("metric:") ? [state.x.slice(7)] : [])])];
  const options = [["step", "step"], ["epoch", "epoch"], ["time", "relative time"], ["wall", "wall time"],
    ...names.map((n) => [`metric:${n}`, `metric: ${n}`])];
  Dash.fill(select, options.map(([v, t]) => Dash.el("option", { value: v, selected: v === state.x }, t)));
}

// ---- drawing ----------------------------------------------------------------------------

function xsOf(series) {
  const xs = state.x === "step" ? series.steps : series.x;
  return state.x === "wall" ? xs.map((v) => (v === null ? null : v * 1000)) : xs;
}

function palette(keys, list) {
  const sorted = [...keys.values()].sort(compareKeys);
  return new Map(sorted.map((k, i) => [k.id, list[i % list.length]]));
}

// Everything the charts and the legend need: keys per series and group, colours, styles.
function plan() {
  const { runs, series, groups } = state.data;
  const items = [];
  const raw = state.agg === "none" || state.raw;
  if (raw) {
    series.forEach((s) => {
      if (!s.values) return;
      const run = runs[s.run];
      const valueOf = (f) => fieldValue(f, s, run);
      items.push({ kind: "raw", series: s, run, valueOf });
    });
  }
  for (const g of groups || []) {
    items.push({ kind: state.agg, group: g, valueOf: (f) => (f === "metric.name" ? g.name : g.key[f]) });
  }
  const colors = new Map(), styles = new Map();
  for (const item of items) {
    const name = item.series ? item.series.name : item.group.name;
    item.color = keyOf(state.color, item.valueOf);
    item.style = keyOf(state.style, item.valueOf);
    const chartKey = keyOf(state.chart, item.valueOf);
    item.chart = { id: JSON.stringify([name, chartKey.id]), name, key: { values: [name, ...chartKey.values], text: chartKey.text },
      title: chartKey.text ? `${name} · ${chartKey.text}` : name };
    colors.set(item.color.id, item.color);
    styles.set(item.style.id, item.style);
  }
  return { items, colors: palette(colors, Charts.palette), styles: palette(styles, Charts.dashes), colorKeys: colors, styleKeys: styles };
}

function rawTrace(item, p) {
  const s = item.series;
  const label = `${Dash.runLabel(item.run)} · ${Dash.context(s.context)}`;
  const color = p.colors.get(item.color.id);
  const faded = state.agg !== "none";
  return {
    type: "scatter", mode: s.steps.length === 1 ? "markers" : "lines",
    x: xsOf(s), y: Charts.ema(s.values, state.smooth),
    name: Dash.esc(item.color.text || label),
    line: { color, width: faded ? 1 : 1.6, dash: p.styles.get(item.style.id) },
    marker: { color, size: 5 }, opacity: faded ? 0.35 : 1,
    meta: { kind: "raw", run: s.run, context: s.context, steps: s.steps }, label: Dash.esc(label),
    hovertemplate: `<b>${Dash.esc(label)}</b><br>%{x}<br>value=%{y:.6g}<extra></extra>`,
  };
}

// Many lines draw much faster as a few traces: one per colour and style, the series
// separated by gaps, each point keeping its own hover label.
function mergeRaw(traces) {
  const merged = new Map();
  for (const t of traces) {
    const key = `${t.line.color}|${t.line.dash}`;
    if (!merged.has(key)) {
      merged.set(key, { ...t, mode: "lines", x: [], y: [], text: [], meta: { kind: "raw", merged: 0, runs: [] },
        hovertemplate: "<b>%{text}</b><br>%{x}<br>value=%{y:.6g}<extra></extra>" });
    }
    const m = merged.get(key);
    if (m.x.length) { m.x.push(null); m.y.push(null); m.text.push(""); }
    for (let i = 0; i < t.x.length; i++) { m.x.push(t.x[i]); m.y.push(t.y[i]); m.text.push(t.label); }
    m.meta.merged += 1;
    m.meta.runs.push(t.meta.run);
  }
  return [...merged.values()];
}

function groupTraces(item, p) {
  const g = item.group;
  const color = p.colors.get(item.color.id);
  const xs = state.x === "wall" ? g.x.map((v) => v * 1000) : g.x;
  const label = [item.color.text, item.style.text].filter(Boolean).join(", ") || "all";
  const traces = [];
  if (g.lo && g.hi) {
    const band = { type: "scatter", mode: "lines", x: xs, line: { width: 0, color }, hoverinfo: "skip", showlegend: false };
    traces.push({ ...band, y: g.lo, meta: { kind: "band-lo", key: g.key } });
    traces.push({ ...band, y: g.hi, fill: "tonexty", fillcolor: Charts.rgba(color, 0.18), meta: { kind: "band-hi", key: g.key } });
  }
  traces.push({
    type: "scatter", mode: g.x.length === 1 ? "markers" : "lines",
    x: xs, y: Charts.ema(g.y, state.smooth), name: Dash.esc(`${state.agg} ${label}`),
    line: { color, width: 2.6, dash: p.styles.get(item.style.id) }, marker: { color, size: 6 },
    meta: { kind: state.agg, key: g.key, members: g.members.length },
    hovertemplate: `<b>${Dash.esc(`${state.agg} of ${g.members.length}: ${label}`)}</b><br>%{x}<br>value=%{y:.6g}<extra></extra>`,
  });
  return traces;
}

function chartElements() {
  return [...document.querySelectorAll("#charts .chart")];
}

async function render() {
  if (!state.data) return;
  const p = plan();
  const charts = new Map();
  for (const item of p.items) {
    if (!charts.has(item.chart.id)) charts.set(item.chart.id, { ...item.chart, traces: [], items: [] });
    const chart = charts.get(item.chart.id);
    chart.items.push(item);
    chart.traces.push(...(item.kind === "raw" ? [rawTrace(item, p)] : groupTraces(item, p)));
  }
  state.charts = charts;
  for (const chart of charts.values()) {
    const raw = chart.traces.filter((t) => t.meta.kind === "raw");
    if (raw.length > MERGE_ABOVE) chart.traces = [...mergeRaw(raw), ...chart.traces.filter((t) => t.meta.kind !== "raw")];
  }
  const container = document.getElementById("charts");
  const order = [...charts.values()].sort((a, b) => compareKeys(a.key, b.key));
  const boxes = new Map([...container.children].map((b) => [b.dataset.name, b]));
  const draws = [];
  for (const chart of order) {
    let box = boxes.get(chart.title);
    boxes.delete(chart.title);
    if (!box) {
      Charts.box(container, chart.title, chart.title, () => downloadChart(chart.title));
      box = container.lastElementChild;
    }
    container.append(box);  // keeps the sorted order
    box.dataset.metric = chart.name;
    const el = box.querySelector(".chart");
    const ys = chart.traces.filter((t) => t.meta.kind !== "band-lo" && t.meta.kind !== "band-hi").flatMap((t) => t.y);
    const layout = Charts.layout({
      xTitle: state.x.startsWith("metric:") ? state.x.slice(7) : Charts.axisTitles[state.x],
      xType: state.x === "wall" ? "date" : undefined, xRange: state.xr.length === 2 ? state.xr : undefined,
      log: state.log, yRange: state.outliers ? Charts.robustRange(ys, state.log) : undefined,
      uirevision: state.x,
    });
    draws.push(Charts.draw(el, chart.traces, layout).then(() => Charts.syncZoom(el, chartElements, onZoom)));
  }
  boxes.forEach((box) => box.remove());
  renderLegend(p);
  renderCounts();
  await Promise.all(draws);
  Dash.rendered();
}

function onZoom(range) {
  state.xr = range ? range.map((v) => (typeof v === "number" ? Number(v.toPrecision(8)) : v)) : [];
  Dash.writeState(state, DEFAULTS);
}

function renderLegend(p) {
  const swatch = (color) => Dash.el("span", { class: "swatch", style: `background:${color}` });
  const line = (dash) => {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("width", "28"); svg.setAttribute("height", "8"); svg.classList.add("dash");
    const l = document.createElementNS("http://www.w3.org/2000/svg", "line");
    Object.entries({ x1: 0, y1: 4, x2: 28, y2: 4, stroke: "#333", "stroke-width": 2, "stroke-dasharray": Charts.dashArrays[dash] })
      .forEach(([k, v]) => l.setAttribute(k, v));
    svg.append(l);
    return svg;
  };
  const entries = (keys, map, mark, kind) => [...keys.values()].sort(compareKeys)
    .map((k) => Dash.el("span", { class: "entry", dataset: { kind } }, mark(map.get(k.id)), k.text || "all"));
  const legend = document.getElementById("legend");
  Dash.fill(legend,
    state.color.length ? Dash.el("div", { class: "legend-row" }, Dash.el("b", {}, "colour"), entries(p.colorKeys, p.colors, swatch, "color")) : null,
    state.style.length ? Dash.el("div", { class: "legend-row" }, Dash.el("b", {}, "line style"), entries(p.styleKeys, p.styles, line, "style")) : null);
}

function renderCounts() {
  const { runs, series, truncated, unaligned } = state.data;
  const n = Object.keys(runs).length;
  document.getElementById("count").textContent = `${series.length} series from ${n} run${n === 1 ? "" : "s"}`;
  const notice = document.getElementById("notice");
  const messages = [];
  if (truncated) messages.push("Only the first series are shown; narrow the query to see the rest.");
  if (!series.length) messages.push("No metrics match.");
  if (unaligned) messages.push(`${unaligned} series have no ${state.x.slice(7)} metric in their run and are left out.`);
  notice.textContent = messages.join(" ");
  notice.hidden = !messages.length;
}

// ---- CSV of one chart: exactly the drawn values ---------------------------------------------

function downloadChart(title) {
  const chart = [...state.charts.values()].find((c) => c.title === title);
  const p = plan();
  const rows = [];
  for (const item of chart.items) {
    if (item.kind === "raw") {
      const t = rawTrace(item, p), s = item.series;
      t.x.forEach((x, i) => rows.push(["raw", s.run, item.run.name, s.name, JSON.stringify(s.context), "",
        s.steps[i], state.x === "wall" && x !== null ? x / 1000 : x, t.y[i]]));
      continue;
    }
    for (const t of groupTraces(item, p)) {
      const kind = { "band-lo": "band_low", "band-hi": "band_high" }[t.meta.kind] || t.meta.kind;
      t.x.forEach((x, i) => rows.push([kind, "", "", item.group.name, "", JSON.stringify(item.group.key), "",
        state.x === "wall" && x !== null ? x / 1000 : x, t.y[i]]));
    }
  }
  const header = ["kind", "run", "run_name", "metric", "context", "group", "step", "x", "value"];
  Dash.download(`${title.replace(/[^\w.-]+/g, "_")}.csv`, Dash.csv(header, rows));
}

// ---- controls, live refresh -------------------------------------------------------------

async function update(refetch) {
  Dash.writeState(state, DEFAULTS);
  renderGroupPickers();
  if (refetch) await fetchData(false);
  renderGroupPickers();
  await render();
}

function bindControls() {
  const on = (id, event, fn) => document.getElementById(id).addEventListener(event, fn);
  on("search", "submit", (event) => {
    event.preventDefault();
    state.q = document.getElementById("q").value.trim();
    update(true);
  });
  for (const mode of ["color", "style", "chart"]) {
    on(`group-${mode}`, "change", (e) => {
      const field = e.target.value;
      state[mode] = state[mode].filter((f) => f !== field);
      if (e.target.checked) state[mode].push(field);
      update(state.agg !== "none");
    });
  }
  on("agg", "change", (e) => { state.agg = e.target.value; update(true); });
  on("band", "change", (e) => { state.band = e.target.value; update(state.agg !== "none"); });
  on("raw", "change", (e) => { state.raw = e.target.checked; update(state.agg !== "none"); });
  on("x-axis", "change", (e) => { state.x = e.target.value; state.xr = []; update(true); });
  on("log", "change", (e) => { state.log = e.target.checked; update(false); });
  on("outliers", "change", (e) => { state.outliers = e.target.checked; update(false); });
  on("smooth", "input", (e) => {
    state.smooth = Number(e.target.value);
    document.getElementById("smooth-value").textContent = e.target.value;
    update(false);
  });
}

function setControls() {
  document.getElementById("q").value = state.q;
  document.getElementById("agg").value = state.agg;
  document.getElementById("band").value = state.band;
  document.getElementById("raw").checked = state.raw;
  document.getElementById("log").checked = state.log;
  document.getElementById("outliers").checked = state.outliers;
  document.getElementById("smooth").value = String(state.smooth);
  document.getElementById("smooth-value").textContent = String(state.smooth);
}

async function refreshLive() {
  if (!state.data || !Object.values(state.data.runs).some((r) => r.active)) return;
  await fetchData(true);
  await render();
  document.getElementById("refresh").textContent = `live, updated ${Dash.time(Date.now() / 1000).slice(11)}`;
}

async function main() {
  setControls();
  bindControls();
  Dash.header();
  await fetchData(true);
  renderGroupPickers();
  await render();
  setInterval(() => refreshLive().catch(() => {}), REFRESH_MS);
  Dash.ready();
}

main();
