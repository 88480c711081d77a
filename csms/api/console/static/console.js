// CSMS operator console: hash-routed views, fed by one WebSocket (/console/ws) that pushes
// station changes, and by the operator API (/api/...) for sessions, id tags and feeders.
// No build step, no dependencies. All text reaches the DOM as text nodes (never innerHTML).

// ---------------------------------------------------------------- DOM and formatting helpers
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "style") for (const [p, x] of Object.entries(v)) el.style.setProperty(p, x); // CSSOM: allowed by the CSP
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function setText(el, text) {
  // Update a live value; highlight it briefly when it changed.
  if (el.textContent === text) return;
  const first = el.dataset.init === undefined;
  el.textContent = text;
  el.dataset.init = "1";
  if (!first) { el.classList.remove("flash"); void el.offsetWidth; el.classList.add("flash"); }
}

const num = (v, digits) => (v === null || v === undefined || Number.isNaN(v) ? "—" : Number(v).toFixed(digits));
const kw = (w) => num(w === null || w === undefined ? w : w / 1000, 1);
const kwh = (wh) => num(wh === null || wh === undefined ? wh : wh / 1000, 2);
const byId = (a, b) => a.localeCompare(b, undefined, { numeric: true });

const TIME = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
const clock = (iso) => new Date(iso).toLocaleTimeString([], TIME);

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? clock(iso) : `${d.toLocaleDateString()} ${clock(iso)}`;
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function duration(fromIso, toIso) {
  if (!fromIso) return "—";
  const s = Math.max(0, ((toIso ? new Date(toIso) : new Date()) - new Date(fromIso)) / 1000);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60);
  return hh ? `${hh} h ${mm} min` : `${mm} min`;
}

const STATES = ["faulted", "offline", "charging", "occupied", "unavailable", "available", "unknown"];
const STATE_LABEL = {
  faulted: "Faulted", offline: "Offline", charging: "Charging", occupied: "Occupied",
  unavailable: "Unavailable", available: "Available", unknown: "No status yet",
};
const PROTOCOLS = ["ocpp1.6", "ocpp2.0.1"];
const badge = (state, label) => h("span", { class: `badge s-${state}` }, label || STATE_LABEL[state] || state);
const stationLink = (id) => h("a", { href: `#/stations/${encodeURIComponent(id)}` }, id);

function table(headers, rows, { caption, empty = "Nothing to show.", cls } = {}) {
  const head = h("tr", {}, headers.map(([label, c, attrs]) => h("th", { scope: "col", class: c, ...attrs }, label)));
  const body = rows.length ? rows : [h("tr", {}, h("td", { class: "empty", colspan: headers.length }, empty))];
  return h("div", { class: "table-wrap" },
    h("table", { class: cls }, caption ? h("caption", {}, caption) : null, h("thead", {}, head), h("tbody", {}, body)));
}

function field(label, input) {
  const id = `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h("div", {}, h("label", { for: id }, label), input);
}

function select(name, options, value) {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

// ---------------------------------------------------------------- operator API
async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-CSMS-Console": "1" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    return { ok: false, status: 0, data: { detail: `network error: ${err.message}` }, headers: new Headers() };
  }
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (res.status === 401) data = { detail: "not signed in (or the session expired): sign in again" };
  return { ok: res.ok, status: res.status, data, headers: res.headers };
}

const detailOf = (r) => (r.data && (typeof r.data.detail === "string" ? r.data.detail : JSON.stringify(r.data.detail))) || `HTTP ${r.status}`;

// ---------------------------------------------------------------- live state over the WebSocket
const state = { stations: new Map(), activeSessions: 0, ready: false };

class Live {
  constructor() { this.ws = null; this.attempt = 0; this.watch = null; this.feeders = false; this.onchange = () => {}; }

  connect() {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/console/ws`;
    const ws = this.ws = new WebSocket(url);
    ws.onopen = () => { this.attempt = 0; this.sendInterest(); status("live", "Live"); };
    ws.onmessage = (ev) => this.receive(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      if (ev.code === 4401) { location.assign("/login"); return; }
      const delay = Math.min(10000, 500 * 2 ** this.attempt++) * (0.8 + Math.random() * 0.4);
      status("down", "Reconnecting…");
      setTimeout(() => this.connect(), delay);
    };
  }

  sendInterest() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ watch: this.watch }));
      this.ws.send(JSON.stringify({ feeders: this.feeders }));
    }
  }

  follow(stationId) { this.watch = stationId; this.sendInterest(); }
  followFeeders(on) { this.feeders = on; this.sendInterest(); }

  receive(frame) {
    const change = { type: frame.type, ids: new Set(), added: new Set(), frame };
    switch (frame.type) {
      case "hello":
        document.getElementById("logout").hidden = !frame.auth;
        return;
      case "snapshot":
        state.stations = new Map(frame.stations.map((s) => [s.id, s]));
        state.activeSessions = frame.active_sessions;
        state.ready = true;
        break;
      case "stations":
        for (const s of frame.stations) {
          if (!state.stations.has(s.id)) change.added.add(s.id);
          state.stations.set(s.id, s); change.ids.add(s.id);
        }
        for (const id of frame.removed || []) { state.stations.delete(id); change.ids.add(id); }
        break;
      case "summary":
        state.activeSessions = frame.active_sessions;
        break;
      default:
        break;
    }
    this.onchange(change);
  }
}

function status(kind, text) {
  const el = document.getElementById("link-status");
  el.dataset.state = kind;
  el.textContent = text;
}

const live = new Live();

// ---------------------------------------------------------------- views
// A view is mount(main, params, query) -> { update(change), unmount() }.

function pageHead(title, sub, ...extra) {
  return h("div", { class: "page-head" },
    h("div", {}, h("h1", { tabindex: "-1" }, title), sub ? h("p", { class: "muted" }, sub) : null), ...extra);
}

function counts(stations) {
  const byState = Object.fromEntries(STATES.map((s) => [s, 0]));
  const byProtocol = { "ocpp1.6": 0, "ocpp2.0.1": 0, unknown: 0 };
  let power = 0, online = 0;
  for (const s of stations) {
    byState[s.state] = (byState[s.state] || 0) + 1;
    byProtocol[s.protocol || "unknown"] = (byProtocol[s.protocol || "unknown"] || 0) + 1;
    power += s.power_w || 0;
    if (s.connected) online += 1;
  }
  return { byState, byProtocol, power, online };
}

function breakdown(entries, total, hrefFor) {
  return h("ul", { class: "breakdown" }, entries.map(([key, label, n]) => h("li", {},
    hrefFor ? h("a", { href: hrefFor(key) }, label) : h("span", {}, label),
    h("div", { class: "track", "aria-hidden": "true" },
      h("div", { class: `fill s-${key}`, style: { width: `${total ? (100 * n) / total : 0}%` } })),
    h("span", { class: "num" }, n))));
}

