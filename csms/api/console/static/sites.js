// Sites and groups: where stations stand and which labels they carry (bulk operations target these).
import { h, api, detailOf, table, field, pageHead, registerRoute, byId } from "./console.js";

function sitesView(main) {
  const sitesBox = h("div"), groupsBox = h("div");
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const siteForm = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); createSite(e.target); } },
    field("Site id (optional)", h("input", { name: "site_id", maxlength: 36, autocomplete: "off", pattern: "[A-Za-z0-9][A-Za-z0-9._\\-]*" })),
    field("Name", h("input", { name: "name", required: true, maxlength: 255 })),
    field("Address", h("input", { name: "address", maxlength: 255 })),
    field("City", h("input", { name: "city", maxlength: 45 })),
    field("Operator", h("input", { name: "operator", maxlength: 255 })),
    h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Create site")));
  const groupForm = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); addMembers(e.target); } },
    field("Group", h("input", { name: "group", required: true, maxlength: 64, autocomplete: "off", pattern: "[A-Za-z0-9][A-Za-z0-9._:\\-]*" })),
    field("Station ids (comma-separated)", h("input", { name: "stations", required: true, autocomplete: "off" })),
    h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Add to group")));
  main.append(pageHead("Sites and groups", "Where stations stand, and the labels bulk operations (firmware, configuration, local lists) target."),
    h("section", { class: "panel", "aria-labelledby": "h-sites" }, h("h2", { id: "h-sites" }, "Sites"), sitesBox,
      h("h3", {}, "New site"), siteForm),
    h("section", { class: "panel", "aria-labelledby": "h-groups" }, h("h2", { id: "h-groups" }, "Groups"), groupsBox,
      h("h3", {}, "Add stations to a group"), groupForm),
    msg);

  const say = (ok, text) => { msg.className = ok ? "muted" : "form-error"; msg.textContent = text; };

  async function createSite(f) {
    const body = { name: f.elements.name.value.trim() };
    for (const k of ["site_id", "address", "city", "operator"]) if (f.elements[k].value.trim()) body[k] = f.elements[k].value.trim();
    const r = await api("POST", "/api/sites", body);
    say(r.ok, r.ok ? `Created site ${r.data.site_id}.` : `Could not create the site: ${detailOf(r)}`);
    if (r.ok) f.reset();
    load();
  }
  async function addMembers(f) {
    const group = f.elements.group.value.trim();
    const stations = f.elements.stations.value.split(",").map((s) => s.trim()).filter(Boolean);
    const r = await api("POST", `/api/groups/${encodeURIComponent(group)}/members`, { stations });
    say(r.ok, r.ok ? `Added ${r.data.added} station(s) to ${group}.` : `Could not add to ${group}: ${detailOf(r)}`);
    if (r.ok) f.reset();
    load();
  }
  async function load() {
    const [sites, groups] = await Promise.all([api("GET", "/api/sites"), api("GET", "/api/groups")]);
    if (!sites.ok || !groups.ok) { say(false, `Could not load: ${detailOf(sites.ok ? groups : sites)}`); return; }
    sitesBox.replaceChildren(table([["Site"], ["Name"], ["Address"], ["Operator"], ["Stations", "num"]],
      sites.data.sort((a, b) => byId(a.site_id, b.site_id)).map((s) => h("tr", { "data-site": s.site_id },
        h("td", { class: "mono" }, s.site_id), h("td", {}, s.name),
        h("td", {}, [s.address, s.postal_code, s.city].filter(Boolean).join(", ") || "—"), h("td", {}, s.operator || "—"),
        h("td", { class: "num" }, String(s.station_count)))),
      { empty: "No site yet." }));
    groupsBox.replaceChildren(table([["Group"], ["Stations", "num"], ["", "actions"]],
      groups.data.map((g) => h("tr", { "data-group": g.name }, h("td", { class: "mono" }, g.name),
        h("td", { class: "num" }, String(g.station_count)),
        h("td", { class: "actions" }, h("button", {
          type: "button", class: "btn btn-small", "aria-label": `Show members of ${g.name}`,
          onclick: async () => {
            const r = await api("GET", `/api/groups/${encodeURIComponent(g.name)}`);
            say(r.ok, r.ok ? `${g.name}: ${r.data.stations.join(", ")}` : `Could not load ${g.name}: ${detailOf(r)}`);
          },
        }, "Members")))),
      { empty: "No group yet: add stations to one below." }));
  }
  load();
  return { update() {} };
}

registerRoute(/^\/sites$/, "sites", sitesView, "Sites and groups");
