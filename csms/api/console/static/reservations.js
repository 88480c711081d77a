// Reservations: hold an EVSE for one ID tag (ReserveNow), list active and past ones, cancel.
import { h, table, field, api, detailOf, pageHead, when, badge, stationLink, cursorPages, cursorPager, registerRoute } from "./console.js";

const PER_PAGE = 50;
const STATUS_STATE = {
  pending: "unknown", active: "charging", used: "available", expired: "unavailable", cancelled: "offline",
  rejected: "faulted", failed: "faulted", removed: "offline",
};

function reservationsView(main) {
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const activeBox = h("div"), pastBox = h("div");
  const soon = new Date(Date.now() + 30 * 60000);
  const local = new Date(soon.getTime() - soon.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  const form = h("form", { class: "row", "aria-label": "New reservation", onsubmit: (e) => { e.preventDefault(); create(e.target); } },
    field("Charger", h("input", { name: "charger_id", required: true, maxlength: 48, autocomplete: "off" })),
    field("EVSE / connector (0: any)", h("input", { name: "evse_id", type: "number", min: 0, value: "1", required: true })),
    field("ID tag", h("input", { name: "id_tag", required: true, maxlength: 36, autocomplete: "off" })),
    field("Expires", h("input", { name: "expires_at", type: "datetime-local", value: local, required: true })),
    h("div", {}, h("button", { type: "submit", class: "btn btn-primary" }, "Reserve")));
  main.append(pageHead("Reservations", "An EVSE held for one ID tag until it is used, cancelled or expires."),
    h("section", { class: "panel", "aria-labelledby": "h-reserve" }, h("h2", { id: "h-reserve" }, "Reserve an EVSE"), form, msg),
    h("section", { class: "panel", "aria-labelledby": "h-res-active" }, h("h2", { id: "h-res-active" }, "Active"), activeBox),
    h("section", { class: "panel", "aria-labelledby": "h-res-past" }, h("h2", { id: "h-res-past" }, "Past"), pastBox));

  function say(ok, text) { msg.className = ok ? "muted" : "form-error"; msg.textContent = text; }

  async function create(f) {
    const body = {
      charger_id: f.elements.charger_id.value.trim(), evse_id: Number(f.elements.evse_id.value),
      id_tag: f.elements.id_tag.value.trim(), expires_at: new Date(f.elements.expires_at.value).toISOString(),
    };
    const r = await api("POST", "/api/reservations", body);
    say(r.ok, r.ok ? `Reserved EVSE ${body.evse_id || "any"} of ${body.charger_id} for ${body.id_tag} (reservation ${r.data.id}).`
      : `Could not reserve: ${detailOf(r)}`);
    reload();
  }

  async function cancel(res) {
    const r = await api("DELETE", `/api/reservations/${res.id}`);
    say(r.ok, r.ok ? `Cancelled reservation ${res.id}.` : `Could not cancel reservation ${res.id}: ${detailOf(r)}`);
    reload();
  }

  const rows = (list, withCancel) => list.map((r) => h("tr", { "data-reservation": r.id },
    h("td", { class: "mono" }, String(r.id)), h("td", {}, stationLink(r.charger_id)), h("td", {}, r.evse_id || "any"),
    h("td", { class: "mono" }, r.id_tag), h("td", {}, when(r.expires_at)),
    h("td", {}, badge(STATUS_STATE[r.status] || "unknown", r.status)),
    h("td", { class: "mono" }, r.transaction_id || r.station_answer || "—"),
    withCancel ? h("td", { class: "actions" }, h("button", {
      type: "button", class: "btn btn-small btn-danger", "aria-label": `Cancel reservation ${r.id}`, onclick: () => cancel(r),
    }, "Cancel")) : null));
  const heads = (withCancel) => [["Id"], ["Charger"], ["EVSE"], ["ID tag"], ["Expires"], ["Status"], ["Transaction / answer"],
    ...(withCancel ? [["", "actions"]] : [])];

  async function loadActive() {
    const r = await api("GET", `/api/reservations?active=true&limit=${PER_PAGE}`);
    if (!r.ok) { say(false, `Could not load reservations: ${detailOf(r)}`); return; }
    activeBox.replaceChildren(table(heads(true), rows(r.data, true), { empty: "No active reservation." }));
  }

  let past = { list: [], next: null };
  const pages = cursorPages(async (cursor) => {
    const r = await api("GET", `/api/reservations?active=false&limit=${PER_PAGE}${cursor ? `&cursor=${cursor}` : ""}`);
    return r.ok ? { list: r.data, next: r.headers.get("X-Next-Cursor") } : { list: [], next: null, error: detailOf(r) };
  }, (result) => { past = result; renderPast(); });
  function renderPast() {
    if (past.error) say(false, `Could not load past reservations: ${past.error}`);
    pastBox.replaceChildren(table(heads(false), rows(past.list, false), { empty: "No past reservation." }),
      cursorPager(pages, past.list.length, past.next, PER_PAGE, () => {}));
  }

  function reload() { loadActive(); pages.again(); }
  loadActive();
  pages.first();
  const timer = setInterval(reload, 5000);
  return { update() {}, unmount() { clearInterval(timer); } };
}

registerRoute(/^\/reservations$/, "reservations", reservationsView, "Reservations");