function overview(main) {
  const body = h("div");
  main.append(pageHead("Network overview", "Live state of every registered station."), body);
  const render = () => {
    const all = [...state.stations.values()];
    const c = counts(all);
    const alerts = all.filter((s) => s.state === "faulted" || s.state === "offline")
      .sort((a, b) => STATES.indexOf(a.state) - STATES.indexOf(b.state) || byId(a.id, b.id));
    const top = [...all].sort((a, b) => STATES.indexOf(a.state) - STATES.indexOf(b.state) || byId(a.id, b.id)).slice(0, 12);
    const problem = (s) => {
      if (s.state === "offline") return `last seen ${ago(s.last_seen)}`;
      const faults = s.evses.flatMap((e) => e.connectors.filter((x) => x.status === "Faulted")
        .map((x) => `EVSE ${e.evse_id}: ${x.error_code || "fault"}`));
      return faults.join(", ") || "station faulted";
    };
    body.replaceChildren(
      h("section", { class: "kpis", "aria-label": "Key figures" },
        kpi("Stations online", c.online, `of ${all.length} registered`, "kpi-online"),
        kpi("Charging now", c.byState.charging, `${c.byState.occupied} more occupied`, "kpi-charging"),
        kpi("Total power", kw(c.power), "kW across charging EVSEs", "kpi-power"),
        kpi("Active sessions", state.activeSessions, "open transactions", "kpi-sessions")),
      h("div", { class: "grid grid-2" },
        h("section", { class: "panel", "aria-labelledby": "h-status" }, h("h2", { id: "h-status" }, "Stations by status"),
          breakdown(STATES.map((s) => [s, STATE_LABEL[s], c.byState[s]]), all.length,
            (s) => `#/stations?state=${s}`)),
        h("section", { class: "panel", "aria-labelledby": "h-proto" }, h("h2", { id: "h-proto" }, "Stations by protocol"),
          breakdown(Object.entries(c.byProtocol).filter(([p, n]) => PROTOCOLS.includes(p) || n)
            .map(([p, n]) => [p === "unknown" ? "unknown" : "proto", p === "unknown" ? "not connected yet" : `OCPP ${p.slice(4)}`, n]),
          all.length))),
      h("section", { class: "panel", "aria-labelledby": "h-alerts" },
        h("h2", { id: "h-alerts" }, "Alerts", h("span", { class: "aside muted" }, `${alerts.length} faulted or offline`)),
        table([["Station"], ["Condition"], ["Details"]],
          alerts.slice(0, 50).map((s) => h("tr", { "data-station": s.id },
            h("td", {}, stationLink(s.id)), h("td", {}, badge(s.state)), h("td", {}, problem(s)))),
          { empty: "No faulted or offline stations.", caption: alerts.length > 50 ? `First 50 of ${alerts.length}` : null })),
      h("section", { class: "panel", "aria-labelledby": "h-stations" },
        h("h2", { id: "h-stations" }, "Stations", h("a", { class: "aside", href: "#/stations" }, `All ${all.length} stations →`)),
        stationTable(top, "No stations have registered yet.")));
  };
  render();
  return { update: render };
}

function kpi(label, value, sub, id) {
  return h("div", { class: "kpi", id },
    h("div", { class: "kpi-label" }, label), h("div", { class: "kpi-value" }, value), h("div", { class: "kpi-sub" }, sub));
}

function connectorSummary(s) {
  const statuses = s.evses.flatMap((e) => e.connectors.map((c) => c.status));
  if (!statuses.length) return "—";
  const n = {};
  for (const x of statuses) n[x] = (n[x] || 0) + 1;
  return Object.entries(n).map(([k, v]) => `${v} × ${k}`).join(", ");
}

function stationTable(stations, empty, caption) {
  return table(
    [["Station"], ["State"], ["Protocol"], ["Vendor · model"], ["Connectors"], ["Power (kW)", "num"], ["Last seen"]],
    stations.map((s) => h("tr", { "data-station": s.id },
      h("td", {}, stationLink(s.id)), h("td", {}, badge(s.state)),
      h("td", {}, s.protocol ? h("span", { class: "tag" }, s.protocol) : "—"),
      h("td", {}, [s.vendor, s.model].filter(Boolean).join(" · ") || "—"),
      h("td", {}, connectorSummary(s)), h("td", { class: "num" }, kw(s.power_w)), h("td", {}, when(s.last_seen)))),
    { empty, caption });
}

// A page of a server-side listing: its rows, the total (when the server counts) and the next cursor.
async function fetchPage(path, params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") p.set(k, String(v));
  const r = await api("GET", `${path}?${p}`);
  const total = r.headers.get("X-Total-Count");
  return { ...r, rows: r.ok ? r.data : [], total: total === null ? null : Number(total), next: r.headers.get("X-Next-Cursor") };
}

// Column headers that sort on the server: [label, sortField|null, class].
function sortableHead(cols, sort, onsort) {
  const [field, dir] = sort.split(":");
  return cols.map(([label, key, cls]) => {
    if (!key) return [label, cls];
    const active = key === field;
    const next = active && dir !== "desc" ? `${key}:desc` : key;
    const b = h("button", { type: "button", class: "sort", "data-sort": key, onclick: () => onsort(next) },
      label, h("span", { "aria-hidden": "true" }, active ? (dir === "desc" ? " ▼" : " ▲") : ""));
    return [b, cls, { "aria-sort": active ? (dir === "desc" ? "descending" : "ascending") : "none" }];
  });
}

function pager(from, shown, total, { prev, next }) {
  const range = shown ? `${from + 1}–${from + shown}` : "0";
  return h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", class: "btn btn-small", disabled: !prev, onclick: prev || null }, "← Previous"),
    h("span", { class: "muted", role: "status" }, total === null ? range : `${range} of ${total}`),
    h("button", { type: "button", class: "btn btn-small", disabled: !next, onclick: next || null }, "Next →"));
}

const STATION_PAGE = 50;

function stationsView(main, _params, query) {
  const q = h("input", { type: "search", name: "q", value: query.get("q") || "", placeholder: "Station id, vendor, model, serial", autocomplete: "off" });
  const st = select("state", [["", "All states"], ...STATES.map((s) => [s, STATE_LABEL[s]])], query.get("state") || "");
  const pr = select("protocol", [["", "All protocols"], ...PROTOCOLS.map((p) => [p, `OCPP ${p.slice(4)}`])], query.get("protocol") || "");
  const count = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const results = h("div");
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  let sort = query.get("sort") || "id";
  let offset = Number(query.get("offset")) || 0;
  let rows = [], total = 0, seq = 0, timer = null;
  const register = stationForm(null, async (r, sid) => {
    msg.className = r.ok ? "muted" : "form-error";
    msg.textContent = r.ok ? `Registered ${sid}.` : `Could not register ${sid}: ${detailOf(r)}`;
    if (r.ok) load();
  });
  main.append(pageHead("Stations", "Search, filter and sort on the server; the rows shown update as stations report."),
    h("section", { class: "panel" },
      h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
        h("div", { class: "grow" }, field("Search", q)), field("State", st), field("Protocol", pr)),
      count, results),
    h("section", { class: "panel", "aria-labelledby": "h-register" },
      h("details", {}, h("summary", {}, h("h2", { id: "h-register", class: "inline" }, "Register a station")),
        h("p", { class: "muted" }, "Profile 0 admits the station by its id; profiles 1–3 need a password (16–40 characters) for HTTP Basic authentication."),
        register, msg)));
  const params = () => ({ q: q.value.trim(), status: st.value, protocol: pr.value, sort, limit: STATION_PAGE, offset });
  const render = () => {
    const head = sortableHead([["Station", "id"], ["State", "status"], ["Protocol", "protocol"], ["Vendor", "vendor"],
      ["Model", "model"], ["Connectors"], ["Power (kW)", null, "num"], ["Last seen", "last_seen"]], sort, (next) => { sort = next; offset = 0; refilter(); });
    results.replaceChildren(
      table(head, rows.map((x) => stationRow(state.stations.get(x.id) || x)), { empty: "No station matches these filters." }),
      pager(offset, rows.length, total, {
        prev: offset > 0 ? () => { offset = Math.max(0, offset - STATION_PAGE); refilter(); } : null,
        next: offset + rows.length < total ? () => { offset += STATION_PAGE; refilter(); } : null,
      }));
  };
  async function load() {
    const mine = ++seq;
    const r = await fetchPage("/api/chargers", params());
    if (mine !== seq) return; // a newer request is on its way
    if (!r.ok) { count.textContent = `Could not load stations: ${detailOf(r)}`; return; }
    rows = r.rows; total = r.total ?? rows.length;
    count.textContent = `${total} of ${Math.max(total, state.stations.size)} stations match`;
    render();
  }
  const refilter = () => {
    const p = new URLSearchParams();
    if (q.value.trim()) p.set("q", q.value.trim());
    if (st.value) p.set("state", st.value);
    if (pr.value) p.set("protocol", pr.value);
    if (sort !== "id") p.set("sort", sort);
    if (offset) p.set("offset", offset);
    history.replaceState(null, "", `#/stations${p.size ? `?${p}` : ""}`);
    clearTimeout(timer);
    load();
  };
  let typing = null;
  q.addEventListener("input", () => { offset = 0; clearTimeout(typing); typing = setTimeout(refilter, 200); });
  st.addEventListener("change", () => { offset = 0; refilter(); });
  pr.addEventListener("change", () => { offset = 0; refilter(); });
  load();
  return {
    update(change) {
      // Rows on this page change in place; a station appearing or leaving, or one of these rows
      // changing state, re-reads the page (at most once a second).
      const mine = new Set(rows.map((x) => x.id));
      const touched = [...change.ids].some((id) => mine.has(id));
      if (touched) render();
      if (change.type === "snapshot" || change.added.size || (change.frame.removed || []).length || touched) {
        clearTimeout(timer); timer = setTimeout(load, 1000);
      }
    },
    unmount() { clearTimeout(timer); clearTimeout(typing); },
  };
}

