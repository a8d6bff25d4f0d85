// Portal: the notice in force, my consents with one-step withdrawal (R8),
// my checks, export (a readable page for people, JSON for machines), delete
// after saying what goes and what stays (R14), complaints with the
// operator's reply (R25), the processor's filing number, logout. Feedback
// appears next to the button that caused it.
"use strict";
const $ = id => document.getElementById(id);
let me = null;
// Feedback beside the action: ok(id, key, vars) or msg(id, error); both
// follow a language switch. The screen reader hears it too.
function msg(id, e) {
  const el = $(id);
  FG.showErr(el, e);
  el.classList.remove("ok"); el.classList.toggle("err", !!e);
  if (e) $("status").textContent = el.textContent;
}
function ok(id, key, vars) {
  const el = $(id);
  FG.showErr(el, null);
  FG.setT(el, key, vars);
  el.classList.add("ok"); el.classList.remove("err");
  $("status").textContent = el.textContent;
}
const tok = sessionStorage.getItem("fg.portal.token");
if (tok) FG.setToken(tok);

$("btn-login").onclick = async () => {
  msg("login-msg");
  const code = $("code").value.trim();
  if (!/^\d{8}$/.test(code)) { msg("login-msg", { key: "code_rule" }); return; }
  try {
    const s = await FG.api("POST", "/v1/portal/session", { code });
    sessionStorage.setItem("fg.portal.token", s.token);
    FG.setToken(s.token);
    await load();
    $("h-who").setAttribute("tabindex", "-1"); $("h-who").focus();
  } catch (e) { msg("login-msg", e); }
};
$("code").addEventListener("keydown", e => { if (e.key === "Enter") $("btn-login").click(); });

async function load() {
  me = await FG.api("GET", "/v1/me");
  $("s-login").classList.add("hidden");
  $("s-me").classList.remove("hidden");
  $("btn-logout").classList.remove("hidden");
  render();
  // A site connected to a governance hub offers its central portal.
  FG.api("GET", "/v1/hub").then(() => $("s-hub").classList.remove("hidden"), () => {});
}
// The site vouches for the signed-in person with a short-lived token the
// hub checks against this site's key; the hub's page opens with it.
$("btn-hub").onclick = async () => {
  msg("hub-msg");
  try {
    const t = await FG.api("POST", "/v1/hub/portal-token");
    location.assign(t.portal_url);
  } catch (e) { msg("hub-msg", e); }
};
function logout(keepMsg) {
  // Ends the session on the server where it can (DELETE /v1/portal/session),
  // and always here.
  FG.api("DELETE", "/v1/portal/session").catch(() => {});
  sessionStorage.removeItem("fg.portal.token");
  FG.setToken(null);
  me = null; lastExport = null;
  $("export-view").classList.add("hidden"); $("export-view").innerHTML = "";
  $("s-me").classList.add("hidden");
  $("btn-logout").classList.add("hidden");
  $("s-login").classList.remove("hidden");
  $("code").value = "";
  if (!keepMsg) ok("login-msg", "logged_out");
  $("h-login").setAttribute("tabindex", "-1"); $("h-login").focus();
}
$("btn-logout").onclick = () => logout();

