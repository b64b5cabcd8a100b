// Object sequences on the pages: thumbnails with a full-size viewer, step sliders, texts,
// distributions as heatmaps, plotly figures, audio players, log records. Captions, texts and
// names always go in as text (Dash.el), never as markup; plotly gets them through Dash.esc.
"use strict";

const Objects = {
  // A grid of thumbnails; the bytes load lazily, when scrolled into view.
  thumbs(items) {
    return Dash.el("div", { class: "thumbs" }, items.map((item) => Dash.el("figure", { class: "thumb" },
      item.src
        ? Dash.el("img", { src: item.src, loading: "lazy", alt: item.caption || "", title: item.caption || "",
          width: item.width || null, height: item.height || null,
          onclick: () => Objects.view(item) })
        : Dash.el("span", { class: "muted" }, "(empty)"),
      item.caption ? Dash.el("figcaption", {}, item.caption) : null)));
  },

  // The full-size viewer: one overlay, closed by a click or Escape.
  view(item) {
    let box = document.getElementById("viewer");
    if (!box) {
      box = Dash.el("div", { id: "viewer", class: "viewer", onclick: () => { box.hidden = true; } },
        Dash.el("figure", {}, Dash.el("img", { id: "viewer-img", alt: "" }), Dash.el("figcaption", { id: "viewer-caption" })));
      document.body.append(box);
      document.addEventListener("keydown", (e) => { if (e.key === "Escape") box.hidden = true; });
    }
    const img = document.getElementById("viewer-img");
    img.src = item.src;
    img.alt = item.caption || "";
    document.getElementById("viewer-caption").textContent = item.caption || "";
    box.hidden = false;
  },

  // A slider over `steps` (sorted numbers); `onPick(step)` after the user lets go.
  slider(steps, current, onPick) {
    const label = Dash.el("span", { class: "step-value" }, current === null ? "" : String(current));
    const input = Dash.el("input", { type: "range", class: "step", min: 0, max: Math.max(steps.length - 1, 0), step: 1,
      value: Math.max(steps.indexOf(current), 0), disabled: steps.length < 2 });
    input.addEventListener("input", () => { label.textContent = String(steps[Number(input.value)]); });
    input.addEventListener("change", () => onPick(steps[Number(input.value)]));
    return Dash.el("label", { class: "stepper" }, "step ", input, " ", label);
  },

  // Title of a sequence: "name (context)", plus the run when `run` is given.
  title(seq, run) {
    const ctx = Object.keys(seq.context || {}).length ? ` (${Dash.context(seq.context)})` : "";
    return [run ? [Dash.runLink(seq.run, run), " · "] : null, Dash.el("b", {}, seq.name), ctx];
  },

  textTable(rows) {
    return Dash.el("table", { class: "grid compact texts" },
      Dash.el("thead", {}, Dash.el("tr", {}, Dash.el("th", {}, "step"), Dash.el("th", {}, "text"))),
      Dash.el("tbody", {}, rows.map((r) => Dash.el("tr", {},
        Dash.el("td", { class: "num" }, String(r.step)),
        Dash.el("td", {}, r.texts.map((t) => Dash.el("pre", { class: "text" }, t)))))));
  },

  // ---- the run page: one tab per object type ------------------------------------------
  // As in Aim: "Logs" is the captured terminal output, "Messages" the log records.
  TABS: [["image", "Images"], ["text", "Texts"], ["distribution", "Distributions"],
    ["audio", "Audio"], ["figure", "Figures"], ["terminal", "Logs"], ["log_record", "Messages"]],

  // The terminal output (text sequence `logs`, no context) has its own tab, drawn by run.js.
  isTerminal(seq) {
    return seq.kind === "text" && seq.name === "logs" && !Object.keys(seq.context || {}).length;
  },

  setupTabs(runHash, sequences, initial, onShow) {
    const bar = document.getElementById("tabs");
    const terminal = sequences.some(Objects.isTerminal);
    sequences = sequences.filter((s) => !Objects.isTerminal(s));
    const kinds = new Set(sequences.map((s) => s.kind));
    if (terminal) kinds.add("terminal");
    const tabs = [["metric", "Metrics"], ...Objects.TABS.filter(([kind]) => kinds.has(kind))];
    if (tabs.length === 1) { bar.hidden = true; return; }
    const show = (kind) => {
      for (const button of bar.querySelectorAll("button")) button.classList.toggle("active", button.dataset.kind === kind);
      for (const panel of document.querySelectorAll(".tab-panel")) panel.hidden = panel.dataset.kind !== kind;
      if (kind !== "metric" && kind !== "terminal") Objects.fillPanel(runHash, kind, sequences.filter((s) => s.kind === kind));
      if (onShow) onShow(kind);
      const url = new URL(location.href);
      if (kind === "metric") url.searchParams.delete("tab"); else url.searchParams.set("tab", kind);
      history.replaceState(null, "", url);
    };
    Dash.fill(bar, tabs.map(([kind, label]) => Dash.el("button", { type: "button", dataset: { kind },
      onclick: () => show(kind) }, label)));
    show(tabs.some(([kind]) => kind === initial) ? initial : "metric");
  },

  async fillPanel(runHash, kind, sequences) {
    let panel = document.querySelector(`.tab-panel[data-kind="${kind}"]`);
    if (panel) return;
    panel = Dash.el("section", { class: "tab-panel", dataset: { kind } });
    document.getElementById("tab-panels").append(panel);
    await Promise.all(sequences.map((seq) => {
      const box = Dash.el("div", { class: "object-seq" }, Dash.el("h3", {}, Objects.title(seq)), Dash.el("div", { class: "body" }));
      panel.append(box);
      return Objects.drawSequence(runHash, kind, seq, box.querySelector(".body"), null);
    }));
    panel.dataset.drawn = "1";
    Dash.rendered();
  },

  async drawSequence(runHash, kind, seq, body, step) {
    const params = { kind, name: seq.name, context: JSON.stringify(seq.context) };
    if (step !== null) params.step = step;
    let data;
    try {
      data = await Dash.api(`/api/runs/${encodeURIComponent(runHash)}/objects`, params);
    } catch (err) {
      Dash.fill(body, Dash.el("div", { class: "error" }, err.message));
      return;
    }
    const redraw = (picked) => Objects.drawSequence(runHash, kind, seq, body, picked).then(() => Dash.rendered());
    const slider = data.steps && data.steps.length > 1 ? Objects.slider(data.steps, data.step, redraw) : null;
    if (kind === "image") Dash.fill(body, slider, Objects.thumbs(data.items));
    else if (kind === "audio") Dash.fill(body, slider, Objects.players(data.items));
    else if (kind === "text") Dash.fill(body, Objects.textTable(data.rows));
    else if (kind === "log_record") Dash.fill(body, Objects.logTable(data.records));
    else if (kind === "distribution") await Objects.heatmap(body, data);
    else if (kind === "figure") await Objects.figures(body, slider, data);
  },

  players(items) {
    return Dash.el("div", { class: "players" }, items.map((item) => Dash.el("figure", { class: "player" },
      Dash.el("audio", { controls: true, preload: "none", src: item.src }),
      item.caption ? Dash.el("figcaption", {}, item.caption) : null)));
  },

  logTable(records) {
    return Dash.el("table", { class: "grid compact logs" },
      Dash.el("thead", {}, Dash.el("tr", {}, ["time", "level", "message", "extra"].map((h) => Dash.el("th", {}, h)))),
      Dash.el("tbody", {}, records.map((r) => Dash.el("tr", { class: `level-${String(r.level).toLowerCase()}` },
        Dash.el("td", {}, Dash.time(r.time)), Dash.el("td", {}, r.level),
        Dash.el("td", {}, r.message), Dash.el("td", { class: "mono" }, r.extra && Object.keys(r.extra).length ? JSON.stringify(r.extra) : "")))));
  },

  async heatmap(body, data) {
    const plot = Dash.el("div", { class: "chart heatmap" });
    Dash.fill(body, plot);
    const trace = { type: "heatmap", x: data.steps, y: data.y, z: data.z, colorscale: "Viridis",
      hovertemplate: "step=%{x}<br>value=%{y:.4g}<br>count=%{z:.3g}<extra></extra>" };
    const layout = Charts.layout({ xTitle: "step" });
    layout.yaxis.title = { text: "value" };
    await Charts.draw(plot, [trace], layout);
  },

  async figures(body, slider, data) {
    const plots = data.figures.map(() => Dash.el("div", { class: "chart figure" }));
    Dash.fill(body, slider, plots);
    await plotlyLoaded;
    await Promise.all(data.figures.map((figure, i) => Plotly.react(plots[i], figure.data || [],
      { ...(figure.layout || {}), autosize: true }, { displaylogo: false, responsive: true })));
  },
};
