// Console: headcount against 100,000 with its trend, the 80 % / 95 % lines
// and the working-day filing deadline (R21); checks per day by method and
// result and refusals by rule, drawn as inline SVG (no CDN); scenarios with
// lint results, devices and API keys, requests and complaints (answered
// where the server can), the guard's checks, the audit log with filters and
// paging, PIA and filing pack. Times in Asia/Shanghai.
"use strict";
const $ = id => document.getElementById(id);
function err(e) { FG.showErr($("error"), e); }
function msg(id, e) { const el = $(id); FG.showErr(el, e); el.classList.remove("ok"); el.classList.toggle("err", !!e); }
function ok(id, key) { const el = $(id); FG.showErr(el, null); FG.setT(el, key); el.classList.add("ok"); el.classList.remove("err"); }
const P = FG.hashParams();
let key = P.get("key") || sessionStorage.getItem("fg.console.key");
const T = k => FG.t(k);

// A table: head keys from the catalogue, rows of cells (strings are
// escaped; {html} cells are trusted markup made here).
function table(el, head, rows, caption) {
  const cell = c => (c && typeof c === "object" && "html" in c) ? c.html : FG.esc(c);
  $(el).innerHTML = (caption ? `<caption class="sr-only">${FG.esc(caption)}</caption>` : "") +
    `<thead><tr>${head.map(h => `<th scope="col">${FG.esc(T(h))}</th>`).join("")}</tr></thead><tbody>` +
    (rows.length ? rows.map(r => `<tr>${r.map(c => `<td>${cell(c)}</td>`).join("")}</tr>`).join("") : `<tr><td colspan="${head.length}">${FG.esc(T("none"))}</td></tr>`) + "</tbody>";
}
const raw = s => ({ html: `<span data-raw>${FG.esc(s)}</span>` });
const zhOnly = s => ({ html: s ? `<span lang="zh-CN" data-raw>${FG.esc(s)}</span>` : "" });

// ---- audit records, fetched once per visit and shared by charts and log ----
let auditCache = null;
async function auditAll() {
  if (auditCache) return auditCache;
  const out = [];
  let from = 1;
  for (let i = 0; i < 20; i++) {
    const page = await FG.api("GET", `/v1/audit?from=${from}&limit=1000`);
    out.push(...page);
    if (page.length < 1000) break;
    from = page[page.length - 1].seq + 1;
  }
  auditCache = out;
  return out;
}
const details = r => { try { return JSON.parse(r.details || "{}"); } catch (e) { return {}; } };

