//! The PIA report (R13, Art. 9) and the filing pack (R21, Art. 15) as
//! official documents: one language per document (the Chinese version is
//! the official one, English on request), a cover page, the processor's
//! details with the legal representative and the person in charge of
//! personal information, a signature / seal / date block, and an A4 print
//! layout with page numbers (CSS paged media), ready for a browser's
//! "print to PDF".
//!
//! The content is the same as [`crate::pia_report`] and
//! [`crate::filing_pack`] (which keep their bilingual Markdown for archiving
//! and hashing); this module only lays it out for people and signatures.

use chrono::NaiveDate;

use crate::filing::{filing_deadline, FilingKind, FILING_THRESHOLD};
use crate::manifest::{Lang, LegalBasis, Mode, Placement, Scenario, StorageLocation, Text};
use crate::pia::{FilingPackInputs, PiaReport};

/// A photo of a device's signage (R19), as a `data:` URL, for the pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignagePhoto {
    /// The device's manifest id.
    pub device: String,
    /// `data:image/jpeg;base64,…` (or png / webp).
    pub data_url: String,
}

/// What the documents need beyond the manifests.
#[derive(Debug, Clone, Default)]
pub struct DocInputs {
    /// Headcount, threshold date, security measures, procedures.
    pub filing: FilingPackInputs,
    /// The date printed on the cover.
    pub dated: Option<NaiveDate>,
    /// The receipts' Ed25519 public key (hex), printed so anyone can check
    /// a receipt.
    pub receipt_public_key: Option<String>,
    /// The filing number, once filed.
    pub filing_number: Option<String>,
    /// Signage photos by device.
    pub signage: Vec<SignagePhoto>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `zh` or `en` by language.
fn pick(l: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match l {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

fn text(t: &Text, l: Lang) -> String {
    t.get(l).to_string()
}

fn or_dash(s: &str) -> String {
    if s.trim().is_empty() {
        "—".into()
    } else {
        s.to_string()
    }
}

/// Builds one document: head, cover, sections, signature block.
struct Doc {
    lang: Lang,
    html: String,
}

impl Doc {
    fn new(lang: Lang, title: &str, kind_class: &str) -> Doc {
        let footer = match lang {
            Lang::Zh => "\"第 \" counter(page) \" 页，共 \" counter(pages) \" 页\"",
            Lang::En => "\"Page \" counter(page) \" of \" counter(pages)",
        };
        let html = format!(
            "<!doctype html>\n<html lang=\"{}\">\n<head><meta charset=\"utf-8\"><title>{}</title>\n<style>\n\
@page {{ size: A4; margin: 20mm 18mm 22mm; @bottom-center {{ content: {footer}; font-size: 9pt; }} }}\n\
body {{ font-family: \"Noto Serif CJK SC\", \"Noto Sans CJK SC\", \"WenQuanYi Zen Hei\", serif; font-size: 11pt; line-height: 1.6; color: #000; background: #fff; max-width: 50em; margin: 0 auto; padding: 1em; }}\n\
h1 {{ font-size: 20pt; text-align: center; margin: 3em 0 1em; }}\n\
h2 {{ font-size: 14pt; margin-top: 1.4em; break-after: avoid; }}\n\
h3 {{ font-size: 12pt; break-after: avoid; }}\n\
table {{ border-collapse: collapse; width: 100%; margin: .5em 0; }}\n\
th, td {{ border: 1px solid #444; padding: .3em .5em; text-align: left; vertical-align: top; }}\n\
th {{ width: 30%; background: #f2f2f2; }}\n\
.cover {{ break-after: page; page-break-after: always; min-height: 60vh; }}\n\
.cover .sub {{ text-align: center; font-size: 14pt; }}\n\
.cover table {{ width: 80%; margin: 3em auto; }}\n\
code {{ font-size: 9pt; word-break: break-all; }}\n\
.sign {{ break-inside: avoid; page-break-inside: avoid; margin-top: 2em; }}\n\
.sign table td {{ height: 4.5em; }}\n\
.seal {{ text-align: center; color: #666; }}\n\
.signage {{ max-width: 6cm; max-height: 6cm; border: 1px solid #444; }}\n\
@media screen {{ body {{ box-shadow: 0 0 .5em #999; }} }}\n\
</style></head>\n<body class=\"{kind_class}\">\n",
            pick(lang, "zh-CN", "en"),
            esc(title)
        );
        Doc { lang, html }
    }
    fn p(&self, zh: &'static str, en: &'static str) -> &'static str {
        pick(self.lang, zh, en)
    }
    fn raw(&mut self, s: &str) {
        self.html += s;
    }
    fn h2(&mut self, t: &str) {
        self.html += &format!("<h2>{}</h2>\n", esc(t));
    }
    fn h3(&mut self, t: &str) {
        self.html += &format!("<h3>{}</h3>\n", esc(t));
    }
    fn para(&mut self, t: &str) {
        self.html += &format!("<p>{}</p>\n", esc(t));
    }
    fn list(&mut self, items: &[String]) {
        self.html += "<ul>\n";
        for i in items {
            self.html += &format!("<li>{}</li>\n", esc(i));
        }
        self.html += "</ul>\n";
    }
    fn kv(&mut self, rows: &[(&str, String)]) {
        self.html += "<table>\n";
        for (k, v) in rows {
            self.html += &format!(
                "<tr><th scope=\"row\">{}</th><td>{}</td></tr>\n",
                esc(k),
                esc(v)
            );
        }
        self.html += "</table>\n";
    }
    fn table(&mut self, head: &[&str], rows: &[Vec<String>]) {
        self.html += "<table>\n<tr>";
        for h in head {
            self.html += &format!("<th scope=\"col\">{}</th>", esc(h));
        }
        self.html += "</tr>\n";
        for r in rows {
            self.html += "<tr>";
            for c in r {
                self.html += &format!("<td>{}</td>", esc(c));
            }
            self.html += "</tr>\n";
        }
        self.html += "</table>\n";
    }
    fn cover(&mut self, title: &str, processor: &str, rows: &[(&str, String)]) {
        self.html += "<section class=\"cover\">\n";
        self.html += &format!(
            "<h1>{}</h1>\n<p class=\"sub\">{}</p>\n",
            esc(title),
            esc(processor)
        );
        self.kv(rows);
        let note = self.p(
            "本文件以中文文本为正式文本。",
            "English version on request; the Chinese version is the official text.",
        );
        self.para(note);
        self.html += "</section>\n";
    }
    /// The processor's details, legal representative and PI officer included.
    fn processor(&mut self, s: Option<&Scenario>, key: Option<&str>, filing_number: Option<&str>) {
        let Some(s) = s else { return };
        let p = &s.processor;
        let l = self.lang;
        let mut rows = vec![
            (self.p("名称", "Name"), text(&p.name, l)),
            (
                self.p("统一社会信用代码", "Unified social credit code"),
                or_dash(&p.credit_code),
            ),
            (self.p("所在地", "Province"), or_dash(&p.province)),
            (
                self.p("法定代表人", "Legal representative"),
                or_dash(&p.legal_representative),
            ),
            (
                self.p(
                    "个人信息保护负责人",
                    "Person in charge of personal information protection",
                ),
                or_dash(&p.pi_officer),
            ),
            (
                self.p(
                    "个人信息保护负责人联系方式",
                    "Contact of the person in charge",
                ),
                or_dash(&p.pi_officer_contact),
            ),
            (self.p("联系方式", "Contact"), or_dash(&p.contact)),
            (
                self.p("备案编号", "Filing number"),
                filing_number
                    .map(str::to_string)
                    .unwrap_or_else(|| self.p("尚未备案", "not filed yet").into()),
            ),
        ];
        if let Some(k) = key {
            rows.push((
                self.p(
                    "识别凭证签名公钥（Ed25519）",
                    "Receipt signing public key (Ed25519)",
                ),
                k.to_string(),
            ));
        }
        self.kv(&rows);
    }
    /// The signature / seal / date block; always the document's last part.
    fn sign(&mut self) {
        let title = self.p("签字、盖章与日期", "Signature, seal and date");
        self.html += &format!(
            "<section class=\"sign\" id=\"signature-block\">\n<h2>{}</h2>\n",
            esc(title)
        );
        let rows = [
            self.p("法定代表人（签字）", "Legal representative (signature)"),
            self.p(
                "个人信息保护负责人（签字）",
                "Person in charge of personal information protection (signature)",
            ),
            self.p("个人信息处理者（盖章）", "Processor (seal)"),
            self.p("日期", "Date"),
        ];
        self.html += "<table>\n";
        for r in rows {
            self.html += &format!("<tr><th scope=\"row\">{}</th><td></td></tr>\n", esc(r));
        }
        self.html += "</table>\n";
        let seal = self.p("（此处盖章）", "(seal here)");
        self.html += &format!("<p class=\"seal\">{}</p>\n</section>\n", esc(seal));
    }
    fn finish(mut self) -> String {
        self.html += "</body>\n</html>\n";
        self.html
    }
}

fn yes_no(l: Lang, b: bool) -> &'static str {
    match (l, b) {
        (Lang::Zh, true) => "是",
        (Lang::Zh, false) => "否",
        (Lang::En, true) => "yes",
        (Lang::En, false) => "no",
    }
}

fn method_lines(s: &Scenario, l: Lang) -> Vec<String> {
    let mode = match (s.mode, l) {
        (Mode::Verification, Lang::Zh) => "1:1 验证",
        (Mode::Verification, Lang::En) => "1:1 verification",
        (Mode::Identification, Lang::Zh) => "1:N 辨识",
        (Mode::Identification, Lang::En) => "1:N identification",
    };
    let storage = match (s.storage.location, l) {
        (StorageLocation::Device, Lang::Zh) => "设备端存储",
        (StorageLocation::Device, Lang::En) => "stored on the device",
        (StorageLocation::Central, Lang::Zh) => "集中存储",
        (StorageLocation::Central, Lang::En) => "stored centrally",
    };
    let sep = pick(l, "、", ", ");
    let methods = s
        .methods
        .iter()
        .map(|m| m.name(l).to_string())
        .collect::<Vec<_>>()
        .join(sep);
    vec![
        format!("{}{mode}", pick(l, "识别模式：", "Mode: ")),
        format!("{}{methods}", pick(l, "验证方式：", "Methods: ")),
        format!("{}{storage}", pick(l, "存储：", "Storage: ")),
        format!(
            "{}{}",
            pick(
                l,
                "允许传出设备（须单独同意）：",
                "May leave the device (with separate consent): "
            ),
            yes_no(l, s.storage.transmit_templates)
        ),
        format!(
            "{}{}",
            pick(l, "保存人脸图像：", "Face images kept: "),
            yes_no(l, s.retention.keep_images)
        ),
    ]
}

fn rules_lines(s: &Scenario, l: Lang) -> Vec<String> {
    let mut v = vec![];
    let days = s.retention.template_days.unwrap_or(0);
    v.push(match l {
        Lang::Zh => format!(
            "人脸信息保存期限：{days} 天{}",
            s.retention
                .inactive_days
                .map(|i| format!("；连续 {i} 天未使用即删除"))
                .unwrap_or_default()
        ),
        Lang::En => format!(
            "Face information kept for {days} days{}",
            s.retention
                .inactive_days
                .map(|i| format!("; deleted after {i} days unused"))
                .unwrap_or_default()
        ),
    });
    v.push(match l {
        Lang::Zh => format!("处理记录保存 {} 天（不少于三年）", s.log_retention_days()),
        Lang::En => format!(
            "Processing records kept {} days (at least three years)",
            s.log_retention_days()
        ),
    });
    v.push(
        pick(
            l,
            "现场图像比对后立即删除，日志不含图像或人脸特征",
            "Captured images are discarded after the match; logs hold no images or templates",
        )
        .into(),
    );
    v.push(match s.legal_basis {
        LegalBasis::Consent => pick(
            l,
            "以单独同意为处理依据，同意与告知书版本绑定；撤回一步完成、立即生效，撤回后删除人脸信息",
            "Separate consent tied to the notice version; withdrawal in one step, effective at once, followed by deletion",
        )
        .into(),
        LegalBasis::Law => format!(
            "{}{}",
            pick(l, "法律依据：", "Legal basis: "),
            s.legal_basis_citation.as_deref().unwrap_or("")
        ),
    });
    v.push(match l {
        Lang::Zh => format!("个人拒绝人脸识别后 {} 小时内不再提示", s.quiet_period_hours),
        Lang::En => format!(
            "Not asked again for {} hours after declining face",
            s.quiet_period_hours
        ),
    });
    let alts = s
        .alternatives()
        .iter()
        .map(|m| m.name(l).to_string())
        .collect::<Vec<_>>()
        .join(pick(l, "、", ", "));
    v.push(format!(
        "{}{alts}",
        pick(l, "其他验证方式：", "Alternatives: ")
    ));
    if let Some(m) = &s.minors {
        v.push(if m.allowed {
            format!(
                "{}{}",
                pick(
                    l,
                    "未成年人：须监护人同意；",
                    "Minors: guardian consent required; "
                ),
                m.rules.as_ref().map(|t| text(t, l)).unwrap_or_default()
            )
        } else {
            pick(
                l,
                "不对不满十四周岁者使用人脸识别",
                "No face recognition for under-14s",
            )
            .into()
        });
    }
    v
}

fn placement(p: Placement, l: Lang) -> String {
    match l {
        Lang::Zh => p.name_zh().to_string(),
        Lang::En => p.key().replace('_', " "),
    }
}

/// The device table, with each device's signage photo where one is stored.
fn devices(d: &mut Doc, s: &Scenario, signage: &[SignagePhoto]) {
    if s.devices.is_empty() {
        return;
    }
    let l = d.lang;
    let head = [
        d.p("设备", "Device"),
        d.p("位置类型", "Placement"),
        d.p("启用", "Active"),
        d.p("位置", "Location"),
        d.p("提示标识", "Signage"),
    ];
    let mut html = String::from("<table>\n<tr>");
    for h in head {
        html += &format!("<th scope=\"col\">{}</th>", esc(h));
    }
    html += "</tr>\n";
    for dev in &s.devices {
        let photo = signage.iter().find(|p| p.device == dev.id);
        let sign = match photo {
            Some(p) => format!(
                "<img class=\"signage\" src=\"{}\" alt=\"{}\">",
                esc(&p.data_url),
                esc(&format!(
                    "{}{}",
                    pick(l, "提示标识照片：", "Signage photo: "),
                    dev.id
                ))
            ),
            None => esc(&dev.signage_evidence.clone().unwrap_or_else(|| "—".into())),
        };
        html += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&dev.id),
            esc(&placement(dev.placement, l)),
            yes_no(l, dev.active),
            esc(&dev
                .location
                .as_ref()
                .map(|t| text(t, l))
                .unwrap_or_default()),
            sign
        );
    }
    html += "</table>\n";
    d.raw(&html);
}

