// The Portunus dashboard: four views over the admin REST API, refreshed
// by polling every 2 seconds while the tab is visible.

import { api, AuthError, session, setToken, token } from "./api.js";
import { LineChart, sparkline } from "./chart.js";

const POLL_MS = 2000;
// Charts cover 5 minutes in 5-second steps; the newest step is still
// filling, so it is left out of charts and figures.
const STATS_QUERY = "stats?window=5m&step=5s";
const STEP_S = 5;
const VIEWS = ["overview", "routes", "upstreams", "consumers"];

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat(Infinity)) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}

// ---- formatting ----
const fmtRPS = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const fmtPct = (v) => `${(v * 100).toFixed(v > 0 && v < 0.001 ? 2 : 1)}%`;
function fmtMS(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(2)} s`;
  if (v >= 10) return `${v.toFixed(0)} ms`;
  return `${v.toFixed(2)} ms`;
}
function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return "–";
  return `${d.toLocaleString()} (${ago(d)})`;
}
// ago: "12 s ago", or "in 3 h" for a time still to come (a quota's reset).
function ago(d) {
  const diff = Math.round((Date.now() - d.getTime()) / 1000);
  const s = Math.abs(diff);
  let span;
  if (s < 60) span = `${s} s`;
  else if (s < 3600) span = `${Math.round(s / 60)} min`;
  else if (s < 86400) span = `${Math.round(s / 3600)} h`;
  else span = `${Math.round(s / 86400)} d`;
  if (diff < -1) return `in ${span}`;
  return diff < 0 ? "0 s ago" : `${span} ago`;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// fmtWindow turns Go's "5m0s" into "5 min".
function fmtWindow(w = "5m0s") {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(w);
  if (!m) return w;
  const secs = (Number(m[1] || 0) * 3600) + (Number(m[2] || 0) * 60) + Number(m[3] || 0);
  return secs % 60 === 0 ? `${secs / 60} min` : `${secs} s`;
}

// ---- state ----
const state = {
  view: "overview",
  routes: [],
  reloadKey: "",
  stats: null,
  health: new Map(), // target URL -> last health, to announce changes
  started: false,
};

// ---- theme ----
const THEME_KEY = "portunus-theme";
const darkQuery = matchMedia("(prefers-color-scheme: dark)");
function isDark() {
  const t = document.documentElement.dataset.theme;
  return t ? t === "dark" : darkQuery.matches;
}
function applyTheme(t) {
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  $("theme").setAttribute("aria-pressed", String(isDark()));
}
function initTheme() {
  let saved = null;
  try { saved = localStorage.getItem(THEME_KEY); } catch { /* storage off: follow the system */ }
  applyTheme(saved === "dark" || saved === "light" ? saved : null);
  darkQuery.addEventListener("change", () => applyTheme(document.documentElement.dataset.theme || null));
  $("theme").addEventListener("click", () => {
    const next = isDark() ? "light" : "dark";
    try { localStorage.setItem(THEME_KEY, next); } catch { /* not kept */ }
    applyTheme(next);
  });
}

// ---- navigation ----
function showView(name, focus) {
  if (!VIEWS.includes(name)) return;
  state.view = name;
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== name || !state.started;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${$(`${name}-h`).textContent} · Portunus`;
  if (focus && state.started) {
    const h1 = $(`${name}-h`);
    h1.tabIndex = -1;
    h1.focus();
  }
}
function onHash(focus) {
  const name = location.hash.slice(1);
  // Other fragments (the skip link's #main) leave the view as it is.
  if (VIEWS.includes(name)) showView(name, focus);
}

// ---- status line (announced: used only for problems and recovery) ----
let statusText = "";
function setStatus(text) {
  if (text === statusText) return;
  statusText = text;
  $("status").textContent = text;
}

// ---- overview ----
let charts = null;
function initCharts() {
  charts = {
    rps: new LineChart($("chart-rps"), { format: fmtRPS, label: "Requests per second" }),
    err: new LineChart($("chart-err"), { format: (v) => `${v.toFixed(1)}%`, label: "Error rate in percent" }),
    lat: new LineChart($("chart-lat"), { series: 2, format: fmtMS, label: "Latency p50 and p99" }),
  };
}

function complete(points) {
  return points.length > 1 ? points.slice(0, -1) : points;
}