function stationRow(s) {
  return h("tr", { "data-station": s.id },
    h("td", {}, stationLink(s.id)), h("td", {}, badge(s.state)),
    h("td", {}, s.protocol ? h("span", { class: "tag" }, s.protocol) : "—"),
    h("td", {}, s.vendor || "—"), h("td", {}, s.model || "—"),
    h("td", {}, connectorSummary(s)), h("td", { class: "num" }, kw(s.power_w)), h("td", {}, when(s.last_seen)));
}

// Register (id given by the operator) or edit (id fixed) a station: security profile and password.
function stationForm(fixedId, done) {
  const idInput = fixedId ? null : h("input", { name: "station_id", required: true, maxlength: 48, pattern: "[^\\/]+", autocomplete: "off" });
  const profile = select("security_profile", [["0", "0 · no authentication"], ["1", "1 · Basic auth over ws://"],
    ["2", "2 · Basic auth over TLS"], ["3", "3 · TLS client certificate"]], "0");
  const password = h("input", { name: "password", type: "password", minlength: 16, maxlength: 40, autocomplete: "new-password" });
  const form = h("form", { class: "row", onsubmit: async (e) => {
    e.preventDefault();
    const sid = fixedId || idInput.value.trim();
    const body = { security_profile: Number(profile.value) };
    if (password.value) body.password = password.value;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const r = await api("PUT", `/api/chargers/${encodeURIComponent(sid)}`, body);
    button.disabled = false;
    if (r.ok) { password.value = ""; if (idInput) idInput.value = ""; }
    done(r, sid);
  } },
  idInput ? field("Station id", idInput) : null, field("Security profile", profile),
  field(fixedId ? "New password (optional)" : "Password (profiles 1–3)", password),
  h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, fixedId ? "Save" : "Register")));
  form.setProfile = (n) => { profile.value = String(n); };
  return form;
}

// --- station detail
const TRIGGERS = {
  "ocpp1.6": ["StatusNotification", "MeterValues", "Heartbeat", "BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification"],
  "ocpp2.0.1": ["StatusNotification", "MeterValues", "TransactionEvent", "Heartbeat", "BootNotification", "LogStatusNotification", "FirmwareStatusNotification"],
};

function summarize(response) {
  if (response && typeof response === "object" && typeof response.status === "string") {
    const info = response.statusInfo && response.statusInfo.reasonCode ? ` (${response.statusInfo.reasonCode})` : "";
    return `${response.status}${info}`;
  }
  const text = JSON.stringify(response);
  return text.length > 160 ? `${text.slice(0, 160)}…` : text;
}

const MAX_MESSAGES = 100;

function pretty(text) {
  // Indented JSON when the payload was kept whole (the server cuts long ones).
  try { return JSON.stringify(JSON.parse(text), null, 1); } catch { return text; }
}

