// Console: headcount vs 100,000 with alert levels and the working-day filing
// deadline (R21), verifications by method, refusals by rule, scenarios with
// lint results, devices, request/complaint queues, audit chain, PIA and pack.
"use strict";
FG.add({
  console_title: { zh: "管理控制台", en: "Operator console" },
  key_title: { zh: "输入访问密钥", en: "Enter your API key" },
  key_label: { zh: "管理员、运营或审计密钥（fgk_…）", en: "Admin, operator or auditor key (fgk_…)" },
  open: { zh: "进入", en: "Open" }, sections: { zh: "栏目", en: "Sections" },
  tab_dash: { zh: "概览", en: "Dashboard" }, tab_scen: { zh: "场景", en: "Scenarios" }, tab_dev: { zh: "设备", en: "Devices" },
  tab_req: { zh: "请求与投诉", en: "Requests & complaints" }, tab_audit: { zh: "审计", en: "Audit" }, tab_docs: { zh: "评估与备案", en: "PIA & filing" },
  headcount_title: { zh: "存储人脸信息的人数（备案门槛 10 万人）", en: "People with stored face information (filing threshold 100,000)" },
  alert_level: { zh: "预警级别：", en: "Alert level:" },
  lvl_ok: { zh: "正常", en: "normal" }, lvl_watch: { zh: "关注（≥80%）", en: "watch (≥80 %)" }, lvl_warning: { zh: "警告（≥95%）", en: "warning (≥95 %)" }, lvl_filing_due: { zh: "已达门槛，须备案", en: "threshold reached: filing due" },
  deadline: { zh: "备案截止日（30 个工作日）：", en: "Last day to file (30 working days):" },
  not_reached: { zh: "未达门槛，暂无截止日", en: "threshold not reached; no deadline" },
  days_left: { zh: "剩余工作日", en: "working days left" }, provisional: { zh: "（暂定：超出已公布的节假日安排）", en: " (provisional: beyond the published holiday calendar)" },
  by_method: { zh: "核验次数（按方式/结果，自启动）", en: "Checks by method/result (since start)" },
  by_rule: { zh: "拒绝次数（按条款）", en: "Refusals by rule" },
  chain: { zh: "审计链：", en: "Audit chain:" }, intact: { zh: "完整", en: "intact" }, broken: { zh: "已被篡改！", en: "TAMPERED!" },
  pia_status: { zh: "影响评估：", en: "PIA:" }, open_items: { zh: "待处理请求 / 投诉：", en: "Open requests / complaints:" },
  upload: { zh: "上传场景清单（TOML，先检查）", en: "Upload a scenario manifest (TOML, linted first)" }, lint_upload: { zh: "检查并上传", en: "Lint and upload" },
  requests: { zh: "个人请求", en: "Requests" }, complaints: { zh: "投诉", en: "Complaints" },
  audit_export: { zh: "导出全部审计记录（JSON Lines）", en: "Export the whole audit log (JSON Lines)" },
  pia_dl: { zh: "下载个人信息保护影响评估报告", en: "Download the PIA report" }, pack_dl: { zh: "下载备案材料", en: "Download the filing pack" },
  none: { zh: "暂无", en: "none" },
});
const $ = id => document.getElementById(id);
function err(e) { $("error").textContent = e ? FG.errText(e) : ""; }
const P = FG.hashParams();
let key = P.get("key") || sessionStorage.getItem("fg.console.key");

function table(el, head, rows) {
  $(el).innerHTML = `<thead><tr>${head.map(h => `<th scope="col">${FG.esc(h)}</th>`).join("")}</tr></thead><tbody>` +
    (rows.length ? rows.map(r => `<tr>${r.map(c => `<td>${FG.esc(c)}</td>`).join("")}</tr>`).join("") : `<tr><td colspan="${head.length}">${FG.esc(FG.t("none"))}</td></tr>`) + "</tbody>";
}

