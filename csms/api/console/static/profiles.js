// Station page #/stations/<id>/profiles: charging profiles set by hand and the composite schedule
// (both OCPP versions), and on 2.0.1 stations display messages and variable monitors.
// Everything goes through the operator API (/api/chargers/<id>/...); text only, never innerHTML.
import { h, api, detailOf, field, select, table, pageHead, when, state, registerRoute } from "./console.js";

const MAX_PURPOSE = { "ocpp1.6": "ChargePointMaxProfile", "ocpp2.0.1": "ChargingStationMaxProfile" };

function answerLine(list, text, ok) {
  for (const old of list.querySelectorAll(".placeholder")) old.remove();
  list.prepend(h("li", { class: ok ? "ok" : "err" }, text));
}

function answerList(label) {
  return h("ul", { class: "results", "aria-live": "polite", "aria-label": label },
    h("li", { class: "placeholder" }, "The station's answers appear here."));
}

const num = (name, value, attrs) => h("input", { type: "number", name, value, required: true, ...attrs });
const text = (name, attrs) => h("input", { type: "text", name, autocomplete: "off", ...attrs });
const status = (r) => (r.ok ? `${r.data.status}${r.data.detail ? ` (${r.data.detail})` : ""}` : `failed (${r.status}): ${detailOf(r)}`);

