// Firmware page: images (upload, delete), campaigns (start, pause, resume, abort) and each
// campaign's progress per wave and per station. Text only ever reaches the DOM as text nodes.
import { h, api, detailOf, pageHead, table, field, select, badge, stationLink, when, notAvailable, registerRoute } from "./console.js";

const POLL_MS = 2000;
const STATE_BADGE = { running: "charging", paused: "unavailable", done: "available", aborted: "faulted",
  pending: "unknown", updating: "charging", installed: "available", failed: "faulted", cancelled: "offline" };
const COUNTS = ["pending", "updating", "installed", "failed", "cancelled"];
const countText = (c) => COUNTS.filter((k) => c[k]).map((k) => `${c[k]} ${k}`).join(", ") || "—";

function actions(c, done) {
  const act = async (intent) => {
    const r = await api("POST", `/api/firmware-campaigns/${c.id}/${intent}`);
    done(r.ok ? `Campaign ${c.id}: ${intent} done.` : `Could not ${intent} campaign ${c.id}: ${detailOf(r)}`, r.ok);
  };
  const button = (intent, label) => h("button", { type: "button", class: "btn btn-small", "aria-label": `${label} campaign ${c.id}`, onclick: () => act(intent) }, label);
  return [c.state === "running" ? button("pause", "Pause") : null, c.state === "paused" ? button("resume", "Resume") : null,
    c.state === "running" || c.state === "paused" ? button("abort", "Abort") : null];
}

function firmwareView(main) {
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const files = h("div"), campaigns = h("div");
  const say = (text, ok) => { msg.className = ok ? "muted" : "form-error"; msg.textContent = text; };
  let fileRows = [];

  const fileInput = h("input", { type: "file", name: "image", required: true });
  const upload = h("form", { class: "filters", "aria-label": "Upload a firmware image", onsubmit: async (e) => {
    e.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    let res;
    try {
      res = await fetch(`/api/firmware-files?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file,
        credentials: "same-origin", headers: { "X-CSMS-Console": "1", "Content-Type": "application/octet-stream" } });
    } catch (err) { say(`Upload failed: ${err.message}`, false); return; }
    const data = await res.json().catch(() => ({}));
    say(res.ok ? `Uploaded ${data.name} (${data.size} bytes).` : `Upload failed: ${data.detail || res.status}`, res.ok);
    load();
  } }, field("Image", fileInput), h("button", { type: "submit", class: "btn" }, "Upload"));

  const version = h("input", { name: "version", required: true, maxlength: 50, placeholder: "2.0.0" });
  const fileSel = h("select", { name: "file_id" });
  const kind = select("target_kind", [["stations", "Stations"], ["group", "Group"], ["site", "Site"]], "stations");
  const target = h("input", { name: "target", required: true, placeholder: "CP001, CP002 or a group or site id" });
  const wave = h("input", { name: "wave_size", type: "number", min: 1, value: 10 });
  const create = h("form", { class: "filters", "aria-label": "Start a campaign", onsubmit: async (e) => {
    e.preventDefault();
    const t = kind.value === "stations" ? { stations: target.value.split(/[\s,]+/).filter(Boolean) } : { [kind.value]: target.value.trim() };
    const r = await api("POST", "/api/firmware-campaigns", { version: version.value.trim(), file_id: fileSel.value, targets: t, wave_size: Number(wave.value) });
    say(r.ok ? `Campaign ${r.data.id} started over ${r.data.stations.length} stations.` : `Could not start the campaign: ${detailOf(r)}`, r.ok);
    load();
  } }, field("Version", version), field("Image", fileSel), field("Targets", kind), field("Which", target), field("Wave size", wave),
  h("button", { type: "submit", class: "btn" }, "Start campaign"));

  main.append(pageHead("Firmware", "Images kept by the CSMS and the campaigns rolling them out in waves."), msg,
    h("section", { class: "panel" }, h("h2", {}, "Images"), upload, files),
    h("section", { class: "panel" }, h("h2", {}, "Campaigns"), create, campaigns));

  const load = async () => {
    const [f, c] = await Promise.all([api("GET", "/api/firmware-files?limit=1000"), api("GET", "/api/firmware-campaigns?limit=100")]);
    const missing = notAvailable("Firmware campaigns", f);
    if (missing) { files.replaceChildren(missing); campaigns.replaceChildren(); return; }
    fileRows = f.ok ? f.data : [];
    fileSel.replaceChildren(...fileRows.map((x) => h("option", { value: x.file_id }, `${x.name} (${x.sha256.slice(0, 12)})`)));
    files.replaceChildren(f.ok ? table([["Name"], ["Size", "num"], ["SHA-256"], ["Uploaded"], ["", "actions"]],
      fileRows.map((x) => h("tr", { "data-file": x.file_id }, h("td", {}, x.name), h("td", { class: "num" }, x.size),
        h("td", { class: "mono", title: x.sha256 }, x.sha256.slice(0, 16)), h("td", {}, when(x.created_at)),
        h("td", { class: "actions" }, h("button", { type: "button", class: "btn btn-small", "aria-label": `Delete ${x.name}`, onclick: async () => {
          const r = await api("DELETE", `/api/firmware-files/${x.file_id}`);
          say(r.ok ? `Deleted ${x.name}.` : `Could not delete ${x.name}: ${detailOf(r)}`, r.ok);
          load();
        } }, "Delete")))), { empty: "No image uploaded yet." })
      : h("p", { class: "form-error", role: "alert" }, `Could not load images: ${detailOf(f)}`));
    campaigns.replaceChildren(c.ok ? table([["Campaign"], ["Version"], ["State"], ["Wave"], ["Stations"], ["Created"], ["", "actions"]],
      c.data.map((x) => h("tr", { "data-campaign": x.id }, h("td", {}, h("a", { href: `#/firmware/${x.id}` }, `#${x.id}`)),
        h("td", {}, x.version), h("td", {}, badge(STATE_BADGE[x.state] || "unknown", x.state)), h("td", { class: "num" }, x.current_wave + 1),
        h("td", {}, countText(x.counts)), h("td", {}, when(x.created_at)),
        h("td", { class: "actions" }, actions(x, (t, ok) => { say(t, ok); load(); })))), { empty: "No campaign yet." })
      : h("p", { class: "form-error", role: "alert" }, `Could not load campaigns: ${detailOf(c)}`));
  };
  load();
  const timer = setInterval(load, POLL_MS);
  return { update() {}, unmount() { clearInterval(timer); } };
}

