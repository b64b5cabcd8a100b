// Metrics page: AimQL metric search, one chart per metric name, colour by run/context/param.
"use strict";

const params = new URLSearchParams(location.search);
const state = {
  q: params.get("q") || "",
  data: { runs: {}, series: [], truncated: false },
  colorBy: params.get("color") || "run",
  xAxis: params.get("x") || "step",
  smooth: 0,
  log: false,
};

async function search() {
  const error = document.getElementById("error");
  const input = document.getElementById("q");
  try {
    state.data = await Dash.api("/api/metrics", { q: state.q });
    error.hidden = true;
    input.classList.remove("invalid");
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
    input.classList.toggle("invalid", err.status === 400);
    state.data = { runs: {}, series: [], truncated: false };
  }
  fillColorOptions();
  document.getElementById("charts").innerHTML = "";
  await render();
}

// Colour keys: the run, any context key, any (flattened) param seen in the results.
function fillColorOptions() {
  const ctxKeys = new Set(), paramKeys = new Set();
  for (const s of state.data.series) Object.keys(s.context).forEach((k) => ctxKeys.add(k));
  for (const run of Object.values(state.data.runs)) Object.keys(run.params).forEach((k) => paramKeys.add(k));
  const options = [["run", "run"]];
  [...ctxKeys].sort().forEach((k) => options.push(["context:" + k, "metric.context." + k]));
  [...paramKeys].sort().forEach((k) => options.push(["param:" + k, "run." + k]));
  if (!options.some(([v]) => v === state.colorBy)) state.colorBy = "run";
  document.getElementById("color-by").innerHTML = options.map(([v, label]) =>
    `<option value="${Dash.esc(v)}"${v === state.colorBy ? " selected" : ""}>${Dash.esc(label)}</option>`).join("");
}

function colorKey(series) {
  const by = state.colorBy;
  if (by.startsWith("context:")) return Dash.value(series.context[by.slice(8)]) || "(none)";
  if (by.startsWith("param:")) return Dash.value(state.data.runs[series.run].params[by.slice(6)]) || "(none)";
  return series.run;
}

function groupByName(series) {
  const groups = new Map();
  for (const s of series) {
    if (!groups.has(s.name)) groups.set(s.name, []);
    groups.get(s.name).push(s);
  }
  return new Map([...groups.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

function tracesFor(list, colors) {
  const byRun = state.colorBy === "run";
  const shown = new Set();
  const contexts = [...new Set(list.map((s) => JSON.stringify(s.context)))].sort();
  return list.map((s) => {
    const run = state.data.runs[s.run];
    const key = colorKey(s);
    if (!colors.has(key)) colors.set(key, Charts.palette[colors.size % Charts.palette.length]);
    const label = `${Dash.runLabel(run)} · ${Dash.context(s.context)}`;
    const first = !shown.has(key);
    shown.add(key);
    return Charts.trace(s, {
      xAxis: state.xAxis, smooth: state.smooth, color: colors.get(key),
      dash: Charts.dashes[contexts.indexOf(JSON.stringify(s.context)) % Charts.dashes.length],
      name: byRun ? label : `${state.colorBy.split(":")[1]}=${key}`,
      group: key, showlegend: byRun || first, hover: label,
    });
  });
}

async function render() {
  const groups = groupByName(state.data.series);
  const container = document.getElementById("charts");
  const colors = new Map();
  const draws = [];
  for (const [name, list] of groups) {
    let el = container.querySelector(`.chart-box[data-name="${CSS.escape(name)}"] .chart`);
    if (!el) el = Charts.box(container, name, name);
    const traces = tracesFor(list, colors);
    draws.push(Charts.draw(el, traces, { xAxis: state.xAxis, log: state.log, showlegend: traces.length <= 24 }));
  }
  await Promise.all(draws);
  const runs = Object.keys(state.data.runs).length;
  document.getElementById("count").textContent =
    `${state.data.series.length} series from ${runs} run${runs === 1 ? "" : "s"}`;
  const notice = document.getElementById("notice");
  notice.hidden = !state.data.truncated && state.data.series.length > 0;
  notice.textContent = state.data.truncated
    ? "Only the first series are shown; narrow the query to see the rest."
    : "No metrics match.";
}

function bindControls() {
  const on = (id, event, fn) => document.getElementById(id).addEventListener(event, fn);
  on("search", "submit", (event) => {
    event.preventDefault();
    state.q = document.getElementById("q").value.trim();
    history.replaceState(null, "", state.q ? `?q=${encodeURIComponent(state.q)}` : location.pathname);
    search();
  });
  on("color-by", "change", (e) => { state.colorBy = e.target.value; render(); });
  on("x-axis", "change", (e) => { state.xAxis = e.target.value; render(); });
  on("log", "change", (e) => { state.log = e.target.checked; render(); });
  on("smooth", "input", (e) => {
    state.smooth = Number(e.target.value);
    document.getElementById("smooth-value").textContent = e.target.value;
    render();
  });
}

async function main() {
  document.getElementById("q").value = state.q;
  document.getElementById("x-axis").value = state.xAxis;
  bindControls();
  await Promise.all([Dash.header(), search()]);
  Dash.ready();
}

main();