function profilesSection(id, protocol) {
  const base = `/api/chargers/${encodeURIComponent(id)}`;
  const list = h("div");
  const answers = answerList("Answers to profile commands");
  const composite = h("div");

  async function reload() {
    const r = await api("GET", `${base}/charging-profiles?limit=100`);
    if (!r.ok) { list.replaceChildren(h("p", { class: "err" }, detailOf(r))); return; }
    const rows = r.data.items.map((p) => h("tr", { "data-profile": p.profile_id },
      h("td", { class: "mono" }, String(p.profile_id)), h("td", {}, p.evse_id), h("td", {}, p.purpose),
      h("td", {}, p.stack_level), h("td", {}, `${p.kind} ${p.unit}`),
      h("td", {}, p.periods.map((x) => `${x.start_s}s→${x.limit}`).join(", ")),
      h("td", {}, p.source), h("td", {}, p.status), h("td", {}, when(p.set_at)),
      h("td", {}, h("button", { type: "button", class: "btn btn-small", onclick: () => clear(p.profile_id) }, "Clear"))));
    for (const p of r.data.balancer || []) {
      rows.push(h("tr", { "data-profile": p.profile_id }, h("td", { class: "mono" }, String(p.profile_id)), h("td", {}, p.evse_id),
        h("td", {}, p.purpose), h("td", {}, "—"), h("td", {}, `${p.kind} ${p.unit}`),
        h("td", {}, p.periods.map((x) => `${x.start_s}s→${x.limit}`).join(", ")), h("td", {}, p.source), h("td", {}, p.status),
        h("td", {}, "now"), h("td", {})));
    }
    list.replaceChildren(table([["Id"], ["EVSE"], ["Purpose"], ["Stack"], ["Kind"], ["Periods"], ["Source"],
      ["Answer"], ["Set"], [""]], rows, { empty: "No profile set by hand." }));
  }

  async function clear(profileId) {
    const r = await api("DELETE", `${base}/charging-profiles/${profileId}`);
    answerLine(answers, `ClearChargingProfile ${profileId} → ${status(r)}`, r.ok && r.data.status === "Accepted");
    reload();
  }

  const purposes = [["TxDefaultProfile", "TxDefaultProfile"], ["TxProfile", "TxProfile"],
    [MAX_PURPOSE[protocol] || "ChargePointMaxProfile", MAX_PURPOSE[protocol] || "ChargePointMaxProfile"]];
  const form = h("form", { class: "action", "aria-label": "Set a charging profile", onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const periods = f.periods.value.split(",").map((part) => part.trim()).filter(Boolean).map((part) => {
      const [start, limit] = part.split(":").map(Number);
      return { start_s: start, limit };
    });
    const body = { profile_id: Number(f.profile_id.value), evse_id: Number(f.evse_id.value), purpose: f.purpose.value,
      stack_level: Number(f.stack_level.value), kind: f.kind.value, unit: f.unit.value, periods };
    if (f.transaction_id.value.trim()) body.transaction_id = f.transaction_id.value.trim();
    const r = await api("POST", `${base}/charging-profiles`, body);
    answerLine(answers, `SetChargingProfile ${body.profile_id} → ${status(r)}`, r.ok && r.data.status === "Accepted");
    reload();
  } },
  h("h3", {}, "Set a profile"),
  h("div", { class: "row" },
    field("Profile id", num("profile_id", 1, { min: 1 })), field("EVSE", num("evse_id", 1, { min: 0 })),
    field("Purpose", select("purpose", purposes, "TxDefaultProfile")), field("Stack level", num("stack_level", 0, { min: 0 })),
    field("Kind", select("kind", [["Absolute", "Absolute"], ["Relative", "Relative"]], "Absolute")),
    field("Unit", select("unit", [["A", "A"], ["W", "W"]], "A")),
    field("Periods (start_s:limit, …)", text("periods", { value: "0:16", required: true, size: 18 })),
    field("Transaction id", text("transaction_id", { size: 10 })),
    h("button", { type: "submit", class: "btn btn-primary" }, "Set profile")));

  const compForm = h("form", { class: "action", "aria-label": "Composite schedule", onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const q = `evse_id=${Number(f.evse_id.value)}&duration_s=${Number(f.duration_s.value)}&unit=${f.unit.value}`;
    const r = await api("GET", `${base}/composite-schedule?${q}`);
    if (!r.ok) { composite.replaceChildren(h("p", { class: "err" }, detailOf(r))); return; }
    const rows = r.data.periods.map((p) => h("tr", {}, h("td", { class: "num" }, p.start_s), h("td", { class: "num" }, p.limit),
      h("td", {}, p.number_phases ?? "—")));
    composite.replaceChildren(h("p", { class: "muted", "data-status": r.data.status },
      `${r.data.status}: from ${when(r.data.schedule_start)} for ${r.data.duration_s ?? "—"} s in ${r.data.unit ?? "—"}`),
    table([["Start (s)", "num"], ["Limit", "num"], ["Phases"]], rows, { empty: "No schedule." }));
  } },
  h("h3", {}, "Composite schedule"),
  h("div", { class: "row" }, field("EVSE", num("evse_id", 1, { min: 0 })), field("Duration (s)", num("duration_s", 3600, { min: 1 })),
    field("Unit", select("unit", [["A", "A"], ["W", "W"]], "A")), h("button", { type: "submit", class: "btn" }, "Get schedule")),
  composite);

  const installed = h("div");
  const askStation = protocol !== "ocpp2.0.1" ? null : h("form", { class: "action", "aria-label": "Installed on the station", onsubmit: async (e) => {
    e.preventDefault();
    installed.replaceChildren(h("p", { class: "muted" }, "Asking the station…"));
    const r = await api("GET", `${base}/charging-profiles/reported?wait_s=5`);
    if (!r.ok) { installed.replaceChildren(h("p", { class: "err" }, detailOf(r))); return; }
    const rows = r.data.profiles.map((p) => h("tr", { "data-installed": p.profile.id },
      h("td", { class: "mono" }, String(p.profile.id)), h("td", {}, p.evse_id), h("td", {}, p.profile.chargingProfilePurpose),
      h("td", {}, p.profile.stackLevel), h("td", {}, p.source || "—"), h("td", {}, p.limit_source || "—")));
    installed.replaceChildren(table([["Id"], ["EVSE"], ["Purpose"], ["Stack"], ["Source"], ["Limit source"]], rows,
      { empty: "The station has no profile installed." }));
  } },
  h("h3", {}, "Installed on the station"),
  h("div", { class: "row" }, h("button", { type: "submit", class: "btn" }, "Ask the station")), installed);

  reload();
  return h("section", { class: "panel", "aria-labelledby": "h-profiles" },
    h("h2", { id: "h-profiles" }, "Charging profiles", h("span", { class: "aside muted" }, "set by hand; the balancer's are marked by source")),
    list, form, answers, compForm, askStation);
}

