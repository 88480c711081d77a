// Configuration page: the desired configuration sets per group (and the default for every
// station), an editor for them, each group's per-station status and a station's live drift.
import { h, table, field, api, detailOf, pageHead, stationLink, when, badge, registerRoute } from "./console.js";

const PAGE = 100;
const EXAMPLE = {
  "ocpp1.6": { HeartbeatInterval: "300" },
  "ocpp2.0.1": [{ component: "OCPPCommCtrlr", variable: "HeartbeatInterval", value: "300" }],
  priority: 0,
};
const DRIFT_STATE = { in_sync: "available", drifted: "faulted", missing: "unavailable", not_supported: "unknown" };
const setPath = (group) => (group === "*" ? "/api/desired-config/default" : `/api/groups/${encodeURIComponent(group)}/desired-config`);
const error = (text) => h("p", { class: "form-error", role: "alert" }, text);

function configView(main) {
  const list = h("div"), statusBox = h("div"), driftBox = h("div");
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const group = h("input", { name: "group", placeholder: "group name, or * for every station", autocomplete: "off" });
  const body = h("textarea", { name: "body", rows: 10, spellcheck: "false", class: "mono", style: { width: "100%", "box-sizing": "border-box" } });
  body.value = JSON.stringify(EXAMPLE, null, 2);

  const save = async (e) => {
    e.preventDefault();
    const name = group.value.trim();
    let parsed;
    try { parsed = JSON.parse(body.value); } catch (err) { msg.className = "form-error"; msg.textContent = `Not valid JSON: ${err.message}`; return; }
    if (!name) { msg.className = "form-error"; msg.textContent = "Name a group (or * for every station)."; return; }
    const r = await api("PUT", setPath(name), parsed);
    msg.className = r.ok ? "muted" : "form-error";
    msg.textContent = r.ok ? `Saved ${name === "*" ? "the default set" : name}; sending it to ${r.data.applying_to} connected station(s).`
      : `Could not save: ${detailOf(r)}`;
    if (r.ok) await loadSets();
  };
  const edit = (s) => {
    group.value = s.group;
    const strip = (v) => Object.fromEntries(Object.entries(v).filter(([k]) => k !== "key"));
    body.value = JSON.stringify({ "ocpp1.6": s["ocpp1.6"], "ocpp2.0.1": s["ocpp2.0.1"].map(strip), priority: s.priority }, null, 2);
    group.focus();
  };
  const remove = async (s) => {
    const r = await api("DELETE", setPath(s.group));
    msg.className = r.ok ? "muted" : "form-error";
    msg.textContent = r.ok ? `Removed the set of ${s.group}; values on the stations stay.` : `Could not remove: ${detailOf(r)}`;
    await loadSets();
  };

  const loadSets = async () => {
    const r = await api("GET", `/api/desired-config?limit=${PAGE}`);
    if (r.status === 404) { list.replaceChildren(h("div", { class: "notice" }, h("h2", {}, "Desired configuration not available"), h("p", {}, detailOf(r)))); return; }
    if (!r.ok) { list.replaceChildren(error(`Could not load the sets: ${detailOf(r)}`)); return; }
    list.replaceChildren(h("section", { class: "panel" }, table(
      [["Group"], ["Priority"], ["1.6 keys"], ["2.0.1 variables"], ["Updated"], ["", "actions"]],
      r.data.map((s) => h("tr", { "data-set": s.group },
        h("td", {}, s.group === "*" ? "every station (default)" : s.group), h("td", {}, String(s.priority)),
        h("td", { class: "mono" }, Object.entries(s["ocpp1.6"]).map(([k, v]) => `${k}=${v}`).join(", ") || "—"),
        h("td", { class: "mono" }, s["ocpp2.0.1"].map((v) => `${v.key}=${v.value}`).join(", ") || "—"),
        h("td", {}, when(s.updated_at)),
        h("td", { class: "actions" },
          h("button", { type: "button", class: "btn btn-small", onclick: () => edit(s), "aria-label": `Edit ${s.group}` }, "Edit"),
          s.group === "*" ? null : h("button", { type: "button", class: "btn btn-small", onclick: () => loadStatus(s.group), "aria-label": `Status of ${s.group}` }, "Status"),
          h("button", { type: "button", class: "btn btn-small", onclick: () => remove(s), "aria-label": `Remove ${s.group}` }, "Remove")))),
      { caption: "Desired sets", empty: "No desired configuration yet: write one below." })));
  };

  const loadStatus = async (name) => {
    driftBox.replaceChildren();
    const r = await api("GET", `/api/groups/${encodeURIComponent(name)}/config-status?limit=${PAGE}`);
    if (!r.ok) { statusBox.replaceChildren(error(`Could not load the status of ${name}: ${detailOf(r)}`)); return; }
    const n = (v) => h("td", { class: "num" }, String(v));
    statusBox.replaceChildren(h("section", { class: "panel", "data-status": name }, table(
      [["Station"], ["Protocol"], ["Connected"], ["Desired", "num"], ["Applied", "num"], ["Reboot", "num"],
        ["Rejected", "num"], ["Unsupported", "num"], ["Failed", "num"], ["Pending", "num"], ["", "actions"]],
      r.data.map((s) => h("tr", { "data-station": s.charger_id }, h("td", {}, stationLink(s.charger_id)), h("td", {}, s.protocol || "—"),
        h("td", {}, s.connected ? "yes" : "no"), n(s.desired), n(s.applied), n(s.reboot_required), n(s.rejected),
        n(s.not_supported), n(s.failed), n(s.pending),
        h("td", { class: "actions" }, h("button", {
          type: "button", class: "btn btn-small", disabled: !s.connected, onclick: () => loadDrift(s.charger_id),
          "aria-label": `Check drift of ${s.charger_id}`,
        }, "Check drift")))),
      { caption: `Group ${name}: answers kept per station`, empty: "The group has no members." })));
  };

  const loadDrift = async (id) => {
    driftBox.replaceChildren(h("p", { class: "muted" }, `Reading ${id}'s values…`));
    const r = await api("GET", `/api/chargers/${encodeURIComponent(id)}/config-drift`);
    if (!r.ok) { driftBox.replaceChildren(error(`Could not read ${id}: ${detailOf(r)}`)); return; }
    driftBox.replaceChildren(h("section", { class: "panel", "data-drift": id }, table(
      [["Key"], ["Desired"], ["Actual"], ["State"], ["From"], ["Last answer"]],
      r.data.keys.map((k) => h("tr", { "data-key": k.key }, h("td", { class: "mono" }, k.key), h("td", { class: "mono" }, k.desired),
        h("td", { class: "mono" }, k.actual ?? "—"), h("td", {}, badge(DRIFT_STATE[k.status] || "unknown", k.status)),
        h("td", {}, k.source === "*" ? "default" : k.source),
        h("td", {}, k.last_result ? `${k.last_result.status} (${k.last_result.value}), ${when(k.last_result.at)}` : "—"))),
      { caption: `${id}: ${r.data.drifted} of ${r.data.keys.length} not in sync`, empty: "Nothing desired for this station." })));
  };

  main.append(pageHead("Configuration", "What each group's stations should have configured: sent at every boot and on change."),
    list,
    h("section", { class: "panel" }, h("h2", {}, "Edit a set"),
      h("form", { onsubmit: save, "aria-label": "Desired set" }, field("Group", group), field("Set (JSON)", body),
        h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Save and apply")))),
    msg, statusBox, driftBox);
  loadSets();
  return { update() {} };
}

registerRoute(/^\/config$/, "config", configView, "Configuration");
