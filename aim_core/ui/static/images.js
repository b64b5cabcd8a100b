// Images page: an AimQL image search, one group per run and context, a step slider over
// every step found; thumbnails load lazily from /api/blob and open full size on a click.
"use strict";

const DEFAULTS = { q: "", step: "" };
const state = { ...Dash.readState(DEFAULTS), data: null };
state.step = state.step === "" ? null : Number(state.step);

function render() {
  const data = state.data;
  const shown = data.sequences.reduce((n, s) => n + s.items.length, 0);
  document.getElementById("count").textContent =
    `${data.sequences.length} sequence${data.sequences.length === 1 ? "" : "s"}, ${shown} image${shown === 1 ? "" : "s"}`;
  const notice = document.getElementById("notice");
  notice.hidden = !data.truncated;
  notice.textContent = data.truncated ? "More sequences matched than are shown: narrow the query." : "";
  const current = state.step === null ? data.steps[data.steps.length - 1] ?? null : state.step;
  Dash.fill(document.getElementById("stepper"),
    data.steps.length > 1 ? Objects.slider(data.steps, nearest(data.steps, current), (step) => {
      state.step = step;
      load();
    }) : null);
  Dash.fill(document.getElementById("groups"), data.sequences.map((seq) => Dash.el("section",
    { class: "object-seq", dataset: { run: seq.run, name: seq.name } },
    Dash.el("h3", {}, Objects.title(seq, data.runs[seq.run] ? Dash.runLabel({ hash: seq.run, ...data.runs[seq.run] }) : null),
      Dash.el("span", { class: "muted" }, seq.step === null ? "" : `  step ${seq.step}`)),
    Objects.thumbs(seq.items))));
  Dash.rendered();
}

function nearest(steps, step) {
  let best = steps[0];
  for (const s of steps) if (s <= step) best = s;
  return best;
}

async function load() {
  const input = document.getElementById("q");
  Dash.writeState({ q: state.q, step: state.step === null ? "" : String(state.step) }, DEFAULTS);
  try {
    const params = { kind: "image", q: state.q };
    if (state.step !== null) params.step = state.step;
    state.data = await Dash.api("/api/objects", params);
    Dash.showError(null, input);
    render();
  } catch (err) {
    Dash.showError(err, input);
    Dash.rendered();
  }
}

async function main() {
  Dash.header();
  const input = document.getElementById("q");
  input.value = state.q;
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    state.q = input.value.trim();
    state.step = null;
    load();
  });
  await load();
  Dash.ready();
}

main();
