// Run page: properties, params tree, sequence summaries, charts grouped by context.
"use strict";

const runHash = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const state = { series: [], xAxis: "step" };

function renderProps(run) {
  document.title = `${Dash.runLabel(run)} · aim-core`;
  document.getElementById("title").textContent = Dash.runLabel(run);
  const tags = run.tags.map((t) => `<span class="tag">${Dash.esc(t)}</span>`).join("");
  const rows = [
    ["hash", `<span class="mono">${Dash.esc(run.hash)}</span>`],
    ["experiment", Dash.esc(run.experiment)],
    ["status", Dash.status(run.status) + (run.archived ? ' <span class="tag">archived</span>' : "")],
    ["created", Dash.time(run.creation_time)],
    ["ended", Dash.time(run.end_time)],
    ["duration", Dash.duration(run.duration)],
    ["tags", tags],
    ["description", Dash.esc(run.description)],
  ];
  document.getElementById("props").innerHTML =
    rows.map(([k, v]) => `<dt>${k}</dt><dd>${v || '<span class="muted">-</span>'}</dd>`).join("");
}

function tree(value) {
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const items = entries.map(([k, v]) => {
    if (v !== null && typeof v === "object" && Object.keys(v).length) {
      return `<li><details open><summary><span class="k">${Dash.esc(k)}</span></summary>${tree(v)}</details></li>`;
    }
    return `<li><span class="k">${Dash.esc(k)}</span>: <span class="v">${Dash.esc(JSON.stringify(v))}</span></li>`;
  });
  return `<ul class="tree">${items.join("")}</ul>`;
}

function renderParams(params) {
  const el = document.getElementById("params");
  el.innerHTML = Object.keys(params).length ? tree(params) : '<span class="muted">no params</span>';
  el.firstElementChild.classList.add("root");
}

function renderSequences(sequences) {
  document.querySelector("#sequences tbody").innerHTML = sequences.map((s) => `<tr>
    <td>${Dash.esc(s.name)}</td><td>${Dash.esc(Dash.context(s.context))}</td>
    <td class="num">${s.count ?? ""}</td><td class="num">${s.last_step ?? ""}</td>
    <td class="num">${Dash.num(s.last)}</td><td class="num">${Dash.num(s.min)}</td>
    <td class="num">${Dash.num(s.max)}</td></tr>`).join("");
}

// One section per context, one chart per metric name inside it.
async function renderCharts() {
  const container = document.getElementById("charts");
  container.innerHTML = "";
  const groups = new Map();
  for (const s of state.series) {
    const label = Dash.context(s.context);
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(s);
  }
  const draws = [];
  for (const label of [...groups.keys()].sort()) {
    const section = document.createElement("section");
    section.innerHTML = `<h2>${Dash.esc(label)}</h2><div class="charts"></div>`;
    container.appendChild(section);
    const grid = section.querySelector(".charts");
    const list = groups.get(label).sort((a, b) => a.name.localeCompare(b.name));
    list.forEach((s, i) => {
      const el = Charts.box(grid, s.name, `${s.name} ${label}`);
      const color = Charts.palette[i % Charts.palette.length];
      const trace = Charts.trace(s, { xAxis: state.xAxis, smooth: 0, color, name: s.name, hover: s.name });
      draws.push(Charts.draw(el, [trace], { xAxis: state.xAxis, log: false, showlegend: false }));
    });
  }
  await Promise.all(draws);
}

async function main() {
  Dash.header();
  document.getElementById("x-axis").addEventListener("change", (e) => {
    state.xAxis = e.target.value;
    renderCharts();
  });
  try {
    const [detail, series] = await Promise.all([
      Dash.api(`/api/runs/${encodeURIComponent(runHash)}`),
      Dash.api("/api/series", { run: runHash }),
    ]);
    renderProps(detail.run);
    renderParams(detail.params);
    renderSequences(detail.sequences);
    state.series = series.series;
    await renderCharts();
  } catch (err) {
    const error = document.getElementById("error");
    error.textContent = err.message;
    error.hidden = false;
  }
  Dash.ready();
}

main();
