// Run page: properties, params tree, sequence summaries, charts grouped by context
// (extended every few seconds while the run is running).
"use strict";

const REFRESH_MS = 3000;
const runHash = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const DEFAULTS = { x: "step" };
const state = { ...Dash.readState(DEFAULTS), series: [], run: null };

function renderProps(run) {
  document.title = `${Dash.runLabel(run)} · aim-core`;
  document.getElementById("title").textContent = Dash.runLabel(run);
  const rows = [
    ["hash", Dash.el("span", { class: "mono" }, run.hash)],
    ["experiment", Dash.value(run.experiment)],
    ["status", Dash.status(run.status, run.archived)],
    ["created", Dash.time(run.creation_time)],
    ["ended", Dash.time(run.end_time)],
    ["duration", Dash.duration(run.duration)],
    ["tags", run.tags.map((t) => Dash.el("span", { class: "tag" }, Dash.value(t)))],
    ["description", Dash.value(run.description)],
  ];
  const empty = (v) => v === "" || (Array.isArray(v) && !v.length);
  Dash.fill(document.getElementById("props"), rows.map(([k, v]) => [
    Dash.el("dt", {}, k), Dash.el("dd", {}, empty(v) ? Dash.el("span", { class: "muted" }, "-") : v)]));
}

function tree(value, root) {
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return Dash.el("ul", { class: root ? "tree root" : "tree" }, entries.map(([k, v]) => {
    if (v !== null && typeof v === "object" && Object.keys(v).length) {
      return Dash.el("li", {}, Dash.el("details", { open: true },
        Dash.el("summary", {}, Dash.el("span", { class: "k" }, String(k))), tree(v, false)));
    }
    return Dash.el("li", {}, Dash.el("span", { class: "k" }, String(k)), ": ",
      Dash.el("span", { class: "v" }, JSON.stringify(v)));
  }));
}

function renderParams(params) {
  const el = document.getElementById("params");
  const has = params && typeof params === "object" && Object.keys(params).length;
  Dash.fill(el, has ? tree(params, true) : Dash.el("span", { class: "muted" }, "no params"));
}

function renderSequences(sequences) {
  const num = (v) => Dash.el("td", { class: "num" }, Dash.num(v));
  Dash.fill(document.querySelector("#sequences tbody"), sequences.map((s) => Dash.el("tr", {},
    Dash.el("td", {}, s.name), Dash.el("td", {}, Dash.context(s.context)), Dash.el("td", {}, s.kind),
    num(s.count), num(s.last_step), num(s.last), num(s.min), num(s.max))));
}

function xOf(series) {
  if (state.x === "epoch") return series.epochs || series.steps.map(() => null);
  if (state.x === "time") return series.times;
  return series.steps;
}

// One section per context, one chart per metric name inside it.
async function renderCharts() {
  const container = document.getElementById("charts");
  const groups = new Map();
  for (const s of state.series) {
    const label = Dash.context(s.context);
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(s);
  }
  const draws = [];
  for (const label of [...groups.keys()].sort()) {
    let grid = [...container.children].find((c) => c.dataset.context === label);
    if (!grid) {
      grid = Dash.el("section", { dataset: { context: label } }, Dash.el("h2", {}, label), Dash.el("div", { class: "charts" }));
      container.append(grid);
    }
    const list = groups.get(label).sort((a, b) => a.name.localeCompare(b.name));
    list.forEach((s, i) => {
      const key = `${s.name} ${label}`;
      const box = [...grid.querySelectorAll(".chart-box")].find((b) => b.dataset.name === key);
      const el = box ? box.querySelector(".chart") : Charts.box(grid.querySelector(".charts"), s.name, key);
      const color = Charts.palette[i % Charts.palette.length];
      const trace = {
        type: "scatter", mode: s.steps.length === 1 ? "markers" : "lines",
        x: xOf(s), y: s.values, name: Dash.esc(s.name),
        line: { color, width: 1.6 }, marker: { color, size: 5 },
        hovertemplate: `<b>${Dash.esc(s.name)}</b><br>${state.x}=%{x}<br>value=%{y:.6g}<extra></extra>`,
      };
      draws.push(Charts.draw(el, [trace], Charts.layout({ xTitle: Charts.axisTitles[state.x], uirevision: state.x })));
    });
  }
  await Promise.all(draws);
  Dash.rendered();
}

async function loadSeries() {
  const data = await Dash.api("/api/series", { run: runHash });
  state.series = data.series;
}

async function refresh() {
  if (!state.run || !state.run.active) return;
  const detail = await Dash.api(`/api/runs/${encodeURIComponent(runHash)}`);
  state.run = detail.run;
  renderProps(detail.run);
  renderSequences(detail.sequences);
  await loadSeries();
  await renderCharts();
  document.getElementById("refresh").textContent = `live, updated ${Dash.time(Date.now() / 1000).slice(11)}`;
}

async function main() {
  Dash.header();
  const axis = document.getElementById("x-axis");
  axis.value = state.x;
  axis.addEventListener("change", (e) => {
    state.x = e.target.value;
    Dash.writeState(state, DEFAULTS);
    renderCharts();
  });
  try {
    const [detail] = await Promise.all([Dash.api(`/api/runs/${encodeURIComponent(runHash)}`), loadSeries()]);
    state.run = detail.run;
    renderProps(detail.run);
    renderParams(detail.params);
    renderSequences(detail.sequences);
    Objects.setupTabs(runHash, detail.sequences, new URLSearchParams(location.search).get("tab"));
    await renderCharts();
    setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  } catch (err) {
    Dash.showError(err);
  }
  Dash.ready();
}

main();
