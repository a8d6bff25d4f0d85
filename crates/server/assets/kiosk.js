// Kiosk (portrait gate terminal): identify → notice first (R4) → "agree to
// face recognition" and "use another method" with equal weight, kept on
// screen in every text size (R15, R17) → camera with a face guide, countdown
// and progress, errors beside the video with a retry and the alternative
// (R6) — or PIN on a keypad with a confirm step, card / QR code read as
// keyboard-wedge input, or the guard's check → result with a receipt.
// Cancel/Home on every screen; ~20 s idle or "Done" resets everything,
// language and text size included, so the next person sees nothing of the
// previous one. Under 14: a guardian consents first (R10).
"use strict";
const P = FG.hashParams();
const device = P.get("device");
FG.setToken(P.get("key") || sessionStorage.getItem("fg.kiosk.key"));
if (P.get("key")) sessionStorage.setItem("fg.kiosk.key", P.get("key"));
const IDLE_S = Number(P.get("idle")) || 20;
const PIN_MIN = 4, PIN_MAX = 12, FRAMES = 6;
const $ = id => document.getElementById(id);
let st = fresh();
function fresh() { return { mode: "verify", person: null, notice: null, stream: null, method: null, pinFirst: null, capturing: false, staffed: null, features: {}, declined: false }; }

// ---- screens, errors, status ------------------------------------------------
function current() { return document.querySelector("main > section:not(.hidden)"); }
function show(id) {
  for (const s of document.querySelectorAll("main > section")) s.classList.toggle("hidden", s.id !== id);
  $("btn-home").classList.toggle("hidden", id === "s-start");
  err();
  const h = $(id).querySelector("h2");
  if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
  if (id !== "s-camera") stopCamera();
  if (id !== "s-staffed") withdrawStaffed();
  window.scrollTo(0, 0);
}
// The error goes next to the action on the screen in view, and to the
// screen reader's status line.
function err(e) {
  const sec = current();
  const el = sec && (sec.id === "s-camera" ? $("camera-error-text") : sec.querySelector("[data-err]"));
  const text = e ? FG.errText(e) : "";
  if (el) FG.showErr(el, e);
  if (sec && sec.id === "s-camera") $("camera-error").classList.toggle("hidden", !e);
  if (e) say(text);
}
// The status line for screen readers; read aloud as well where the
// scenario's manifest asks for audio prompts (R6: `[accessibility]
// audio_prompts`, sent with the notice as `accessibility.audio_prompts`).
function say(t) {
  $("status").textContent = t;
  const a = st.notice && st.notice.accessibility;
  if (t && a && a.audio_prompts && window.speechSynthesis && window.SpeechSynthesisUtterance) {
    const u = new SpeechSynthesisUtterance(t);
    u.lang = FG.lang === "zh" ? "zh-CN" : "en-GB";
    speechSynthesis.cancel(); speechSynthesis.speak(u);
  }
}