/// The Art. 14 (R20) measures missing from `measures`, in language `l`
/// (the PIA's list and words: one rule, two renderings).
fn art14_gaps(measures: &[String], l: Lang) -> Vec<String> {
    crate::pia::art14_missing(measures)
        .into_iter()
        .map(|(zh, en)| pick(l, zh, en).to_string())
        .collect()
}

fn date_or_today(d: Option<NaiveDate>) -> String {
    d.unwrap_or_else(|| chrono::Utc::now().date_naive())
        .to_string()
}

/// The PIA report of `s` as an official document in `lang`.
pub fn pia_document(s: &Scenario, pia: &PiaReport, inp: &DocInputs, lang: Lang) -> String {
    let l = lang;
    let title = pick(
        l,
        "个人信息保护影响评估报告",
        "Personal information protection impact assessment",
    );
    let mut d = Doc::new(l, title, "doc-pia");
    let cover_rows = [
        (d.p("报告编号", "Report id"), pia.id.clone()),
        (
            d.p("应用场景", "Scenario"),
            format!("{}（{}）", text(&s.name, l), s.id),
        ),
        (d.p("评估日期", "Assessed on"), pia.assessed_on.to_string()),
        (
            d.p("文本摘要（SHA-256）", "Text digest (SHA-256)"),
            pia.sha256.clone(),
        ),
        (d.p("出具日期", "Dated"), date_or_today(inp.dated)),
    ];
    d.cover(title, &text(&s.processor.name, l), &cover_rows);
    d.h2(d.p("个人信息处理者基本情况", "The processor"));
    d.processor(
        Some(s),
        inp.receipt_public_key.as_deref(),
        inp.filing_number.as_deref(),
    );

    d.h2(d.p(
        "一、处理目的、处理方式是否合法、正当、必要",
        "1. Are the purpose and method lawful, legitimate and necessary",
    ));
    d.para(&format!(
        "{}{}",
        d.p("处理目的：", "Purpose: "),
        text(&s.purpose, l)
    ));
    d.para(&format!(
        "{}{}",
        d.p("必要性：", "Necessity: "),
        text(&s.necessity, l)
    ));
    d.list(&method_lines(s, l));
    let least = s.mode == Mode::Verification
        && s.storage.location == StorageLocation::Device
        && !s.is_face_only();
    d.para(&format!(
        "{}{}",
        d.p("结论：", "Finding: "),
        if least {
            d.p(
                "采用影响最小的方式（1:1 验证、设备端存储、提供其他验证方式）。",
                "The least intrusive set-up is used (1:1, on the device, alternatives offered).",
            )
        } else {
            d.p(
                "须说明未采用 1:1 验证或设备端存储的理由。",
                "The reasons for not using 1:1 or on-device storage must be documented.",
            )
        }
    ));

    d.h2(d.p(
        "二、对个人权益的影响及降低不利影响的措施是否有效",
        "2. Impact on individuals' rights and whether the mitigations work",
    ));
    if let Some(e) = s.notice.as_ref().and_then(|n| n.effect_on_rights.as_ref()) {
        d.para(&format!("{}{}", d.p("影响：", "Effect: "), text(e, l)));
    }
    d.list(&rules_lines(s, l));

    d.h2(d.p(
        "三、人脸信息泄露、篡改、丢失、毁损或者被非法获取、出售、使用的风险及可能造成的危害",
        "3. Risks of leakage, tampering, loss, destruction or illegal acquisition, sale or use, and the harm that could follow",
    ));
    let public = s
        .devices
        .iter()
        .filter(|x| x.placement == Placement::PublicArea)
        .count();
    let h = inp.filing.headcount;
    let level = if h >= FILING_THRESHOLD {
        d.p("高", "high")
    } else if h >= 10_000 || public > 0 {
        d.p("中", "medium")
    } else {
        d.p("低", "low")
    };
    d.kv(&[
        (
            d.p(
                "存储人脸信息的自然人数量",
                "Distinct persons with stored face information",
            ),
            h.to_string(),
        ),
        (d.p("设备数", "Devices"), s.devices.len().to_string()),
        (
            d.p("公共场所设备", "Public-area devices"),
            public.to_string(),
        ),
        (d.p("风险等级", "Risk level"), level.to_string()),
    ]);
    d.para(d.p(
        "人脸信息不可更改，一旦泄露可能被用于冒用身份、伪造活体或追踪行踪，且无法像密码一样重置。",
        "Face information cannot be changed: once leaked it can be used to impersonate, to spoof liveness or to track people, and cannot be reset like a password.",
    ));
    devices(&mut d, s, &inp.signage);

    d.h2(d.p(
        "四、所采取的保护措施是否合法、有效并与风险程度相适应",
        "4. Are the protections lawful, effective and in proportion to the risk",
    ));
    measures(&mut d, &inp.filing.security_measures);
    let (en, zh) = crate::liveness::explain_liveness(s);
    d.para(&format!(
        "{}{}",
        d.p(
            "活体检测（防照片、屏幕翻拍攻击）：",
            "Liveness (against photo and screen attacks): "
        ),
        pick_owned(l, zh, en)
    ));
    d.para(d.p(
        "本报告与处理记录至少保存三年。处理目的或方式变更、发生重大安全事件时须重新评估。",
        "Keep this report and the processing records at least three years. Re-assess when the purpose or method changes or after a major incident.",
    ));
    d.sign();
    d.finish()
}