// ---- SVG charts ---------------------------------------------------------------
const COLORS = ["#0b5cad", "#11702f", "#a3120f", "#8a5a00", "#5b2a86", "#00727a", "#b0006b", "#444"];
const svgEsc = FG.esc;
function lineChart(days, values, f) {
  const W = 760, H = 300, L = 70, R = 20, Tm = 24, B = 44;
  const maxY = Math.max(105000, ...values);
  const n = Math.max(days.length, 2);
  const x = i => L + (W - L - R) * (days.length <= 1 ? 0.5 : i / (n - 1));
  const y = v => Tm + (H - Tm - B) * (1 - v / maxY);
  const lines = [[80000, "line80", T("line_80")], [95000, "line95", T("line_95")], [100000, "line100", T("line_100")]];
  let s = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="hc-title hc-desc"><title id="hc-title">${svgEsc(T("chart_headcount"))}</title><desc id="hc-desc">${svgEsc(T("chart_headcount_desc").replace("{n}", FG.num(values[values.length - 1] || 0)))}</desc>`;
  s += `<line class="axis" x1="${L}" y1="${y(0)}" x2="${W - R}" y2="${y(0)}"/><line class="axis" x1="${L}" y1="${Tm}" x2="${L}" y2="${y(0)}"/>`;
  // Labels: 100 % above its line at the right, 95 % below its line, 80 % above.
  const at = { line100: [W - R - 4, -5, "end"], line95: [L + 6, 15, "start"], line80: [L + 6, -5, "start"] };
  for (const [v, cls, label] of lines) {
    const [lx, dy, anchor] = at[cls];
    s += `<line class="${cls}" x1="${L}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}"/><text x="${lx}" y="${y(v) + dy}" text-anchor="${anchor}">${svgEsc(label)}</text>`;
  }
  for (const v of [0, 50000, 100000]) s += `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${FG.num(v)}</text>`;
  const step = Math.max(1, Math.ceil(days.length / 6));
  days.forEach((d, i) => { if (i % step === 0 || i === days.length - 1) s += `<text x="${x(i)}" y="${H - B + 18}" text-anchor="middle">${svgEsc(d.slice(5))}</text>`; });
  if (values.length) s += `<polyline class="series" points="${values.map((v, i) => `${x(i)},${y(v)}`).join(" ")}"/>` + values.map((v, i) => `<circle cx="${x(i)}" cy="${y(v)}" r="4" fill="#0b5cad"/>`).join("");
  if (f.last_day_to_file) {
    s += `<text x="${W - R}" y="${H - 6}" text-anchor="end">${svgEsc(T("deadline_short"))} ${svgEsc(FG.date(f.last_day_to_file))}</text>`;
    s += `<line class="deadline" x1="${W - R - 2}" y1="${Tm}" x2="${W - R - 2}" y2="${y(0)}"/>`;
  } else {
    s += `<text x="${W - R}" y="${H - 6}" text-anchor="end">${svgEsc(T("not_reached"))}</text>`;
  }
  return s + "</svg>";
}
function barsChart(cats, series, titleKey) {
  // Stacked bars: one per category (day), a segment per series key.
  const W = 760, H = 300, L = 50, R = 20, Tm = 16, B = 44;
  const totals = cats.map(c => series.reduce((a, k) => a + (c.v[k] || 0), 0));
  const maxY = Math.max(1, ...totals);
  const bw = Math.min(60, (W - L - R) / Math.max(1, cats.length) * 0.7);
  const x = i => L + (W - L - R) * (i + 0.5) / Math.max(1, cats.length);
  const y = v => Tm + (H - Tm - B) * (1 - v / maxY);
  let s = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${svgEsc(T(titleKey))}"><line class="axis" x1="${L}" y1="${y(0)}" x2="${W - R}" y2="${y(0)}"/>`;
  s += `<text x="${L - 6}" y="${y(maxY) + 4}" text-anchor="end">${maxY}</text><text x="${L - 6}" y="${y(0) + 4}" text-anchor="end">0</text>`;
  cats.forEach((c, i) => {
    let acc = 0;
    series.forEach((k, j) => {
      const v = c.v[k] || 0; if (!v) return;
      s += `<rect x="${x(i) - bw / 2}" y="${y(acc + v)}" width="${bw}" height="${y(acc) - y(acc + v)}" fill="${COLORS[j % COLORS.length]}"><title>${svgEsc(c.label + " · " + c.names[k] + ": " + v)}</title></rect>`;
      acc += v;
    });
    s += `<text x="${x(i)}" y="${H - B + 18}" text-anchor="middle">${svgEsc(c.label)}</text><text x="${x(i)}" y="${y(acc) - 4}" text-anchor="middle">${acc}</text>`;
  });
  return s + "</svg>";
}
function legend(series, names) {
  return `<ul class="legend">${series.map((k, j) => `<li><span class="sw" style="background:${COLORS[j % COLORS.length]}"></span>${FG.esc(names[k])}</li>`).join("")}</ul>`;
}

