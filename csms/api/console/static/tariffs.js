// Tariffs (edit as OCPI-shaped JSON, assign, preview an example session) and charge detail records
// (date range, totals, CSV download).
import { h, api, detailOf, table, field, select, pageHead, registerRoute, when, notAvailable, localInput } from "./console.js";

const EXAMPLE = {
  tariff_id: "standard", currency: "EUR", vat_percent: "19", idle_grace_s: 300,
  alt_text: [{ language: "en", text: "0.40 EUR/kWh + 1.00 EUR per session + 0.10 EUR/min idle after 5 min" }],
  elements: [{ price_components: [
    { type: "ENERGY", price: "0.40", step_size: 1 }, { type: "FLAT", price: "1.00" },
    { type: "PARKING_TIME", price: "6.00", step_size: 60 }] }],
};
const SCOPES = [["default", "Default"], ["site", "Site"], ["group", "Group"], ["tag_group", "ID-tag group"], ["station", "Station"]];

function summary(t) {
  return t.elements.flatMap((e) => e.price_components.map((c) => {
    const unit = { ENERGY: "/kWh", TIME: "/h charging", PARKING_TIME: "/h idle", FLAT: "/session" }[c.type];
    const r = e.restrictions || {};
    const when = r.start_time ? ` ${r.start_time}–${r.end_time || "24:00"}` : "";
    return `${c.price} ${t.currency}${unit}${when}`;
  })).join(" · ");
}

function tariffsView(main) {
  const list = h("div"), assigned = h("div"), result = h("div");
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const say = (ok, text) => { msg.className = ok ? "muted" : "form-error"; msg.textContent = text; };
  const editor = h("textarea", { name: "tariff", rows: 14, spellcheck: "false", class: "mono" });
  editor.value = JSON.stringify(EXAMPLE, null, 2);
  const editForm = h("form", { onsubmit: (e) => { e.preventDefault(); save(); } },
    field("Tariff (JSON, OCPI-shaped; prices as decimal strings)", editor),
    h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Save tariff")));
  const assignForm = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); assign(e.target); } },
    field("Scope", select("scope", SCOPES, "default")),
    field("Target (empty for default)", h("input", { name: "target", maxlength: 64, autocomplete: "off" })),
    field("Tariff id", h("input", { name: "tariff_id", required: true, maxlength: 36, autocomplete: "off" })),
    h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Assign")));
  const previewForm = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); preview(e.target); } },
    field("Tariff id", h("input", { name: "tariff_id", required: true, value: "standard", autocomplete: "off" })),
    field("Energy (kWh)", h("input", { name: "kwh", type: "number", min: "0", step: "0.001", value: "10" })),
    field("Charging (min)", h("input", { name: "charging", type: "number", min: "1", value: "60" })),
    field("Idle after charging (min)", h("input", { name: "idle", type: "number", min: "0", value: "20" })),
    h("div", {}, h("button", { type: "submit", class: "btn" }, "Preview price")));
  main.append(pageHead("Tariffs", "What sessions cost: versioned tariffs, which stations they apply to, and what an example session would cost."),
    h("section", { class: "panel", "aria-labelledby": "h-tariffs" }, h("h2", { id: "h-tariffs" }, "Tariffs"), list),
    h("section", { class: "panel", "aria-labelledby": "h-edit" }, h("h2", { id: "h-edit" }, "Create or edit (a new version)"), editForm),
    h("section", { class: "panel", "aria-labelledby": "h-assign" }, h("h2", { id: "h-assign" }, "Assignments"), assigned, assignForm),
    h("section", { class: "panel", "aria-labelledby": "h-preview" }, h("h2", { id: "h-preview" }, "Preview an example session"), previewForm, result),
    msg);

  async function save() {
    let body;
    try { body = JSON.parse(editor.value); } catch (err) { say(false, `The tariff is not valid JSON: ${err.message}`); return; }
    const r = await api("PUT", `/api/tariffs/${encodeURIComponent(body.tariff_id || "")}`, body);
    say(r.ok, r.ok ? `Saved ${r.data.tariff_id} version ${r.data.version}.` : `Could not save: ${detailOf(r)}`);
    load();
  }
  async function assign(f) {
    const body = { scope: f.elements.scope.value, target: f.elements.target.value.trim(), tariff_id: f.elements.tariff_id.value.trim() };
    const r = await api("PUT", "/api/tariff-assignments", body);
    say(r.ok, r.ok ? `${body.tariff_id} now applies to ${body.scope} ${body.target}.` : `Could not assign: ${detailOf(r)}`);
    load();
  }
  async function preview(f) {
    const start = new Date(Date.UTC(2026, 0, 5, 10, 0));
    const charging = Number(f.elements.charging.value), idle = Number(f.elements.idle.value);
    const end = new Date(start.getTime() + charging * 60000);
    const stop = new Date(end.getTime() + idle * 60000);
    const wh = Math.round(Number(f.elements.kwh.value) * 1000);
    const r = await api("POST", `/api/tariffs/${encodeURIComponent(f.elements.tariff_id.value.trim())}/preview`, {
      started_at: start.toISOString(), stopped_at: stop.toISOString(),
      readings: [{ at: start.toISOString(), register_wh: 0 }, { at: end.toISOString(), register_wh: wh }],
    });
    if (!r.ok) { result.replaceChildren(h("p", { class: "form-error", role: "alert" }, `No preview: ${detailOf(r)}`)); return; }
    const c = r.data;
    result.replaceChildren(
      table([["Component"], ["Quantity", "num"], ["Unit price", "num"], ["Amount", "num"]],
        c.cost_lines.map((l) => h("tr", {}, h("td", {}, l.element < 0 ? "minimum/maximum price" : l.dimension),
          h("td", { class: "num" }, l.quantity), h("td", { class: "num" }, l.unit_price), h("td", { class: "num" }, l.amount)))),
      h("p", { "data-field": "preview-total" }, `Total ${c.total_excl_vat} + VAT ${c.total_vat} = `, h("strong", {}, `${c.total_incl_vat} ${c.currency}`)));
  }
  async function load() {
    const [tariffs, assignments] = await Promise.all([api("GET", "/api/tariffs"), api("GET", "/api/tariff-assignments")]);
    const missing = notAvailable("Tariffs", tariffs);
    if (missing) { main.replaceChildren(pageHead("Tariffs", null), missing); return; }
    if (!tariffs.ok) { say(false, `Could not load tariffs: ${detailOf(tariffs)}`); return; }
    list.replaceChildren(table([["Tariff"], ["Version", "num"], ["Prices (excl. VAT)"], ["VAT %", "num"], ["Since"], ["", "actions"]],
      tariffs.data.map((t) => h("tr", { "data-tariff": t.tariff_id }, h("td", { class: "mono" }, t.tariff_id),
        h("td", { class: "num" }, String(t.version)), h("td", {}, summary(t)), h("td", { class: "num" }, t.vat_percent),
        h("td", {}, when(t.created_at)),
        h("td", { class: "actions" }, h("button", {
          type: "button", class: "btn btn-small", "aria-label": `Edit ${t.tariff_id}`,
          onclick: () => { const { version, created_at, retired_at, ...body } = t; editor.value = JSON.stringify(body, null, 2); editor.focus(); },
        }, "Edit")))),
      { empty: "No tariff yet: sessions are recorded without a price." }));
    assigned.replaceChildren(table([["Scope"], ["Target"], ["Tariff"]],
      (assignments.ok ? assignments.data : []).map((a) => h("tr", { "data-assignment": `${a.scope}:${a.target}` },
        h("td", {}, a.scope), h("td", { class: "mono" }, a.target || "—"), h("td", { class: "mono" }, a.tariff_id))),
      { empty: "No assignment: no session is priced." }));
  }
  load();
  return { update() {} };
}

