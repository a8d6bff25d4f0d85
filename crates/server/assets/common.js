// Shared by kiosk, portal and console: language switch (zh-CN first),
// large-text / high-contrast mode, and a small fetch wrapper.
"use strict";
const FG = (() => {
  let lang = localStorage.getItem("fg.lang") || "zh";
  const dict = {};
  function add(d) { Object.assign(dict, d); }
  function t(key) { const e = dict[key]; return e ? (e[lang] || e.zh) : key; }
  function apply(root) {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    (root || document).querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
    (root || document).querySelectorAll("[data-t-label]").forEach(el => { el.setAttribute("aria-label", t(el.dataset.tLabel)); });
    (root || document).querySelectorAll("[data-t-ph]").forEach(el => { el.placeholder = t(el.dataset.tPh); });
  }
  function setLang(l) { lang = l; localStorage.setItem("fg.lang", l); apply(); document.dispatchEvent(new Event("fg-lang")); }
  function toggle(cls) {
    const on = document.documentElement.classList.toggle(cls);
    localStorage.setItem("fg." + cls, on ? "1" : "");
    return on;
  }
  function initToolbar() {
    ["large", "contrast"].forEach(c => { if (localStorage.getItem("fg." + c)) document.documentElement.classList.add(c); });
    const bar = document.getElementById("toolbar");
    if (!bar) return;
    bar.innerHTML = `
      <button id="btn-lang" type="button" aria-label="切换语言 / Switch language">中文 / English</button>
      <button id="btn-large" type="button" data-t="large" aria-pressed="false"></button>
      <button id="btn-contrast" type="button" data-t="contrast" aria-pressed="false"></button>`;
    bar.querySelector("#btn-lang").onclick = () => setLang(lang === "zh" ? "en" : "zh");
    for (const c of ["large", "contrast"]) {
      const b = bar.querySelector("#btn-" + c);
      b.setAttribute("aria-pressed", document.documentElement.classList.contains(c));
      b.onclick = () => b.setAttribute("aria-pressed", toggle(c));
    }
  }
  add({
    large: { zh: "大字模式", en: "Large text" },
    contrast: { zh: "高对比度", en: "High contrast" },
    network_error: { zh: "网络错误，请重试。", en: "Network error, please try again." },
  });
  let token = null;
  function setToken(tok) { token = tok; }
  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r;
    try { r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }); }
    catch (e) { throw { error: "network", message_zh: t("network_error"), message_en: t("network_error") }; }
    const ct = r.headers.get("content-type") || "";
    const data = ct.includes("json") ? await r.json() : await r.text();
    if (!r.ok) { throw Object.assign({ status: r.status }, typeof data === "object" ? data : { message_zh: data, message_en: data }); }
    return data;
  }
  // `R15 / 第十条` or `R15 / Art. 10`: the rule of the Measures and its
  // article in the current language, for anything carrying rule, article and
  // article_zh (a refusal body, a lint finding); "" when it names no rule.
  function ruleRef(x) {
    if (!x || !x.rule) return "";
    const article = lang === "zh" ? (x.article_zh || x.article) : x.article;
    return article ? `${x.rule} / ${article}` : x.rule;
  }
  // An error body as one line in the current language, with the rule and its
  // article (in that language) when the Measures refused.
  function errText(e) {
    const msg = lang === "zh" ? (e.message_zh || e.message_en) : (e.message_en || e.message_zh);
    return e.rule ? `${msg}（${ruleRef(e)}）` : (msg || String(e));
  }
  function esc(s) { return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
  function hashParams() { return new URLSearchParams(location.hash.replace(/^#/, "")); }
  return { add, t, apply, setLang, initToolbar, api, setToken, ruleRef, errText, esc, hashParams, get lang() { return lang; } };
})();