// ---- tabs ---------------------------------------------------------------------
let dashData = null;
async function dash() {
  const d = await FG.api("GET", "/v1/dashboard");
  dashData = d;
  const f = d.filing;
  $("headcount").textContent = FG.num(f.headcount);
  $("threshold").textContent = FG.num(f.threshold);
  $("meter").setAttribute("aria-valuenow", f.headcount);
  $("meter").setAttribute("aria-valuetext", `${FG.num(f.headcount)} / ${FG.num(f.threshold)}`);
  $("meter-bar").style.width = Math.min(100, 100 * f.headcount / f.threshold) + "%";
  const lvl = $("alert-level");
  lvl.textContent = FG.v("lvl", f.alert_level); lvl.dataset.level = f.alert_level;
  lvl.className = f.alert_level === "ok" ? "level-ok" : f.alert_level === "watch" ? "level-warn" : "level-alert";
  $("deadline").textContent = f.last_day_to_file
    ? FG.t("deadline_value", { d: FG.date(f.last_day_to_file), n: f.working_days_left }) + (f.provisional ? T("provisional") : "")
    : T("not_reached");
  $("chain").textContent = T(d.chain_intact ? "intact" : "broken") + " " + FG.t("n_records", { n: FG.num(d.audit_records) });
  $("pia-status").textContent = FG.v("pia", d.pia_status);
  $("open-items").textContent = `${FG.num(d.open_requests)} / ${FG.num(d.open_complaints)}`;
  // Headcount over time: the server's daily series where it has one
  // (GET /v1/stats/headcount), else the count after each enrolment from
  // the audit log, ending at today's figure.
  let days = [], values = [];
  try {
    const h = await FG.api("GET", "/v1/stats/headcount?days=90");
    days = h.map(p => p.date); values = h.map(p => p.headcount);
  } catch (e) {
    const recs = await auditAll();
    const perDay = new Map();
    for (const r of recs) if (r.event === "enrol") { const hc = details(r).headcount; if (hc != null) perDay.set(FG.day(r.at), hc); }
    perDay.set(FG.day(new Date()), f.headcount);
    days = [...perDay.keys()]; values = [...perDay.values()];
  }
  $("chart-headcount").innerHTML = lineChart(days, values, f) +
    `<details><summary>${FG.esc(T("chart_data"))}</summary><table><thead><tr><th scope="col">${FG.esc(T("col_day"))}</th><th scope="col">${FG.esc(T("col_headcount"))}</th></tr></thead><tbody>${days.map((d, i) => `<tr><td>${FG.esc(FG.date(d))}</td><td>${FG.num(values[i])}</td></tr>`).join("")}</tbody></table></details>`;
}
async function checks() {
  const d = dashData || await FG.api("GET", "/v1/dashboard");
  // Per day (Beijing), by method and result: the server's counts from the
  // store (GET /v1/stats/checks), else counted here from the audit log.
  const byDay = new Map(), keys = new Set(), names = {};
  const ruleCount = new Map();
  const add = (day, method, result, n) => {
    const k = `${method}/${result}`;
    keys.add(k); names[k] = `${FG.v("method", method)} · ${FG.v("result", result)}`;
    if (!byDay.has(day)) byDay.set(day, {});
    byDay.get(day)[k] = (byDay.get(day)[k] || 0) + n;
  };
  let total = 0;
  try {
    const st = await FG.api("GET", "/v1/stats/checks?days=14");
    for (const x of st.days) { add(x.date, x.method, x.result, x.count); total += x.count; }
    for (const r of st.refusals) ruleCount.set(r.rule, r.count);
  } catch (e) {
    const recs = (await auditAll()).filter(r => r.event === "verification");
    for (const r of recs) {
      const x = details(r);
      add(FG.day(r.at), x.method, x.result, 1); total++;
      if (x.refusal_rule) ruleCount.set(x.refusal_rule, (ruleCount.get(x.refusal_rule) || 0) + 1);
    }
  }
  $("checks-basis").textContent = FG.t("checks_basis", { n: FG.num(total) });
  const series = [...keys].sort();
  const cats = [...byDay.keys()].sort().slice(-14).map(day => ({ label: day.slice(5), v: byDay.get(day), names }));
  $("chart-checks").innerHTML = barsChart(cats, series, "chart_checks") + legend(series, names);
  const rules = [...ruleCount.keys()].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  const rnames = Object.fromEntries(rules.map(r => [r, r]));
  $("chart-refusals").innerHTML = rules.length
    ? barsChart(rules.map(r => ({ label: r, v: { [r]: ruleCount.get(r) }, names: rnames })), rules, "chart_refusals") + `<p class="muted">${FG.esc(T("rules_hint"))}</p>`
    : `<p>${FG.esc(T("no_refusals"))}</p>`;
  // The store's counts over the dashboard's window (the same on every
  // instance and after a restart), not this process's counters.
  FG.setT($("h-by-method"), "by_method", { days: d.days });
  FG.setT($("h-by-rule"), "by_rule", { days: d.days });
  table("by-method", ["col_method_result", "col_count"], d.verifications.map(c => { const [m, r] = c.key.split("/"); return [`${FG.v("method", m)} · ${FG.v("result", r)}`, FG.num(c.count)]; }));
  table("by-rule", ["col_rule", "col_count"], d.refusals.map(c => [c.key, FG.num(c.count)]));
}
async function scen() {
  const ss = await FG.api("GET", "/v1/scenarios");
  const zh = FG.lang === "zh";
  $("scenarios").innerHTML = ss.map(s => `<div class="card"><h3>${FG.esc(zh ? s.name_zh : s.name_en)} <small>(<span data-raw>${FG.esc(s.id)}</span> · ${FG.esc(FG.t("version_n", { n: s.version }))})</small></h3>
    <dl class="kv"><dt>${FG.esc(T("purpose"))}</dt><dd><span lang="zh-CN" data-raw>${FG.esc(s.purpose_zh)}</span></dd>
    <dt>${FG.esc(T("col_mode"))}</dt><dd>${FG.esc(FG.v("mode", s.mode))}</dd>
    <dt>${FG.esc(T("col_methods"))}</dt><dd>${FG.esc(s.methods.map(m => FG.v("method", m)).join(zh ? "、" : ", "))}</dd>
    <dt>${FG.esc(T("pia_status"))}</dt><dd><span data-raw>${FG.esc(s.pia_id)}</span> (${FG.esc(FG.v("pia", s.pia_status))})</dd>
    <dt>${FG.esc(T("lint"))}</dt><dd>${s.lint.length ? s.lint.map(l => FG.esc(`${FG.v("severity", l.severity)} ${FG.ruleRef(l)} ${FG.t("line_col", { l: l.line, c: l.col })} ${zh ? l.message_zh : l.message_en}`)).join("<br>") : FG.esc(T("lint_clean"))}</dd></dl></div>`).join("");
}
let keyDevice = () => undefined;
async function dev() {
  const ds = await FG.api("GET", "/v1/devices");
  // Added and revoked here: the server amends the deployed manifest and
  // lints it (a private place is refused with its rule, R19), so the
  // notice, PIA and filing pack list exactly these devices.
  table("devices", ["col_device", "col_scenario", "col_placement", "col_location", "col_status", "col_actions"], ds.map(d => [raw(d.id), raw(d.scenario), FG.v("placement", d.placement), zhOnly(d.location_zh),
    !d.active ? T("revoked") : d.status === "ok" ? T("device_ok") : `${d.status}: ${FG.lang === "zh" ? d.status_zh : d.status_en}`,
    d.active ? { html: `<button type="button" class="dev-revoke" data-s="${FG.esc(d.scenario)}" data-id="${FG.esc(d.id)}" aria-label="${FG.esc(T("revoke") + " " + d.id)}">${FG.esc(T("revoke"))}</button>` } : ""]));
  for (const b of document.querySelectorAll("#devices button.dev-revoke")) b.onclick = async () => {
    if (!confirm(FG.t("dev_revoke_confirm"))) return;
    try { await FG.api("POST", `/v1/scenarios/${encodeURIComponent(b.dataset.s)}/devices/${encodeURIComponent(b.dataset.id)}/revoke`); await dev(); ok("dev-msg", "dev_revoked_ok"); } catch (e) { msg("dev-msg", e); }
  };
  const sel = $("d-scenario"), keep = sel.value;
  const ss = await FG.api("GET", "/v1/scenarios");
  sel.innerHTML = ss.map(s => `<option value="${FG.esc(s.id)}">${FG.esc(s.id)}</option>`).join("");
  if (keep) sel.value = keep;
  // A device key is bound to one device of one scenario (the server refuses
  // a device key without its scenario): pick among the active devices, so
  // a same-named gate of another scenario cannot be chosen by mistake.
  keyDevice = FG.deviceChoices($("k-device"), ds.filter(d => d.active));
  try {
    const ks = await FG.api("GET", "/v1/keys");
    table("keys", ["col_key", "col_role", "col_device", "col_scenario", "col_label", "col_created", "col_status", "col_actions"], ks.map(k => [raw(k.id), FG.v("role", k.role), raw(k.device_id || ""), raw(k.scenario || ""), raw(k.label), FG.time(k.created_at), T(k.revoked ? "key_revoked" : "key_active"),
      k.revoked ? "" : { html: `<span class="actions"><button type="button" class="revoke" data-id="${FG.esc(k.id)}">${FG.esc(T("revoke"))}</button></span>` }]));
    for (const b of document.querySelectorAll("#keys button.revoke")) b.onclick = async () => {
      try { await FG.api("DELETE", "/v1/keys/" + encodeURIComponent(b.dataset.id)); ok("keys-msg", "revoked_ok"); await dev(); } catch (e) { msg("keys-msg", e); }
    };
  } catch (e) { table("keys", ["col_key"], [[T("keys_admin_only")]]); }
}
$("btn-dev-add").onclick = async () => {
  msg("dev-add-msg");
  const id = $("d-id").value.trim(), zh = $("d-loc-zh").value.trim();
  if (!id || !zh) { msg("dev-add-msg", { key: "dev_need" }); return; }
  try {
    await FG.api("POST", "/v1/devices", { scenario: $("d-scenario").value || null, id, placement: $("d-placement").value, location_zh: zh, location_en: $("d-loc-en").value.trim() || null });
    for (const x of ["d-id", "d-loc-zh", "d-loc-en"]) $(x).value = "";
    await dev();
    ok("dev-add-msg", "dev_added_ok");
  } catch (e) { msg("dev-add-msg", e); }
};
function channel(c) { return FG.t(c === "portal" ? "channel_portal" : (c || "").startsWith("kiosk") ? "channel_kiosk" : (c || "").startsWith("hub:") ? "channel_hub" : "channel_api"); }
// The outcomes the server writes for requests answered at once, in the
// reader's language; anything else as written.
function outcome(o) {
  if (!o) return "";
  if (o.startsWith("export delivered")) return FG.t("outcome_export");
  const m = o.match(/^erased; receipt (\S+)/);
  if (m) return FG.t("outcome_erased", { receipt: m[1] });
  return raw(o);
}
// A new API key: its secret is shown here once (the server keeps a hash).
$("btn-key-new").onclick = async () => {
  msg("key-new-msg"); $("key-secret").classList.add("hidden");
  const role = $("k-role").value, dev = keyDevice();
  if (role === "device" && !dev) { msg("key-new-msg", { key: "k_need_device" }); return; }
  try {
    const bound = role === "device" ? { device_id: dev.id, scenario: dev.scenario } : { device_id: null };
    const k = await FG.api("POST", "/v1/keys", { role, ...bound, label: $("k-label").value.trim() });
    ok("key-new-msg", "key_issued_ok");
    $("key-secret").textContent = k.key; $("key-secret").classList.remove("hidden");
    await dev_keys_refresh();
  } catch (e) { msg("key-new-msg", e); }
};
$("k-role").onchange = () => { $("k-device").disabled = $("k-role").value !== "device"; };
async function dev_keys_refresh() { const s = $("key-secret").textContent; await dev(); $("key-secret").textContent = s; }
async function req() {
  const rs = await FG.api("GET", "/v1/requests");
  table("requests", ["col_id", "col_kind", "col_channel", "col_received", "col_due", "col_status", "col_outcome"], rs.map(r => [raw(FG.shortId(r.id)), FG.v("req_kind", r.kind), channel(r.channel), FG.time(r.received_at), FG.date(r.due_date), FG.v("req_status", r.status), outcome(r.outcome)]));
  const cs = await FG.api("GET", "/v1/complaints");
  // Answering needs POST /v1/complaints/{id}/resolve; hidden where absent.
  const canAnswer = await FG.probe("POST", "/v1/complaints/probe/resolve");
  table("complaints", ["col_id", "col_received", "col_status", "col_text", "col_reply"], cs.map(c => [raw(FG.shortId(c.id)), FG.time(c.received_at), FG.v("complaint_status", c.status), raw(c.body),
    c.response ? raw(c.response) : (canAnswer ? { html: `<label class="sr-only" for="reply-${FG.esc(c.id)}">${FG.esc(T("col_reply"))}</label><textarea id="reply-${FG.esc(c.id)}" rows="2" cols="30"></textarea><button type="button" class="answer" data-id="${FG.esc(c.id)}">${FG.esc(T("answer_close"))}</button>` } : T("no_reply_yet"))]));
  for (const b of document.querySelectorAll("#complaints button.answer")) b.onclick = async () => {
    const text = $("reply-" + b.dataset.id).value.trim();
    if (!text) { msg("complaints-msg", { key: "reply_empty" }); return; }
    try { await FG.api("POST", `/v1/complaints/${b.dataset.id}/resolve`, { response: text }); ok("complaints-msg", "answered_ok"); await req(); } catch (e) { msg("complaints-msg", e); }
  };
}
// Residents: add one (POST /v1/persons), find one (GET /v1/persons?q=,
// hidden where the server lacks it), issue portal access after recording
// how the identity was checked.
let selected = null;
async function people() {
  $("find-box").classList.toggle("hidden", !(await FG.probe("GET", "/v1/persons?q=")));
  if (selected) showPerson(selected);
  renderFound();
}
function showPerson(p) {
  selected = p;
  $("person-card").classList.remove("hidden");
  $("pc-name").textContent = p.display_name || "—";
  $("pc-id").textContent = p.id;
  $("pc-dob").textContent = p.date_of_birth ? FG.date(p.date_of_birth) : "—";
  $("pc-minor").textContent = FG.t(p.minor ? "yes_minor" : "no");
  $("pc-no").textContent = p.resident_no || "—";
  $("pc-room").textContent = p.room || "—";
  showCards().catch(e => msg("pc-card-msg", e));
}
// Cards and QR codes: issue (replacing the active one of the kind), list
// (never the number: only its keyed hash is kept), revoke.
async function showCards() {
  if (!selected) return;
  const cs = await FG.api("GET", `/v1/persons/${selected.id}/cards`);
  table("pc-cards", ["col_kind", "col_created", "col_status", "col_actions"], cs.map(c => [T(c.kind === "card" ? "method_card" : "method_qr_code"), FG.time(c.created_at), T(c.revoked_at ? "revoked" : "active"),
    c.revoked_at ? "" : { html: `<button type="button" class="card-revoke" data-id="${FG.esc(c.id)}">${FG.esc(T("revoke"))}</button>` }]));
  for (const b of document.querySelectorAll("#pc-cards button.card-revoke")) b.onclick = async () => {
    try { await FG.api("DELETE", `/v1/persons/${selected.id}/cards/${b.dataset.id}`); await showCards(); ok("pc-card-msg", "card_revoked_ok"); } catch (e) { msg("pc-card-msg", e); }
  };
}
$("btn-pc-card").onclick = async () => {
  msg("pc-card-msg");
  const secret = $("pc-card-no").value.trim();
  if (!selected) return;
  if (!secret) { msg("pc-card-msg", { key: "card_need_number" }); $("pc-card-no").focus(); return; }
  try {
    await FG.api("POST", `/v1/persons/${selected.id}/cards`, { kind: $("pc-card-kind").value, secret });
    $("pc-card-no").value = "";
    await showCards();
    ok("pc-card-msg", "card_issued_ok");
  } catch (e) { msg("pc-card-msg", e); }
};
// Erase (R14: consent and audit records stay), after a confirmation.
$("btn-pc-erase").onclick = async () => {
  msg("pc-msg");
  if (!selected || !confirm(FG.t("erase_confirm"))) return;
  try {
    await FG.api("POST", `/v1/persons/${selected.id}/erase`);
    ok("pc-msg", "erased_ok");
    $("person-card").classList.add("hidden");
    selected = null;
  } catch (e) { msg("pc-msg", e); }
};
$("btn-add-person").onclick = async () => {
  msg("people-msg");
  const name = $("p-name").value.trim();
  if (!name) { msg("people-msg", { key: "need_name" }); return; }
  try {
    const p = await FG.api("POST", "/v1/persons", { display_name: name, date_of_birth: $("p-dob").value || null, contact: $("p-contact").value.trim() || null, room: $("p-room").value.trim() || null });
    ok("people-msg", "person_added_ok");
    for (const id of ["p-name", "p-dob", "p-contact", "p-room"]) $(id).value = "";
    FG.setT($("pc-code"));
    showPerson(p);
    $("person-card").focus();
  } catch (e) { msg("people-msg", e); }
};
// The last search, drawn again when the language changes.
let found = null;
function renderFound() {
  if (!found) return;
  table("people-found", ["p_name", "resident_no", "p_room", "col_person_id", "col_actions"], found.map(p => [raw(p.display_name || ""), raw(p.resident_no || ""), raw(p.room || ""), raw(FG.shortId(p.id)), { html: `<button type="button" class="pick" data-id="${FG.esc(p.id)}">${FG.esc(T("select"))}</button>` }]));
  for (const b of document.querySelectorAll("#people-found button.pick")) b.onclick = () => showPerson(found.find(p => p.id === b.dataset.id));
}
$("btn-find").onclick = async () => {
  try {
    found = await FG.api("GET", "/v1/persons?q=" + encodeURIComponent($("find-q").value.trim()));
    renderFound();
  } catch (e) { msg("people-msg", e); }
};
$("btn-pc-code").onclick = async () => {
  msg("pc-msg");
  const how = $("pc-check").value;
  if (!how) { msg("pc-msg", { key: "need_identity_check" }); return; }
  try {
    const c = await FG.api("POST", `/v1/persons/${selected.id}/portal-code`, { identity_check: how });
    FG.setT($("pc-code"), "code_is_console", { code: c.code, t: FG.time(c.expires_at) });
    $("pc-code").dataset.code = c.code;
  } catch (e) { msg("pc-msg", e); }
};