// ---- idle reset -----------------------------------------------------------
// Five seconds before the reset a banner says so, with a button to stay.
let idleTimer = null, warnTimer = null;
function touch() {
  clearTimeout(idleTimer); clearTimeout(warnTimer);
  $("idle-warning").classList.add("hidden");
  idleTimer = setTimeout(() => { if (st.capturing) touch(); else reset(); }, IDLE_S * 1000);
  if (IDLE_S > 8) warnTimer = setTimeout(() => { if (current().id !== "s-start" && !st.capturing) $("idle-warning").classList.remove("hidden"); }, (IDLE_S - 5) * 1000);
}
["pointerdown", "keydown", "touchstart", "input", "wheel", "scroll"].forEach(ev => document.addEventListener(ev, touch, { capture: true, passive: true }));
// Back to the start: the previous person's number, receipt and portal code
// gone, language and text size back to the defaults.
// Leaving the guard's check before a guard decided (Home, another method,
// idle): the check is withdrawn, so no guard confirms someone gone.
function withdrawStaffed() {
  const c = st.staffed;
  st.staffed = null;
  if (c) FG.api("POST", "/v1/staffed-checks/" + encodeURIComponent(c) + "/cancel").catch(() => {});
}
function reset() {
  stopCamera();
  withdrawStaffed();
  const features = st.features;
  st = fresh(); st.features = features;
  for (const el of document.querySelectorAll("input")) { if (el.type === "checkbox") el.checked = false; else el.value = ""; }
  for (const id of ["result-text", "portal-code", "pin-count"]) FG.setT($(id));
  for (const id of ["receipt", "receipt-code", "notice", "notice-summary", "notice-version", "notice-key", "staffed-code"]) $(id).textContent = "";
  $("receipt-qr-img").removeAttribute("src");
  $("receipt-signed").classList.add("hidden");
  delete $("portal-code").dataset.code;
  for (const k of ["outcome", "method", "grants"]) delete $("result-text").dataset[k];
  FG.setMode("large", false); FG.setMode("contrast", false);
  if (FG.lang !== "zh") FG.setLang("zh");
  show("s-start");
  say("");
  touch();
}
$("btn-home").onclick = reset;

// ---- keypads ------------------------------------------------------------------
function keypad(el, input, onChange) {
  const keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "clear", "0", "del"];
  el.innerHTML = "";
  for (const k of keys) {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.key = k;
    if (k === "clear" || k === "del") b.dataset.t = "kp_" + k; else b.textContent = k;
    b.onclick = () => {
      if (k === "del") input.value = input.value.slice(0, -1);
      else if (k === "clear") input.value = "";
      else if (input.value.length < (Number(input.maxLength) > 0 ? input.maxLength : 12)) input.value += k;
      err();
      onChange && onChange();
    };
    el.appendChild(b);
  }
  FG.apply(el);
}
function pinCount() {
  const n = $("pin").value.length;
  FG.setT($("pin-count"), "pin_count", { n, min: PIN_MIN, max: PIN_MAX });
}
keypad($("kp-pin"), $("pin"), pinCount);
keypad($("kp-number"), $("number"));
$("pin").addEventListener("input", () => { $("pin").value = $("pin").value.replace(/\D/g, "").slice(0, PIN_MAX); pinCount(); });

// ---- who is at the gate ---------------------------------------------------------
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
async function identify() {
  const typed = $("person-id").value.trim();
  if (UUID.test(typed)) return typed;
  const n = $("number").value.trim() || (/^\d{1,8}$/.test(typed) ? typed : "");
  if (n && st.features.lookup) {
    const r = await FG.api("GET", "/v1/residents/lookup?number=" + encodeURIComponent(n)).catch(e => {
      if (e.status === 404) throw { key: "no_such_resident" };
      if (e.status === 409) throw { key: "room_several" };
      throw e;
    });
    return r.person_id;
  }
  throw { key: typed || n ? "bad_resident_id" : "need_person" };
}
async function begin(mode) {
  err();
  try { st.person = await identify(); } catch (e) { err(e); return; }
  st.mode = mode;
  try { await loadNotice(); show("s-notice"); } catch (e) { err(e); }
}
$("btn-mode-enrol").onclick = () => begin("enrol");
$("btn-mode-verify").onclick = () => begin("verify");
$("person-id").addEventListener("keydown", e => { if (e.key === "Enter") begin("verify"); });
// A card or QR reader presents itself as a keyboard: characters arrive fast
// (under 50 ms apart) and end with Enter. On the start screen that alone
// identifies the resident and completes the check as that method: the
// server looks the value up (keyed hash, misses throttled per device) and
// answers with the person id only, or "unknown" in the same shape.
let wedgeBuf = "", wedgeAt = 0;
document.addEventListener("keydown", e => {
  if (current().id !== "s-start" || e.target === $("person-id") || e.target === $("number")) return;
  const now = Date.now();
  if (now - wedgeAt > 50) wedgeBuf = "";
  wedgeAt = now;
  if (e.key === "Enter" && wedgeBuf.length >= 4) {
    const v = wedgeBuf; wedgeBuf = "";
    e.preventDefault();
    if (UUID.test(v)) { $("person-id").value = v; begin("verify"); } else cardAlone(v);
  } else if (e.key.length === 1) wedgeBuf += e.key;
});
async function cardAlone(secret) {
  err();
  try {
    const out = await FG.api("POST", "/v1/identify/credential", { device_id: device, kind: "wedge", secret });
    if (out.outcome !== "pass") { err({ key: "card_unknown" }); return; }
    st.mode = "verify"; st.person = out.person_id; st.method = out.method;
    result(out);
  } catch (e) { err(e); }
}