function stationView(main, params) {
  const id = params[0];
  const timeline = eventsTimeline(id);
  let detail = { variables: {}, transactions: [] };
  let messages = [];
  let config16 = null; // GetConfiguration answer (1.6)
  const head = h("div");
  const evses = h("div", { class: "evses" });
  const sessions = h("div");
  const msgs = h("div", { class: "scroll" });
  const config = h("div");
  const actionsBox = h("div");
  const results = h("ul", { class: "results", "aria-live": "polite", "aria-label": "Answers from the station" },
    h("li", { class: "placeholder" }, "The station's answers to your actions appear here."));
  main.append(head,
    h("div", { class: "grid grid-main-side" },
      h("div", {},
        h("section", { class: "panel", "aria-labelledby": "h-evses" }, h("h2", { id: "h-evses" }, "EVSEs and connectors"), evses),
        h("section", { class: "panel", "aria-labelledby": "h-sess" }, h("h2", { id: "h-sess" }, "Active sessions"), sessions),
        h("section", { class: "panel", "aria-labelledby": "h-config" }, h("h2", { id: "h-config" }, "Configuration"), config),
        h("section", { class: "panel", "aria-labelledby": "h-hist" }, h("h2", { id: "h-hist" }, "Session history",
          h("span", { class: "aside muted" }, "newest first")), sessionHistory(id)),
        h("section", { class: "panel", "aria-labelledby": "h-events" }, h("h2", { id: "h-events" }, "Events"), timeline.el)),
      h("div", {},
        h("section", { class: "panel", "aria-labelledby": "h-actions" }, h("h2", { id: "h-actions" }, "Actions"),
          h("h3", {}, "Answers"), results, actionsBox),
        h("section", { class: "panel", "aria-labelledby": "h-reg" }, h("h2", { id: "h-reg" }, "Registration"), registration(id)))),
    h("section", { class: "panel", "aria-labelledby": "h-msgs" },
      h("h2", { id: "h-msgs" }, "Recent OCPP messages", h("span", { class: "aside muted" }, "newest first")), msgs));
  live.follow(id);

  async function run(intent, body, button) {
    const started = clock(new Date().toISOString());
    const item = h("li", {}, h("span", { class: "when" }, started), `${button.textContent}: waiting for the station…`);
    for (const old of results.querySelectorAll(".placeholder")) old.remove();
    results.prepend(item);
    button.disabled = true;
    const r = await api("POST", `/console/api/stations/${encodeURIComponent(id)}/actions/${intent}`, body);
    button.disabled = false;
    const action = (r.data && r.data.action) || button.textContent;
    if (r.ok) {
      item.className = "ok";
      item.replaceChildren(h("span", { class: "when" }, started), h("strong", {}, action), ` → ${summarize(r.data.response)}`);
    } else {
      item.className = "err";
      const code = r.data && r.data.code ? ` ${r.data.code}${r.data.description ? `: ${r.data.description}` : ""}` : "";
      item.replaceChildren(h("span", { class: "when" }, started), h("strong", {}, action), ` failed (${r.status}): ${detailOf(r)}${code}`);
    }
    return r;
  }

  function actionForm(title, fields, buttons) {
    const form = h("form", { class: "action", onsubmit: (e) => e.preventDefault() },
      h("h3", {}, title), h("div", { class: "row" }, fields, buttons));
    return form;
  }

  const numberInput = (name, value, min, max, step) => h("input", { type: "number", name, value, min, max, step: step || 1, required: true });

  function renderActions(s) {
    const online = s && s.connected;
    const protocol = s && s.protocol;
    const evseIds = s && s.evses.length ? s.evses.map((e) => e.evse_id) : [1];
    const evseSel = (withStation) => select("evse_id",
      [...(withStation ? [["0", "Whole station"]] : []), ...evseIds.map((n) => [String(n), `EVSE ${n}`])], String(evseIds[0]));
    const btn = (label, intent, collect, cls) => h("button", {
      type: "submit", class: `btn ${cls || ""}`, disabled: !online,
      onclick: (e) => { const form = e.target.form; if (form.reportValidity()) run(intent, collect(form), e.target); },
    }, label);
    const ev = (f) => Number(f.elements.evse_id.value);
    if (!online) {
      actionsBox.replaceChildren(h("p", { class: "muted" }, "The station is offline: actions are available while it is connected."));
      return;
    }
    actionsBox.replaceChildren(h("div", { class: "actions-list" },
      actionForm("Remote start", [field("ID tag", h("input", { name: "id_tag", required: true, maxlength: 36, autocomplete: "off" })), field("EVSE", evseSel(false))],
        btn("Start", "remote-start", (f) => ({ id_tag: f.elements.id_tag.value.trim(), evse_id: ev(f) }), "btn-primary")),
      actionForm("Unlock connector", [field("EVSE", evseSel(false)), field("Connector", numberInput("connector_id", 1, 1, 10))],
        btn("Unlock", "unlock", (f) => ({ evse_id: ev(f), connector_id: Number(f.elements.connector_id.value) }))),
      actionForm("Availability", [field("Scope", evseSel(true)),
        field("Set to", select("operative", [["1", "Operative"], ["0", "Inoperative"]], "1"))],
        btn("Change availability", "availability", (f) => ({ evse_id: ev(f), operative: f.elements.operative.value === "1" }))),
      actionForm("Current limit", [field("EVSE", evseSel(false)), field("Limit (A)", numberInput("limit_a", 16, 0, 2000, 0.1))], [
        btn("Set limit", "limit", (f) => ({ evse_id: ev(f), limit_a: Number(f.elements.limit_a.value) })),
        h("button", { type: "button", class: "btn", onclick: (e) => run("clear-limit", {}, e.target) }, "Clear limit")]),
      actionForm("Trigger message", [field("Message", select("message", (TRIGGERS[protocol] || TRIGGERS["ocpp1.6"]).map((m) => [m, m]), "StatusNotification")),
        field("EVSE", evseSel(true))],
        btn("Trigger", "trigger", (f) => ({ message: f.elements.message.value, evse_id: ev(f) }))),
      actionForm("Reset", [h("fieldset", {}, h("legend", {}, "Kind"), h("div", { class: "radios" },
        h("label", {}, h("input", { type: "radio", name: "hard", value: "0", checked: true }), protocol === "ocpp2.0.1" ? "When idle" : "Soft"),
        h("label", {}, h("input", { type: "radio", name: "hard", value: "1" }), protocol === "ocpp2.0.1" ? "Immediate" : "Hard")))],
        btn("Reset", "reset", (f) => ({ hard: f.elements.hard.value === "1" }), "btn-danger"))));
  }

  function renderHead(s) {
    if (!s) {
      head.replaceChildren(pageHead(id, state.ready ? "This station is not registered." : "Loading…"));
      return;
    }
    const facts = [["Protocol", s.protocol || "—"], ["Vendor", s.vendor || "—"], ["Model", s.model || "—"],
      ["Serial", s.serial_number || "—"], ["Firmware", s.firmware_version || "—"], ["Last seen", when(s.last_seen)],
      ["Clock offset", s.clock_offset_s == null ? "—" : `${s.clock_offset_s > 0 ? "+" : ""}${s.clock_offset_s} s`]];
    head.replaceChildren(h("p", { class: "muted crumbs" }, h("a", { href: "#/stations" }, "Stations"), " / ", id),
      pageHead(h("span", {}, `${id} `, badge(s.state)), null,
        h("a", { class: "btn btn-small", href: `#/stations/${encodeURIComponent(id)}/profiles` }, "Profiles, display, monitors")),
      h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))));
  }

  const cards = new Map();
  function renderEvses(s) {
    const list = s ? s.evses : [];
    if (!list.length) { evses.replaceChildren(h("p", { class: "muted" }, "No EVSE has reported a status or meter value yet.")); cards.clear(); return; }
    const key = list.map((e) => e.evse_id).join(",");
    if (evses.dataset.key !== key) {
      evses.dataset.key = key;
      cards.clear();
      evses.replaceChildren(...list.map((e) => {
        const f = {};
        const metric = (name, label, unit) => h("div", {}, h("dt", {}, label),
          h("dd", {}, f[name] = h("span", { "data-field": name }), unit ? h("small", {}, unit) : null));
        const card = h("article", { class: "evse", "data-evse": e.evse_id, "aria-labelledby": `evse-${e.evse_id}` },
          h("div", { class: "evse-head" }, h("h3", { id: `evse-${e.evse_id}` }, `EVSE ${e.evse_id}`), f.badge = h("span")),
          h("dl", { class: "metrics" }, metric("power", "Power", "kW"), metric("current", "Current", "A"),
            metric("energy", "Energy register", "kWh"), metric("soc", "State of charge", "%")),
          f.connectors = h("div", { class: "connectors" }), f.sampled = h("div", { class: "sampled" }));
        cards.set(e.evse_id, f);
        return card;
      }));
    }
    for (const e of list) {
      const f = cards.get(e.evse_id);
      const statuses = e.connectors.map((c) => c.status);
      const worst = statuses.includes("Faulted") ? "faulted" : statuses.includes("Charging") ? "charging"
        : statuses.some((x) => x !== "Available" && x !== "Unavailable") ? "occupied"
          : statuses.includes("Available") ? "available" : statuses.length ? "unavailable" : "unknown";
      f.badge.replaceChildren(badge(worst, statuses.length === 1 ? statuses[0] : STATE_LABEL[worst]));
      setText(f.power, kw(e.power_w));
      setText(f.current, currentText(e.current_a));
      setText(f.energy, kwh(e.energy_register_wh));
      setText(f.soc, num(e.soc_percent, 0));
      f.connectors.textContent = e.connectors.length
        ? e.connectors.map((c) => `Connector ${c.connector_id}: ${c.status}${c.error_code ? ` (${c.error_code})` : ""}`).join(" · ")
        : "No connector status yet";
      f.sampled.textContent = e.sampled_at ? `Sampled ${when(e.sampled_at)}` : "No meter values yet";
    }
  }

  // The running cost of each open session (incl. VAT), asked for at most every 30 s.
  const costs = new Map();
  function costCell(tx) {
    const key = String(tx.id);
    const known = costs.get(key);
    if (!known || Date.now() - known.at > 30000) {
      costs.set(key, { text: known ? known.text : "…", at: Date.now() });
      api("GET", `/api/transactions/${encodeURIComponent(id)}/${encodeURIComponent(key)}/cost`).then((r) => {
        const text = r.ok ? `${r.data.total_incl_vat} ${r.data.currency}` : "—";
        costs.set(key, { text, at: Date.now() });
        for (const el of sessions.querySelectorAll("[data-cost]")) if (el.dataset.cost === key) el.textContent = text;
      });
    }
    return h("td", { class: "num", "data-cost": key }, costs.get(key).text);
  }

  function renderSessions(s) {
    const liveEnergy = (tx) => energyOf(tx, s);
    sessions.replaceChildren(table([["Transaction"], ["EVSE"], ["ID tag"], ["Started"], ["Energy (kWh)", "num"], ["Cost so far", "num"], ["", "actions"]],
      detail.transactions.map((tx) => h("tr", {},
        h("td", { class: "mono" }, String(tx.id)), h("td", {}, tx.evse_id), h("td", { class: "mono" }, tx.id_tag || "—"),
        h("td", {}, when(tx.started_at)), h("td", { class: "num" }, kwh(liveEnergy(tx))), costCell(tx),
        h("td", { class: "actions" }, h("button", {
          type: "button", class: "btn btn-small btn-danger", disabled: !(s && s.connected),
          "aria-label": `Stop transaction ${tx.id}`, onclick: (e) => run("remote-stop", { tx_id: String(tx.id) }, e.target),
        }, "Stop")))),
    { empty: "No open session on this station." }));
  }

  const messageRow = (m) => h("tr", {},
    h("td", { class: "mono" }, clock(m.ts)),
    h("td", { class: `dir dir-${m.direction}`, title: m.direction === "in" ? "from the station" : "to the station" },
      m.direction === "in" ? "← in" : "→ out"),
    h("td", {}, m.type), h("td", {}, m.action),
    h("td", { class: "payload" }, m.payload.length <= 60 ? h("code", {}, m.payload)
      : h("details", {}, h("summary", {}, h("code", {}, `${m.payload.slice(0, 200)}…`)), h("pre", {}, pretty(m.payload)))));

  function renderMessages(added) {
    // New messages are prepended, so an expanded payload stays open while others arrive.
    const tbody = msgs.querySelector("tbody[data-rows]");
    if (added && tbody && added.length) {
      tbody.prepend(...added.slice().reverse().map(messageRow));
      while (tbody.children.length > MAX_MESSAGES) tbody.lastElementChild.remove();
      return;
    }
    const t = table([["Time"], ["Dir"], ["Type"], ["Action"], ["Payload"]], [...messages].reverse().map(messageRow),
      { empty: "No message recorded yet.", cls: "msgs" });
    if (messages.length) t.querySelector("tbody").dataset.rows = "1";
    msgs.replaceChildren(t);
  }

  function renderConfig(s) {
    const protocol = s && s.protocol;
    const rows = protocol === "ocpp1.6" && config16
      ? config16.map((k) => [k.key, k.value ?? "—", k.readonly ? "read-only" : ""])
      : Object.entries(detail.variables).map(([k, v]) => [k, v, ""]);
    const button = h("button", {
      type: "button", class: "btn", disabled: !(s && s.connected),
      onclick: async (e) => {
        const r = await run("configuration", {}, e.target);
        if (r.ok && r.data.response && Array.isArray(r.data.response.configurationKey)) {
          config16 = r.data.response.configurationKey;
          renderConfig(state.stations.get(id));
        }
      },
    }, protocol === "ocpp2.0.1" ? "Request report" : "Read configuration");
    config.replaceChildren(
      h("p", { class: "muted" }, protocol === "ocpp2.0.1"
        ? "Variables from the station's reports (GetBaseReport → NotifyReport)."
        : "Keys read with GetConfiguration."), button,
      h("div", { class: "scroll config-table" },
        table([["Key"], ["Value"], [""]], rows.map(([k, v, ro]) => h("tr", {}, h("td", {}, k), h("td", {}, v), h("td", { class: "muted" }, ro))),
          { empty: "Nothing read yet.", cls: "kv" })));
  }

  let lastShape = "";
  const render = (change) => {
    const s = state.stations.get(id);
    document.title = `${id} · CSMS console`;
    if (!change || change.type !== "messages") {
      renderHead(s);
      renderEvses(s);
      const shape = `${s && s.connected}|${s && s.protocol}|${s && s.evses.map((e) => e.evse_id).join(",")}`;
      if (shape !== lastShape) { lastShape = shape; renderActions(s); renderConfig(s); }
      renderSessions(s);
    }
  };

  render();
  renderMessages();
  return {
    update(change) {
      const f = change.frame;
      if (change.type === "messages" && f.station_id === id) {
        messages = f.replace ? f.messages : [...messages, ...f.messages].slice(-MAX_MESSAGES);
        renderMessages(f.replace ? null : f.messages);
        return;
      }
      if (change.type === "detail" && f.station_id === id) {
        const varsChanged = JSON.stringify(f.variables) !== JSON.stringify(detail.variables);
        detail = f;
        renderSessions(state.stations.get(id));
        if (varsChanged) renderConfig(state.stations.get(id));
        return;
      }
      if (change.type === "snapshot" || change.ids.has(id)) { render(change); timeline.soon(); }
    },
    unmount() { live.follow(null); timeline.stop(); },
  };
}