function scenarioName() { return FG.lang === "zh" ? me.scenario_name_zh : me.scenario_name_en; }
function render() {
  if (!me) return;
  $("who-name").textContent = me.person.display_name || "—";
  $("who-scenario").textContent = scenarioName();
  $("filing-number").textContent = me.filing_number || FG.t("not_filed");
  $("notice").innerHTML = FG.lang === "zh" ? me.notice_html_zh : me.notice_html_en;
  const cs = $("consents");
  cs.innerHTML = me.consents.length ? "" : `<p>${FG.esc(FG.t("no_consents"))}</p>`;
  for (const c of me.consents) {
    const div = document.createElement("div");
    div.className = "card consent";
    div.innerHTML = `<p><strong>${FG.esc(FG.v("consent", c.kind))}</strong> · ${FG.esc(scenarioName())}</p>
      <p>${FG.esc(FG.t("given_on", { t: FG.time(c.given_at), by: FG.v("given_by", c.given_by) }))}
      · <span class="${c.active ? "level-ok" : "level-warn"}">${FG.esc(c.active ? FG.t("active") : FG.t("withdrawn_on", { t: FG.time(c.withdrawn_at) }))}</span></p>`;
    if (c.active) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "withdraw"; b.textContent = FG.t("withdraw");
      b.onclick = () => withdraw(c.id);
      div.appendChild(b);
    }
    cs.appendChild(div);
  }
  $("recent").innerHTML = me.recent.length ? `<table><caption class="sr-only">${FG.esc(FG.t("recent_title"))}</caption><thead><tr><th scope="col">${FG.esc(FG.t("col_when"))}</th><th scope="col">${FG.esc(FG.t("col_method"))}</th><th scope="col">${FG.esc(FG.t("col_result"))}</th><th scope="col">${FG.esc(FG.t("col_receipt"))}</th></tr></thead><tbody>` +
    me.recent.map(r => `<tr><td>${FG.esc(FG.time(r.at))}</td><td>${FG.esc(FG.v("method", r.method))}</td><td>${FG.esc(FG.v("result", r.result))}${r.refusal_rule ? "（" + FG.esc(FG.ruleRef({ rule: r.refusal_rule, article: r.refusal_article, article_zh: r.refusal_article_zh })) + "）" : ""}</td><td><code data-raw>${FG.esc(r.receipt_id)}</code></td></tr>`).join("") + "</tbody></table>"
    : `<p>${FG.esc(FG.t("no_checks"))}</p>`;
  const mine = me.complaints || [];
  $("complaints").innerHTML = mine.length ? `<h3>${FG.esc(FG.t("my_complaints"))}</h3>` + mine.map(c => `<div class="card complaint" data-id="${FG.esc(c.id)}">
      <p><strong>${FG.esc(FG.t("complaint_no", { id: FG.shortId(c.id) }))}</strong> · ${FG.esc(FG.time(c.received_at))} · <span class="complaint-status ${c.status === "resolved" ? "level-ok" : "level-warn"}">${FG.esc(FG.v("complaint_status", c.status))}</span>${c.status !== "resolved" && c.due_date ? " · " + FG.esc(FG.t("complaint_due", { d: FG.date(c.due_date) })) : ""}</p>
      <p data-raw>${FG.esc(c.body)}</p>
      <p class="reply"><strong>${FG.esc(FG.t("operator_reply"))}</strong> ${c.response ? `<span data-raw>${FG.esc(c.response)}</span>` : FG.esc(FG.t("no_reply_yet"))}</p></div>`).join("") : "";
}
document.addEventListener("fg-lang", render);

// One step: no confirmation (withdrawing takes no more steps than consenting did).
async function withdraw(id) {
  msg("consents-msg");
  try {
    const r = await FG.api("POST", `/v1/consents/${id}/withdraw`, { channel: "portal" });
    await load();
    ok("consents-msg", "withdrawn_ok", { n: r.templates_deleted, alts: r.alternatives.map(m => FG.v("method", m)).join(" / "), receipt: r.receipt_id });
    $("consents-msg").dataset.receipt = r.receipt_id;
  } catch (e) { msg("consents-msg", e); }
}