// The guard's checks (人工核验) waiting at kiosks: confirm after looking at
// the person, or refuse; the kiosk shows the outcome.
async function guard() {
  const cs = await FG.api("GET", "/v1/staffed-checks?status=pending");
  table("guard", ["col_id", "col_device", "col_person", "col_received", "col_actions"], cs.map(c => [raw(c.code || FG.shortId(c.id)), raw(c.device_id || ""), raw(c.display_name || FG.shortId(c.person_id)), FG.time(c.created_at),
    { html: `<span class="actions"><button type="button" class="g-pass" data-id="${FG.esc(c.id)}">${FG.esc(T("guard_pass"))}</button> <button type="button" class="g-fail" data-id="${FG.esc(c.id)}">${FG.esc(T("guard_fail"))}</button></span>` }]));
  for (const b of document.querySelectorAll("#guard button")) b.onclick = async () => {
    const guardName = $("guard-name").value.trim();
    if (!guardName) { msg("guard-msg", { key: "guard_need_name" }); $("guard-name").focus(); return; }
    try {
      await FG.api("POST", `/v1/staffed-checks/${b.dataset.id}/decide`, { result: b.classList.contains("g-pass") ? "pass" : "fail", guard_name: guardName, how: "in person at the gate" });
      ok("guard-msg", "guard_done"); await guard();
    } catch (e) { msg("guard-msg", e); }
  };
}

