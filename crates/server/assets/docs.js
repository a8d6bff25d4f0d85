// Printable documents (A4, page numbers, a signature block), shared by the
// portal (the person's evidence file) and the console (PIA, filing pack).
// A document is HTML rendered from an API answer in the current language
// (Chinese official version; English on request via the language switch);
// "Print / PDF" prints only the document through the browser's print, so
// Chromium's "Save as PDF" gives the PDF.
"use strict";
const FGDocs = (() => {
  const { t, esc, time } = FG;
  // Print one document: a top-level copy, shown alone while printing.
  function print(html) {
    let root = document.getElementById("print-root");
    if (!root) { root = document.createElement("div"); root.id = "print-root"; document.body.appendChild(root); }
    root.innerHTML = html;
    document.body.classList.add("print-doc");
    const done = () => { document.body.classList.remove("print-doc"); root.innerHTML = ""; window.removeEventListener("afterprint", done); };
    window.addEventListener("afterprint", done);
    window.print();
  }
  // A signature / seal / date block; `who` are catalogue keys of the signers.
  function signBlock(who) {
    return `<section class="doc-sign" aria-labelledby="doc-sign-h"><h2 id="doc-sign-h">${esc(t("doc_sign_title"))}</h2>
      <div class="doc-sign-grid">${who.map(k => `<div class="doc-sign-cell"><p>${esc(t(k))}</p><p class="doc-sign-line">${esc(t("doc_signature"))}</p><p class="doc-sign-line">${esc(t("doc_date"))}</p></div>`).join("")}
      <div class="doc-sign-cell doc-seal"><p>${esc(t("doc_seal"))}</p></div></div></section>`;
  }
  function table(headKeys, rows, caption) {
    return `<table>${caption ? `<caption>${esc(caption)}</caption>` : ""}<thead><tr>${headKeys.map(k => `<th scope="col">${esc(t(k))}</th>`).join("")}</tr></thead><tbody>${rows.map(r => `<tr>${r.map(c => `<td>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  }
  // The person's evidence file (GET /v1/me/evidence).
  function evidence(f) {
    const L = FG.lang === "zh";
    const kv = (k, v, raw) => `<tr><th scope="row">${esc(t(k))}</th><td${raw ? " data-raw" : ""}>${esc(v || t("rcpt_none"))}</td></tr>`;
    const rule = d => d.refusal_rule ? `（${esc(d.refusal_rule)} / ${esc(L ? d.refusal_article_zh : d.refusal_article)}）` : "";
    return `<article class="doc" id="doc-evidence" lang="${L ? "zh-CN" : "en"}">
      <header class="doc-cover"><h1>${esc(t("ev_title"))}</h1><p>${esc(t("ev_subtitle"))}</p>
      <table class="doc-kv"><tbody>
        ${kv("ev_person", f.display_name, true)}${kv("rcpt_person", f.person_pseudonym, true)}
        ${kv("ev_processor", L ? f.processor_name_zh : f.processor_name_en, true)}${kv("ev_contact", f.processor_contact, true)}
        ${kv("rcpt_scenario", L ? f.scenario_name_zh : f.scenario_name_en, true)}${kv("filing_number", f.filing_number || t("ev_no_filing"), true)}
        ${kv("ev_generated", time(f.generated_at, true))}
      </tbody></table></header>
      <section><h2>${esc(t("ev_how_title"))}</h2><p>${esc(t("ev_how_text"))}</p>
        <p><strong>${esc(t("ev_public_key"))}</strong> <code class="doc-code" data-raw>${esc(f.public_key)}</code></p>
        <p><code class="doc-code" data-raw>facegate receipt verify CODE --public-key ${esc(f.public_key)}</code></p></section>
      <section><h2>${esc(t("ev_decisions"))}</h2>${f.decisions.length ? table(["col_when", "col_method", "col_result", "rcpt_device", "ev_notice_in_force", "rcpt_code_short"],
        f.decisions.map(d => [esc(time(d.at, true)), esc(FG.v("method", d.method)), esc(FG.v("result", d.result)) + rule(d), esc(d.device || ""),
          d.notice_version != null ? esc(t("ev_version_n", { n: d.notice_version })) : "", `<code class="doc-code" data-raw>${esc(d.receipt_code)}</code>`])) : `<p>${esc(t("rcpt_none"))}</p>`}</section>
      <section><h2>${esc(t("ev_notices"))}</h2>${table(["ev_version", "ev_language", "ev_published", "ev_sha256"],
        f.notices.map(n => [esc(t("ev_version_n", { n: n.version })), esc(n.language), esc(time(n.published_at)), `<code class="doc-code" data-raw>${esc(n.sha256)}</code>`]))}</section>
      <section><h2>${esc(t("consents_title"))}</h2>${table(["col_kind", "col_given", "ev_given_by", "ev_notice_shown", "col_status"],
        f.consents.map(c => [esc(FG.v("consent", c.kind)), esc(time(c.given_at)), esc(FG.v("given_by", c.given_by)),
          c.notice_version != null ? esc(t("ev_version_n", { n: c.notice_version })) : "", esc(c.withdrawn_at ? t("withdrawn_on", { t: time(c.withdrawn_at) }) : t("active"))]))}</section>
      ${signBlock(["ev_sign_person"])}
    </article>`;
  }
  return { print, signBlock, table, evidence };
})();

// The portal's evidence button (the portal session's token is in FG.api).
(() => {
  const btn = document.getElementById("btn-evidence");
  if (!btn) return;
  const view = document.getElementById("evidence-view");
  const out = document.getElementById("evidence-msg");
  let last = null;
  function show() {
    if (!last) return;
    view.innerHTML = FGDocs.evidence(last) + `<p><button id="btn-evidence-print" type="button" class="primary">${FG.esc(FG.t("doc_print"))}</button></p>`;
    view.classList.remove("hidden");
    document.getElementById("btn-evidence-print").onclick = () => FGDocs.print(FGDocs.evidence(last));
  }
  btn.onclick = async () => {
    FG.showErr(out, null);
    try { last = await FG.api("GET", "/v1/me/evidence"); show(); FG.setT(out, "ev_shown"); view.focus(); }
    catch (e) { FG.showErr(out, e); }
  };
  document.addEventListener("fg-lang", () => { if (last && !view.classList.contains("hidden")) show(); });
})();

// The console's official documents: PIA and filing pack in the chosen
// language, previewed in a frame and printed from it (Chromium's "Save as
// PDF" gives the PDF); and the signage photo upload.
(() => {
  const frame = document.getElementById("doc-frame");
  if (!frame) return;
  const $ = id => document.getElementById(id);
  const docMsg = $("doc-msg"), signMsg = $("signage-msg");
  let shown = null;
  async function view(kind) {
    FG.showErr(docMsg, null);
    const lang = $("doc-lang").value;
    try {
      const html = await FG.api("GET", `/v1/documents/${kind}?lang=${lang}`);
      frame.srcdoc = html;
      frame.classList.remove("hidden");
      shown = kind;
      $("btn-doc-pdf").disabled = false;
      FG.setT(docMsg, "doc_shown");
    } catch (e) { FG.showErr(docMsg, e); }
  }
  $("btn-doc-pia").onclick = () => view("pia");
  $("btn-doc-pack").onclick = () => view("filing-pack");
  $("doc-lang").onchange = () => { if (shown) view(shown); };
  $("btn-doc-pdf").onclick = () => { if (frame.contentWindow) frame.contentWindow.print(); };
  let signageDevice = () => undefined;
  async function devices() {
    try {
      const ds = await FG.api("GET", "/v1/devices");
      signageDevice = FG.deviceChoices($("signage-device"), ds.filter(d => d.active !== false), true);
    } catch (e) { /* the docs tab shows the error when it loads */ }
  }
  document.querySelectorAll("nav.tabs button").forEach(b => b.addEventListener("click", () => { if (b.dataset.tab === "docs") devices(); }));
  $("btn-signage").onclick = async () => {
    FG.showErr(signMsg, null);
    const f = $("signage-file").files[0];
    if (!f) { FG.showErr(signMsg, "signage_pick"); return; }
    if (f.size > 2 * 1024 * 1024) { FG.showErr(signMsg, "signage_too_big"); return; }
    const dataUrl = await new Promise((ok, bad) => { const r = new FileReader(); r.onload = () => ok(r.result); r.onerror = bad; r.readAsDataURL(f); });
    try {
      const d = signageDevice();
      if (!d) { FG.showErr(signMsg, "signage_no_device"); return; }
      await FG.api("PUT", `/v1/devices/${encodeURIComponent(d.id)}/signage?scenario=${encodeURIComponent(d.scenario)}`, { image: dataUrl });
      FG.setT(signMsg, "signage_ok", { d: d.id });
      if (shown === "filing-pack") view(shown);
    } catch (e) { FG.showErr(signMsg, e); }
  };
})();