function campaignView(main, params) {
  const id = params[0];
  const msg = h("p", { role: "status", "aria-live": "polite", class: "muted" });
  const body = h("div");
  const head = h("div");
  main.append(head, msg, body);
  const load = async () => {
    const r = await api("GET", `/api/firmware-campaigns/${encodeURIComponent(id)}`);
    if (!r.ok) { body.replaceChildren(h("p", { class: "form-error", role: "alert" }, `Could not load campaign ${id}: ${detailOf(r)}`)); return; }
    const c = r.data;
    head.replaceChildren(pageHead(`Campaign #${c.id}: firmware ${c.version}`,
      `${c.file_id ? "CSMS image" : c.location}; waves of ${c.wave_size}, up to ${c.max_retries} retries${c.signed ? ", signed" : ""}`,
      h("div", { class: "actions" }, badge(STATE_BADGE[c.state] || "unknown", c.state),
        actions(c, (t, ok) => { msg.className = ok ? "muted" : "form-error"; msg.textContent = t; load(); }))));
    body.replaceChildren(
      h("section", { class: "panel" }, h("h2", {}, "Waves"), table([["Wave"], ...COUNTS.map((k) => [k, "num"])],
        c.waves.map((w) => h("tr", { "data-wave": w.wave, "aria-current": w.wave === c.current_wave ? "step" : null },
          h("td", {}, `${w.wave + 1}${w.wave === c.current_wave ? " (current)" : ""}`), COUNTS.map((k) => h("td", { class: "num" }, w.counts[k])))))),
      h("section", { class: "panel" }, h("h2", {}, "Stations"), table([["Station"], ["Wave", "num"], ["State"], ["Last status"], ["Attempts", "num"], ["Updated"]],
        c.stations.map((s) => h("tr", { "data-station": s.charger_id }, h("td", {}, stationLink(s.charger_id)), h("td", { class: "num" }, s.wave + 1),
          h("td", {}, badge(STATE_BADGE[s.state] || "unknown", s.state)), h("td", {}, s.last_status || "—"),
          h("td", { class: "num" }, s.attempts), h("td", {}, when(s.updated_at)))))));
  };
  load();
  const timer = setInterval(load, POLL_MS);
  return { update() {}, unmount() { clearInterval(timer); } };
}

registerRoute(/^\/firmware$/, "firmware", firmwareView, "Firmware");
registerRoute(/^\/firmware\/(\d+)$/, "firmware", campaignView, "Firmware campaign");