// --- station detail: history, events, registration

// A listing paged with server cursors: Older follows X-Next-Cursor, Newer goes back a page.
function cursorPages(fetchPageAt, apply) {
  // Only the newest request's answer is applied: a slower, older one (a periodic refresh that
  // started before the filters changed) must not overwrite it.
  const stack = [null];
  let seq = 0;
  const load = async (cursor) => {
    const mine = ++seq;
    const result = await fetchPageAt(cursor);
    if (mine === seq) apply(result);
  };
  return {
    first() { stack.length = 1; return load(null); },
    older(cursor) { stack.push(cursor); return load(cursor); },
    newer() { if (stack.length > 1) stack.pop(); return load(stack[stack.length - 1]); },
    again() { return load(stack[stack.length - 1]); },
    get depth() { return stack.length - 1; },
  };
}

function cursorPager(pages, shown, next, perPage, reload) {
  const from = pages.depth * perPage;
  return h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", class: "btn btn-small", disabled: !pages.depth, onclick: () => pages.newer().then(reload) }, "← Newer"),
    h("span", { class: "muted", role: "status" }, shown ? `${from + 1}–${from + shown}` : "none"),
    h("button", { type: "button", class: "btn btn-small", disabled: !next, onclick: () => pages.older(next).then(reload) }, "Older →"));
}

function sessionRows(txs, withStation) {
  return txs.map((tx) => h("tr", { "data-tx": tx.id },
    withStation ? h("td", {}, stationLink(tx.charger_id)) : null, h("td", {}, tx.evse_id),
    h("td", { class: "mono" }, String(tx.id)), h("td", { class: "mono" }, tx.id_tag || "—"), h("td", {}, when(tx.started_at)),
    h("td", {}, tx.active ? badge("charging", "open") : when(tx.stopped_at)), h("td", { class: "num" }, kwh(tx.energy_wh)),
    h("td", {}, tx.stop_reason || "—"), h("td", {}, tx.flags.map((f) => h("span", { class: "tag" }, f)))));
}

const SESSION_HEAD = [["EVSE"], ["Transaction"], ["ID tag"], ["Started"], ["Stopped"], ["Energy (kWh)", "num"], ["Reason"], ["Flags"]];
const HISTORY_PAGE = 20;

function sessionHistory(id) {
  const box = h("div");
  let result = null;
  const pages = cursorPages((cursor) => fetchPage("/api/transactions", { charger_id: id, sort: "started_at:desc", limit: HISTORY_PAGE, cursor }), (r) => { result = r; });
  const render = () => {
    if (!result.ok) { box.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load sessions: ${detailOf(result)}`)); return; }
    box.replaceChildren(table(SESSION_HEAD, sessionRows(result.rows, false), { empty: "No session on this station yet." }),
      cursorPager(pages, result.rows.length, result.next, HISTORY_PAGE, render));
  };
  pages.first().then(render);
  return box;
}

// A listing the server does not serve (an older CSMS: FastAPI's plain "Not Found"), or one it
// says is off (e.g. "alarms are disabled"), is not an error: say so plainly.
function notAvailable(what, r) {
  if (r.status !== 404) return null;
  const said = r.data && typeof r.data.detail === "string" && r.data.detail !== "Not Found" ? r.data.detail : null;
  return h("div", { class: "notice", "data-state": "unavailable" }, h("h2", {}, `${what} not available`),
    h("p", {}, said ? `The CSMS says: ${said}.` : `This CSMS does not serve ${what.toLowerCase()}.`));
}


const EVENT_PAGE = 50;
const EVENT_POLL_MS = 5000;

// The station's events, newest first. The first page follows new events: re-read shortly after
// the station changes (events are stored about a second after they arrive) and every 5 s.
function eventsTimeline(id) {
  const box = h("div");
  const kind = h("input", { type: "search", name: "type", placeholder: "e.g. StatusNotification", autocomplete: "off" });
  const list = h("div");
  let result = null, soonTimer = null, typing = null;
  const pages = cursorPages((cursor) => api("GET", `/api/chargers/${encodeURIComponent(id)}/events?${new URLSearchParams(
      Object.entries({ type: kind.value.trim(), limit: EVENT_PAGE, cursor }).filter(([, v]) => v))}`), (r) => { result = r; });
  const render = () => {
    const missing = notAvailable("Event history", result);
    if (missing) { box.replaceChildren(missing); clearInterval(poll); return; }
    if (!result.ok) { list.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load events: ${detailOf(result)}`)); return; }
    const items = result.data.items || [];
    list.replaceChildren(items.length ? h("ol", { class: "timeline" }, items.map((ev) => h("li", { "data-event": ev.id },
      h("time", { datetime: ev.at, title: ev.station_time ? `station time ${ev.station_time}` : null }, when(ev.at)),
      h("strong", {}, ev.type), " ", h("code", {}, summarize(ev.data))))) : h("p", { class: "muted" }, "No event recorded."),
    cursorPager(pages, items.length, result.data.next_cursor, EVENT_PAGE, render));
  };
  const follow = () => { if (!pages.depth && !document.hidden) pages.first().then(render); };
  const poll = setInterval(follow, EVENT_POLL_MS);
  kind.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(() => pages.first().then(render), 250); });
  box.append(h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() }, field("Event type", kind)), list);
  pages.first().then(render);
  return {
    el: box,
    soon() { clearTimeout(soonTimer); soonTimer = setTimeout(follow, 1500); },
    stop() { clearInterval(poll); clearTimeout(soonTimer); clearTimeout(typing); },
  };
}

