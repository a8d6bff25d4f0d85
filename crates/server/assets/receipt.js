// The public receipt check: paste or scan (a QR reader types the code) a
// receipt code; the server checks its Ed25519 signature against the
// deployment's public key (or one given) and says what it states.
"use strict";
(() => {
  const { t, v, setT, esc, time, api } = FG;
  const $ = id => document.getElementById(id);
  let last = null;
  // The code from the address (`/receipt#code=FG1-…`, what the QR may carry).
  const fromHash = FG.hashParams().get("code");
  if (fromHash) $("rcpt-code").value = fromHash;
  api("GET", "/v1/receipts/public-key").then(k => {
    if (!$("rcpt-key").value) $("rcpt-key").value = k.public_key;
    $("rcpt-cmd").textContent = `facegate receipt verify CODE --public-key ${k.public_key}`;
  }).catch(() => {});
  function render() {
    const out = $("rcpt-result");
    if (!last) { out.innerHTML = ""; return; }
    if (last.error) { out.innerHTML = `<p class="feedback bad" role="alert">${esc(FG.errText(last.error))}</p>`; return; }
    if (!last.valid) {
      const msg = FG.lang === "zh" ? last.message_zh : last.message_en;
      out.innerHTML = `<p class="feedback bad" role="alert"><strong>${esc(t("rcpt_invalid"))}</strong> ${esc(msg)}</p>`;
      return;
    }
    const r = last.receipt;
    const row = (k, val) => `<dt>${esc(t(k))}</dt><dd>${esc(val || t("rcpt_none"))}</dd>`;
    out.innerHTML = `<p class="feedback ok"><strong>${esc(t("rcpt_valid"))}</strong></p>
      <dl class="kv" id="rcpt-fields">
        ${row("rcpt_id", r.receipt_id)}
        ${row("rcpt_time", time(r.at, true))}
        ${row("rcpt_decision", v("result", r.decision) || r.decision)}
        ${row("rcpt_method", v("method", r.method) || r.method)}
        ${row("rcpt_scenario", r.scenario)}
        ${row("rcpt_device", r.device)}
        ${r.refusal_rule ? row("rcpt_rule", r.refusal_rule) : ""}
        ${row("rcpt_person", r.person)}
      </dl>`;
  }
  async function check() {
    const code = $("rcpt-code").value.trim();
    if (!code) { last = { error: "rcpt_empty" }; render(); return; }
    const key = $("rcpt-key").value.trim();
    try { last = await api("POST", "/v1/receipts/verify", key ? { code, public_key: key } : { code }); }
    catch (e) { last = { error: e }; }
    render();
  }
  $("btn-rcpt").onclick = check;
  document.addEventListener("fg-lang", render);
  FG.initToolbar(); FG.apply();
  if (fromHash) check();
})();
