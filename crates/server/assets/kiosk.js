// Kiosk: notice first (R4) → "agree to face recognition" and "use another
// method" with equal weight (R15, R17) → camera with an active liveness step
// (turn head; R6: an alternative is offered on the same screen) or a PIN →
// result with a receipt id. Under 14: a guardian consents first (R10).
"use strict";
FG.add({
  kiosk_title: { zh: "小区门禁 · 自助终端", en: "Compound gate · Kiosk" },
  start_title: { zh: "您好，请输入住户编号", en: "Hello — enter your resident number" },
  person_label: { zh: "住户编号（门禁卡或物业提供）", en: "Resident number (from your card or the property office)" },
  person_hint: { zh: "不知道编号？请联系门岗，工作人员可人工核验。", en: "Don't know it? Ask the guard, who can check you in person." },
  mode_enrol: { zh: "首次登记", en: "First-time registration" },
  mode_verify: { zh: "通行核验", en: "Pass the gate" },
  notice_title: { zh: "人脸识别告知书（请先阅读）", en: "Face recognition notice (please read first)" },
  notice_version: { zh: "告知书版本：", en: "Notice version:" },
  choice_explain: { zh: "人脸识别不是唯一方式。选择其他方式，通行结果完全相同，无需额外步骤或费用。", en: "Face recognition is not the only way. Choosing another method gives exactly the same result, with no extra steps or fees." },
  choice_group: { zh: "选择核验方式", en: "Choose how to be checked" },
  agree_face: { zh: "同意使用人脸识别", en: "Agree to face recognition" },
  use_other: { zh: "使用其他方式（密码）", en: "Use another method (PIN)" },
  guardian_title: { zh: "需要监护人同意", en: "A guardian must agree" },
  guardian_explain: { zh: "未满十四周岁的住户，须由父母或其他监护人阅读告知书并同意后，才能使用人脸识别。", en: "For a resident under 14, a parent or other guardian must read the notice and agree before face recognition is used." },
  guardian_name: { zh: "监护人姓名", en: "Guardian's name" },
  guardian_rel: { zh: "与住户的关系", en: "Relationship to the resident" },
  rel_parent: { zh: "父母", en: "Parent" },
  rel_other: { zh: "其他监护人", en: "Other guardian" },
  guardian_agree: { zh: "我是该住户的监护人，已阅读告知书，同意其使用人脸识别。", en: "I am this resident's guardian, I have read the notice, and I agree to face recognition for them." },
  guardian_submit: { zh: "监护人确认同意", en: "Guardian agrees" },
  guardian_need_box: { zh: "请监护人勾选确认框。", en: "The guardian must tick the box." },
  camera_title: { zh: "人脸识别", en: "Face recognition" },
  turn_head: { zh: "请正对摄像头，点“开始”后缓慢向左、向右转头。", en: "Face the camera, press Start, then slowly turn your head left and right." },
  capturing: { zh: "正在采集，请缓慢转头……", en: "Capturing — slowly turn your head…" },
  start_capture: { zh: "开始", en: "Start" },
  cannot_do: { zh: "无法完成动作？使用其他方式", en: "Can't do this? Use another method" },
  pin_title: { zh: "使用密码", en: "Use a PIN" },
  pin_label: { zh: "个人密码（4–12 位数字）", en: "PIN (4–12 digits)" },
  pin_set: { zh: "请设置您的个人密码，以后通行时输入即可。", en: "Set your PIN; enter it at the gate from now on." },
  pin_enter: { zh: "请输入您的个人密码。", en: "Enter your PIN." },
  pin_submit: { zh: "确认", en: "Confirm" },
  back: { zh: "返回", en: "Back" },
  result_title: { zh: "结果", en: "Result" },
  pass: { zh: "核验通过，门已开启。", en: "Verified — the gate is open." },
  fail: { zh: "核验未通过。您可以重试，或使用其他方式。", en: "Not verified. Try again, or use another method." },
  enrolled: { zh: "登记完成。", en: "Registration complete." },
  receipt: { zh: "凭证编号（请保留，可用于查询或投诉）：", en: "Receipt number (keep it for questions or complaints):" },
  receipt_hint: { zh: "您可随时在个人中心撤回授权、导出或删除您的信息。", en: "You can withdraw, export or delete your data at any time in My data." },
  portal_code: { zh: "获取个人中心登录码", en: "Get a code for My data" },
  again: { zh: "完成", en: "Done" },
  code_is: { zh: "个人中心登录码（15 分钟内有效，仅可使用一次）：", en: "Code for My data (valid 15 minutes, once):" },
  need_person: { zh: "请输入住户编号。", en: "Enter your resident number." },
  no_camera: { zh: "无法打开摄像头。请使用其他方式。", en: "The camera could not be opened. Please use another method." },
});
const P = FG.hashParams();
const device = P.get("device");
FG.setToken(P.get("key") || sessionStorage.getItem("fg.kiosk.key"));
if (P.get("key")) sessionStorage.setItem("fg.kiosk.key", P.get("key"));
const st = { mode: "verify", person: null, notice: null, stream: null };
const $ = id => document.getElementById(id);

function show(id) {
  for (const s of document.querySelectorAll("main > section")) s.classList.toggle("hidden", s.id !== id);
  const h = $(id).querySelector("h2");
  if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
  if (id !== "s-camera") stopCamera();
}
function err(e) { $("error").textContent = e ? FG.errText(e) : ""; }
function say(t) { $("status").textContent = t; }