// ---- notice: a short summary, sections to open, the full text one tap away ----
async function loadNotice() {
  st.notice = await FG.api("GET", "/v1/notice?lang=" + FG.lang);
  $("notice").innerHTML = st.notice.html;
  $("notice-version").textContent = st.notice.version.slice(0, 12);
  $("notice-key").textContent = st.notice.receipt_public_key || "";
  const sum = $("notice-summary");
  sum.innerHTML = "";
  const dts = $("notice").querySelectorAll("dt");
  for (const dt of dts) {
    const body = dt.nextElementSibling ? dt.nextElementSibling.textContent : "";
    const first = body.split(/(?<=[。.;；])\s*/)[0];
    const d = document.createElement("details");
    d.innerHTML = `<summary><strong>${FG.esc(dt.textContent)}</strong>${FG.esc(FG.t("colon"))}${FG.esc(first.length > 70 ? first.slice(0, 68) + "…" : first)}</summary><p>${FG.esc(body)}</p>`;
    sum.appendChild(d);
  }
}
document.addEventListener("fg-lang", () => { if (st.notice) loadNotice().catch(err); renderMethods(); pinCount(); });
$("btn-full").onclick = () => {
  const open = $("notice").classList.toggle("hidden") === false;
  $("btn-full").setAttribute("aria-expanded", open);
  $("btn-full").textContent = FG.t(open ? "notice_full_close" : "notice_full");
  $("btn-full").dataset.t = open ? "notice_full_close" : "notice_full";
  if (open) $("notice").focus();
};

$("btn-agree-face").onclick = async () => {
  err();
  if (st.mode === "enrol") {
    try {
      await FG.api("POST", "/v1/consents", { person_id: st.person, notice_version: st.notice.version, device_id: device, evidence: "tapped 'agree to face recognition' after the notice" });
    } catch (e) {
      if (e.rule === "R10") { show("s-guardian"); err(e); return; }
      err(e); return;
    }
  }
  openCamera();
};

// ---- the other methods -----------------------------------------------------------
// Offered: every alternative the scenario lists that this server can
// complete from a kiosk (the guard's check only where the server has it).
function alternatives() {
  const listed = (st.notice && st.notice.methods) || ["pin"];
  return listed.filter(m => m === "pin" || m === "card" || m === "qr_code" || (m === "staffed_check" && st.features.staffed && st.mode === "verify"));
}
function renderMethods() {
  const list = $("method-list");
  if (!list) return;
  list.innerHTML = "";
  $("methods-explain").textContent = FG.t(st.mode === "enrol" ? "methods_explain_enrol" : "methods_explain");
  for (const m of alternatives()) {
    const b = document.createElement("button");
    b.type = "button"; b.id = "btn-method-" + m; b.className = "method";
    b.innerHTML = `<strong>${FG.esc(FG.v("method", m))}</strong><span>${FG.esc(FG.t("method_hint_" + m))}</span>`;
    b.onclick = () => useMethod(m);
    list.appendChild(b);
  }
}
async function toOther() {
  err();
  // The decline (R17) is recorded once the person has completed the other
  // method here: the server takes a device's decline only for them.
  st.declined = true;
  renderMethods();
  const alts = alternatives();
  if (alts.length === 1) useMethod(alts[0]); else show("s-methods");
}
for (const id of ["btn-other", "btn-guardian-other", "btn-camera-other", "btn-camera-other2", "btn-result-other"]) $(id).onclick = toOther;
for (const id of ["btn-pin-back", "btn-wedge-back", "btn-staffed-back"]) $(id).onclick = () => { renderMethods(); show("s-methods"); };

