// Portal: the notice in force, my consents with one-step withdrawal (R8),
// export everything held, delete, complain, the processor's filing number.
"use strict";
FG.add({
  portal_title: { zh: "个人中心 · 我的人脸信息", en: "My data · face information" },
  login_title: { zh: "输入登录码", en: "Enter your code" },
  code_label: { zh: "8 位登录码（在门禁终端或物业服务中心获取）", en: "8-digit code (from the gate kiosk or the service centre)" },
  login: { zh: "进入", en: "Open" },
  code_hint: { zh: "登录码仅可使用一次，15 分钟内有效。", en: "A code works once and for 15 minutes." },
  who: { zh: "我的信息", en: "About me" },
  filing_number: { zh: "处理者备案编号：", en: "Processor's filing number:" },
  not_filed: { zh: "暂无（人数未达 10 万，无需备案）", en: "none (fewer than 100,000 people; no filing needed yet)" },
  consents_title: { zh: "我的授权", en: "My consents" },
  no_consents: { zh: "暂无授权记录。", en: "No consents recorded." },
  active: { zh: "有效", en: "active" },
  withdrawn: { zh: "已撤回", en: "withdrawn" },
  withdraw: { zh: "撤回人脸授权", en: "Withdraw face consent" },
  withdrawn_ok: { zh: "已撤回，人脸特征已删除。您可继续使用：", en: "Withdrawn; your face template is deleted. You can keep using:" },
  receipt: { zh: "凭证编号：", en: "Receipt:" },
  recent_title: { zh: "最近的核验记录", en: "Recent checks" },
  data_title: { zh: "我的数据", en: "My data" },
  export: { zh: "导出我的全部信息", en: "Export everything held about me" },
  delete: { zh: "删除我的全部信息", en: "Delete all my data" },
  delete_confirm: { zh: "确定删除？人脸特征、密码和身份信息将被删除，无法恢复。", en: "Delete? Your face template, PIN and identity data will be deleted for good." },
  deleted: { zh: "已删除。凭证编号：", en: "Deleted. Receipt:" },
  complaint_title: { zh: "投诉与建议", en: "Complaints" },
  complaint_label: { zh: "请描述您的问题", en: "Describe the problem" },
  complaint_send: { zh: "提交投诉", en: "Send complaint" },
  complaint_ok: { zh: "已收到您的投诉，编号：", en: "Complaint received, number:" },
  complaint_other: { zh: "您也可以向网信部门（12377）、公安机关或 12345 热线投诉。", en: "You can also complain to the CAC (12377), the police, or the 12345 hotline." },
  notice_title: { zh: "现行告知书", en: "The notice in force" },
  method_pin: { zh: "个人密码", en: "PIN" }, method_card: { zh: "门禁卡", en: "access card" },
  method_qr_code: { zh: "二维码", en: "QR code" }, method_staffed_check: { zh: "人工核验", en: "check by staff" },
  method_face: { zh: "人脸识别", en: "face recognition" },
});
const $ = id => document.getElementById(id);
let me = null;
function err(e) { $("error").textContent = e ? FG.errText(e) : ""; }
const tok = sessionStorage.getItem("fg.portal.token");
if (tok) FG.setToken(tok);

$("btn-login").onclick = async () => {
  err();
  try {
    const s = await FG.api("POST", "/v1/portal/session", { code: $("code").value.trim() });
    sessionStorage.setItem("fg.portal.token", s.token);
    FG.setToken(s.token);
    await load();
  } catch (e) { err(e); }
};

async function load() {
  me = await FG.api("GET", "/v1/me");
  $("s-login").classList.add("hidden");
  $("s-me").classList.remove("hidden");
  render();
}

function render() {
  if (!me) return;
  const zh = FG.lang === "zh";
  $("who").textContent = `${me.person.display_name || ""} · ${zh ? me.scenario_name_zh : me.scenario_name_en}`;
  $("filing-number").textContent = me.filing_number || FG.t("not_filed");
  $("notice").innerHTML = zh ? me.notice_html_zh : me.notice_html_en;
  const cs = $("consents");
  cs.innerHTML = me.consents.length ? "" : `<p>${FG.esc(FG.t("no_consents"))}</p>`;
  for (const c of me.consents) {
    const div = document.createElement("div");
    div.className = "card";
    div.innerHTML = `<p><strong>${FG.esc(c.kind)}</strong> · ${FG.esc(c.scenario)} · ${FG.esc(new Date(c.given_at).toLocaleString())} · <span class="${c.active ? "level-ok" : "level-warn"}">${FG.esc(FG.t(c.active ? "active" : "withdrawn"))}</span></p>`;
    if (c.active) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "withdraw"; b.textContent = FG.t("withdraw");
      b.onclick = () => withdraw(c.id, div);
      div.appendChild(b);
    }
    cs.appendChild(div);
  }
  $("recent").innerHTML = me.recent.length ? `<table><thead><tr><th>${zh ? "时间" : "When"}</th><th>${zh ? "方式" : "Method"}</th><th>${zh ? "结果" : "Result"}</th><th>${zh ? "凭证编号" : "Receipt"}</th></tr></thead><tbody>` +
    me.recent.map(r => `<tr><td>${FG.esc(new Date(r.at).toLocaleString())}</td><td>${FG.esc(r.method)}</td><td>${FG.esc(r.result)}${r.refusal_rule ? " (" + FG.esc(FG.ruleRef({ rule: r.refusal_rule, article: r.refusal_article, article_zh: r.refusal_article_zh })) + ")" : ""}</td><td><code>${FG.esc(r.receipt_id)}</code></td></tr>`).join("") + "</tbody></table>" : "";
}
document.addEventListener("fg-lang", render);

// One step: no confirmation dialog (withdrawing takes no more steps than consenting did).
async function withdraw(id, div) {
  err();
  try {
    const r = await FG.api("POST", `/v1/consents/${id}/withdraw`, { channel: "portal" });
    await load();
    const alts = r.alternatives.map(m => FG.t("method_" + m)).join("、");
    $("status").textContent = `${FG.t("withdrawn_ok")} ${alts}. ${FG.t("receipt")} ${r.receipt_id}`;
    $("status").dataset.receipt = r.receipt_id;
  } catch (e) { err(e); }
}

$("btn-export").onclick = async () => {
  err();
  try {
    const data = await FG.api("GET", `/v1/persons/${me.person.id}/export`);
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = "facegate-my-data.json"; a.id = "export-link";
    document.body.appendChild(a); a.click();
    $("status").textContent = "✓ facegate-my-data.json";
  } catch (e) { err(e); }
};

$("btn-delete").onclick = async () => {
  err();
  if (!confirm(FG.t("delete_confirm"))) return;
  try {
    const r = await FG.api("POST", `/v1/persons/${me.person.id}/erase`);
    $("delete-result").textContent = FG.t("deleted") + " " + r.receipt_id;
    $("delete-result").classList.remove("hidden");
    sessionStorage.removeItem("fg.portal.token");
  } catch (e) { err(e); }
};

$("btn-complaint").onclick = async () => {
  err();
  try {
    const c = await FG.api("POST", "/v1/complaints", { body: $("complaint").value, channel: "portal" });
    $("status").textContent = FG.t("complaint_ok") + " " + c.id;
    $("complaint").value = "";
  } catch (e) { err(e); }
};

FG.initToolbar(); FG.apply();
if (tok) load().catch(() => { sessionStorage.removeItem("fg.portal.token"); FG.setToken(null); });
