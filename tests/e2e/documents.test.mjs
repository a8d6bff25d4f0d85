// Printable documents in Debian's Chromium: the filing pack and the PIA
// (Chinese official version and English) and a person's evidence file are
// printed to PDF (page.pdf, A4, the documents' own @page rules and page
// numbers); each PDF has pages, its signature block on the last page, and
// (with pdftotext from poppler-utils) the processor's name and the headcount
// the API reports. The new screens (public receipt check, evidence file,
// console documents) are checked with axe-core in zh, en and large text.
// Started by crates/server/tests/e2e_documents.rs, which sets:
//   FACEGATE_BASE, FACEGATE_ADMIN_KEY, FACEGATE_PORTAL_TOKEN, FACEGATE_RECEIPT,
//   FACEGATE_HEADCOUNT, FACEGATE_PROCESSOR_ZH / _EN, FACEGATE_CHROMIUM,
//   FACEGATE_ARTIFACTS.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const env = k => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const BASE = env("FACEGATE_BASE");
const ADMIN_KEY = env("FACEGATE_ADMIN_KEY");
const PORTAL = env("FACEGATE_PORTAL_TOKEN");
const RECEIPT = env("FACEGATE_RECEIPT");
const HEADCOUNT = env("FACEGATE_HEADCOUNT");
const PROC = { zh: env("FACEGATE_PROCESSOR_ZH"), en: env("FACEGATE_PROCESSOR_EN") };
const ART = env("FACEGATE_ARTIFACTS");
rmSync(ART, { recursive: true, force: true });
mkdirSync(ART, { recursive: true });

let havePdftotext = true;
try { execFileSync("pdftotext", ["-v"], { stdio: "ignore" }); }
catch { havePdftotext = false; console.log("SKIP pdftotext checks: pdftotext is not installed (Debian package poppler-utils; scripts/test.sh installs it)"); }

const browser = await chromium.launch({
  executablePath: env("FACEGATE_CHROMIUM"), headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: "Asia/Shanghai" });
const page = await ctx.newPage();
page.setDefaultTimeout(30000);
let failures = 0;
async function step(name, fn) {
  try { await fn(); console.log(`ok   ${name}`); }
  catch (e) { failures++; console.log(`FAIL ${name}\n${e.stack || e}`); await page.screenshot({ path: join(ART, "FAIL-" + name.replace(/\W+/g, "_") + ".png"), fullPage: true }).catch(() => {}); }
}
const shot = name => page.screenshot({ path: join(ART, name + ".png"), fullPage: true });
// Every screenshot of a checked screen, listed in index.txt.
const screens = [];

// Pages of a PDF: pdfinfo when present, else the page objects Chromium writes.
function pageCount(file) {
  if (havePdftotext) {
    const info = execFileSync("pdfinfo", [file], { encoding: "utf8" });
    return Number(/Pages:\s+(\d+)/.exec(info)[1]);
  }
  return (readFileSync(file, "latin1").match(/\/Type\s*\/Page(?!s)/g) || []).length;
}
function pdfText(file, first, last) {
  const args = ["-layout", "-enc", "UTF-8"];
  if (first) args.push("-f", String(first), "-l", String(last ?? first));
  return execFileSync("pdftotext", [...args, file, "-"], { encoding: "utf8" }).replace(/[ \t]+/g, " ");
}
// Print the page as it is now to `name`.pdf and check it.
async function checkPdf(name, lang, { headcount }) {
  const file = join(ART, name + ".pdf");
  await page.emulateMedia({ media: "print" });
  await page.pdf({ path: file, format: "A4", preferCSSPageSize: true, printBackground: true });
  await page.emulateMedia({ media: "screen" });
  const n = pageCount(file);
  assert.ok(n > 0, `${name}: the PDF has pages`);
  console.log(`     ${name}.pdf: ${n} page(s)`);
  if (!havePdftotext) return;
  const all = pdfText(file);
  const lastPage = pdfText(file, n);
  const sign = lang === "zh" ? "签字、盖章与日期" : "Signature, seal and date";
  const signEv = lang === "zh" ? "签字、盖章与日期" : "Signature, seal and date";
  assert.ok(lastPage.includes(sign) || lastPage.includes(signEv), `${name}: the signature block is on the last page (page ${n}):\n${lastPage.slice(0, 600)}`);
  assert.ok(all.replace(/\s/g, "").includes(PROC[lang].replace(/\s/g, "")), `${name}: the PDF shows the processor's name ${PROC[lang]}`);
  if (headcount) assert.ok(new RegExp(`(^|\\D)${HEADCOUNT}(\\D|$)`).test(all), `${name}: the PDF shows the headcount ${HEADCOUNT}`);
  // Page numbers printed from the @page footer.
  const pageNo = lang === "zh" ? `第 1 页，共 ${n} 页` : `Page 1 of ${n}`;
  if (name.startsWith("filing") || name.startsWith("pia")) assert.ok(pdfText(file, 1).includes(pageNo), `${name}: page numbers (${pageNo})`);
}