function renderOverview(stats) {
  const pts = complete(stats.all?.points || []);
  const last = pts[pts.length - 1];
  $("kpi-rps").textContent = last ? fmtRPS(last.rps) : "–";
  $("kpi-err").textContent = last ? fmtPct(last.error_rate) : "–";
  $("kpi-p50").textContent = last && last.requests ? fmtMS(last.p50_ms) : "–";
  $("kpi-p99").textContent = last && last.requests ? fmtMS(last.p99_ms) : "–";
  $("kpi-hint").textContent = `Figures: the last complete ${STEP_S} seconds. Charts: the last ${fmtWindow(stats.window)}, all routes.`;
  const range = `last ${fmtWindow(stats.window)}`;
  charts.rps.update([pts.map((p) => p.rps)], range);
  charts.err.update([pts.map((p) => p.error_rate * 100)], range);
  charts.lat.update([pts.map((p) => p.p50_ms), pts.map((p) => p.p99_ms)], range);

  const routes = stats.routes || [];
  topList($("top-traffic"), routes.filter((s) => s.totals.requests > 0)
    .sort((a, b) => b.totals.requests - a.totals.requests),
  (s) => `${plural(s.totals.requests, "request")}, ${fmtRPS(s.totals.rps)}/s on average`, "No traffic in this window.");
  topList($("top-errors"), routes.filter((s) => s.totals.errors > 0)
    .sort((a, b) => b.totals.errors - a.totals.errors),
  (s) => `${plural(s.totals.errors, "error")}, ${fmtPct(s.totals.error_rate)}`, "No errors in this window.");
}

function topList(ol, series, describe, empty) {
  const items = series.slice(0, 5).map((s) =>
    h("li", {}, h("a", { href: "#routes", "data-route": s.name, text: s.name }), " ", h("span", { class: "n", text: describe(s) })));
  if (items.length === 0) items.push(h("li", { class: "hint", text: empty }));
  ol.replaceChildren(...items);
}

function renderConfig(cfg, reload) {
  $("cfg-hash").textContent = cfg?.hash || "–";
  $("cfg-loaded").textContent = fmtTime(cfg?.loaded);
  $("cfg-source").textContent = cfg?.source || "–";
  const r = reload || cfg?.last_reload;
  const dd = $("cfg-reload");
  if (!r) {
    dd.textContent = "none since start";
    return;
  }
  const badge = h("span", { class: `badge ${r.ok ? "ok" : "bad"}`, text: r.ok ? "succeeded" : "failed" });
  const parts = [badge, ` ${fmtTime(r.time)}`];
  if (r.source) parts.push(` via ${r.source}`);
  if (r.error) parts.push(h("pre", { class: "error", text: r.error }));
  dd.replaceChildren(...parts);
}

// ---- routes ----
function describeMatch(m = {}) {
  const parts = [];
  parts.push(m.methods?.length ? m.methods.join(", ") : "any method");
  if (m.hosts?.length) parts.push(`host ${m.hosts.join(" | ")}`);
  if (m.path) parts.push(`path ${m.path}`);
  if (m.path_prefix) parts.push(`prefix ${m.path_prefix}`);
  if (m.path_regex) parts.push(`regex ${m.path_regex}`);
  if (!m.path && !m.path_prefix && !m.path_regex) parts.push("any path");
  for (const [k, v] of Object.entries(m.headers || {})) parts.push(`${k}: ${v}`);
  return parts.join(" · ");
}

function describeAction(r) {
  return r.upstream ? `${r.action} → ${r.upstream}` : r.action || "–";
}

function routeText(r) {
  return [r.name, describeMatch(r.match), (r.policies || []).join(" "), (r.use || []).join(" "), describeAction(r)].join(" ").toLowerCase();
}

const sparkSlots = new Map(); // route name -> element holding its sparkline

function renderRoutes(routes) {
  sparkSlots.clear();
  const items = routes.map((r) => {
    const slot = h("div", { class: "sparkslot" });
    sparkSlots.set(r.name, slot);
    const policies = r.policies?.length
      ? h("ul", { class: "chips" }, r.policies.map((p) => h("li", { class: "chip", text: p })))
      : h("span", { class: "hint", text: "none" });
    const li = h("li", { "data-route": r.name },
      h("h3", { text: r.name }),
      h("dl", {},
        h("dt", { text: "Match" }), h("dd", { class: "mono", text: describeMatch(r.match) }),
        h("dt", { text: "Policies" }), h("dd", {}, policies),
        r.use?.length ? [h("dt", { text: "Uses" }), h("dd", { text: r.use.join(", ") })] : null,
        h("dt", { text: "Action" }), h("dd", { text: describeAction(r) }),
        r.timeout ? [h("dt", { text: "Timeout" }), h("dd", { text: r.timeout })] : null,
      ),
      slot);
    li.dataset.search = routeText(r);
    return li;
  });
  $("route-list").replaceChildren(...items);
  filterRoutes();
  if (state.stats) renderSparks(state.stats);
}

