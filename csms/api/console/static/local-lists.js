// Local lists: which id tags each station group's local authorization lists hold (policies), each
// station's list version and whether it is in sync, and a forced sync.
import { h, table, field, select, api, detailOf, pageHead, badge, stationLink, when, notAvailable, registerRoute } from "./console.js";

const PAGE = 100;

function localListsView(main) {
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const policyBox = h("div"), stationBox = h("div"), more = h("div");
  const form = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); save(e.target); } },
    field("Station group (empty: every station)", h("input", { name: "group", maxlength: 64, autocomplete: "off" })),
    field("Tags", select("kind", [["all", "All id tags"], ["group", "One tag group"]], "all")),
    field("Tag group", h("input", { name: "tag_group", maxlength: 64, autocomplete: "off" })),
    h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Set policy")));
  main.append(pageHead("Local lists", "Id tags the stations keep for authorizing while the CSMS is out of reach."),
    h("section", { class: "panel", "aria-labelledby": "h-policies" }, h("h2", { id: "h-policies" }, "Policies"), form, msg, policyBox),
    h("section", { class: "panel", "aria-labelledby": "h-station-lists" }, h("h2", { id: "h-station-lists" }, "Stations"), stationBox, more));

  const path = (group) => group ? `/api/groups/${encodeURIComponent(group)}/local-list` : "/api/local-list-policies/default";
  function say(ok, text) { msg.className = ok ? "muted" : "form-error"; msg.textContent = text; }

  async function save(f) {
    const group = f.elements.group.value.trim();
    const tags = f.elements.kind.value === "all" ? "all" : { tag_group: f.elements.tag_group.value.trim() };
    const r = await api("PUT", path(group), { tags });
    say(r.ok, r.ok ? `Policy of ${group || "every station"} saved.` : `Could not save the policy: ${detailOf(r)}`);
    if (r.ok) f.reset();
    loadPolicies();
  }

  async function loadPolicies() {
    const r = await api("GET", `/api/local-list-policies?limit=${PAGE}`);
    if (!r.ok) { policyBox.replaceChildren(notAvailable("Local lists", r) || h("p", { class: "form-error" }, detailOf(r))); return; }
    policyBox.replaceChildren(table([["Station group"], ["Tags"], ["Updated"], ["", "actions"]], r.data.map((p) =>
      h("tr", { "data-policy": p.group || "" },
        h("td", {}, p.group || "every station (default)"),
        h("td", {}, p.tags === "all" ? "all id tags" : `tag group ${p.tags.tag_group}`),
        h("td", {}, when(p.updated_at)),
        h("td", { class: "actions" }, h("button", {
          type: "button", class: "btn btn-small btn-danger", "aria-label": `Remove the policy of ${p.group || "every station"}`,
          onclick: async () => {
            const d = await api("DELETE", path(p.group));
            say(d.ok, d.ok ? "Policy removed." : `Could not remove it: ${detailOf(d)}`);
            loadPolicies();
          },
        }, "Remove")))), { empty: "No policy: no station's list is managed." }));
  }

  function stationRow(s) {
    const sync = h("button", {
      type: "button", class: "btn btn-small", "aria-label": `Sync ${s.charger_id}`,
      onclick: async () => {
        const r = await api("POST", `/api/chargers/${encodeURIComponent(s.charger_id)}/local-list/sync`);
        if (!r.ok) say(false, `Could not sync ${s.charger_id}: ${detailOf(r)}`);
        else say(r.data.ok, r.data.ok ? `${s.charger_id}: ${r.data.reason.replaceAll("_", " ")}, version ${r.data.version}.`
          : `${s.charger_id} is out of sync: ${r.data.detail}`);
        loadStations();
      },
    }, "Sync now");
    return h("tr", { "data-station": s.charger_id },
      h("td", {}, stationLink(s.charger_id)), h("td", { class: "num" }, String(s.version)),
      h("td", { class: "num" }, String(s.entries)),
      h("td", {}, s.in_sync ? badge("available", "in sync") : badge("faulted", "out of sync")),
      h("td", {}, s.update_type || "—"), h("td", {}, when(s.synced_at)), h("td", {}, s.error || "—"),
      h("td", { class: "actions" }, sync));
  }

  async function loadStations(cursor) {
    const r = await api("GET", `/api/local-lists?limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (!r.ok) { stationBox.replaceChildren(notAvailable("Local lists", r) || h("p", { class: "form-error" }, detailOf(r))); return; }
    const rows = r.data.map(stationRow);
    const headers = [["Station"], ["Version", "num"], ["Entries", "num"], ["State"], ["Last update"], ["Synced"], ["Error"], ["", "actions"]];
    if (cursor) stationBox.querySelector("tbody").append(...rows);
    else stationBox.replaceChildren(table(headers, rows, { empty: "No list was sent to any station yet." }));
    const next = r.headers.get("X-Next-Cursor");
    more.replaceChildren(next ? h("button", { type: "button", class: "btn", onclick: () => loadStations(next) }, "More") : "");
  }

  loadPolicies();
  loadStations();
  return { update() {} };
}

registerRoute(/^\/local-lists$/, "local-lists", localListsView, "Local lists");
