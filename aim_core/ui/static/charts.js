// Charts with plotly.js: colours, line styles, smoothing, outlier-free ranges, synced zoom.
// Every text handed to plotly (names, titles, hover labels) goes through Dash.esc: plotly
// reads a few HTML tags in them.
"use strict";

// plotly.js (4.6 MB) loads while the page fetches its data; drawing waits for it.
const plotlyLoaded = new Promise((resolve, reject) => {
  const script = document.createElement("script");
  script.src = "/vendor/plotly.min.js";
  script.onload = resolve;
  script.onerror = () => reject(new Error("plotly.js could not be loaded"));
  document.head.appendChild(script);
});

const Charts = {
  palette: [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31",
    "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363",
  ],
  dashes: ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"],
  dashArrays: { solid: "", dash: "6,4", dot: "2,3", dashdot: "6,3,2,3", longdash: "11,4", longdashdot: "11,3,2,3" },
  axisTitles: { step: "step", epoch: "epoch", time: "relative time (s)", wall: "wall time" },

  // Exponential moving average; `weight` 0 keeps the raw values, nulls stay gaps.
  ema(values, weight) {
    if (!weight) return values;
    let last = null;
    return values.map((v) => {
      if (v === null) return null;
      last = last === null ? v : last * weight + (1 - weight) * v;
      return last;
    });
  },

  rgba(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
  },

  // A y-range leaving out outliers: the 2nd to 98th percentile of the drawn values, plus
  // a margin of a tenth of that span (never beyond the data).
  robustRange(values, log) {
    let ys = values.filter((v) => v !== null && Number.isFinite(v) && (!log || v > 0));
    if (log) ys = ys.map(Math.log10);
    if (ys.length < 10) return null;
    ys.sort((a, b) => a - b);
    const q = (p) => ys[Math.round(p * (ys.length - 1))];
    const lo = q(0.02), hi = q(0.98);
    const pad = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 1;
    return [Math.max(ys[0], lo - pad), Math.min(ys[ys.length - 1], hi + pad)];
  },

  layout(opts) {
    const xaxis = { title: { text: Dash.esc(opts.xTitle || "") }, zeroline: false };
    if (opts.xType) xaxis.type = opts.xType;
    if (opts.xRange) xaxis.range = opts.xRange; else xaxis.autorange = true;
    const yaxis = { type: opts.log ? "log" : "linear", zeroline: false, exponentformat: "e" };
    if (opts.yRange) yaxis.range = opts.yRange; else yaxis.autorange = true;
    return {
      margin: { l: 56, r: 12, t: 8, b: 40 },
      xaxis, yaxis,
      hovermode: "closest",
      showlegend: !!opts.showlegend,
      legend: { orientation: "h", y: -0.22, font: { size: 11 } },
      font: { family: "system-ui, sans-serif", size: 11 },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      uirevision: opts.uirevision || "keep",
    };
  },

  async draw(el, traces, layout) {
    await plotlyLoaded;
    return Plotly.react(el, traces, layout, { displaylogo: false, responsive: true });
  },

  // A chart box (title, a CSV button, plot div) appended to `parent`; returns the plot div.
  box(parent, title, key, onCsv) {
    const plot = Dash.el("div", { class: "chart" });
    const head = Dash.el("div", { class: "chart-head" }, Dash.el("h3", {}, title),
      onCsv ? Dash.el("button", { type: "button", class: "small csv", onclick: onCsv }, "CSV") : null);
    parent.append(Dash.el("div", { class: "chart-box", dataset: { name: key } }, head, plot));
    return plot;
  },

  // Zooming the x-axis of one chart zooms every chart of `group()`; `onChange(range|null)`.
  syncZoom(el, group, onChange) {
    if (el.dataset.synced) return;
    el.dataset.synced = "1";
    el.on("plotly_relayout", (event) => {
      if (Charts.syncing) return;
      let range;
      if (event["xaxis.autorange"]) range = null;
      else if ("xaxis.range[0]" in event) range = [event["xaxis.range[0]"], event["xaxis.range[1]"]];
      else if (event["xaxis.range"]) range = event["xaxis.range"].slice();
      else return;
      Charts.syncing = true;
      const update = range ? { "xaxis.range": range } : { "xaxis.autorange": true };
      Promise.all(group().filter((other) => other !== el && other.data)
        .map((other) => Plotly.relayout(other, update)))
        .finally(() => { Charts.syncing = false; });
      onChange(range);
    });
  },
};
