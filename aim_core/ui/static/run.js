// Run page: properties, params tree, sequence summaries, charts grouped by context, the
// System section (one chart per system metric, one line per GPU) and the Logs tab (the
// captured terminal lines). Charts and logs of a running run follow it every few seconds.
"use strict";

const REFRESH_MS = 3000;
const SYSTEM = "__system__";
const SYSTEM_TITLES = {
  cpu: "CPU (% of a core)", memory_percent: "Memory (%)", p_memory_percent: "Process memory (%)",
  disk_percent: "Disk (%)", gpu: "GPU load (%)", gpu_memory_percent: "GPU memory (%)",
  gpu_temp: "GPU temperature (°C)", gpu_power_watts: "GPU power (W)",
};
const LOG_TAIL = 2000;
const runHash = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const DEFAULTS = { x: "step" };
const state = { ...Dash.readState(DEFAULTS), series: [], run: null, tab: "metric",
  logs: { lines: new Map(), first: null, last: null, count: 0, loaded: false } };

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
      // System params (packages, environment) are long: closed until asked for.
      return Dash.el("li", {}, Dash.el("details", { open: !(root && k === "__system_params") },
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

// One section per context, one chart per metric name inside it; system metrics apart.
async function renderCharts() {
  const container = document.getElementById("charts");
  const groups = new Map();
  for (const s of state.series) {
    if (s.name.startsWith(SYSTEM)) continue;
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
  draws.push(renderSystem());
  await Promise.all(draws);
  Dash.rendered();
}

// One chart per system metric; per-GPU metrics have one line per GPU. Epochs mean nothing
// to a sampler, so the epoch axis shows time instead.
function renderSystem() {
  const system = state.series.filter((s) => s.name.startsWith(SYSTEM));
  const section = document.getElementById("system-section");
  section.hidden = !system.length;
  const grid = document.getElementById("system");
  const byName = new Map();
  for (const s of system) {
    if (!byName.has(s.name)) byName.set(s.name, []);
    byName.get(s.name).push(s);
  }
  const axis = state.x === "epoch" ? "time" : state.x;
  const order = Object.keys(SYSTEM_TITLES).map((k) => SYSTEM + k);
  const rank = (name) => (order.includes(name) ? order.indexOf(name) : order.length);
  const names = [...byName.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return Promise.all(names.map((name) => {
    const box = [...grid.querySelectorAll(".chart-box")].find((b) => b.dataset.name === name);
    const short = name.slice(SYSTEM.length);
    const el = box ? box.querySelector(".chart") : Charts.box(grid, SYSTEM_TITLES[short] || short, name);
    const list = byName.get(name).sort((a, b) => (a.context.gpu ?? -1) - (b.context.gpu ?? -1));
    const traces = list.map((s, i) => {
      const label = "gpu" in s.context ? `GPU ${s.context.gpu}` : short;
      const color = Charts.palette[i % Charts.palette.length];
      return {
        type: "scatter", mode: s.steps.length === 1 ? "markers" : "lines",
        x: axis === "time" ? s.times : s.steps, y: s.values, name: Dash.esc(label),
        meta: { context: s.context }, line: { color, width: 1.4 }, marker: { color, size: 5 },
        hovertemplate: `<b>${Dash.esc(label)}</b><br>${axis}=%{x}<br>%{y:.4g}<extra></extra>`,
      };
    });
    const layout = Charts.layout({ xTitle: Charts.axisTitles[axis], uirevision: axis, showlegend: list.length > 1 });
    return Charts.draw(el, traces, layout);
  }));
}

// -- the Logs tab -------------------------------------------------------------------------
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

function logLine(step, text) {
  return Dash.el("div", { class: "line", dataset: { step: String(step) } },
    Dash.el("span", { class: "n" }, String(step)), Dash.el("span", { class: "t" }, text.replace(ANSI, "")));
}

// Merge lines from the API (a step seen again replaces its line: an unfinished line
// such as a progress bar is updated until it ends) and redraw what changed.
function mergeLogs(data) {
  const logs = state.logs;
  const box = document.getElementById("logs");
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  for (const [step, text] of data.lines) {
    const old = logs.lines.get(step);
    if (old === text) continue;
    logs.lines.set(step, text);
    const node = logLine(step, text);
    const existing = box.querySelector(`.line[data-step="${step}"]`);
    if (existing) existing.replaceWith(node);
    else if (logs.last === null || step > logs.last) box.append(node);
    else {
      const after = [...box.children].find((c) => Number(c.dataset.step) > step);
      box.insertBefore(node, after || null);
    }
    if (logs.first === null || step < logs.first) logs.first = step;
    if (logs.last === null || step > logs.last) logs.last = step;
  }
  logs.count = data.count;
  const shown = logs.lines.size;
  document.getElementById("logs-status").textContent = data.count
    ? `${shown === data.count ? "" : `last ${shown} of `}${data.count} lines${state.run && state.run.active ? ", live" : ""}`
    : "no terminal output captured";
  document.getElementById("logs-earlier").hidden = !(logs.first > (data.first_step ?? 0));
  if (document.getElementById("follow").checked && atEnd) box.scrollTop = box.scrollHeight;
}

async function loadLogs() {
  const data = await Dash.api(`/api/runs/${encodeURIComponent(runHash)}/logs`, { tail: LOG_TAIL });
  state.logs.loaded = true;
  mergeLogs(data);
  const box = document.getElementById("logs");
  box.scrollTop = box.scrollHeight;
}

async function followLogs() {
  const logs = state.logs;
  if (!logs.loaded) return loadLogs();
  const since = logs.last === null ? 0 : logs.last;
  mergeLogs(await Dash.api(`/api/runs/${encodeURIComponent(runHash)}/logs`, { since }));
}

async function earlierLogs() {
  const logs = state.logs;
  const start = Math.max(0, logs.first - LOG_TAIL);
  const data = await Dash.api(`/api/runs/${encodeURIComponent(runHash)}/logs`, { since: start, limit: logs.first - start });
  mergeLogs(data);
}

// Called by Objects.setupTabs when a tab is shown: the Logs tab loads on first view.
function onTab(kind) {
  state.tab = kind;
  if (kind === "terminal" && !state.logs.loaded) loadLogs().catch((err) => Dash.showError(err));
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
  if (state.tab === "terminal") await followLogs();
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
  document.getElementById("logs-earlier").addEventListener("click", () => earlierLogs().catch((err) => Dash.showError(err)));
  try {
    const [detail] = await Promise.all([Dash.api(`/api/runs/${encodeURIComponent(runHash)}`), loadSeries()]);
    state.run = detail.run;
    renderProps(detail.run);
    renderParams(detail.params);
    renderSequences(detail.sequences);
    Objects.setupTabs(runHash, detail.sequences, new URLSearchParams(location.search).get("tab"), onTab);
    await renderCharts();
    setInterval(() => refresh().catch(() => {}), REFRESH_MS);
  } catch (err) {
    Dash.showError(err);
  }
  Dash.ready();
}

main();
