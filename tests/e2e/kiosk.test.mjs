// Browser tests: the kiosk, portal and console in Debian's Chromium, with a
// fake camera fed from fixture faces, against a real facegate server.
// Started by crates/server/tests/e2e.rs, which sets:
//   FACEGATE_BASE, FACEGATE_DEVICE_KEY, FACEGATE_ADMIN_KEY, FACEGATE_PEOPLE
//   (JSON: {adult, second, child}), FACEGATE_VIDEO (.y4m), FACEGATE_CHROMIUM,
//   FACEGATE_ARTIFACTS (screenshot folder).
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";

const env = k => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const BASE = env("FACEGATE_BASE");
const DEVICE_KEY = env("FACEGATE_DEVICE_KEY");
const ADMIN_KEY = env("FACEGATE_ADMIN_KEY");
const PEOPLE = JSON.parse(env("FACEGATE_PEOPLE"));
const ART = env("FACEGATE_ARTIFACTS");
mkdirSync(ART, { recursive: true });

const browser = await chromium.launch({
  executablePath: env("FACEGATE_CHROMIUM"),
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    `--use-file-for-fake-video-capture=${env("FACEGATE_VIDEO")}`,
  ],
});
const ctx = await browser.newContext({ viewport: { width: 1100, height: 1300 }, permissions: ["camera"], acceptDownloads: true });
const page = await ctx.newPage();
page.setDefaultTimeout(30000);
const kioskUrl = `${BASE}/kiosk#device=gate-north-1&key=${DEVICE_KEY}`;
let failures = 0;
const shot = name => page.screenshot({ path: join(ART, name + ".png"), fullPage: true });

async function step(name, fn) {
  try { await fn(); console.log(`ok   ${name}`); }
  catch (e) { failures++; console.log(`FAIL ${name}\n${e.stack || e}`); await shot("FAIL-" + name.replace(/\W+/g, "_")).catch(() => {}); }
}
const visible = sel => page.locator(sel).waitFor({ state: "visible" });
const text = sel => page.locator(sel).innerText();

async function kioskStart(person, mode) {
  await page.goto(kioskUrl);
  await page.reload();
  await page.fill("#person-id", person);
  await page.click(mode === "enrol" ? "#btn-mode-enrol" : "#btn-mode-verify");
  await visible("#s-notice");
}
async function faceCapture() {
  await visible("#s-camera");
  await page.waitForFunction(() => document.getElementById("video").videoWidth > 0);
  await page.waitForTimeout(600);
  await page.click("#btn-capture");
  return resultNow();
}
async function resultNow() {
  await visible("#s-result");
  return {
    outcome: await page.getAttribute("#result-text", "data-outcome"),
    method: await page.getAttribute("#result-text", "data-method"),
    grants: await page.getAttribute("#result-text", "data-grants"),
    receipt: (await text("#receipt")).trim(),
  };
}
async function pin(person, mode, value) {
  await kioskStart(person, mode);
  await page.click("#btn-other");
  await visible("#s-pin");
  await page.fill("#pin", value);
  await page.click("#btn-pin");
  return resultNow();
}

let faceGrants = null;

await step("notice first, and the two choices have equal weight (R4, R15, R17)", async () => {
  await kioskStart(PEOPLE.adult, "enrol");
  const notice = await text("#notice");
  assert.ok(notice.length > 200, "the notice is shown in full before any choice");
  const a = await page.locator("#btn-agree-face").boundingBox();
  const b = await page.locator("#btn-other").boundingBox();
  assert.equal(Math.round(a.width), Math.round(b.width));
  assert.equal(Math.round(a.height), Math.round(b.height));
  const style = sel => page.$eval(sel, el => { const s = getComputedStyle(el); return [s.backgroundColor, s.color, s.fontSize, s.borderWidth].join(); });
  assert.equal(await style("#btn-agree-face"), await style("#btn-other"));
  assert.equal(await page.$$eval("#s-notice input[type=checkbox]:checked", x => x.length), 0, "nothing pre-ticked");
  await shot("01-kiosk-notice");
});

