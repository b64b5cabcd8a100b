// Shared by every page: the API, DOM building (values always as text), formatting,
// page state in the URL, CSV downloads.
"use strict";

const Dash = {
  url(path, params) {
    const url = new URL(path, location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      for (const v of [].concat(value)) {
        if (v !== undefined && v !== null) url.searchParams.append(key, v);
      }
    }
    return url;
  },

  async api(path, params) {
    const resp = await fetch(Dash.url(path, params));
    const body = await resp.json().catch(() => ({ error: resp.statusText }));
    if (!resp.ok) {
      const err = new Error(body.error || resp.statusText);
      err.status = resp.status;
      throw err;
    }
    return body;
  },

  async write(method, path) {
    const resp = await fetch(path, { method, headers: { "X-Aim-Core-Write": "1" } });
    const body = await resp.json().catch(() => ({ error: resp.statusText }));
    if (!resp.ok) throw new Error(body.error || resp.statusText);
    return body;
  },

  // Escape text for the places that read markup: plotly's names, titles, labels and hovers.
  // Quotes become numeric entities, the only kind plotly decodes besides &lt; &gt; &amp;.
  esc(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;",
    })[c]);
  },

  // Build an element: el("td", {class: "num", dataset: {hash}}, "text", child, [more]).
  // Strings and numbers become text nodes, never markup.
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, value);
    }
    Dash.append(node, children);
    return node;
  },

  append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  },

  fill(node, ...children) {
    node.replaceChildren();
    return Dash.append(node, children);
  },

  num(value) {
    if (value === null || value === undefined) return "";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
    return value.toPrecision(5).replace(/\.?0+$/, "");
  },

  value(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") return Dash.num(value);
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  },

  time(seconds) {
    if (typeof seconds !== "number" || !seconds) return seconds ? String(seconds) : "";
    const d = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  },

  duration(seconds) {
    if (typeof seconds !== "number") return seconds === null || seconds === undefined ? "" : String(seconds);
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? `${h}h ${m}m ${r}s` : m ? `${m}m ${r}s` : `${r}s`;
  },

  context(ctx) {
    const keys = Object.keys(ctx || {}).sort();
    return keys.length ? keys.map((k) => `${k}=${Dash.value(ctx[k])}`).join(", ") : "(no context)";
  },

  status(status, archived) {
    return [
      Dash.el("span", { class: `status status-${String(status).replace(/[^a-z]/g, "")}` }, status),
      archived ? [" ", Dash.el("span", { class: "tag" }, "archived")] : null,
    ];
  },

  runLabel(run) {
    if (!run) return "";
    return run.name ? String(run.name) : String(run.hash).slice(0, 8);
  },

  runLink(hash, text) {
    return Dash.el("a", { href: `/runs/${encodeURIComponent(hash)}`, class: "mono" }, text ?? String(hash).slice(0, 8));
  },

  // A table column's title: params by key, metrics as "name (ctx)".
  columnTitle(id, metricColumns) {
    if (id.startsWith("p:")) return id.slice(2);
    const key = id.slice(2);
    const col = (metricColumns || []).find((c) => c.key === key);
    if (!col) return key;
    const ctx = Object.keys(col.context).length ? ` (${Dash.context(col.context)})` : "";
    return col.name + ctx;
  },

  rowValue(row, id) {
    return id.startsWith("p:") ? row.params[id.slice(2)] : row.metrics[id.slice(2)];
  },

  // Column pickers: checkboxes for params and metrics in a <details> panel.
  pickers(panel, columns, picked, onChange) {
    const box = (kind, key, title) => Dash.el("label", {},
      Dash.el("input", { type: "checkbox", value: key, checked: picked[kind].includes(key),
        onchange: (e) => onChange(kind, key, e.target.checked) }), " ", title);
    const params = columns.params.map((c) => box("params", c.key, c.key));
    const metrics = columns.metrics.map((c) => box("metrics", c.key, Dash.columnTitle("m:" + c.key, columns.metrics)));
    const none = () => Dash.el("span", { class: "muted" }, "none");
    Dash.fill(panel,
      Dash.el("fieldset", {}, Dash.el("legend", {}, "Params"), params.length ? params : none()),
      Dash.el("fieldset", {}, Dash.el("legend", {}, "Metrics (last value)"), metrics.length ? metrics : none()));
  },

  // Page state in the URL: `defaults` gives each key's type; only changed values are written.
  readState(defaults) {
    const params = new URLSearchParams(location.search);
    const out = {};
    for (const [key, def] of Object.entries(defaults)) {
      if (Array.isArray(def) || def === null) {
        out[key] = params.has(key) ? params.getAll(key).filter((v) => v !== "") : def && def.slice();
      } else if (!params.has(key)) {
        out[key] = def;
      } else if (typeof def === "number") {
        const n = Number(params.get(key));
        out[key] = Number.isFinite(n) ? n : def;
      } else if (typeof def === "boolean") {
        out[key] = params.get(key) === "1";
      } else {
        out[key] = params.get(key);
      }
    }
    return out;
  },

  writeState(state, defaults) {
    const params = new URLSearchParams();
    for (const [key, def] of Object.entries(defaults)) {
      const value = state[key];
      if (Array.isArray(def) || def === null) {
        if (value === null || value === undefined) continue;
        if (def && value.length === def.length && value.every((v, i) => v === def[i])) continue;
        if (!value.length) params.append(key, "");
        value.forEach((v) => params.append(key, v));
      } else if (value !== def) {
        params.set(key, typeof def === "boolean" ? (value ? "1" : "0") : String(value));
      }
    }
    const query = params.toString();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
  },

  csvCell(value) {
    if (value === null || value === undefined) return "";
    let text = typeof value === "object" ? JSON.stringify(value) : String(value);
    // text a spreadsheet would run as a formula is shown as text (numbers stay numbers)
    if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  },

  csv(header, rows) {
    return [header, ...rows].map((r) => r.map(Dash.csvCell).join(",")).join("\n") + "\n";
  },

  download(filename, text) {
    const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    const a = Dash.el("a", { href: url, download: filename });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  },

  showError(err, input) {
    const box = document.getElementById("error");
    if (!err) {
      box.hidden = true;
      if (input) input.classList.remove("invalid");
      return;
    }
    box.textContent = err.message;
    box.hidden = false;
    if (input) input.classList.toggle("invalid", err.status === 400);
  },

  async header() {
    try {
      const info = await Dash.api("/api/info");
      document.getElementById("repo").textContent = info.repo;
      return info;
    } catch (err) {
      return { allow_writes: false };
    }
  },

  ready() {
    document.body.dataset.ready = "1";
  },

  // Counts finished redraws (tests wait for the count to grow after changing a control).
  rendered() {
    document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  },
};
