// Line charts with plotly.js: x-axis choice, EMA smoothing, log scale, consistent colours.
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
  axisTitles: { step: "step", epoch: "epoch", time: "relative time (s)" },

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

  x(series, axis) {
    if (axis === "epoch") return series.epochs || series.steps.map(() => null);
    if (axis === "time") return series.times;
    return series.steps;
  },

  trace(series, opts) {
    return {
      type: "scatter",
      mode: series.steps.length === 1 ? "markers" : "lines",
      x: Charts.x(series, opts.xAxis),
      y: Charts.ema(series.values, opts.smooth),
      name: opts.name,
      legendgroup: opts.group,
      showlegend: opts.showlegend !== false,
      line: { color: opts.color, width: 1.6, dash: opts.dash || "solid" },
      marker: { color: opts.color, size: 5 },
      hovertemplate: `<b>${Dash.esc(opts.hover)}</b><br>${opts.xAxis}=%{x}<br>value=%{y:.6g}<extra></extra>`,
    };
  },

  layout(opts) {
    return {
      margin: { l: 56, r: 12, t: 8, b: 40 },
      xaxis: { title: { text: Charts.axisTitles[opts.xAxis] }, zeroline: false },
      yaxis: { type: opts.log ? "log" : "linear", zeroline: false, exponentformat: "e" },
      hovermode: "closest",
      showlegend: opts.showlegend,
      legend: { orientation: "h", y: -0.22, font: { size: 11 } },
      font: { family: "system-ui, sans-serif", size: 11 },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
    };
  },

  async draw(el, traces, opts) {
    await plotlyLoaded;
    const config = { displaylogo: false, responsive: true };
    return Plotly.react(el, traces, Charts.layout(opts), config);
  },

  // A chart box (title + plot div) appended to `parent`; returns the plot div.
  box(parent, title, key) {
    const box = document.createElement("div");
    box.className = "chart-box";
    box.dataset.name = key;
    box.innerHTML = `<h3>${Dash.esc(title)}</h3><div class="chart"></div>`;
    parent.appendChild(box);
    return box.querySelector(".chart");
  },
};