await step("a resident enrols through the kiosk after reading the notice", async () => {
  await page.click("#btn-agree-face");
  await shot("02-kiosk-camera");
  const r = await faceCapture();
  assert.equal(r.outcome, "enrolled");
  assert.match(r.receipt, /^[0-9a-f-]{36}$/);
  await shot("03-kiosk-enrolled");
});

await step("the resident verifies by face (active liveness: turn head)", async () => {
  await kioskStart(PEOPLE.adult, "verify");
  await page.click("#btn-agree-face");
  const r = await faceCapture();
  assert.equal(r.outcome, "pass");
  assert.equal(r.method, "face");
  faceGrants = r.grants;
  assert.ok(faceGrants);
  await shot("04-kiosk-verified-face");
});

await step("a second resident declines face and passes by PIN with the same outcome (R15, R17)", async () => {
  const e = await pin(PEOPLE.second, "enrol", "135790");
  assert.equal(e.outcome, "enrolled");
  assert.equal(e.method, "pin");
  const r = await pin(PEOPLE.second, "verify", "135790");
  assert.equal(r.outcome, "pass");
  assert.equal(r.method, "pin");
  assert.equal(r.grants, faceGrants, "the PIN grants exactly what face grants");
  assert.match(r.receipt, /^[0-9a-f-]{36}$/);
  await shot("05-kiosk-pin-pass");
  const bad = await pin(PEOPLE.second, "verify", "000000");
  assert.equal(bad.outcome, "fail");
});

await step("a 12-year-old cannot enrol until a guardian consents (R10)", async () => {
  await kioskStart(PEOPLE.child, "enrol");
  await page.click("#btn-agree-face");
  await visible("#s-guardian");
  assert.match(await text("#error"), /R10 \/ 第七条/);
  await shot("06-kiosk-guardian-required");
  await page.click("#btn-guardian");
  assert.ok((await text("#error")).length > 0, "the guardian must tick the box; nothing is pre-ticked");
  await page.fill("#g-name", "王芳");
  await page.check("#g-agree");
  await page.click("#btn-guardian");
  const r = await faceCapture();
  assert.equal(r.outcome, "enrolled");
  await shot("07-kiosk-child-enrolled-with-guardian");
});

await step("a resident withdraws in the portal; the next face attempt is refused while the PIN still works (R8)", async () => {
  // The resident sets a PIN too, then asks the kiosk for a portal code.
  const e = await pin(PEOPLE.adult, "enrol", "246810");
  assert.equal(e.outcome, "enrolled");
  await page.click("#btn-portal-code");
  await page.waitForFunction(() => document.getElementById("portal-code").dataset.code);
  const code = await page.getAttribute("#portal-code", "data-code");
  await page.goto(`${BASE}/portal`);
  await page.fill("#code", code);
  await page.click("#btn-login");
  await visible("#s-me");
  await visible("button.withdraw");
  await shot("08-portal-consents");
  await page.click("button.withdraw");
  await page.waitForFunction(() => document.getElementById("status").dataset.receipt);
  await page.locator("button.withdraw").waitFor({ state: "detached" });
  await shot("09-portal-withdrawn");
  // Face is refused now, naming the rule …
  await kioskStart(PEOPLE.adult, "verify");
  await page.click("#btn-agree-face");
  await visible("#s-camera");
  await page.waitForFunction(() => document.getElementById("video").videoWidth > 0);
  await page.click("#btn-capture");
  await page.waitForFunction(() => /R\d+/.test(document.getElementById("error").textContent));
  assert.match(await text("#error"), /R8|R7/);
  await shot("10-kiosk-face-refused-after-withdrawal");
  // … and the PIN passes with the same outcome face used to give.
  const r = await pin(PEOPLE.adult, "verify", "246810");
  assert.equal(r.outcome, "pass");
  assert.equal(r.grants, faceGrants);
});