function useMethod(m) {
  st.method = m;
  if (m === "pin") {
    st.pinFirst = null;
    $("pin").value = ""; pinCount();
    FG.setT($("pin-explain"), st.mode === "enrol" ? "pin_set" : "pin_enter", { min: PIN_MIN, max: PIN_MAX });
    show("s-pin");
  } else if (m === "card" || m === "qr_code") {
    FG.setT($("h-wedge"), "method_" + m);
    FG.setT($("wedge-explain"), (m === "card" ? "card_" : "qr_") + (st.mode === "enrol" ? "enrol" : "verify"));
    $("wedge").value = "";
    show("s-wedge");
    $("wedge").focus();
  } else if (m === "staffed_check") startStaffed();
}

// PIN: 4–12 digits everywhere; setting one asks for it twice.
$("btn-pin").onclick = async () => {
  err();
  const pin = $("pin").value;
  if (!new RegExp(`^\\d{${PIN_MIN},${PIN_MAX}}$`).test(pin)) { err({ key: "pin_rule", vars: { min: PIN_MIN, max: PIN_MAX } }); return; }
  if (st.mode === "enrol" && st.pinFirst === null) {
    st.pinFirst = pin; $("pin").value = ""; pinCount();
    FG.setT($("pin-explain"), "pin_confirm");
    say(FG.t("pin_confirm"));
    return;
  }
  if (st.mode === "enrol" && st.pinFirst !== pin) {
    st.pinFirst = null; $("pin").value = ""; pinCount();
    FG.setT($("pin-explain"), "pin_set", { min: PIN_MIN, max: PIN_MAX });
    err({ key: "pin_mismatch" });
    return;
  }
  await credential("pin", pin);
};
async function credential(kind, secret) {
  try {
    const body = { person_id: st.person, device_id: device, kind, secret };
    const out = await FG.api("POST", st.mode === "enrol" ? "/v1/credentials" : "/v1/verify/credential", body);
    result(out);
  } catch (e) {
    if (kind === "pin") { $("pin").value = ""; pinCount(); st.pinFirst = null; }
    err(e);
  }
}
function wedgeSubmit() {
  const v = $("wedge").value.trim();
  if (!v) { err({ key: "wedge_empty" }); return; }
  credential(st.method === "card" ? "card" : "qr", v);
}
$("btn-wedge").onclick = wedgeSubmit;
$("wedge").addEventListener("keydown", e => { if (e.key === "Enter") { e.preventDefault(); wedgeSubmit(); } });

// The guard's check (人工核验): the kiosk asks, a guard confirms in the
// console, the kiosk shows the outcome.
async function startStaffed() {
  show("s-staffed");
  try {
    const c = await FG.api("POST", "/v1/staffed-checks", { person_id: st.person, device_id: device });
    $("staffed-code").textContent = c.code || FG.shortId(c.id);
    st.staffed = c.id;
    const poll = async () => {
      if (st.staffed !== c.id) return;
      try {
        const s = await FG.api("GET", "/v1/staffed-checks/" + encodeURIComponent(c.id));
        if (s.outcome) { st.staffed = null; result(s.outcome); return; }
        if (s.status !== "pending") { err({ key: "staffed_" + s.status }); return; }
      } catch (e) { err(e); return; }
      setTimeout(poll, 1500);
    };
    setTimeout(poll, 1500);
  } catch (e) { err(e); }
}

$("btn-guardian").onclick = async () => {
  err();
  if (!$("g-agree").checked) { err({ key: "guardian_need_box" }); return; }
  if (!$("g-name").value.trim()) { err({ key: "guardian_need_name" }); return; }
  try {
    await FG.api("POST", "/v1/consents", {
      person_id: st.person, notice_version: st.notice.version, device_id: device,
      evidence: "guardian ticked the consent box after the notice",
      guardian: { name: $("g-name").value.trim(), relationship: $("g-rel").value },
    });
    openCamera();
  } catch (e) { err(e); }
};

