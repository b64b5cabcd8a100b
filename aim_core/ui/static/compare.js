// Compare page: the selected runs' params side by side (differences highlighted) and the
// metrics they all have, overlaid one chart per metric.
"use strict";

const DEFAULTS = { run: [], diff: false };
const state = { ...Dash.readState(DEFAULTS), data: null };

function renderParams() {
  const { runs, params } = state.data;
  Dash.fill(document.querySelector("#params thead"), Dash.el("tr", {}, Dash.el("th", {}, "param"),
    runs.map((r, i) => Dash.el("th", {}, Dash.el("span", { class: "swatch", style: `background:${Charts.palette[i % Charts.palette.length]}` }),
      " ", Dash.runLink(r.hash, Dash.runLabel(r))))));
  const rows = params.filter((p) => !state.diff || p.differs);
  Dash.fill(document.querySelector("#params tbody"), rows.map((p) => Dash.el("tr", { class: p.differs ? "diff" : null, dataset: { key: p.key } },
    Dash.el("td", { class: "mono" }, p.key),
    p.values.map((v) => Dash.el("td", { class: typeof v === "number" ? "num" : null }, v === null || v === undefined ? "—" : Dash.value(v))))));
  const differing = params.filter((p) => p.differs).length;
  document.getElementById("count").textContent = `${runs.length} runs, ${differing} of ${params.length} params differ`;
  Dash.rendered();
}

async function renderCharts() {
  const { runs, metrics } = state.data;
  const series = await Promise.all(runs.map((r) => Dash.api("/api/series", { run: r.hash })));
  const container = document.getElementById("charts");
  container.replaceChildren();
  const notice = document.getElementById("notice");
  notice.hidden = metrics.length > 0;
  notice.textContent = "These runs share no metric.";
  const draws = metrics.map((m) => {
    const title = Object.keys(m.context).length ? `${m.name} (${Dash.context(m.context)})` : m.name;
    const el = Charts.box(container, title, m.key);
    const traces = runs.map((r, i) => {
      const s = series[i].series.find((x) => x.name === m.name && JSON.stringify(sorted(x.context)) === JSON.stringify(sorted(m.context)));
      const color = Charts.palette[i % Charts.palette.length];
      return s && {
        type: "scatter", mode: s.steps.length === 1 ? "markers" : "lines", x: s.steps, y: s.values,
        name: Dash.esc(Dash.runLabel(r)), line: { color, width: 1.6 }, marker: { color, size: 5 }, meta: { run: r.hash },
        hovertemplate: `<b>${Dash.esc(Dash.runLabel(r))}</b><br>step=%{x}<br>value=%{y:.6g}<extra></extra>`,
      };
    }).filter(Boolean);
    return Charts.draw(el, traces, Charts.layout({ xTitle: "step", showlegend: traces.length <= 12 }));
  });
  await Promise.all(draws);
}

function sorted(obj) {
  return Object.fromEntries(Object.keys(obj).sort().map((k) => [k, obj[k]]));
}

function downloadCsv() {
  const { runs, params } = state.data;
  const rows = params.filter((p) => !state.diff || p.differs).map((p) => [p.key, ...p.values]);
  Dash.download("compare.csv", Dash.csv(["param", ...runs.map((r) => r.hash)], rows));
}

async function main() {
  Dash.header();
  const diff = document.getElementById("diff");
  diff.checked = state.diff;
  diff.addEventListener("change", () => { state.diff = diff.checked; Dash.writeState(state, DEFAULTS); renderParams(); });
  document.getElementById("csv").addEventListener("click", downloadCsv);
  try {
    if (!state.run.length) throw new Error("Select runs on the Runs page, then press Compare.");
    state.data = await Dash.api("/api/compare", { run: state.run });
    renderParams();
    await renderCharts();
  } catch (err) {
    Dash.showError(err);
  }
  Dash.ready();
}

main();
