// Uploads page: ask a station for its diagnostics or a log, follow the upload, download the file.
import { h, table, field, select, api, detailOf, pageHead, when, badge, stationLink, cursorPages, cursorPager, notAvailable, registerRoute } from "./console.js";

const UPLOAD_PAGE = 50;
const UPLOAD_POLL_MS = 3000;
const KINDS = [
  ["DiagnosticsLog", "Diagnostics log (GetLog)"],
  ["SecurityLog", "Security log (GetLog)"],
  ["diagnostics", "Diagnostics (1.6 GetDiagnostics)"],
];
const DONE = new Set(["Uploaded"]);
const FAILED = new Set(["Failed", "Canceled", "Rejected", "NoFile", "UploadFailed", "UploadFailure", "BadMessage", "NotSupportedOperation", "PermissionDenied"]);

function statusBadge(u) {
  const s = DONE.has(u.status) ? "available" : FAILED.has(u.status) ? "faulted" : "charging";
  return badge(s, u.status);
}

function sizeOf(bytes) {
  if (bytes === null || bytes === undefined) return "—";
  return bytes < 1024 ? `${bytes} B` : bytes < 1048576 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1048576).toFixed(1)} MiB`;
}

function uploadsView(main) {
  const body = h("div"), msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const station = h("input", { name: "charger_id", required: true, maxlength: 48, autocomplete: "off", placeholder: "station id" });
  const kind = select("kind", KINDS, "DiagnosticsLog");
  const filter = h("input", { name: "filter", maxlength: 48, autocomplete: "off", placeholder: "all stations" });
  let result = null;
  const request = async (e) => {
    e.preventDefault();
    const id = station.value.trim();
    if (!id) return;
    const diagnostics = kind.value === "diagnostics";
    const path = `/api/chargers/${encodeURIComponent(id)}/${diagnostics ? "diagnostics" : "logs"}`;
    const r = await api("POST", path, diagnostics ? {} : { log_type: kind.value });
    msg.className = r.ok ? "muted" : "form-error";
    msg.textContent = r.ok ? `Upload ${r.data.id} requested from ${id}: ${r.data.status}.` : `Could not request: ${detailOf(r)}`;
    await pages.first();
    render();
  };
  main.append(pageHead("Uploads", "Diagnostics and logs stations uploaded to the CSMS, newest first."),
    h("form", { class: "filters", "aria-label": "Request an upload", onsubmit: request },
      field("Station", station), field("What", kind), h("button", { type: "submit", class: "btn" }, "Request upload")),
    h("form", { class: "filters", "aria-label": "Filter uploads", onsubmit: (e) => { e.preventDefault(); pages.first().then(render); } },
      field("Show station", filter)),
    msg, body);
  const pages = cursorPages((cursor) => {
    const q = new URLSearchParams({ limit: String(UPLOAD_PAGE) });
    if (cursor) q.set("cursor", cursor);
    if (filter.value.trim()) q.set("charger_id", filter.value.trim());
    return api("GET", `/api/uploads?${q}`);
  }, (r) => { result = r; });
  const render = () => {
    const missing = notAvailable("Uploads", result);
    if (missing) { body.replaceChildren(missing); return; }
    if (!result.ok) { body.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load uploads: ${detailOf(result)}`)); return; }
    const items = result.data.items || [];
    body.replaceChildren(h("section", { class: "panel" },
      table([["Requested"], ["Station"], ["What"], ["Status"], ["File"], ["Size", "num"], ["", "actions"]],
        items.map((u) => h("tr", { "data-upload": u.id }, h("td", {}, when(u.created_at)), h("td", {}, stationLink(u.charger_id)),
          h("td", {}, u.log_type || "Diagnostics"), h("td", {}, statusBadge(u)), h("td", { class: "mono" }, u.filename || "—"),
          h("td", { class: "num" }, sizeOf(u.size_bytes)),
          h("td", { class: "actions" }, u.download
            ? h("a", { href: u.download, download: u.filename || "", class: "btn btn-small", "aria-label": `Download upload ${u.id}` }, "Download")
            : u.file === "pruned" ? "deleted" : "—"))),
        { empty: "No upload requested yet." }),
      cursorPager(pages, items.length, result.data.next_cursor, UPLOAD_PAGE, render)));
  };
  pages.first().then(render);
  const timer = setInterval(() => pages.again().then(render), UPLOAD_POLL_MS);
  return { update() {}, unmount() { clearInterval(timer); } };
}

registerRoute(/^\/uploads$/, "uploads", uploadsView, "Uploads");