async function axe(name) {
  await page.evaluate(AXE);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
      .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(" | ")}`);
  });
  const missing = await page.evaluate(() => [...(window.FG_MISSING || [])]);
  assert.deepEqual([...res, ...missing.map(k => "missing message " + k)], [], `${name}: axe serious/critical or missing messages`);
}
// zh, en and large text for the current screen; `prepare` re-renders it.
async function variants(name, prepare) {
  for (const [lang, large] of [["zh", false], ["en", false], ["zh", true], ["en", true]]) {
    await page.evaluate(([l, big]) => { FG.setLang(l); FG.setMode("large", big); }, [lang, large]);
    if (prepare) await prepare();
    await axe(`${name} ${lang}${large ? " large" : ""}`);
    await shot(`${name}-${lang}${large ? "-large" : ""}`);
    screens.push(`${name}-${lang}${large ? "-large" : ""}.png`);
  }
  await page.evaluate(() => { FG.setLang("zh"); FG.setMode("large", false); });
}

// ---- the filing pack and the PIA, as the API serves them --------------------------
for (const [kind, path] of [["filing-pack", "/v1/documents/filing-pack"], ["pia", "/v1/documents/pia"]]) {
  for (const lang of ["zh", "en"]) {
    await step(`${kind} (${lang}) prints to PDF with its signature block last`, async () => {
      const r = await page.request.get(`${BASE}${path}?lang=${lang}`, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
      assert.equal(r.status(), 200);
      await page.setContent(await r.text(), { waitUntil: "load" });
      // The document as served is a screen too: axe in its language.
      await axe(`${kind} ${lang}`);
      await shot(`${kind}-${lang}`);
      screens.push(`${kind}-${lang}.png`);
      await checkPdf(`${kind}-${lang}`, lang, { headcount: true });
    });
  }
}

// ---- the console's documents tab: preview in a frame, print from it -------------
await step("console: official documents tab (preview, language, signage upload)", async () => {
  await page.goto(`${BASE}/console#key=${ADMIN_KEY}`);
  await page.locator("nav.tabs button[data-tab=docs]").click();
  await page.locator("#btn-doc-pack").click();
  await page.frameLocator("#doc-frame").locator("#signature-block").waitFor();
  assert.equal(await page.locator("#btn-doc-pdf").isDisabled(), false);
  await variants("console-docs", async () => {
    await page.locator("#btn-doc-pack").click();
    await page.frameLocator("#doc-frame").locator("#signature-block").waitFor();
  });
  await page.selectOption("#doc-lang", "en");
  await page.frameLocator("#doc-frame").locator("text=Legal representative").first().waitFor();
  // A non-image as the signage photo is refused next to the button.
  await page.setInputFiles("#signage-file", { name: "x.jpg", mimeType: "image/jpeg", buffer: Buffer.from("not an image") });
  await page.locator("#btn-signage").click();
  await page.locator("#signage-msg[data-has-err]").waitFor();
});

// ---- the public receipt check --------------------------------------------------
await step("receipt page: a pasted code verifies, an altered one does not", async () => {
  await page.goto(`${BASE}/receipt`);
  await page.fill("#rcpt-code", RECEIPT);
  await page.locator("#btn-rcpt").click();
  await page.locator("#rcpt-fields").waitFor();
  await variants("receipt-valid", async () => { await page.locator("#btn-rcpt").click(); await page.locator("#rcpt-fields").waitFor(); });
  const i = RECEIPT.length - 10;
  const altered = RECEIPT.slice(0, i) + (RECEIPT[i] === "A" ? "B" : "A") + RECEIPT.slice(i + 1);
  await page.fill("#rcpt-code", altered);
  await page.locator("#btn-rcpt").click();
  await page.locator("#rcpt-result .bad").waitFor();
  await variants("receipt-invalid", async () => { await page.locator("#btn-rcpt").click(); await page.locator("#rcpt-result .bad").waitFor(); });
});

// ---- the person's evidence file ------------------------------------------------
await step("portal: the evidence file shows signed receipts and prints to PDF", async () => {
  await page.addInitScript(tok => sessionStorage.setItem("fg.portal.token", tok), PORTAL);
  await page.goto(`${BASE}/portal`);
  await page.locator("#btn-evidence").click();
  await page.locator("#doc-evidence").waitFor();
  const txt = await page.locator("#doc-evidence").innerText();
  assert.ok(txt.includes(RECEIPT.slice(0, 40)), "the kiosk's receipt code is in the file");
  await variants("portal-evidence", async () => { await page.locator("#doc-evidence").waitFor(); });
  // Print only the document, as the print button does, without the dialog.
  await page.evaluate(() => {
    const root = document.createElement("div"); root.id = "print-root";
    root.innerHTML = document.getElementById("doc-evidence").outerHTML;
    document.body.appendChild(root); document.body.classList.add("print-doc");
  });
  await checkPdf("evidence-zh", "zh", { headcount: false });
});

await browser.close();
writeFileSync(join(ART, "index.txt"), "Printed documents (PDF) and screenshots of the receipt, evidence and documents screens (axe: zh, en, zh large, en large).\n" + screens.join("\n") + "\n");
if (failures) { console.log(`${failures} document scenario(s) failed`); process.exit(1); }
console.log("all document scenarios passed");