fn pick_owned(l: Lang, zh: String, en: String) -> String {
    match l {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

fn measures(d: &mut Doc, m: &[String]) {
    let l = d.lang;
    if m.is_empty() {
        d.para(d.p("（未提供）", "(none given)"));
    } else {
        d.list(m);
    }
    let gaps = art14_gaps(m, l);
    if gaps.is_empty() {
        d.para(d.p(
            "第十四条（R20）规定的五项措施均已具备。",
            "All five Art. 14 (R20) measures are in place.",
        ));
    } else {
        d.para(&format!(
            "{}{}",
            d.p(
                "缺少第十四条（R20）规定的措施：",
                "Missing Art. 14 (R20) measures: "
            ),
            gaps.join(pick(l, "；", "; "))
        ));
    }
}

/// The filing pack (the five Art. 15 contents) as an official document in `lang`.
pub fn filing_document(
    scenarios: &[Scenario],
    pias: &[PiaReport],
    inp: &DocInputs,
    lang: Lang,
) -> String {
    let l = lang;
    let first = scenarios.first();
    let pname = first
        .map(|s| text(&s.processor.name, l))
        .unwrap_or_default();
    let title = pick(
        l,
        "人脸识别技术应用备案材料",
        "Face recognition filing pack",
    );
    let mut d = Doc::new(l, title, "doc-filing");
    let deadline = inp
        .filing
        .threshold_reached_on
        .map(|t| filing_deadline(t, FilingKind::Initial));
    let mut cover = vec![
        (d.p("个人信息处理者", "Processor"), pname.clone()),
        (
            d.p("统一社会信用代码", "Unified social credit code"),
            or_dash(
                &first
                    .map(|s| s.processor.credit_code.clone())
                    .unwrap_or_default(),
            ),
        ),
        (
            d.p(
                "存储人脸信息的自然人数量",
                "Distinct persons with stored face information",
            ),
            inp.filing.headcount.to_string(),
        ),
        (d.p("出具日期", "Dated"), date_or_today(inp.dated)),
    ];
    if let Some(dl) = &deadline {
        cover.push((
            d.p("达到 10 万人之日", "Threshold reached on"),
            dl.trigger.to_string(),
        ));
        cover.push((
            d.p("备案截止日", "File by"),
            format!(
                "{}{}",
                dl.last_day,
                if dl.provisional {
                    d.p(
                        "（暂定：节假日安排未公布）",
                        " (provisional: holiday schedule not yet published)",
                    )
                } else {
                    ""
                }
            ),
        ));
    }
    d.cover(title, &pname, &cover);

    d.h2(d.p(
        "一、个人信息处理者基本情况",
        "1. Basic information about the processor",
    ));
    d.processor(
        first,
        inp.receipt_public_key.as_deref(),
        inp.filing_number.as_deref(),
    );

    d.h2(d.p(
        "二、人脸信息的处理目的和处理方式",
        "2. Purpose and method of processing",
    ));
    for s in scenarios {
        d.h3(&format!("{}（{}）", text(&s.name, l), s.id));
        d.para(&format!(
            "{}{}",
            d.p("处理目的：", "Purpose: "),
            text(&s.purpose, l)
        ));
        d.para(&format!(
            "{}{}",
            d.p("必要性：", "Necessity: "),
            text(&s.necessity, l)
        ));
        d.list(&method_lines(s, l));
    }

    d.h2(d.p(
        "三、存储人脸信息的数量和安全保护措施",
        "3. Number stored and security measures",
    ));
    d.para(&format!(
        "{}{}",
        d.p(
            "存储人脸信息的自然人数量（跨全部场景去重）：",
            "Distinct persons with stored face information, all scenarios: "
        ),
        inp.filing.headcount
    ));
    measures(&mut d, &inp.filing.security_measures);

    d.h2(d.p(
        "四、人脸信息处理规则和操作规程",
        "4. Processing rules and operating procedures",
    ));
    for s in scenarios {
        d.h3(&format!("{}（{}）", text(&s.name, l), s.id));
        d.list(&rules_lines(s, l));
        devices(&mut d, s, &inp.signage);
    }
    if !inp.filing.procedures.is_empty() {
        d.list(&inp.filing.procedures);
    }

    d.h2(d.p("五、个人信息保护影响评估报告", "5. PIA report"));
    if pias.is_empty() {
        d.para(d.p("（未附影响评估报告）", "(no PIA report attached)"));
    } else {
        let rows: Vec<Vec<String>> = pias
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.scenario.clone(),
                    r.assessed_on.to_string(),
                    r.sha256.clone(),
                ]
            })
            .collect();
        let head = [
            d.p("报告编号", "Report id"),
            d.p("应用场景", "Scenario"),
            d.p("评估日期", "Assessed on"),
            d.p("文本摘要（SHA-256）", "Text digest (SHA-256)"),
        ];
        d.table(&head, &rows);
        d.para(d.p(
            "影响评估报告全文作为附件另行提交，其文本摘要见上表。",
            "The full PIA reports are attached separately; their digests are listed above.",
        ));
    }
    d.sign();
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Scenario {
        crate::parse_manifest(crate::init_template("residential-gate").unwrap()).unwrap()
    }

    #[test]
    fn r21_the_chinese_filing_pack_is_monolingual_with_cover_officers_and_signature_last() {
        let s = gate();
        let inp = DocInputs {
            filing: FilingPackInputs {
                headcount: 1234,
                ..Default::default()
            },
            receipt_public_key: Some("ab".repeat(32)),
            ..Default::default()
        };
        let zh = filing_document(std::slice::from_ref(&s), &[], &inp, Lang::Zh);
        for want in [
            "法定代表人",
            "个人信息保护负责人",
            "张伟",
            "李娜",
            "1234",
            "签字、盖章与日期",
            "第 \" counter(page)",
            "class=\"cover\"",
            &"ab".repeat(32),
        ] {
            assert!(zh.contains(want), "zh pack lacks {want}");
        }
        // Not bilingual line by line: no English headings in the Chinese version.
        for unwanted in ["Basic information", "Purpose and method", " / "] {
            assert!(!zh.contains(unwanted), "zh pack contains {unwanted:?}");
        }
        // The signature block is the last section.
        let sign = zh.find("id=\"signature-block\"").unwrap();
        assert!(zh[sign..].matches("<h2>").count() == 1);
        let en = filing_document(std::slice::from_ref(&s), &[], &inp, Lang::En);
        assert!(en.contains("Legal representative") && en.contains("Signature, seal and date"));
        assert!(!en.contains("基本情况"));
    }

    #[test]
    fn r13_the_pia_document_has_the_four_contents_in_one_language() {
        let s = gate();
        let pia = crate::pia_report(
            &s,
            &crate::PiaInputs {
                report_id: "PIA-1".into(),
                assessed_on: "2026-01-02".parse().unwrap(),
                assessor: "x".into(),
                headcount: 10,
                security_measures: vec!["加密".into()],
                incidents: vec![],
            },
        );
        let inp = DocInputs::default();
        let zh = pia_document(&s, &pia, &inp, Lang::Zh);
        for want in [
            "一、",
            "二、",
            "三、",
            "四、",
            "PIA-1",
            "法定代表人",
            "签字、盖章与日期",
            "缺少第十四条（R20）规定的措施",
        ] {
            assert!(zh.contains(want), "zh PIA lacks {want}");
        }
        assert!(!zh.contains(" / "), "bilingual text in the zh PIA");
        let en = pia_document(&s, &pia, &inp, Lang::En);
        assert!(en.contains("1. Are the purpose") && en.contains("Page \" counter(page)"));
    }
}