async function dash() {
  const d = await FG.api("GET", "/v1/dashboard");
  const f = d.filing;
  $("headcount").textContent = f.headcount.toLocaleString();
  $("threshold").textContent = f.threshold.toLocaleString();
  $("meter").setAttribute("aria-valuenow", f.headcount);
  $("meter-bar").style.width = Math.min(100, 100 * f.headcount / f.threshold) + "%";
  const lvl = $("alert-level");
  lvl.textContent = FG.t("lvl_" + f.alert_level); lvl.dataset.level = f.alert_level;
  lvl.className = f.alert_level === "ok" ? "level-ok" : f.alert_level === "watch" ? "level-warn" : "level-alert";
  $("deadline").textContent = f.last_day_to_file
    ? `${f.last_day_to_file} (${f.working_days_left} ${FG.t("days_left")})${f.provisional ? FG.t("provisional") : ""}`
    : FG.t("not_reached");
  table("by-method", ["method/result", "n"], d.verifications.map(c => [c.key, c.count]));
  table("by-rule", ["rule", "n"], d.refusals.map(c => [c.key, c.count]));
  $("chain").textContent = FG.t(d.chain_intact ? "intact" : "broken") + ` (${d.audit_records})`;
  $("pia-status").textContent = d.pia_status;
  $("open-items").textContent = `${d.open_requests} / ${d.open_complaints}`;
}
async function scen() {
  const ss = await FG.api("GET", "/v1/scenarios");
  $("scenarios").innerHTML = ss.map(s => `<div class="card"><h3>${FG.esc(FG.lang === "zh" ? s.name_zh : s.name_en)} <small>(${FG.esc(s.id)} v${s.version})</small></h3>
    <p>${FG.esc(s.purpose_zh)}</p><p>mode: ${FG.esc(s.mode)} · methods: ${FG.esc(s.methods.join(", "))} · PIA ${FG.esc(s.pia_id)} (${FG.esc(s.pia_status)})</p>
    <p>lint: ${s.lint.length ? s.lint.map(l => FG.esc(`${l.severity} ${FG.ruleRef(l)} ${l.line}:${l.col} ${FG.lang === "zh" ? l.message_zh : l.message_en}`)).join("<br>") : "✓"}</p></div>`).join("");
}
async function dev() {
  const ds = await FG.api("GET", "/v1/devices");
  table("devices", ["id", "scenario", "placement", "location", "status"], ds.map(d => [d.id, d.scenario, d.placement, d.location_zh || "", d.status === "ok" ? "✓" : `${d.status}: ${FG.lang === "zh" ? d.status_zh : d.status_en}`]));
}
async function req() {
  const rs = await FG.api("GET", "/v1/requests");
  table("requests", ["id", "kind", "channel", "received", "due", "status", "outcome"], rs.map(r => [r.id.slice(0, 8), r.kind, r.channel, r.received_at, r.due_date, r.status, r.outcome || ""]));
  const cs = await FG.api("GET", "/v1/complaints");
  table("complaints", ["id", "received", "status", "text"], cs.map(c => [c.id.slice(0, 8), c.received_at, c.status, c.body]));
}
async function audit() {
  const v = await FG.api("GET", "/v1/audit/verify");
  $("chain2").textContent = v.intact ? FG.t("intact") + ` (${v.report.records})` : FG.t("broken") + " " + JSON.stringify(v.report.fault);
  const rs = await FG.api("GET", "/v1/audit?limit=200");
  table("audit", ["seq", "at", "event", "actor", "subject"], rs.reverse().map(r => [r.seq, r.at, r.event, r.actor, (r.subject || "").slice(0, 8)]));
}
const loaders = { dash, scen, dev, req, audit, docs: async () => {} };
let current = "dash";
async function tab(name) {
  current = name;
  for (const b of document.querySelectorAll("nav.tabs button")) b.setAttribute("aria-selected", b.dataset.tab === name);
  for (const s of document.querySelectorAll("section[role=tabpanel]")) s.classList.toggle("hidden", s.id !== "tab-" + name);
  err();
  try { await loaders[name](); } catch (e) { err(e); }
}
for (const b of document.querySelectorAll("nav.tabs button")) b.onclick = () => tab(b.dataset.tab);
document.addEventListener("fg-lang", () => { if (key) tab(current); });

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
  $("lint-out").innerHTML = j.diagnostics ? j.diagnostics.map(l => `<p class="${l.severity === "error" ? "err" : ""}">${FG.esc(`${l.severity} ${FG.ruleRef(l)} ${l.line}:${l.col} — ${FG.lang === "zh" ? l.message_zh + " " + l.hint_zh : l.message_en + " " + l.hint_en}`)}</p>`).join("") + (j.ok ? "<p>✓</p>" : "") : FG.esc(FG.errText(j));
  if (j.ok) scen();
};

async function start() {
  FG.setToken(key);
  try { await dash(); } catch (e) { err(e); return; }
  sessionStorage.setItem("fg.console.key", key);
  $("s-login").classList.add("hidden"); $("s-app").classList.remove("hidden");
  tab("dash");
}
$("btn-login").onclick = () => { key = $("key").value.trim(); start(); };
FG.initToolbar(); FG.apply();
if (key) start();