async function exportData() { return FG.api("GET", `/v1/persons/${me.person.id}/export`); }
function download(name, type, text) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type })); a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
}
// A page a person can read (and print or keep): the same content as the JSON.
function exportHtml(d) {
  const row = (k, v, raw) => `<tr><th scope="row">${FG.esc(k)}</th><td${raw ? " data-raw" : ""}>${FG.esc(v)}</td></tr>`;
  const p = d.person;
  const events = d.verification_events || [];
  return `<h3 id="h-export">${FG.esc(FG.t("export_heading"))}</h3>
  <p>${FG.esc(FG.t("export_made", { t: FG.time(d.exported_at, true) }))}</p>
  <h4>${FG.esc(FG.t("who"))}</h4><table><tbody>${row(FG.t("name"), p.display_name || "—", true)}${row(FG.t("dob"), p.date_of_birth ? FG.date(p.date_of_birth) : "—")}${row(FG.t("contact"), p.contact || "—", true)}${row(FG.t("registered_on"), FG.time(p.created_at))}</tbody></table>
  <h4>${FG.esc(FG.t("consents_title"))}</h4><table><thead><tr><th scope="col">${FG.esc(FG.t("col_kind"))}</th><th scope="col">${FG.esc(FG.t("col_given"))}</th><th scope="col">${FG.esc(FG.t("col_status"))}</th></tr></thead><tbody>${(d.consents || []).map(c => `<tr><td>${FG.esc(FG.v("consent", c.kind))}</td><td>${FG.esc(FG.time(c.given_at))}</td><td>${FG.esc(c.active ? FG.t("active") : FG.t("withdrawn_on", { t: FG.time(c.withdrawn_at) }))}</td></tr>`).join("")}</tbody></table>
  <h4>${FG.esc(FG.t("export_creds"))}</h4><p>${(d.credentials || []).map(c => FG.esc(FG.v("method", c.kind) + (c.revoked_at ? " (" + FG.t("revoked") + ")" : ""))).join(FG.lang === "zh" ? "、" : ", ") || FG.esc(FG.t("none"))}</p>
  <h4>${FG.esc(FG.t("export_templates"))}</h4><p>${FG.esc(FG.t("export_templates_n", { n: d.face_templates ? d.face_templates.count : 0 }))} ${FG.esc(d.face_templates ? (FG.lang === "zh" ? d.face_templates.note_zh : d.face_templates.note_en) : "")}</p>
  <h4>${FG.esc(FG.t("recent_title"))}</h4><table><thead><tr><th scope="col">${FG.esc(FG.t("col_when"))}</th><th scope="col">${FG.esc(FG.t("col_method"))}</th><th scope="col">${FG.esc(FG.t("col_result"))}</th><th scope="col">${FG.esc(FG.t("col_receipt"))}</th></tr></thead><tbody>${events.map(e => `<tr><td>${FG.esc(FG.time(e.at))}</td><td>${FG.esc(FG.v("method", (e.event || e).method))}</td><td>${FG.esc(FG.v("result", (e.event || e).result))}</td><td><code data-raw>${FG.esc(e.id || e.receipt_id || "")}</code></td></tr>`).join("")}</tbody></table>`;
}
$("btn-export").onclick = async () => {
  msg("export-msg");
  try {
    lastExport = await exportData();
    showExport();
    ok("export-msg", "export_shown");
    $("export-view").focus();
  } catch (e) { msg("export-msg", e); }
};
let lastExport = null;
document.addEventListener("fg-lang", () => { if (lastExport && !$("export-view").classList.contains("hidden")) showExport(); });
function showExport() {
  {
    const html = exportHtml(lastExport);
    const view = $("export-view");
    view.innerHTML = html + `<p><button id="btn-export-save" type="button">${FG.esc(FG.t("export_save"))}</button> <button id="btn-export-print" type="button">${FG.esc(FG.t("export_print"))}</button></p>`;
    view.classList.remove("hidden");
    $("btn-export-save").onclick = () => download("facegate-my-data.html", "text/html",
      `<!doctype html><html lang="${FG.lang === "zh" ? "zh-CN" : "en"}"><head><meta charset="utf-8"><title>${FG.esc(FG.t("export_heading"))}</title><style>body{font:16px/1.5 sans-serif;max-width:50em;margin:2em auto}table{border-collapse:collapse;width:100%}th,td{border:1px solid #888;padding:.3em;text-align:left}</style></head><body>${html}</body></html>`);
    $("btn-export-print").onclick = () => window.print();
  }
}
$("btn-export-json").onclick = async () => {
  msg("export-msg");
  try {
    const d = await exportData();
    download("facegate-my-data.json", "application/json", JSON.stringify(d, null, 2));
    ok("export-msg", "export_json_ok");
  } catch (e) { msg("export-msg", e); }
};

$("btn-delete").onclick = () => {
  msg("delete-result");
  $("delete-confirm").classList.remove("hidden");
  $("btn-delete").setAttribute("aria-expanded", "true");
  $("h-delete-confirm").focus();
};
$("btn-delete-no").onclick = () => {
  $("delete-confirm").classList.add("hidden");
  $("btn-delete").setAttribute("aria-expanded", "false");
  $("btn-delete").focus();
};
$("btn-delete-yes").onclick = async () => {
  try {
    const r = await FG.api("POST", `/v1/persons/${me.person.id}/erase`);
    $("delete-confirm").classList.add("hidden");
    logout(true);
    ok("login-msg", "deleted", { receipt: r.receipt_id, n: r.templates_deleted });
    $("login-msg").dataset.receipt = r.receipt_id;
  } catch (e) { msg("delete-result", e); }
};

$("btn-complaint").onclick = async () => {
  msg("complaint-msg");
  const body = $("complaint").value.trim();
  if (!body) { msg("complaint-msg", { key: "complaint_empty" }); return; }
  try {
    const c = await FG.api("POST", "/v1/complaints", { body, channel: "portal" });
    $("complaint").value = "";
    await load();
    ok("complaint-msg", "complaint_ok", { id: FG.shortId(c.id) });
    $("complaint-msg").dataset.id = c.id;
  } catch (e) { msg("complaint-msg", e); }
};

FG.initToolbar(); FG.apply();
if (tok) load().catch(() => { sessionStorage.removeItem("fg.portal.token"); FG.setToken(null); });