function filterRoutes() {
  const q = $("route-filter").value.trim().toLowerCase();
  let shown = 0;
  const all = $("route-list").children;
  for (const li of all) {
    const hit = !q || q.split(/\s+/).every((w) => li.dataset.search.includes(w));
    li.hidden = !hit;
    if (hit) shown++;
  }
  $("route-count").textContent = q ? `${shown} of ${all.length} routes` : `${all.length} routes`;
}

function renderSparks(stats) {
  const byName = new Map((stats.routes || []).map((s) => [s.name, s]));
  for (const [name, slot] of sparkSlots) {
    const s = byName.get(name);
    const pts = complete(s?.points || []);
    const last = pts[pts.length - 1];
    const label = s
      ? `${fmtRPS(last?.rps || 0)} req/s now · ${plural(s.totals.requests, "request")}, ${plural(s.totals.errors, "error")} in ${fmtWindow(stats.window)}`
      : "no traffic recorded";
    slot.replaceChildren(sparkline(pts.map((p) => p.rps)), h("p", { class: "spark-label", text: label }));
  }
}

// ---- explain ----
function parseHeaders(text) {
  const out = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const i = line.indexOf(":");
    if (i <= 0) throw new Error(`header line "${line}" needs "Name: value"`);
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    (out[name] ||= []).push(value);
  }
  return out;
}

async function explain(ev) {
  ev.preventDefault();
  const out = $("explain-out");
  let headers;
  try {
    headers = parseHeaders($("ex-headers").value);
  } catch (e) {
    out.replaceChildren(h("p", { class: "error", text: e.message }));
    return;
  }
  const body = { method: $("ex-method").value, url: $("ex-url").value.trim(), headers };
  try {
    const ex = await api("explain", { method: "POST", body });
    out.replaceChildren(renderExplanation(ex));
  } catch (e) {
    if (e instanceof AuthError) return needLogin(e.message);
    out.replaceChildren(h("p", { class: "error", text: e.message }));
  }
}