function registration(id) {
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const form = stationForm(id, (r) => {
    msg.className = r.ok ? "muted" : "form-error";
    msg.textContent = r.ok ? `Saved: security profile ${r.data.security_profile}.` : `Could not save: ${detailOf(r)}`;
  });
  api("GET", `/api/chargers/${encodeURIComponent(id)}`).then((r) => { if (r.ok) form.setProfile(r.data.security_profile); });
  const remove = h("button", {
    type: "button", class: "btn btn-danger", "aria-label": `Remove ${id}`,
    onclick: async (e) => {
      if (e.target.dataset.armed !== "1") {
        e.target.dataset.armed = "1"; e.target.textContent = "Confirm removal";
        setTimeout(() => { e.target.dataset.armed = ""; e.target.textContent = "Remove station"; }, 4000);
        return;
      }
      const r = await api("DELETE", `/api/chargers/${encodeURIComponent(id)}`);
      if (r.ok) { location.hash = "#/stations"; return; }
      msg.className = "form-error"; msg.textContent = `Could not remove ${id}: ${detailOf(r)}`;
    },
  }, "Remove station");
  return h("div", {}, form, msg, h("h3", {}, "Remove"),
    h("p", { class: "muted" }, "Deletes the registration and closes the station's connection; its sessions stay in the history."), remove);
}

function currentText(phases) {
  // One number when the phases agree (or only L1 is used), else L1 / L2 / L3.
  if (!phases) return "—";
  const used = phases.filter((x, i) => i === 0 || x);
  const same = used.every((x) => Math.abs(x - used[0]) < 0.05);
  return same ? num(used[0], 1) : used.map((x) => num(x, 1)).join(" / ");
}

function energyOf(tx, station) {
  // Energy of an active session from the station's live register, else what the API computed.
  const evse = station && station.evses.find((e) => e.evse_id === tx.evse_id);
  const reg = evse && evse.energy_register_wh;
  if (tx.active && reg !== null && reg !== undefined && tx.meter_start_wh !== null && reg >= tx.meter_start_wh) return reg - tx.meter_start_wh;
  return tx.energy_wh;
}

// --- sessions
const SESSIONS_PAGE = 50;
const localInput = (iso) => (iso ? new Date(new Date(iso).getTime() - new Date(iso).getTimezoneOffset() * 60000).toISOString().slice(0, 16) : "");

function sessionsView(main, _params, query) {
  const q = h("input", { type: "search", placeholder: "Station or ID tag", autocomplete: "off" });
  const from = h("input", { type: "datetime-local", name: "from", value: localInput(query.get("from")) });
  const to = h("input", { type: "datetime-local", name: "to", value: localInput(query.get("to")) });
  const station = h("input", { type: "search", name: "charger_id", value: query.get("station") || "", placeholder: "Exact station id", autocomplete: "off" });
  const activeBox = h("div"), pastBox = h("div"), note = h("p", { class: "muted", role: "status" });
  let active = [], past = null;
  main.append(pageHead("Sessions", "Open sessions update live; completed sessions by start time, newest first, in pages."),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() }, h("div", { class: "grow" }, field("Filter", q))),
    note,
    h("section", { class: "panel", "aria-labelledby": "h-active" }, h("h2", { id: "h-active" }, "Active sessions"), activeBox),
    h("section", { class: "panel", "aria-labelledby": "h-past" }, h("h2", { id: "h-past" }, "Completed sessions"),
      h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
        field("Started from", from), field("Started before", to), field("Station", station),
        h("div", {}, h("button", { type: "button", class: "btn btn-small", onclick: () => { from.value = ""; to.value = ""; station.value = ""; reselect(); } }, "Clear"))),
      pastBox));
  const match = (tx) => { const n = q.value.trim().toLowerCase(); return !n || tx.charger_id.toLowerCase().includes(n) || (tx.id_tag || "").toLowerCase().includes(n); };
  const renderActive = () => activeBox.replaceChildren(table(
    [["Station"], ["EVSE"], ["Transaction"], ["ID tag"], ["Started"], ["Duration"], ["Power (kW)", "num"], ["Energy (kWh)", "num"]],
    active.filter(match).map((tx) => {
      const s = state.stations.get(tx.charger_id);
      const evse = s && s.evses.find((e) => e.evse_id === tx.evse_id);
      return h("tr", { "data-tx": tx.id }, h("td", {}, stationLink(tx.charger_id)), h("td", {}, tx.evse_id), h("td", { class: "mono" }, String(tx.id)),
        h("td", { class: "mono" }, tx.id_tag || "—"), h("td", {}, when(tx.started_at)), h("td", {}, duration(tx.started_at)),
        h("td", { class: "num" }, kw(evse && evse.power_w)), h("td", { class: "num", "data-field": "energy" }, kwh(energyOf(tx, s))));
    }), { empty: "No open session." }));
  const iso = (input) => (input.value ? new Date(input.value).toISOString() : null);
  const pages = cursorPages((cursor) => fetchPage("/api/transactions", {
      active: "false", sort: "started_at:desc", limit: SESSIONS_PAGE, cursor,
      from: iso(from), to: iso(to), charger_id: station.value.trim(),
    }), (r) => { past = r; });
  const renderPast = () => {
    if (!past) return;
    if (!past.ok) { pastBox.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load sessions: ${detailOf(past)}`)); return; }
    pastBox.replaceChildren(table([["Station"], ...SESSION_HEAD], sessionRows(past.rows.filter(match), true),
      { empty: "No completed session in this range." }),
    cursorPager(pages, past.rows.length, past.next, SESSIONS_PAGE, renderPast));
  };
  const reselect = () => {
    const p = new URLSearchParams();
    if (from.value) p.set("from", iso(from));
    if (to.value) p.set("to", iso(to));
    if (station.value.trim()) p.set("station", station.value.trim());
    history.replaceState(null, "", `#/sessions${p.size ? `?${p}` : ""}`);
    pages.first().then(renderPast);
  };
  let timer = null;
  const load = async () => {
    // the first page of completed sessions follows sessions ending; later pages stay put
    const [a] = await Promise.all([api("GET", "/api/transactions?active=true&limit=1000"),
      pages.depth ? null : pages.first().then(renderPast)]);
    note.textContent = a.ok ? "" : `Could not load sessions: ${detailOf(a)}`;
    if (a.ok) active = a.data;
    renderActive();
  };
  for (const input of [from, to]) input.addEventListener("change", reselect);
  let typing = null;
  station.addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(reselect, 300); });
  q.addEventListener("input", () => { renderActive(); renderPast(); });
  load();
  return {
    update(change) {
      if (change.type === "summary" || change.type === "snapshot") { clearTimeout(timer); timer = setTimeout(load, 300); return; }
      if ([...change.ids].some((id) => active.some((tx) => tx.charger_id === id))) renderActive();
    },
    unmount() { clearTimeout(timer); clearTimeout(typing); },
  };
}

