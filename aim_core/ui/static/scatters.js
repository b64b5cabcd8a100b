// Scatters page: any param or last metric value against any other, one point per run;
// hovering shows the run, clicking opens it.
"use strict";

const MAX_ROWS = 20000;
const DEFAULTS = { q: "", x: "", y: "", color: "", logx: false, logy: false };
const state = { ...Dash.readState(DEFAULTS), rows: [], columns: { params: [], metrics: [] }, count: 0 };

function chosen() {
  return [state.x, state.y, state.color].filter(Boolean);
}

async function load() {
  const input = document.getElementById("q");
  const ids = chosen();
  const args = { q: state.q, limit: MAX_ROWS, param: ids.filter((d) => d.startsWith("p:")).map((d) => d.slice(2)),
    metric: ids.filter((d) => d.startsWith("m:")).map((d) => d.slice(2)) };
  if (!state.x || !state.y) args.auto = "1";
  try {
    const data = await Dash.api("/api/runs", args);
    Dash.showError(null, input);
    Object.assign(state, { rows: data.runs, columns: data.columns, count: data.count });
    if (!state.x || !state.y) {
      state.x = state.x || (data.shown.params[0] ? "p:" + data.shown.params[0] : "");
      state.y = state.y || (data.shown.metrics[0] ? "m:" + data.shown.metrics[0] : "");
      if (state.x && state.y) return load();
    }
  } catch (err) {
    Dash.showError(err, input);
    state.rows = [];
  }
}

function options(select, value, withNone) {
  const ids = [...state.columns.params.map((c) => "p:" + c.key), ...state.columns.metrics.map((c) => "m:" + c.key)];
  const list = (withNone ? [["", "none"]] : []).concat(ids.map((id) => [id, Dash.columnTitle(id, state.columns.metrics)]));
  Dash.fill(select, list.map(([v, t]) => Dash.el("option", { value: v, selected: v === value }, t)));
}

function traces() {
  const present = (v) => v !== null && v !== undefined;
  const rows = state.rows.filter((r) => present(Dash.rowValue(r, state.x)) && present(Dash.rowValue(r, state.y)));
  const point = (r) => Dash.esc(`${Dash.runLabel(r)} (${String(r.hash).slice(0, 8)})`);
  const hover = `<b>%{customdata[1]}</b><br>${Dash.esc(Dash.columnTitle(state.x, state.columns.metrics))}=%{x}` +
    `<br>${Dash.esc(Dash.columnTitle(state.y, state.columns.metrics))}=%{y}<extra></extra>`;
  // Text values become categories; plotly reads markup in category labels, so escape them.
  const coord = (v) => (typeof v === "number" ? v : Dash.esc(Dash.value(v)));
  const base = (list) => ({
    type: "scatter", mode: "markers",
    x: list.map((r) => coord(Dash.rowValue(r, state.x))), y: list.map((r) => coord(Dash.rowValue(r, state.y))),
    customdata: list.map((r) => [r.hash, point(r)]), hovertemplate: hover,
  });
  const colors = state.color ? rows.map((r) => Dash.rowValue(r, state.color)) : [];
  if (!state.color || colors.every((v) => typeof v === "number")) {
    const marker = { size: 9, color: Charts.palette[0] };
    if (state.color) Object.assign(marker, { color: colors, colorscale: "Viridis", showscale: true,
      colorbar: { title: { text: Dash.esc(Dash.columnTitle(state.color, state.columns.metrics)) } } });
    return { rows, traces: [{ ...base(rows), marker }] };
  }
  const groups = new Map();
  rows.forEach((r, i) => {
    const key = Dash.value(colors[i]) || "(none)";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  });
  const keys = [...groups.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return { rows, traces: keys.map((k, i) => ({ ...base(groups.get(k)), name: Dash.esc(k),
    marker: { size: 9, color: Charts.palette[i % Charts.palette.length] } })) };
}

async function draw() {
  options(document.getElementById("x"), state.x, false);
  options(document.getElementById("y"), state.y, false);
  options(document.getElementById("color"), state.color, true);
  Dash.writeState(state, DEFAULTS);
  const el = document.getElementById("scatter");
  const { rows, traces: list } = traces();
  state.shown = rows;
  document.getElementById("count").textContent = `${rows.length} of ${state.count} runs`;
  const notice = document.getElementById("notice");
  notice.hidden = rows.length === state.rows.length;
  notice.textContent = `${state.rows.length - rows.length} run(s) lack x or y and are not shown.`;
  const layout = Charts.layout({ xTitle: Dash.columnTitle(state.x, state.columns.metrics), log: state.logy,
    showlegend: list.length > 1, uirevision: `${state.x}|${state.y}` });
  layout.xaxis.type = state.logx ? "log" : "-";
  layout.yaxis.title = { text: Dash.esc(Dash.columnTitle(state.y, state.columns.metrics)) };
  layout.margin.l = 70;
  await Charts.draw(el, list, layout);
  if (!el.dataset.bound) {
    el.dataset.bound = "1";
    el.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point && point.customdata) location.href = `/runs/${encodeURIComponent(point.customdata[0])}`;
    });
  }
  Dash.rendered();
}

function downloadCsv() {
  const title = (id) => Dash.columnTitle(id, state.columns.metrics);
  const header = ["hash", "name", title(state.x), title(state.y), ...(state.color ? [title(state.color)] : [])];
  const rows = (state.shown || []).map((r) => [r.hash, r.name, Dash.rowValue(r, state.x), Dash.rowValue(r, state.y),
    ...(state.color ? [Dash.rowValue(r, state.color)] : [])]);
  Dash.download("scatter.csv", Dash.csv(header, rows));
}

async function main() {
  document.getElementById("q").value = state.q;
  document.getElementById("log-x").checked = state.logx;
  document.getElementById("log-y").checked = state.logy;
  const on = (id, event, fn) => document.getElementById(id).addEventListener(event, fn);
  on("search", "submit", async (event) => {
    event.preventDefault();
    state.q = document.getElementById("q").value.trim();
    await load();
    draw();
  });
  for (const key of ["x", "y", "color"]) {
    on(key, "change", async (e) => { state[key] = e.target.value; await load(); draw(); });
  }
  on("log-x", "change", (e) => { state.logx = e.target.checked; draw(); });
  on("log-y", "change", (e) => { state.logy = e.target.checked; draw(); });
  on("csv", "click", downloadCsv);
  Dash.header();
  await load();
  await draw();
  Dash.ready();
}

main();