// ---- camera ------------------------------------------------------------------
async function openCamera() {
  show("s-camera");
  FG.setT($("camera-instr"), "turn_head");
  $("cap-progress").value = 0;
  $("btn-capture").disabled = true;
  $("camera-error").classList.add("hidden");
  try {
    if (!navigator.mediaDevices) throw new Error("no camera");
    st.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    const v = $("video");
    v.srcObject = st.stream;
    await new Promise((res, rej) => { v.onloadedmetadata = res; setTimeout(() => rej(new Error("timeout")), 8000); });
    $("btn-capture").disabled = false;
    say(FG.t("camera_ready"));
  } catch (e) {
    stopCamera();
    err({ key: "no_camera" });
    $("btn-retry").dataset.what = "camera";
  }
}
function stopCamera() { if (st.stream) { st.stream.getTracks().forEach(t => t.stop()); st.stream = null; } }
function grab() {
  const v = $("video"), c = $("canvas");
  c.width = v.videoWidth || 640; c.height = v.videoHeight || 480;
  c.getContext("2d").drawImage(v, 0, 0, c.width, c.height);
  return c.toDataURL("image/jpeg", 0.9);
}
const sleep = ms => new Promise(r => setTimeout(r, ms));
// The server decides how live a capture must be shown to be (R20): it
// issues a challenge (a nonce, 2–3 actions in a random order, a deadline)
// for this device and person. Each action is shown with an arrow and its
// step number, and read aloud where the manifest asks for audio prompts;
// the frames and the nonce go back together, once. Where the scenario needs
// no challenge (passive, or a device's own PAD sensor) frames are sent
// without one. A refusal sits beside the video with the alternative (R6).
const ARROW = { turn_left: "←", turn_right: "→", nod: "↓", blink: "◉", open_mouth: "◯" };
function showStep(a, i, n) {
  const arrow = $("challenge-arrow"), stepEl = $("challenge-step");
  arrow.className = "challenge-arrow" + (a ? " " + a : "");
  arrow.textContent = a ? ARROW[a] || "" : "";
  arrow.classList.toggle("hidden", !a);
  if (a) {
    stepEl.dataset.action = a;
    FG.setT(stepEl, "act_step", { i, n, a: "@act_" + a });
  } else {
    delete stepEl.dataset.action;
    FG.setT(stepEl, "act_look");
  }
  stepEl.classList.remove("hidden");
  say(stepEl.textContent);
}
function hideSteps() {
  $("challenge-arrow").classList.add("hidden");
  $("challenge-step").classList.add("hidden");
  delete $("challenge-step").dataset.action;
  delete $("challenge-step").dataset.actions;
}
$("btn-capture").onclick = async () => {
  err();
  const btn = $("btn-capture"); btn.disabled = true;
  st.capturing = true;
  try {
    const ch = await FG.api("POST", "/v1/challenges", { person_id: st.mode === "identify" ? undefined : st.person, device_id: device });
    const active = ch.required === "active";
    const actions = active ? ch.actions.map(a => a.action) : [];
    $("cap-progress").max = active ? 1 + 2 * actions.length : FRAMES;
    // 3-2-1, then the frames, with progress.
    const cd = $("countdown"); cd.classList.remove("hidden");
    for (let i = 3; i > 0; i--) { cd.textContent = i; FG.setT($("camera-instr"), "get_ready", { n: i }); await sleep(700); }
    cd.classList.add("hidden");
    FG.setT($("camera-instr"), "capturing");
    const frames = [];
    const take = () => { frames.push(grab()); $("cap-progress").value = frames.length; };
    if (active) {
      $("challenge-step").dataset.actions = actions.join(" ");
      showStep(null);
      await sleep(900); take();
      for (let i = 0; i < actions.length; i++) {
        showStep(actions[i], i + 1, actions.length);
        await sleep(1300); take();
        await sleep(700); take();
      }
      hideSteps();
    } else {
      say(FG.t("capturing"));
      for (let i = 0; i < FRAMES; i++) { take(); await sleep(450); }
    }
    FG.setT($("camera-instr"), "checking"); say(FG.t("checking"));
    const path = st.mode === "enrol" ? "/v1/enrol" : "/v1/verify";
    const out = await FG.api("POST", path, { person_id: st.person, device_id: device, images: frames, challenge_nonce: active ? ch.nonce : undefined, notice_version: st.notice.version });
    stopCamera();
    result(out);
  } catch (e) {
    hideSteps();
    FG.setT($("camera-instr"), "turn_head");
    $("cap-progress").value = 0;
    // A liveness refusal (R20) is retried with a new challenge; any other
    // rule goes back to the notice. The alternative is offered either way.
    $("btn-retry").dataset.what = e.rule && e.rule !== "R20" ? "notice" : "capture";
    err(e);
    btn.disabled = !st.stream;
  } finally { st.capturing = false; touch(); }
};
$("btn-retry").onclick = () => {
  const w = $("btn-retry").dataset.what;
  if (w === "notice") { show("s-notice"); return; }
  if (w === "camera" || !st.stream) { openCamera(); return; }
  err(); $("btn-capture").disabled = false; $("btn-capture").focus();
};