// --- alarms and audit (served by other parts of the CSMS; "not available" until they are)
const ALARM_PAGE = 100;
const SEVERITY_STATE = { critical: "faulted", major: "occupied", warning: "unknown" };

function alarmsView(main, _params, query) {
  const body = h("div"), msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const which = select("state", [["active", "Active"], ["all", "All, cleared included"]], query.get("state") || "active");
  let result = null;
  main.append(pageHead("Alarms", "Conditions the CSMS raised on stations, newest first; acknowledge them once handled."),
    h("form", { class: "filters", onsubmit: (e) => e.preventDefault() }, field("Show", which)), msg, body);
  const pages = cursorPages((cursor) => fetchPage("/api/alarms", { state: which.value, limit: ALARM_PAGE, cursor }), (r) => { result = r; });
  const ack = async (a) => {
    const x = await api("POST", `/api/alarms/${encodeURIComponent(a.id)}/ack`);
    msg.className = x.ok ? "muted" : "form-error";
    msg.textContent = x.ok ? `Acknowledged ${a.kind} on ${a.charger_id || "the CSMS"}.` : `Could not acknowledge: ${detailOf(x)}`;
    await pages.again();
    render();
  };
  const render = () => {
    const missing = notAvailable("Alarms", result);
    if (missing) { body.replaceChildren(missing); return; }
    if (!result.ok) { body.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load alarms: ${detailOf(result)}`)); return; }
    body.replaceChildren(h("section", { class: "panel" }, table(
      [["Raised"], ["Station"], ["Kind"], ["Severity"], ["State"], ["Detail"], ["Acknowledged"], ["", "actions"]],
      result.rows.map((a) => h("tr", { "data-alarm": a.id }, h("td", {}, when(a.raised_at)), h("td", {}, a.charger_id ? stationLink(a.charger_id) : "—"),
        h("td", {}, a.kind), h("td", {}, badge(SEVERITY_STATE[a.severity] || "unknown", a.severity)),
        h("td", {}, a.cleared_at ? `cleared ${when(a.cleared_at)}` : a.state), h("td", {}, a.detail || "—"),
        h("td", {}, a.acknowledged_at ? `${a.acknowledged_by || "—"}, ${when(a.acknowledged_at)}` : "—"),
        h("td", { class: "actions" }, a.acknowledged_at ? null : h("button", {
          type: "button", class: "btn btn-small", "aria-label": `Acknowledge alarm ${a.id}`, onclick: () => ack(a),
        }, "Acknowledge")))),
      { empty: which.value === "active" ? "No active alarm." : "No alarm recorded." }),
    cursorPager(pages, result.rows.length, result.next, ALARM_PAGE, render)));
  };
  which.addEventListener("change", () => { history.replaceState(null, "", `#/alarms?state=${which.value}`); pages.first().then(render); });
  pages.first().then(render);
  return { update() {} };
}

const AUDIT_PAGE = 50;

function auditView(main) {
  const body = h("div");
  let result = null;
  main.append(pageHead("Audit", "Who changed what through the API and the console, newest first."), body);
  const pages = cursorPages((cursor) => api("GET", `/api/audit?limit=${AUDIT_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`), (r) => { result = r; });
  const render = () => {
    const missing = notAvailable("Audit log", result);
    if (missing) { body.replaceChildren(missing); return; }
    if (!result.ok) { body.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load the audit log: ${detailOf(result)}`)); return; }
    const items = result.data.items || [];
    body.replaceChildren(h("section", { class: "panel" },
      table([["Time"], ["Actor"], ["Action"], ["Target"], ["Result"], ["Digest"]],
        items.map((e) => h("tr", { "data-audit": e.id }, h("td", {}, when(e.at)), h("td", {}, e.actor), h("td", {}, e.action),
          h("td", { class: "mono" }, e.target || "—"), h("td", {}, e.result), h("td", { class: "mono digest", title: e.digest }, (e.digest || "").slice(0, 12)))),
        { empty: "Nothing recorded yet." }),
      cursorPager(pages, items.length, result.data.next_cursor, AUDIT_PAGE, render)));
  };
  pages.first().then(render);
  return { update() {} };
}

// --- feeders
function feedersView(main) {
  const body = h("div");
  let nodes = null;
  main.append(pageHead("Feeders", "Load against limit per node of the grid tree, and each charger's allocation."), body);
  const render = () => {
    if (!Array.isArray(nodes)) return;
    if (!nodes.length) { body.replaceChildren(h("div", { class: "notice" }, h("h2", {}, "No feeder nodes"), h("p", {}, "The balancer runs without any node."))); return; }
    const kids = new Map();
    const ids = new Set(nodes.map((n) => n.id));
    for (const n of nodes) {
      const parent = n.parent_id && ids.has(n.parent_id) ? n.parent_id : null;
      if (!kids.has(parent)) kids.set(parent, []);
      kids.get(parent).push(n);
    }
    const branch = (parent) => (kids.get(parent) || []).sort((a, b) => byId(a.id, b.id)).map((n) => h("li", { class: "node", "data-node": n.id },
      nodeRow(n), (kids.get(n.id) || []).length ? h("ul", {}, branch(n.id)) : null));
    body.replaceChildren(
      h("div", { class: "legend", "aria-hidden": "true" },
        h("span", { class: "lg-ok" }, "measured load < 80 %"), h("span", { class: "lg-warn" }, "80–100 %"),
        h("span", { class: "lg-over" }, "over the limit"), h("span", { class: "lg-alloc" }, "allocated to chargers")),
      h("section", { class: "panel" }, h("ul", { class: "tree", "aria-label": "Feeder tree" }, branch(null))));
  };
  const load = async () => {
    const r = await api("GET", "/api/feeders");
    if (r.status === 404) {
      nodes = null;
      body.replaceChildren(h("div", { class: "notice" }, h("h2", {}, "Load balancing not configured"),
        h("p", {}, "This CSMS has no feeder tree, so no feeder limits are enforced. Configure ",
          h("code", {}, "[balancer]"), " nodes and EVSEs to see load against limits here."),
        r.data && r.data.detail && r.data.detail !== "Not Found" ? h("p", { class: "muted" }, r.data.detail) : null));
      return;
    }
    if (!r.ok) { body.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load feeders: ${detailOf(r)}`)); return; }
    nodes = r.data;
    render();
  };
  live.followFeeders(true);
  load();
  return {
    update(change) {
      if (change.type !== "feeders" || !Array.isArray(nodes)) return;
      const byNode = new Map(nodes.map((n) => [n.id, n]));
      for (const upd of change.frame.nodes) {
        const old = byNode.get(upd.id);
        if (!old) { load(); return; }
        const chargers = new Map((old.chargers || []).map((c) => [`${c.station_id}/${c.evse_id}`, c]));
        for (const c of upd.chargers) chargers.set(`${c.station_id}/${c.evse_id}`, { ...chargers.get(`${c.station_id}/${c.evse_id}`), ...c });
        Object.assign(old, upd, { chargers: [...chargers.values()] });
      }
      render();
    },
    unmount() { live.followFeeders(false); },
  };
}