function renderExplanation(ex) {
  const ok = ex.outcome === "matched";
  const rows = [
    ["Outcome", h("span", { class: `badge ${ok ? "ok" : "bad"}`, text: ex.outcome })],
    ["Request", `${ex.request?.method || ""} ${ex.request?.host || ""}${ex.request?.path || ""}${ex.request?.query ? `?${ex.request.query}` : ""}`],
  ];
  if (ex.route) rows.push(["Route", ex.route]);
  if (ex.status) rows.push(["Answer", `${ex.status}${ex.detail ? ` — ${ex.detail}` : ""}`]);
  else if (ex.detail) rows.push(["Detail", ex.detail]);
  if (ex.allow?.length) rows.push(["Allowed methods", ex.allow.join(", ")]);
  if (ex.params && Object.keys(ex.params).length) {
    rows.push(["Parameters", Object.entries(ex.params).map(([k, v]) => `${k}=${v}`).join(", ")]);
  }
  if (ex.policies) rows.push(["Policies", ex.policies.length ? ex.policies.join(" → ") : "none"]);
  const a = ex.action;
  if (a) {
    rows.push(["Action", a.upstream ? `${a.kind} → ${a.upstream}` : `${a.kind}${a.status ? ` ${a.status}` : ""}`]);
    if (a.targets?.length) rows.push(["Targets", a.targets.join(", ")]);
    const u = a.upstream_request;
    if (u) {
      const hdrs = Object.entries(u.headers || {}).map(([k, v]) => `${k}: ${v.join(", ")}`).join("\n");
      rows.push(["Sent upstream", h("pre", { text: `${u.method} ${u.url}\nHost: ${u.host}${hdrs ? `\n${hdrs}` : ""}` })]);
    }
  }
  return h("dl", {}, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
}

// ---- upstreams ----
const HEALTH_CLASS = { healthy: "ok", unhealthy: "bad", ejected: "bad", unknown: "", unchecked: "" };
const BREAKER_CLASS = { closed: "ok", open: "bad", half_open: "warn", none: "" };

function badge(value, classes) {
  if (value === undefined || value === null || value === "") return "–";
  return h("span", { class: `badge ${classes[value] ?? ""}`, text: String(value).replace("_", "-") });
}

// lastCheck renders an active probe result: an object {time, ok, status,
// error, duration_ms}, or a bare time.
function lastCheck(c) {
  if (!c) return "–";
  if (typeof c === "string") return fmtTime(c);
  const what = c.ok ? `ok${c.status ? ` ${c.status}` : ""}` : `failed${c.status ? ` ${c.status}` : ""}${c.error ? `: ${c.error}` : ""}`;
  const took = typeof c.duration_ms === "number" ? ` in ${fmtMS(c.duration_ms)}` : "";
  return `${what}${took}, ${c.time ? ago(new Date(c.time)) : ""}`;
}

function cell(label, content, cls) {
  return h("td", { "data-label": label, class: cls }, content);
}

function renderUpstreams(list, stats) {
  const byName = new Map((stats?.upstreams || []).map((s) => [s.name, s]));
  const changes = [];
  const pools = list.map((u) => {
    const s = byName.get(u.name);
    const last = complete(s?.points || []).at(-1);
    const summary = [`balancer ${u.balancer}`];
    if (last) summary.push(`${fmtRPS(last.rps)} req/s`, `${fmtPct(last.error_rate)} errors`);
    if (last?.requests) summary.push(`p99 ${fmtMS(last.p99_ms)}`);
    const rows = (u.targets || []).map((t) => {
      const prev = state.health.get(`${u.name} ${t.url}`);
      if (prev && t.health && prev !== t.health) changes.push(`${t.url} in ${u.name} is now ${t.health}`);
      if (t.health) state.health.set(`${u.name} ${t.url}`, t.health);
      return h("tr", { "data-target": t.url },
        cell("Target", h("span", { class: "mono", text: t.url })),
        cell("Health", badge(t.health, HEALTH_CLASS)),
        cell("Breaker", badge(t.breaker, BREAKER_CLASS)),
        cell("In flight", t.in_flight ?? "–", "num"),
        cell("Latency", t.latency_ms > 0 ? fmtMS(t.latency_ms) : "–", "num"),
        cell("Ejections", t.ejected_until ? `${t.ejections ?? ""} (until ${new Date(t.ejected_until).toLocaleTimeString()})` : t.ejections ?? "–", "num"),
        cell("Last check", lastCheck(t.last_check), "lastcheck"),
        cell("Weight", t.weight ?? "–", "num"));
    });
    const head = h("thead", {}, h("tr", {}, ["Target", "Health", "Breaker", "In flight", "Latency", "Ejections", "Last check", "Weight"]
      .map((c, i) => h("th", { scope: "col", class: i >= 3 && i !== 6 ? "num" : null, text: c }))));
    return h("section", { class: "panel pool", "aria-labelledby": `pool-${u.name}` },
      h("h2", { id: `pool-${u.name}`, text: u.name }),
      h("p", { class: "hint", text: summary.join(" · ") }),
      h("table", { class: "resp" }, h("caption", { class: "visually-hidden", text: `Targets of ${u.name}` }), head, h("tbody", {}, rows)));
  });
  if (pools.length === 0) pools.push(h("p", { class: "hint", text: "No upstreams are configured." }));
  $("upstream-list").replaceChildren(...pools);
  // Announce only transitions, so a screen reader is not read the table
  // every two seconds.
  if (changes.length) $("announce").textContent = changes.join(". ");
}

// ---- consumers ----
function credentialKinds(c) {
  const kinds = [];
  if (c.api_keys) kinds.push(c.api_keys === 1 ? "API key" : `API keys ×${c.api_keys}`);
  if (c.basic_auth) kinds.push("basic auth");
  if (c.certificates) kinds.push(c.certificates === 1 ? "certificate" : `certificates ×${c.certificates}`);
  if (Array.isArray(c.credentials)) for (const k of c.credentials) kinds.push(typeof k === "string" ? k : k.type || "credential");
  return kinds;
}

// Usage (rate limits and quotas) is read per consumer, on request: there
// may be many consumers (runtime ones), one API call each. An open usage
// box is read again on every poll while the Consumers view is shown, so
// its figures move with the traffic.
const openUsage = new Map(); // consumer name -> its usage box, while open

// fmtSeconds: 0.4 → "<1 s", 42 → "42 s", 90 → "2 min", 7200 → "2 h".
function fmtSeconds(s) {
  if (s < 1) return s > 0 ? "<1 s" : "0 s";
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.ceil(s / 60)} min`;
  return `${(s / 3600).toFixed(s % 3600 === 0 ? 0 : 1)} h`;
}

// fmtPer: a window in seconds as the "per …" of a policy: 60 → "minute".
function fmtPer(s) {
  if (s === 1) return "second";
  if (s === 60) return "minute";
  if (s === 3600) return "hour";
  if (s === 86400) return "day";
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

function renderConsumers(list) {
  const reopen = new Set(openUsage.keys());
  openUsage.clear();
  const items = list.map((c, i) => {
    const kinds = credentialKinds(c);
    const id = `usage-${i}`;
    const box = h("div", { class: "usage", id, hidden: true });
    const btn = h("button", { type: "button", class: "ghost", "aria-expanded": "false", "aria-controls": id },
      h("span", { text: "Show usage" }), h("span", { class: "visually-hidden", text: ` of ${c.name}` }));
    btn.addEventListener("click", () => toggleUsage(c.name, btn, box));
    const li = h("li", { "data-consumer": c.name },
      h("h3", { text: c.name }),
      h("dl", {},
        h("dt", { text: "Roles" }), h("dd", {}, c.roles?.length ? h("ul", { class: "chips" }, c.roles.map((r) => h("li", { class: "chip", text: r }))) : "none"),
        h("dt", { text: "Credentials" }), h("dd", { text: kinds.length ? kinds.join(", ") : "none" }),
        h("dt", { text: "Rate limits" }), h("dd", { text: c.rate_limits ? `${c.rate_limits} of its own` : "the routes' limits" }),
        c.source ? [h("dt", { text: "Source" }), h("dd", {}, c.source,
          c.shadowed_by_config ? [" ", h("span", { class: "badge warn", text: "shadowed by the config file" })] : null)] : null),
      btn, box);
    if (reopen.has(c.name)) toggleUsage(c.name, btn, box);
    return li;
  });
  if (items.length === 0) items.push(h("li", { class: "hint", text: "No consumers are configured." }));
  $("consumer-list").replaceChildren(...items);
}

function toggleUsage(name, btn, box) {
  const open = btn.getAttribute("aria-expanded") !== "true";
  btn.setAttribute("aria-expanded", String(open));
  btn.firstChild.textContent = open ? "Hide usage" : "Show usage";
  box.hidden = !open;
  if (!open) {
    openUsage.delete(name);
    return;
  }
  openUsage.set(name, box);
  box.replaceChildren(h("p", { class: "hint", text: "Loading…" }));
  loadUsage(name, box);
}

// refreshUsage reads every open usage box again.
function refreshUsage() {
  return Promise.all([...openUsage].map(([name, box]) => loadUsage(name, box)));
}

async function loadUsage(name, box) {
  const q = encodeURIComponent(name);
  const [limits, quotas] = await Promise.allSettled([api(`rate-limits?consumer=${q}`), api(`quotas?consumer=${q}`)]);
  for (const r of [limits, quotas]) {
    if (r.status === "rejected" && r.reason instanceof AuthError) return needLogin(r.reason.message);
  }
  if (openUsage.get(name) !== box) return; // closed (or re-rendered) meanwhile
  box.replaceChildren(h("div", { class: "usage-cols" },
    h("section", { class: "limits", "aria-label": `Rate limits of ${name}` }, h("h4", { text: "Rate limits" }),
      limits.status === "fulfilled" ? renderLimits(limits.value.rate_limits || []) : h("p", { class: "error", text: limits.reason.message })),
    h("section", { class: "quota", "aria-label": `Quotas of ${name}` }, h("h4", { text: "Quotas" }),
      quotas.status === "fulfilled" ? renderQuotas(quotas.value.quotas || []) : h("p", { class: "error", text: quotas.reason.message }))));
}

const BY_WHAT = { ip: "client address", route: "route", consumer: "consumer" };

function renderLimits(list) {
  if (list.length === 0) return h("p", { class: "hint", text: "No rate limit applies to this consumer." });
  return h("ul", { class: "usage-list" }, list.map((u) => {
    const per = `${u.limit} per ${fmtPer(u.window_seconds)}${u.burst !== u.limit ? `, burst ${u.burst}` : ""}`;
    const by = BY_WHAT[u.by] || (u.by.startsWith("header:") ? `header ${u.by.slice(7)}` : u.by);
    const li = h("li", { "data-limit": `${u.route}/${u.name}`, "data-scope": u.scope },
      h("span", { class: "lim-name", text: `${u.route} / ${u.name}` }), " ",
      h("span", { class: "n", text: `${per} by ${by}${u.source === "consumer" ? " (its own limit)" : ""}` }));
    const g = u.usage;
    if (!g) {
      li.append(h("p", { class: "hint", text: `Not per consumer: counted per ${by}.` }));
      return li;
    }
    li.dataset.used = g.used;
    li.dataset.remaining = g.remaining;
    const what = `${g.used} of ${u.burst} used`;
    const state = g.allowed
      ? `${g.remaining} left${g.reset_after_seconds > 0 ? `, full again in ${fmtSeconds(g.reset_after_seconds)}` : ""}`
      : `limited, next request in ${fmtSeconds(g.retry_after_seconds)}`;
    li.append(h("div", { class: "meterline" },
      h("meter", {
        min: 0, max: u.burst, value: g.used, optimum: 0,
        low: Math.max(1, Math.floor(u.burst * 0.5)), high: Math.max(1, Math.floor(u.burst * 0.9)),
        "aria-label": `${u.route} / ${u.name}: ${what}`,
      }),
      h("span", { class: "figure", text: `${what} · ${state}` }),
      g.allowed ? null : h("span", { class: "badge bad", text: "limited" })));
    if (u.scope === "route") li.append(h("p", { class: "hint", text: "One bucket for the whole route: every client's requests count." }));
    return li;
  }));
}

function renderQuotas(list) {
  if (list.length === 0) return h("p", { class: "hint", text: "No calendar quota counts this consumer." });
  return h("ul", { class: "usage-list" }, list.map((s) =>
    h("li", { "data-quota": `${s.route}/${s.name}`, "data-used": s.used,
      text: `${s.route} / ${s.name}: ${s.used} of ${s.limit} used this ${s.period}, resets ${fmtTime(s.resets_at)}` })));
}

// ---- loading and polling ----
async function loadConfigBound(reload) {
  const [routes, consumers, cfg] = await Promise.all([api("routes"), api("consumers"), api("config")]);
  state.routes = routes.routes || [];
  renderRoutes(state.routes);
  renderConsumers(consumers.consumers || []);
  renderConfig(cfg, reload);
}

let timer = 0;
let busy = false;

async function tick() {
  clearTimeout(timer);
  if (busy || !state.started) return;
  if (document.hidden) {
    timer = setTimeout(tick, POLL_MS);
    return;
  }
  busy = true;
  try {
    const [stats, reload, ups] = await Promise.all([api(STATS_QUERY), api("reload"), api("upstreams")]);
    const key = reload ? `${reload.time}|${reload.hash}|${reload.ok}` : "none";
    if (key !== state.reloadKey) {
      await loadConfigBound(reload);
      state.reloadKey = key;
    }
    state.stats = stats;
    renderOverview(stats);
    renderSparks(stats);
    renderUpstreams(ups.upstreams || [], stats);
    if (state.view === "consumers" && openUsage.size) await refreshUsage();
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    setStatus("");
  } catch (e) {
    if (e instanceof AuthError) {
      busy = false;
      needLogin(e.message);
      return;
    }
    setStatus(`Cannot read the admin API; retrying. (${e.message})`);
  }
  busy = false;
  timer = setTimeout(tick, POLL_MS);
}

function needLogin(message) {
  state.started = false;
  clearTimeout(timer);
  setToken("");
  for (const v of VIEWS) $(`view-${v}`).hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message ? `Sign in again: ${message}.` : "";
  $("token").focus();
}

function start() {
  $("login").hidden = true;
  state.started = true;
  state.reloadKey = "";
  showView(state.view, false);
  tick();
}

async function main() {
  initTheme();
  initCharts();
  $("route-filter").addEventListener("input", filterRoutes);
  $("explain-form").addEventListener("submit", explain);
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("token").value.trim());
    $("token").value = "";
    start();
  });
  // A top-route link opens the Routes view filtered to that route.
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-route]");
    if (!a) return;
    $("route-filter").value = a.dataset.route;
    filterRoutes();
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden && state.started) tick(); });
  addEventListener("hashchange", () => onHash(true));
  onHash(false);
  showView(state.view, false);
  let s = { token_required: false };
  try {
    s = await session();
  } catch (e) {
    setStatus(`Cannot reach the dashboard server: ${e.message}`);
    return;
  }
  if (s.token_required && !token()) {
    needLogin("");
    return;
  }
  start();
}

main();
