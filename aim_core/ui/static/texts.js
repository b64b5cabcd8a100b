// Texts page: an AimQL text search shown as steps x texts per sequence, filtered by a word.
"use strict";

const DEFAULTS = { q: "", contains: "" };
const state = { ...Dash.readState(DEFAULTS), data: null };
let timer = null;

function render() {
  const data = state.data;
  const rows = data.sequences.reduce((n, s) => n + s.rows.length, 0);
  document.getElementById("count").textContent = `${data.sequences.length} sequence(s), ${rows} step(s)`;
  const notice = document.getElementById("notice");
  const older = data.sequences.some((s) => s.more);
  notice.hidden = !(data.truncated || older);
  notice.textContent = data.truncated ? "More sequences matched than are shown: narrow the query."
    : older ? "Only the latest steps of each sequence are shown." : "";
  Dash.fill(document.getElementById("groups"), data.sequences.map((seq) => Dash.el("section",
    { class: "object-seq", dataset: { run: seq.run, name: seq.name } },
    Dash.el("h3", {}, Objects.title(seq, data.runs[seq.run] ? Dash.runLabel({ hash: seq.run, ...data.runs[seq.run] }) : null)),
    Objects.textTable(seq.rows))));
  Dash.rendered();
}

async function load() {
  const input = document.getElementById("q");
  Dash.writeState(state, DEFAULTS);
  try {
    state.data = await Dash.api("/api/texts", { q: state.q, contains: state.contains });
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
  const contains = document.getElementById("contains");
  input.value = state.q;
  contains.value = state.contains;
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    state.q = input.value.trim();
    load();
  });
  contains.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { state.contains = contains.value; load(); }, 250);
  });
  await load();
  Dash.ready();
}

main();