function nodeRow(n) {
  const limit = n.limit_a;
  const pct = (v) => (limit ? Math.min(100, (100 * (v || 0)) / limit) : 0);
  const ratio = limit ? (n.measured_a || 0) / limit : 0;
  const level = ratio > 1 ? "over" : ratio >= 0.8 ? "warn" : "ok";
  const label = limit ? `${num(n.measured_a, 1)} A of ${num(limit, 0)} A (${Math.round(ratio * 100)} %)` : `${num(n.measured_a, 1)} A, no limit`;
  const chargers = (n.chargers || []).slice().sort((a, b) => byId(`${a.station_id}/${a.evse_id}`, `${b.station_id}/${b.evse_id}`));
  return h("div", {},
    h("div", { class: "node-head" },
      h("span", { class: "node-name" }, `${n.id} `,
        n.meter_stale ? h("span", { class: "badge s-faulted", title: "No meter reading within balancer.meter_max_age_s: nothing is assigned under this node until its meter reports again" }, "meter silent") : null),
      h("div", {
        class: "load", role: "meter", "aria-label": `Load of ${n.id}`, "aria-valuemin": 0,
        "aria-valuemax": limit || 0, "aria-valuenow": n.measured_a || 0, "aria-valuetext": label,
      },
      h("div", { class: `load-fill ${level}`, style: { width: `${pct(n.measured_a)}%` } }),
      limit ? h("div", { class: "load-alloc", style: { left: `calc(${pct(n.allocated_a)}% - 1px)` }, title: `allocated ${num(n.allocated_a, 1)} A` }) : null),
      h("span", { class: "node-nums" }, h("strong", {}, label), ` · allocated ${num(n.allocated_a, 1)} A · headroom ${n.headroom_a === null || n.headroom_a === undefined ? "—" : `${num(n.headroom_a, 1)} A`}`)),
    chargers.length ? table([["Charger"], ["EVSE"], ["Allocated (A)", "num"], ["Measured (A)", "num"], ["Session"]],
      chargers.map((c) => h("tr", {}, h("td", {}, stationLink(c.station_id)), h("td", {}, c.evse_id),
        h("td", { class: "num" }, num(c.allocated_a, 1)), h("td", { class: "num" }, num(c.measured_a, 1)),
        h("td", {}, c.charging === undefined ? "—" : c.charging ? "charging" : "idle"))), { cls: "alloc" }) : null);
}

// --- id tags
const TAG_STATUSES = ["Accepted", "Blocked", "Expired", "Invalid"];
const TAG_STATE = { Accepted: "available", Blocked: "faulted", Expired: "unavailable", Invalid: "offline" };

function idTagsView(main) {
  const listBox = h("div"), msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const q = h("input", { type: "search", placeholder: "ID tag or parent", autocomplete: "off" });
  let tags = [];
  const form = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); save(e.target); } },
    field("ID tag", h("input", { name: "id_tag", required: true, maxlength: 255, autocomplete: "off" })),
    field("Status", select("status", TAG_STATUSES.map((s) => [s, s]), "Accepted")),
    field("Expires (optional)", h("input", { name: "expiry", type: "datetime-local" })),
    field("Parent (optional)", h("input", { name: "parent", maxlength: 255, autocomplete: "off" })),
    h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Add or update")));
  main.append(pageHead("ID tags", "Tokens the CSMS authorises; a blocked tag is refused at the next Authorize."),
    h("section", { class: "panel", "aria-labelledby": "h-add" }, h("h2", { id: "h-add" }, "Add or update a tag"), form, msg),
    h("section", { class: "panel", "aria-labelledby": "h-tags" }, h("h2", { id: "h-tags" }, "Tags"),
      h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() }, h("div", { class: "grow" }, field("Filter", q))), listBox));

  async function put(tag, done) {
    const r = await api("POST", "/api/id-tags", tag);
    msg.className = r.ok ? "muted" : "form-error";
    msg.textContent = r.ok ? done : `Could not save ${tag.id_tag}: ${detailOf(r)}`;
    await load();
  }
  function save(f) {
    const expiry = f.elements.expiry.value ? new Date(f.elements.expiry.value).toISOString() : null;
    const tag = { id_tag: f.elements.id_tag.value.trim(), status: f.elements.status.value, expiry, parent: f.elements.parent.value.trim() || null };
    put(tag, `Saved ${tag.id_tag} (${tag.status}).`).then(() => f.reset());
  }
  function render() {
    const n = q.value.trim().toLowerCase();
    listBox.replaceChildren(table([["ID tag"], ["Status"], ["Expires"], ["Parent"], ["", "actions"]],
      tags.filter((t) => !n || t.id_tag.toLowerCase().includes(n) || (t.parent || "").toLowerCase().includes(n)).map((t) => {
        const blocked = t.status === "Blocked";
        const del = h("button", {
          type: "button", class: "btn btn-small btn-danger", "aria-label": `Delete ${t.id_tag}`,
          onclick: async (e) => {
            if (e.target.dataset.armed !== "1") {
              e.target.dataset.armed = "1"; e.target.textContent = "Confirm delete";
              setTimeout(() => { e.target.dataset.armed = ""; e.target.textContent = "Delete"; }, 4000);
              return;
            }
            const r = await api("DELETE", `/api/id-tags/${encodeURIComponent(t.id_tag)}`);
            msg.className = r.ok ? "muted" : "form-error";
            msg.textContent = r.ok ? `Deleted ${t.id_tag}.` : `Could not delete ${t.id_tag}: ${detailOf(r)}`;
            load();
          },
        }, "Delete");
        return h("tr", { "data-tag": t.id_tag }, h("td", { class: "mono" }, t.id_tag), h("td", {}, badge(TAG_STATE[t.status] || "unknown", t.status)),
          h("td", {}, t.expiry ? when(t.expiry) : "never"), h("td", { class: "mono" }, t.parent || "—"),
          h("td", { class: "actions" },
            h("button", {
              type: "button", class: "btn btn-small", "aria-label": `${blocked ? "Unblock" : "Block"} ${t.id_tag}`,
              onclick: () => put({ ...t, status: blocked ? "Accepted" : "Blocked" }, `${blocked ? "Unblocked" : "Blocked"} ${t.id_tag}.`),
            }, blocked ? "Unblock" : "Block"), " ", del));
      }), { empty: "No ID tag yet." }));
  }
  async function load() {
    const r = await api("GET", "/api/id-tags");
    if (!r.ok) { msg.className = "form-error"; msg.textContent = `Could not load tags: ${detailOf(r)}`; return; }
    tags = r.data.sort((a, b) => byId(a.id_tag, b.id_tag));
    render();
  }
  q.addEventListener("input", render);
  load();
  return { update() {} };
}

// ---------------------------------------------------------------- router
const ROUTES = [
  [/^\/?$/, "overview", overview, "Overview"],
  [/^\/stations$/, "stations", stationsView, "Stations"],
  [/^\/stations\/([^/]+)$/, "stations", stationView, null],
  [/^\/sessions$/, "sessions", sessionsView, "Sessions"],
  [/^\/feeders$/, "feeders", feedersView, "Feeders"],
  [/^\/id-tags$/, "id-tags", idTagsView, "ID tags"],
  [/^\/alarms$/, "alarms", alarmsView, "Alarms"],
  [/^\/audit$/, "audit", auditView, "Audit"],
];

let current = null;

function route(initial) {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, qs] = raw.split("?");
  const main = document.getElementById("main");
  if (current && current.unmount) current.unmount();
  main.replaceChildren();
  const found = ROUTES.find(([re]) => re.test(path));
  const [re, nav, view, title] = found || ROUTES[0];
  const params = (path.match(re) || []).slice(1).map(decodeURIComponent);
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (title) document.title = `${title} · CSMS console`;
  current = view(main, params, new URLSearchParams(qs || ""));
  if (!initial) (main.querySelector("h1") || main).focus();
}

// The server already coalesces station changes (a few frames a second at most).
live.onchange = (change) => { if (current) current.update(change); };

// Pages in their own modules (e.g. firmware.js) import what they need from here and register
// their routes; routing starts once every module of the page has run.
function registerRoute(re, nav, view, title) {
  ROUTES.push([re, nav, view, title]);
}

export {
  h, append, setText, num, kw, kwh, byId, clock, when, ago, duration, badge, stationLink, table, field,
  select, api, detailOf, state, live, pageHead, kpi, fetchPage, sortableHead, pager, cursorPages,
  cursorPager, notAvailable, localInput, registerRoute,
};

window.addEventListener("hashchange", () => route(false));
document.addEventListener("DOMContentLoaded", () => { route(true); live.connect(); });