// `device:KEYID`, `person:UUID`, `server:sweep`: who, in words, and which.
function actor(a) {
  const [kind, ...rest] = String(a || "").split(":");
  const id = rest.join(":");
  if (!FG.has("actor_" + kind)) return raw(a);
  return { html: `${FG.esc(FG.t("actor_" + kind))} <span data-raw>${FG.esc(kind === "person" ? FG.shortId(id) : id)}</span>` };
}
// Audit log: filters and paging over the records (client-side).
let auditPage = 0;
const PAGE = 50;
function auditFiltered(recs) {
  const ev = $("f-event").value, actor = $("f-actor").value.trim().toLowerCase(), subj = $("f-subject").value.trim().toLowerCase().replace(/^…/, "");
  const from = $("f-from").value, to = $("f-to").value;
  return recs.filter(r => (!ev || r.event === ev) && (!actor || (r.actor || "").toLowerCase().includes(actor)) &&
    (!subj || (r.subject || "").toLowerCase().includes(subj)) && (!from || FG.day(r.at) >= from) && (!to || FG.day(r.at) <= to));
}
async function audit() {
  const v = await FG.api("GET", "/v1/audit/verify");
  $("chain2").textContent = v.intact ? T("intact") + " " + FG.t("n_records", { n: FG.num(v.report.records) }) : T("broken") + " " + JSON.stringify(v.report.fault);
  const recs = await auditAll();
  const sel = $("f-event"), cur = sel.value;
  const events = [...new Set(recs.map(r => r.event))].sort();
  sel.innerHTML = `<option value="">${FG.esc(T("f_all"))}</option>` + events.map(e => `<option value="${FG.esc(e)}">${FG.esc(FG.v("event", e))}</option>`).join("");
  sel.value = cur;
  renderAudit();
}
function renderAudit() {
  const all = auditFiltered(auditCache || []).slice().reverse();
  const pages = Math.max(1, Math.ceil(all.length / PAGE));
  auditPage = Math.min(auditPage, pages - 1);
  const rows = all.slice(auditPage * PAGE, auditPage * PAGE + PAGE);
  $("page-info").textContent = FG.t("page_of", { p: auditPage + 1, n: pages, total: FG.num(all.length) });
  $("btn-prev").disabled = auditPage === 0;
  $("btn-next").disabled = auditPage >= pages - 1;
  table("audit", ["col_seq", "col_when", "col_event", "col_actor", "col_subject", "col_detail"], rows.map(r => {
    const x = details(r);
    const detail = r.event === "verification" ? `${FG.v("method", x.method)} · ${FG.v("result", x.result)}${x.refusal_rule ? " · " + x.refusal_rule : ""}` : "";
    return [r.seq, FG.time(r.at, true), FG.v("event", r.event), actor(r.actor), raw(FG.shortId(r.subject)), detail];
  }), T("tab_audit"));
}
for (const id of ["f-event", "f-actor", "f-subject", "f-from", "f-to"]) $(id).addEventListener("input", () => { auditPage = 0; renderAudit(); });
$("btn-filter-clear").onclick = () => { for (const id of ["f-event", "f-actor", "f-subject", "f-from", "f-to"]) $(id).value = ""; auditPage = 0; renderAudit(); };
$("btn-prev").onclick = () => { auditPage--; renderAudit(); };
$("btn-next").onclick = () => { auditPage++; renderAudit(); };