await step("the portal exports, takes a complaint and shows the filing number line", async () => {
  await page.goto(`${BASE}/portal`);
  await visible("#s-me");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#btn-export")]);
  assert.equal(download.suggestedFilename(), "facegate-my-data.json");
  await page.fill("#complaint", "门禁屏幕太暗 / the gate screen is too dark");
  await page.click("#btn-complaint");
  await page.waitForFunction(() => /[0-9a-f]{8}-/.test(document.getElementById("status").textContent));
  assert.ok((await text("#filing-number")).length > 0);
  // The refused face attempt is in the person's history, naming its rule
  // and article (in Chinese here, as the kiosk did).
  assert.match(await text("#recent"), /refused \((R8|R7) \/ 第[一二三四五六七八九十]+条\)/);
});

await step("the console shows the headcount against 100,000 and the filing deadline", async () => {
  await page.goto(`${BASE}/console#key=${ADMIN_KEY}`);
  await visible("#s-app");
  await page.waitForFunction(() => document.getElementById("headcount").textContent !== "");
  const hc = Number((await text("#headcount")).replace(/\D/g, ""));
  assert.equal(hc, 1, "the child's template remains; the withdrawn resident's was deleted");
  assert.equal((await text("#threshold")).replace(/\D/g, ""), "100000");
  assert.equal(await page.getAttribute("#alert-level", "data-level"), "ok");
  assert.ok((await text("#deadline")).length > 0);
  assert.match(await text("#by-method"), /face\/match/);
  assert.match(await text("#by-rule"), /R\d+/);
  assert.match(await text("#chain"), /完整|intact/);
  await shot("11-console-dashboard");
  await page.click("button[data-tab=audit]");
  await page.waitForFunction(() => document.querySelectorAll("#audit tbody tr").length > 5);
  await shot("12-console-audit");
  await page.click("button[data-tab=dev]");
  await page.waitForFunction(() => document.querySelectorAll("#devices tbody tr").length >= 2);
  // A face-only manifest is refused on upload, each finding naming R15 and
  // its article in the console's language (Chinese here); nothing deploys.
  await page.click("button[data-tab=scen]");
  await page.waitForFunction(() => document.getElementById("scenarios").textContent !== "");
  const faceOnly = readFileSync(new URL("../../crates/policy/tests/fixtures/face-only.toml", import.meta.url), "utf8");
  await page.fill("#manifest", faceOnly);
  await page.click("#btn-upload");
  await page.waitForFunction(() => document.getElementById("lint-out").textContent !== "");
  const lintOut = await text("#lint-out");
  assert.match(lintOut, /error R15 \/ 第十条/);
  assert.doesNotMatch(lintOut, /Art\. 10|✓/);
  await shot("13-console-face-only-manifest-refused");
});

await step("English switch, large text and high contrast (R6)", async () => {
  await page.goto(kioskUrl);
  await page.click("#btn-lang");
  await page.fill("#person-id", PEOPLE.second);
  await page.click("#btn-mode-verify");
  await visible("#s-notice");
  assert.equal((await text("#btn-agree-face")).trim(), "Agree to face recognition");
  assert.equal((await text("#btn-other")).trim(), "Use another method (PIN)");
  await page.click("#btn-large");
  await page.click("#btn-contrast");
  assert.equal(await page.getAttribute("#btn-large", "aria-pressed"), "true");
  const fs = await page.$eval("body", el => parseFloat(getComputedStyle(el).fontSize));
  assert.ok(fs >= 24, "large text mode enlarges the text");
  await shot("13-kiosk-english-large-contrast");
  const unlabeled = await page.$$eval("button, input, select, textarea", els => els.filter(e => {
    if (e.closest(".hidden")) return false;
    const name = e.getAttribute("aria-label") || e.textContent.trim() || (e.id && document.querySelector(`label[for="${e.id}"]`)) || e.closest("label");
    return !name;
  }).map(e => e.id || e.outerHTML.slice(0, 60)));
  assert.deepEqual(unlabeled, [], "every control has an accessible name");
});

await browser.close();
if (failures) { console.log(`${failures} browser scenario(s) failed`); process.exit(1); }
console.log("all browser scenarios passed");