// ---- result -----------------------------------------------------------------------
function result(out) {
  const key = out.outcome === "pass" ? "pass" : out.outcome === "enrolled" ? "enrolled" : "fail";
  show("s-result");
  const el = $("result-text");
  FG.setT(el, key === "fail" ? "fail" : key + "_by", { m: "@method_" + out.method });
  el.className = key === "fail" ? "result-bad" : "result-ok";
  el.dataset.outcome = out.outcome;
  el.dataset.method = out.method;
  el.dataset.grants = out.grants;
  $("result-fail").classList.toggle("hidden", key !== "fail");
  $("btn-portal-code").classList.toggle("hidden", key === "fail");
  $("receipt").textContent = out.receipt_id;
  // The signed receipt: its code and the same code as a QR to photograph.
  $("receipt-code").textContent = out.receipt_code || "";
  if (out.receipt_code) $("receipt-qr-img").src = "/v1/receipts/qr?code=" + encodeURIComponent(out.receipt_code);
  else $("receipt-qr-img").removeAttribute("src");
  $("receipt-signed").classList.toggle("hidden", !out.receipt_code);
  FG.setT($("portal-code"));
  say(FG.t(key));
  if (st.declined && st.person && key !== "fail" && out.method !== "face") {
    st.declined = false;
    FG.api("POST", "/v1/decline-face", { person_id: st.person, device_id: device }).catch(() => { /* declining never fails the person */ });
  }
}
$("btn-result-retry").onclick = () => { if (st.method && st.method !== "face") useMethod(st.method); else openCamera(); };
$("btn-portal-code").onclick = async () => {
  err();
  try {
    const c = await FG.api("POST", "/v1/persons/" + encodeURIComponent(st.person) + "/portal-code", { device_id: device });
    FG.setT($("portal-code"), "code_is", { code: c.code });
    $("portal-code").dataset.code = c.code;
  } catch (e) { err(e); }
};
$("btn-again").onclick = reset;

// ---- start ------------------------------------------------------------------------
FG.initToolbar(); FG.apply();
(async () => {
  // Endpoints this server may not have yet: their controls stay hidden.
  const [lookup, staffed] = await Promise.all([
    FG.probe("GET", "/v1/residents/lookup"),
    FG.probe("GET", "/v1/staffed-checks/probe"),
  ]);
  st.features = { lookup, staffed };
  $("number-box").classList.toggle("hidden", !lookup);
  document.body.dataset.ready = "1";
})();
if (P.get("person")) $("person-id").value = P.get("person");
touch();
