// Shared helpers for the dashboard pages: fetching the API, escaping, formatting.
"use strict";

const Dash = {
  async api(path, params) {
    const url = new URL(path, location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      for (const v of [].concat(value)) {
        if (v !== undefined && v !== null) url.searchParams.append(key, v);
      }
    }
    const resp = await fetch(url);
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

  esc(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    })[c]);
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
    if (!seconds) return "";
    const d = new Date(seconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  },

  duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.round(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? `${h}h ${m}m ${r}s` : m ? `${m}m ${r}s` : `${r}s`;
  },

  context(ctx) {
    const keys = Object.keys(ctx || {}).sort();
    return keys.length ? keys.map((k) => `${k}=${Dash.value(ctx[k])}`).join(", ") : "(no context)";
  },

  status(status) {
    return `<span class="status status-${Dash.esc(status)}">${Dash.esc(status)}</span>`;
  },

  runLabel(run) {
    return run.name || String(run.hash).slice(0, 8);
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
};
