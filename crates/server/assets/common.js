// Shared by kiosk, portal and console: the message catalogue (zh-CN first,
// English), large-text / high-contrast mode, times in Asia/Shanghai, and a
// small fetch wrapper whose errors carry the API's message_zh / message_en.
"use strict";
const FG = (() => {
  let lang = localStorage.getItem("fg.lang") || "zh";
  const dict = window.FG_MESSAGES || {};
  // Keys asked for but not in the catalogue: the browser tests fail on any.
  const missing = new Set();
  window.FG_MISSING = missing;
  // t(KEY) or t(KEY, {n: 3}): the text of a catalogue key in the current language.
  function t(key, vars) {
    const e = dict[key];
    if (!e || !e.zh || !e.en) missing.add(key);
    let s = e ? (e[lang] || e.zh || key) : key;
    // A variable "@key" is itself a catalogue key, translated here too.
    if (vars) s = s.replace(/\{(\w+)\}/g, (_, k) => { const x = vars[k] ?? ""; return typeof x === "string" && x[0] === "@" ? t(x.slice(1)) : x; });
    return s;
  }
  // A value the server sends (`pin`, `no_match`, `open`…) as a label.
  function v(prefix, value) { return value == null || value === "" ? "" : t(`${prefix}_${value}`); }
  function has(key) { return !!dict[key]; }
  function apply(root) {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    const r = root || document;
    r.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t, el.dataset.tv ? JSON.parse(el.dataset.tv) : undefined); });
    r.querySelectorAll("[data-has-err]").forEach(el => { if (el._fgErr) el.textContent = errText(el._fgErr); });
    r.querySelectorAll("[data-t-label]").forEach(el => { el.setAttribute("aria-label", t(el.dataset.tLabel)); });
    r.querySelectorAll("[data-t-ph]").forEach(el => { el.placeholder = t(el.dataset.tPh); });
    if (document.body && document.body.dataset.title) document.title = t(document.body.dataset.title) + " — facegate";
  }
  // Text that follows the language: a catalogue key with its variables.
  function setT(el, key, vars) {
    if (!key) { delete el.dataset.t; delete el.dataset.tv; el.textContent = ""; return; }
    el.dataset.t = key;
    if (vars) el.dataset.tv = JSON.stringify(vars); else delete el.dataset.tv;
    el.textContent = t(key, vars);
  }
  // An error shown in an element, re-rendered when the language changes.
  function showErr(el, e) {
    delete el.dataset.t; delete el.dataset.tv;
    el._fgErr = e || null;
    if (e) el.dataset.hasErr = "1"; else delete el.dataset.hasErr;
    el.textContent = e ? errText(e) : "";
  }
  function setLang(l) {
    lang = l; localStorage.setItem("fg.lang", l);
    // A screen-reader status said in the old language is stale now.
    document.querySelectorAll(".sr-only[role=status]").forEach(el => { el.textContent = ""; });
    apply(); document.dispatchEvent(new Event("fg-lang"));
  }
  function setMode(cls, on) {
    document.documentElement.classList.toggle(cls, on);
    localStorage.setItem("fg." + cls, on ? "1" : "");
    const b = document.getElementById("btn-" + cls);
    if (b) b.setAttribute("aria-pressed", on);
    document.dispatchEvent(new Event("fg-mode"));
  }
  function initToolbar() {
    ["large", "contrast"].forEach(c => { if (localStorage.getItem("fg." + c)) document.documentElement.classList.add(c); });
    const bar = document.getElementById("toolbar");
    if (!bar) return;
    bar.innerHTML = `
      <button id="btn-lang" type="button" data-t-label="lang_switch"><span lang="zh-CN">中文</span> / <span lang="en">English</span></button>
      <button id="btn-large" type="button" data-t="large" aria-pressed="false"></button>
      <button id="btn-contrast" type="button" data-t="contrast" aria-pressed="false"></button>`;
    bar.querySelector("#btn-lang").onclick = () => setLang(lang === "zh" ? "en" : "zh");
    for (const c of ["large", "contrast"]) {
      const b = bar.querySelector("#btn-" + c);
      b.setAttribute("aria-pressed", document.documentElement.classList.contains(c));
      b.onclick = () => setMode(c, !document.documentElement.classList.contains(c));
    }
  }
  let token = null;
  function setToken(tok) { token = tok; }
  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r;
    try { r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }); }
    catch (e) { throw { error: "network", key: "network_error" }; }
    const ct = r.headers.get("content-type") || "";
    const data = ct.includes("json") ? await r.json().catch(() => ({})) : await r.text();
    if (!r.ok) {
      const e = Object.assign({ status: r.status }, typeof data === "object" ? data : {});
      const ra = Number(r.headers.get("retry-after"));
      if (ra) e.retry_after_s = ra;
      if (!e.message_zh && !e.message_en) e.key = "http_" + (r.status >= 500 ? "5xx" : r.status === 404 ? "404" : "4xx");
      throw e;
    }
    return data;
  }
  // Does the server have this endpoint? Asked once per path: anything but
  // 404 / 405 means the route exists (a probe without the required fields
  // is answered 400, 401, 403 or 422 by a server that has it).
  const probes = {};
  function probe(method, path) {
    if (!(path in probes)) {
      probes[path] = api(method, path, method === "GET" ? undefined : {}).then(() => true,
        e => !(e.status === 404 || e.status === 405 || e.error === "network"));
    }
    return probes[path];
  }
  // `R15 / 第十条` or `R15 / Art. 10`: the rule and its article in the
  // current language, for anything carrying rule, article and article_zh.
  function ruleRef(x) {
    if (!x || !x.rule) return "";
    const article = lang === "zh" ? (x.article_zh || x.article) : x.article;
    return article ? `${x.rule} / ${article}` : x.rule;
  }
  // An error as one line in the current language: the API's own message
  // (message_zh / message_en), with the rule and article when the Measures
  // refused; a lock-out in minutes.
  function errText(e) {
    if (!e) return "";
    if (typeof e === "string") return t(e);
    if (e.status === 429 || e.error === "rate_limited") {
      return t("locked_minutes", { n: Math.max(1, Math.ceil((e.retry_after_s || 900) / 60)) });
    }
    if (e.key) return t(e.key, e.vars);
    const msg = lang === "zh" ? (e.message_zh || e.message_en) : (e.message_en || e.message_zh);
    if (!msg) return t("http_4xx");
    return e.rule ? `${msg}（${ruleRef(e)}）` : msg;
  }
  function esc(s) { return String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
  function hashParams() { return new URLSearchParams(location.hash.replace(/^#/, "")); }
  // Times in the deployment's time zone (Asia/Shanghai).
  const TZ = "Asia/Shanghai";
  function time(x, withSeconds) {
    if (!x) return "";
    const d = new Date(x);
    if (isNaN(d)) return String(x);
    return new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", {
      timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: withSeconds ? "2-digit" : undefined, hour12: false,
    }).format(d);
  }
  // The Shanghai calendar day of an instant, as YYYY-MM-DD.
  function day(x) {
    const d = new Date(x);
    const p = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit" }).format(d);
    return p;
  }
  function date(ymd) {
    if (!ymd) return "";
    const [y, m, d] = ymd.split("-").map(Number);
    return lang === "zh" ? `${y}年${m}月${d}日` : new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", { timeZone: "UTC", year: "numeric", month: "short", day: "numeric" });
  }
  function num(n) { return Number(n || 0).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB"); }
  // A person or record id shown short: its last 8 characters (UUIDv7s
  // share their first, time-based ones).
  function shortId(id) { return id ? "…" + String(id).slice(-8) : ""; }
  // A <select> of devices, each shown as "id · scenario" (two scenarios may
  // both have a "gate-north-1", and a key or a signage photo belongs to one
  // of them), with its place where asked. An option's value is the device's
  // identity (scenario and id), so the choice survives a refresh that adds
  // or removes devices: by position it would move to another device.
  // Answers a function that gives the chosen device, or undefined.
  function deviceChoices(sel, devices, withPlace) {
    const key = d => JSON.stringify([d.scenario, d.id]);
    const was = sel.value;
    sel.innerHTML = devices.map(d => `<option data-raw value="${esc(key(d))}">${esc(d.id)} · ${esc(d.scenario)}${withPlace && d.location_zh ? " — " + esc(d.location_zh) : ""}</option>`).join("");
    if (devices.some(d => key(d) === was)) sel.value = was;
    return () => devices.find(d => key(d) === sel.value);
  }
  return { add: m => Object.assign(dict, m), t, v, setT, showErr, has, apply, setLang, setMode, initToolbar, api, probe, setToken, ruleRef, errText, esc, hashParams, time, day, date, num, shortId, deviceChoices, missing, TZ, get lang() { return lang; } };
})();