async function loadNotice() {
  st.notice = await FG.api("GET", "/v1/notice?lang=" + FG.lang);
  $("notice").innerHTML = st.notice.html;
  $("notice-version").textContent = st.notice.version.slice(0, 12);
}
document.addEventListener("fg-lang", () => { if (st.notice) loadNotice().catch(err); });

function begin(mode) {
  err();
  const p = $("person-id").value.trim();
  if (!p) { err({ message_zh: FG.t("need_person"), message_en: FG.t("need_person") }); return; }
  st.mode = mode; st.person = p;
  loadNotice().then(() => show("s-notice")).catch(err);
}
$("btn-mode-enrol").onclick = () => begin("enrol");
$("btn-mode-verify").onclick = () => begin("verify");

$("btn-agree-face").onclick = async () => {
  err();
  if (st.mode === "enrol") {
    try {
      await FG.api("POST", "/v1/consents", { person_id: st.person, notice_version: st.notice.version, device_id: device, evidence: "tapped 'agree to face recognition' after the notice" });
    } catch (e) {
      if (e.rule === "R10") { err(e); show("s-guardian"); return; }
      err(e); return;
    }
  }
  openCamera();
};

async function toOther() {
  err();
  try { await FG.api("POST", "/v1/decline-face", { person_id: st.person, device_id: device }); } catch (e) { /* declining never fails the person */ }
  $("pin-explain").textContent = FG.t(st.mode === "enrol" ? "pin_set" : "pin_enter");
  $("pin").value = "";
  show("s-pin");
}
$("btn-other").onclick = toOther;
$("btn-guardian-other").onclick = toOther;
$("btn-camera-other").onclick = toOther;
$("btn-pin-back").onclick = () => show("s-notice");

$("btn-guardian").onclick = async () => {
  err();
  if (!$("g-agree").checked) { err({ message_zh: FG.t("guardian_need_box"), message_en: FG.t("guardian_need_box") }); return; }
  try {
    await FG.api("POST", "/v1/consents", {
      person_id: st.person, notice_version: st.notice.version, device_id: device,
      evidence: "guardian ticked the consent box after the notice",
      guardian: { name: $("g-name").value, relationship: $("g-rel").value },
    });
    openCamera();
  } catch (e) { err(e); }
};

async function openCamera() {
  show("s-camera");
  $("camera-instr").textContent = FG.t("turn_head");
  try {
    st.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    $("video").srcObject = st.stream;
  } catch (e) { err({ message_zh: FG.t("no_camera"), message_en: FG.t("no_camera") }); }
}
function stopCamera() { if (st.stream) { st.stream.getTracks().forEach(t => t.stop()); st.stream = null; } }

function grab() {
  const v = $("video"), c = $("canvas");
  c.width = v.videoWidth || 640; c.height = v.videoHeight || 480;
  c.getContext("2d").drawImage(v, 0, 0, c.width, c.height);
  return c.toDataURL("image/jpeg", 0.9);
}

$("btn-capture").onclick = async () => {
  err();
  const btn = $("btn-capture"); btn.disabled = true;
  $("camera-instr").textContent = FG.t("capturing"); say(FG.t("capturing"));
  try {
    const frames = [];
    for (let i = 0; i < 6; i++) { frames.push(grab()); await new Promise(r => setTimeout(r, 450)); }
    stopCamera();
    const path = st.mode === "enrol" ? "/v1/enrol" : "/v1/verify";
    const out = await FG.api("POST", path, { person_id: st.person, device_id: device, images: frames, challenge: "turn_head", notice_version: st.notice.version });
    result(out);
  } catch (e) {
    err(e);
    if (e.rule) { show("s-notice"); } else { openCamera(); }
  } finally { btn.disabled = false; }
};

$("btn-pin").onclick = async () => {
  err();
  const pin = $("pin").value.trim();
  try {
    const out = st.mode === "enrol"
      ? await FG.api("POST", "/v1/credentials", { person_id: st.person, device_id: device, kind: "pin", secret: pin })
      : await FG.api("POST", "/v1/verify/credential", { person_id: st.person, device_id: device, kind: "pin", secret: pin });
    result(out);
  } catch (e) { err(e); }
};

function result(out) {
  const key = out.outcome === "pass" ? "pass" : out.outcome === "enrolled" ? "enrolled" : "fail";
  const el = $("result-text");
  el.textContent = FG.t(key);
  el.className = key === "fail" ? "result-bad" : "result-ok";
  el.dataset.outcome = out.outcome;
  el.dataset.method = out.method;
  el.dataset.grants = out.grants;
  $("receipt").textContent = out.receipt_id;
  $("portal-code").textContent = "";
  show("s-result");
  say(FG.t(key));
}

$("btn-portal-code").onclick = async () => {
  try {
    const c = await FG.api("POST", "/v1/persons/" + encodeURIComponent(st.person) + "/portal-code", { device_id: device });
    $("portal-code").textContent = FG.t("code_is") + " " + c.code;
    $("portal-code").dataset.code = c.code;
  } catch (e) { err(e); }
};
$("btn-again").onclick = () => { $("person-id").value = ""; err(); show("s-start"); };

FG.initToolbar(); FG.apply();
if (P.get("person")) $("person-id").value = P.get("person");