function displaySection(id) {
  const base = `/api/chargers/${encodeURIComponent(id)}`;
  const list = h("div");
  const answers = answerList("Answers to display-message commands");

  async function reload() {
    list.replaceChildren(h("p", { class: "muted" }, "Asking the station…"));
    const r = await api("GET", `${base}/display-messages?wait_s=5`);
    if (!r.ok) { list.replaceChildren(h("p", { class: "err" }, detailOf(r))); return; }
    const rows = r.data.messages.map((m) => h("tr", { "data-message": m.id },
      h("td", { class: "mono" }, String(m.id)), h("td", {}, m.priority), h("td", {}, m.state || "any"),
      h("td", {}, m.message.content), h("td", {}, m.message.format),
      h("td", {}, h("button", { type: "button", class: "btn btn-small", onclick: () => clear(m.id) }, "Clear"))));
    list.replaceChildren(table([["Id"], ["Priority"], ["State"], ["Content"], ["Format"], [""]], rows,
      { empty: "The station shows no message." }));
  }

  async function clear(messageId) {
    const r = await api("DELETE", `${base}/display-messages/${messageId}`);
    answerLine(answers, `ClearDisplayMessage ${messageId} → ${status(r)}`, r.ok && r.data.status === "Accepted");
    reload();
  }

  const form = h("form", { class: "action", "aria-label": "Set a display message", onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const body = { id: Number(f.id.value), priority: f.priority.value, content: f.content.value, format: f.format.value };
    if (f.state.value) body.state = f.state.value;
    if (f.language.value.trim()) body.language = f.language.value.trim();
    const r = await api("POST", `${base}/display-messages`, body);
    answerLine(answers, `SetDisplayMessage ${body.id} → ${status(r)}`, r.ok && r.data.status === "Accepted");
    reload();
  } },
  h("h3", {}, "Show a message"),
  h("div", { class: "row" },
    field("Id", num("id", 1, { min: 1 })),
    field("Priority", select("priority", [["NormalCycle", "NormalCycle"], ["InFront", "InFront"], ["AlwaysFront", "AlwaysFront"]], "NormalCycle")),
    field("State", select("state", [["", "any"], ["Idle", "Idle"], ["Charging", "Charging"], ["Faulted", "Faulted"], ["Unavailable", "Unavailable"]], "")),
    field("Format", select("format", [["UTF8", "UTF8"], ["ASCII", "ASCII"], ["URI", "URI"], ["HTML", "HTML"]], "UTF8")),
    field("Language", text("language", { size: 4, maxlength: 8 })),
    field("Content", text("content", { required: true, maxlength: 512, size: 28 })),
    h("button", { type: "submit", class: "btn btn-primary" }, "Set message")));

  reload();
  return h("section", { class: "panel", "aria-labelledby": "h-display" },
    h("h2", { id: "h-display" }, "Display messages", h("span", { class: "aside muted" }, "as the station reports them")),
    list, form, answers);
}