function cdrsView(main, _params, query) {
  const box = h("div"), totals = h("p", { class: "muted", "data-field": "cdr-totals" });
  const today = new Date();
  const from = query.get("from") || new Date(today.getFullYear(), today.getMonth(), 1).toISOString();
  const to = query.get("to") || new Date(today.getTime() + 86400000).toISOString();
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); load(e.target); } },
    field("From", h("input", { name: "from", type: "datetime-local", value: localInput(from) })),
    field("To", h("input", { name: "to", type: "datetime-local", value: localInput(to) })),
    h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Show")), h("div", {}, h("a", { class: "btn", "data-field": "csv" }, "Download CSV")));
  main.append(pageHead("Charge detail records", "One record per completed session, with its price and the signed meter data as received."),
    h("section", { class: "panel" }, form, totals, box));
  async function load(f) {
    const range = { from: new Date(f.elements.from.value).toISOString(), to: new Date(f.elements.to.value).toISOString() };
    const qs = new URLSearchParams({ ...range, limit: "1000" });
    form.querySelector("[data-field=csv]").href = `/api/cdrs?${new URLSearchParams({ ...range, format: "csv" })}`;
    const r = await api("GET", `/api/cdrs?${qs}`);
    const missing = notAvailable("Charge detail records", r);
    if (missing) { box.replaceChildren(missing); return; }
    if (!r.ok) { box.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load: ${detailOf(r)}`)); return; }
    const sums = new Map();
    for (const c of r.data) if (c.currency) sums.set(c.currency, (sums.get(c.currency) || 0) + Math.round(Number(c.total_incl_vat) * 100));
    const more = r.headers.get("X-Next-Cursor") ? " (first 1,000; the CSV has all)" : "";
    totals.textContent = `${r.data.length} sessions${more}, ${[...r.data].reduce((a, c) => a + Number(c.energy_wh), 0) / 1000} kWh, `
      + ([...sums].map(([cur, cents]) => `${(cents / 100).toFixed(2)} ${cur}`).join(" + ") || "nothing priced") + " incl. VAT";
    box.replaceChildren(table([["Stopped"], ["Station"], ["Transaction"], ["ID tag"], ["Energy (kWh)", "num"], ["Idle (min)", "num"], ["Tariff"], ["Total incl. VAT", "num"], ["Signed"]],
      r.data.map((c) => h("tr", { "data-cdr": c.id }, h("td", {}, when(c.stopped_at)), h("td", { class: "mono" }, c.charger_id),
        h("td", { class: "mono" }, c.transaction_id), h("td", { class: "mono" }, c.id_tag || "—"),
        h("td", { class: "num" }, (Number(c.energy_wh) / 1000).toFixed(3)), h("td", { class: "num" }, String(Math.round(c.idle_s / 60))),
        h("td", { class: "mono" }, c.tariff_id ? `${c.tariff_id} v${c.tariff_version}` : "none"),
        h("td", { class: "num" }, c.total_incl_vat ? `${c.total_incl_vat} ${c.currency}` : "—"),
        h("td", {}, c.signed_meter_values.length ? `${c.signed_meter_values.length} (${c.signed_meter_values[0].encoding || "?"})` : "—"))),
      { empty: "No session ended in this range." }));
  }
  load(form);
  return { update() {} };
}

registerRoute(/^\/tariffs$/, "tariffs", tariffsView, "Tariffs");
registerRoute(/^\/cdrs$/, "cdrs", cdrsView, "Charge detail records");