const loaders = { dash, checks, guard, people, scen, dev, req, audit, docs: async () => {} };
let current = "dash";
async function tab(name) {
  current = name;
  for (const b of document.querySelectorAll("nav.tabs button")) b.setAttribute("aria-selected", b.dataset.tab === name);
  for (const s of document.querySelectorAll("section[role=tabpanel]")) s.classList.toggle("hidden", s.id !== "tab-" + name);
  err();
  try { await loaders[name](); } catch (e) { err(e); }
  document.body.dataset.tab = name;
}
for (const b of document.querySelectorAll("nav.tabs button")) b.onclick = () => { auditCache = null; tab(b.dataset.tab); };
document.addEventListener("fg-lang", () => { if (key && !$("s-app").classList.contains("hidden")) tab(current); });

async function download(path, name) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + key } });
  if (!r.ok) { err(await r.json()); return; }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await r.blob()); a.download = name; a.click();
}
$("btn-pia").onclick = () => download("/v1/pia", "facegate-pia.html");
$("btn-pack").onclick = () => download("/v1/filing/pack", "facegate-filing-pack.html");
$("audit-export").onclick = e => { e.preventDefault(); download("/v1/audit/export", "facegate-audit.jsonl"); };
$("btn-upload").onclick = async () => {
  err();
  const r = await fetch("/v1/scenarios", { method: "POST", headers: { Authorization: "Bearer " + key, "Content-Type": "application/toml" }, body: $("manifest").value });
  const j = await r.json();
  const zh = FG.lang === "zh";
  $("lint-out").innerHTML = j.diagnostics ? j.diagnostics.map(l => `<p class="${l.severity === "error" ? "err" : ""}">${FG.esc(`${FG.v("severity", l.severity)} ${FG.ruleRef(l)} ${FG.t("line_col", { l: l.line, c: l.col })} — ${zh ? l.message_zh + " " + l.hint_zh : l.message_en + " " + l.hint_en}`)}</p>`).join("") + (j.ok ? `<p>${FG.esc(T("deployed_ok"))}</p>` : "") : FG.esc(FG.errText(j));
  if (j.ok) scen();
};

async function start() {
  FG.setToken(key);
  try { await FG.api("GET", "/v1/dashboard"); } catch (e) { err(e); return; }
  sessionStorage.setItem("fg.console.key", key);
  $("s-login").classList.add("hidden"); $("s-app").classList.remove("hidden"); $("btn-logout").classList.remove("hidden");
  if (await FG.probe("GET", "/v1/staffed-checks?status=pending")) $("t-guard").classList.remove("hidden");
  tab("dash");
}
$("btn-login").onclick = () => { key = $("key").value.trim(); start(); };
$("btn-logout").onclick = () => {
  sessionStorage.removeItem("fg.console.key"); key = null; FG.setToken(null); auditCache = null;
  $("s-app").classList.add("hidden"); $("btn-logout").classList.add("hidden"); $("s-login").classList.remove("hidden"); $("key").value = "";
  location.hash = "";
};
FG.initToolbar(); FG.apply();
if (key) start();