function monitorsSection(id) {
  const base = `/api/chargers/${encodeURIComponent(id)}`;
  const answers = answerList("Answers to monitoring commands");

  const form = h("form", { class: "action", "aria-label": "Add a monitor", onsubmit: async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const m = { component: f.component.value.trim(), variable: f.variable.value.trim(), type: f.type.value,
      value: Number(f.value.value), severity: Number(f.severity.value) };
    if (f.evse_id.value) m.evse_id = Number(f.evse_id.value);
    const r = await api("POST", `${base}/monitors`, { monitors: [m] });
    if (!r.ok) { answerLine(answers, `SetVariableMonitoring → ${status(r)}`, false); return; }
    for (const x of r.data.results) {
      const ok = x.status === "Accepted";
      answerLine(answers, `Monitor ${x.component}/${x.variable} ${x.type} → ${x.status}${ok ? ` (id ${x.id})` : ""}`, ok);
    }
  } },
  h("h3", {}, "Add a monitor"),
  h("div", { class: "row" },
    field("Component", text("component", { value: "ChargingStation", required: true, maxlength: 50, size: 14 })),
    field("EVSE", h("input", { type: "number", name: "evse_id", min: 1 })),
    field("Variable", text("variable", { value: "Temperature", required: true, maxlength: 50, size: 12 })),
    field("Type", select("type", ["UpperThreshold", "LowerThreshold", "Delta", "Periodic", "PeriodicClockAligned"].map((t) => [t, t]), "UpperThreshold")),
    field("Value", num("value", 40, { step: "any" })), field("Severity", num("severity", 5, { min: 0, max: 9 })),
    h("button", { type: "submit", class: "btn btn-primary" }, "Add monitor")));

  const clearForm = h("form", { class: "action", "aria-label": "Remove a monitor", onsubmit: async (e) => {
    e.preventDefault();
    const monitorId = Number(e.target.elements.monitor_id.value);
    const r = await api("DELETE", `${base}/monitors/${monitorId}`);
    answerLine(answers, `ClearVariableMonitoring ${monitorId} → ${status(r)}`, r.ok && r.data.status === "Accepted");
  } },
  h("div", { class: "row" }, field("Monitor id", num("monitor_id", 1, { min: 0 })), h("button", { type: "submit", class: "btn" }, "Remove monitor")));

  const baseForm = h("form", { class: "action", "aria-label": "Monitoring base", onsubmit: async (e) => {
    e.preventDefault();
    const r = await api("POST", `${base}/monitoring-base`, { base: e.target.elements.base.value });
    answerLine(answers, `SetMonitoringBase → ${status(r)}`, r.ok && r.data.status === "Accepted");
  } },
  h("div", { class: "row" }, field("Monitoring base", select("base", [["All", "All"], ["FactoryDefault", "FactoryDefault"], ["HardWiredOnly", "HardWiredOnly"]], "All")),
    h("button", { type: "submit", class: "btn" }, "Set base")));

  return h("section", { class: "panel", "aria-labelledby": "h-monitors" },
    h("h2", { id: "h-monitors" }, "Monitors", h("span", { class: "aside muted" }, h("a", { href: `#/stations/${encodeURIComponent(id)}` }, "their events are on the station page"))),
    form, clearForm, baseForm, answers);
}

function operatorView(main, params) {
  const id = params[0];
  const body = h("div");
  main.append(h("p", { class: "muted crumbs" }, h("a", { href: "#/stations" }, "Stations"), " / ",
    h("a", { href: `#/stations/${encodeURIComponent(id)}` }, id), " / profiles"),
  pageHead(`${id}: profiles, display and monitors`, "Commands go to the station now; its answers are kept."), body);
  let shown = null;

  function render() {
    const s = state.stations.get(id);
    const protocol = s ? s.protocol : null;
    const key = `${protocol}|${s ? s.connected : ""}`;
    if (key === shown) return;
    shown = key;
    if (!s) { body.replaceChildren(h("p", { class: "muted" }, state.ready ? "This station is not registered." : "Loading…")); return; }
    if (!s.connected) { body.replaceChildren(h("p", { class: "muted" }, "The station is offline: these commands need it connected.")); return; }
    const parts = [profilesSection(id, protocol)];
    if (protocol === "ocpp2.0.1") parts.push(h("div", { class: "grid grid-2" }, displaySection(id), monitorsSection(id)));
    else parts.push(h("p", { class: "muted", id: "no-display" }, "Display messages and monitors exist in OCPP 2.0.1; this station speaks 1.6."));
    body.replaceChildren(...parts);
  }

  render();
  return { update: render, unmount() {} };
}

registerRoute(/^\/stations\/([^/]+)\/profiles$/, "stations", operatorView, "Profiles and monitors");
