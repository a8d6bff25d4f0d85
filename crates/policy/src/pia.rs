//! The personal information protection impact assessment (PIA, R13) report
//! with the four Art. 9 contents, its staleness, and the filing pack with
//! the five Art. 15 contents (R21), each as Markdown and HTML.

use crate::authorize::PiaStatus;
use crate::filing::{filing_deadline, FilingKind, FILING_THRESHOLD};
use crate::manifest::{Lang, LegalBasis, Mode, PiaLink, Placement, Scenario, StorageLocation};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Figures and facts the caller supplies for a PIA (the manifest gives the
/// rest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiaInputs {
    /// Report id, e.g. `PIA-2025-001`.
    pub report_id: String,
    /// Date of the assessment.
    pub assessed_on: NaiveDate,
    /// Who assessed.
    pub assessor: String,
    /// Distinct persons with stored face information (all scenarios).
    pub headcount: u64,
    /// Security measures in place (free text; the five Art. 14 measures are
    /// looked for: encryption, audit, access control, authorisation,
    /// intrusion detection).
    pub security_measures: Vec<String>,
    /// Major security incidents since the last assessment.
    pub incidents: Vec<String>,
}

/// A generated PIA report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiaReport {
    /// Report id.
    pub id: String,
    /// Scenario id.
    pub scenario: String,
    /// Date assessed.
    pub assessed_on: NaiveDate,
    /// [`Scenario::pia_fingerprint`] at assessment: put it in `[pia]`.
    pub fingerprint: String,
    /// sha256 of the Markdown (archive it ≥ 3 years, R14).
    pub sha256: String,
    /// Missing Art. 14 security measures found.
    pub gaps: Vec<String>,
    /// Markdown.
    pub markdown: String,
    /// HTML document.
    pub html: String,
}

impl PiaReport {
    /// The `[pia]` table to paste into the manifest.
    pub fn link(&self) -> PiaLink {
        PiaLink {
            id: self.id.clone(),
            assessed_on: self.assessed_on.to_string(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

/// PIA state of a scenario: `Missing` with no link, `Stale` when purpose or
/// method changed since (fingerprint differs) or a major incident happened
/// since, else `Current` (R13).
pub fn pia_status(scenario: &Scenario, link: Option<&PiaLink>, incident_since: bool) -> PiaStatus {
    match link {
        None => PiaStatus::Missing,
        Some(l) if l.id.trim().is_empty() => PiaStatus::Missing,
        Some(l) if l.fingerprint != scenario.pia_fingerprint() || incident_since => {
            PiaStatus::Stale
        }
        Some(_) => PiaStatus::Current,
    }
}

/// A tiny document model rendered to both Markdown and HTML.
enum Block {
    H(u8, String),
    P(String),
    List(Vec<String>),
    Table(Vec<String>, Vec<Vec<String>>),
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn render(blocks: &[Block], title: &str) -> (String, String) {
    let mut md = String::new();
    let mut html = format!(
        "<!doctype html>\n<html lang=\"zh-CN\">\n<head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.6}}table{{border-collapse:collapse}}td,th{{border:1px solid #888;padding:.3em .6em;text-align:left}}</style></head>\n<body>\n",
        esc(title)
    );
    for b in blocks {
        match b {
            Block::H(l, t) => {
                md += &format!("{} {t}\n\n", "#".repeat(*l as usize));
                html += &format!("<h{l}>{}</h{l}>\n", esc(t));
            }
            Block::P(t) => {
                md += &format!("{t}\n\n");
                html += &format!("<p>{}</p>\n", esc(t));
            }
            Block::List(items) => {
                html += "<ul>\n";
                for i in items {
                    md += &format!("- {i}\n");
                    html += &format!("<li>{}</li>\n", esc(i));
                }
                md += "\n";
                html += "</ul>\n";
            }
            Block::Table(head, rows) => {
                md += &format!(
                    "| {} |\n|{}|\n",
                    head.iter()
                        .map(|h| md_cell(h))
                        .collect::<Vec<_>>()
                        .join(" | "),
                    head.iter().map(|_| "---").collect::<Vec<_>>().join("|")
                );
                html += "<table>\n<tr>";
                for h in head {
                    html += &format!("<th>{}</th>", esc(h));
                }
                html += "</tr>\n";
                for r in rows {
                    md += &format!(
                        "| {} |\n",
                        r.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")
                    );
                    html += "<tr>";
                    for c in r {
                        html += &format!("<td>{}</td>", esc(c));
                    }
                    html += "</tr>\n";
                }
                md += "\n";
                html += "</table>\n";
            }
        }
    }
    html += "</body>\n</html>\n";
    (md, html)
}

/// The five security measures of Art. 14 (R20), with words to look for.
const ART14: [(&str, &str, &[&str]); 5] = [
    ("数据加密", "data encryption", &["加密", "encrypt"]),
    ("安全审计", "security audit", &["审计", "audit"]),
    (
        "访问控制",
        "access control",
        &["访问控制", "access control", "rbac"],
    ),
    (
        "授权管理",
        "authorisation management",
        &["授权", "authoris", "authoriz"],
    ),
    (
        "入侵检测和防御",
        "intrusion detection and prevention",
        &["入侵", "intrusion"],
    ),
];

/// The Art. 14 (R20) measures missing from `measures`: (zh, en) names.
pub(crate) fn art14_missing(measures: &[String]) -> Vec<(&'static str, &'static str)> {
    ART14
        .iter()
        .filter(|(_, _, words)| {
            !measures.iter().any(|m| {
                let l = m.to_lowercase();
                words.iter().any(|w| l.contains(w))
            })
        })
        .map(|(zh, en, _)| (*zh, *en))
        .collect()
}

fn art14_gaps(measures: &[String]) -> Vec<String> {
    art14_missing(measures)
        .into_iter()
        .map(|(zh, en)| format!("{zh} / {en}"))
        .collect()
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "是 / yes"
    } else {
        "否 / no"
    }
}

fn both(t: &crate::manifest::Text) -> String {
    match t.en.as_deref().filter(|e| !e.trim().is_empty()) {
        Some(en) => format!("{} / {en}", t.zh),
        None => t.zh.clone(),
    }
}

fn method_lines(s: &Scenario) -> Vec<String> {
    let mode = match s.mode {
        Mode::Verification => "1:1 验证 / 1:1 verification",
        Mode::Identification => "1:N 辨识 / 1:N identification",
    };
    let storage = match s.storage.location {
        StorageLocation::Device => "设备端存储 / stored on the device",
        StorageLocation::Central => "集中存储 / stored centrally",
    };
    let methods = s
        .methods
        .iter()
        .map(|m| format!("{} ({})", m.name(Lang::Zh), m.name(Lang::En)))
        .collect::<Vec<_>>()
        .join("、");
    vec![
        format!("识别模式 / mode: {mode}"),
        format!("验证方式 / methods: {methods}"),
        format!("存储 / storage: {storage}"),
        format!(
            "允许传出设备（须单独同意）/ may leave the device (with separate consent): {}",
            yes_no(s.storage.transmit_templates)
        ),
        format!(
            "保存人脸图像 / face images kept: {}",
            yes_no(s.retention.keep_images)
        ),
    ]
}

fn rules_lines(s: &Scenario) -> Vec<String> {
    let mut v = vec![];
    let days = s.retention.template_days.unwrap_or(0);
    v.push(format!(
        "保存期限 / template retention: {days} 天 days{}",
        s.retention
            .inactive_days
            .map(|i| format!("；连续 {i} 天未使用即删除 / deleted after {i} days unused"))
            .unwrap_or_default()
    ));
    v.push(format!(
        "处理记录保存 / processing records kept: {} 天 days (≥ 1095, R14)",
        s.log_retention_days()
    ));
    v.push("现场图像比对后立即删除，日志不含图像或特征 / captured images are discarded after the match; logs hold no images or templates".into());
    v.push(match s.legal_basis {
        LegalBasis::Consent => "以单独同意为处理依据，同意与通知版本绑定；撤回一步完成、立即生效，撤回后删除人脸信息 / separate consent tied to the notice version; withdrawal in one step, effective at once, followed by deletion".to_string(),
        LegalBasis::Law => format!(
            "法律依据 / legal basis: {}",
            s.legal_basis_citation.as_deref().unwrap_or("")
        ),
    });
    v.push(format!(
        "拒绝人脸识别后 {} 小时内不再提示 / not asked again for {} hours after declining face",
        s.quiet_period_hours, s.quiet_period_hours
    ));
    let alts = s
        .alternatives()
        .iter()
        .map(|m| m.name(Lang::Zh))
        .collect::<Vec<_>>()
        .join("、");
    v.push(format!("其他验证方式 / alternatives: {alts}"));
    if let Some(m) = &s.minors {
        v.push(if m.allowed {
            format!(
                "未成年人：须监护人同意；{} / minors: guardian consent required; {}",
                m.rules.as_ref().map(|t| t.zh.as_str()).unwrap_or(""),
                m.rules.as_ref().and_then(|t| t.en.as_deref()).unwrap_or("")
            )
        } else {
            "不对不满十四周岁者使用人脸识别 / no face recognition for under-14s".to_string()
        });
    }
    v
}

fn device_rows(s: &Scenario) -> Vec<Vec<String>> {
    s.devices
        .iter()
        .map(|d| {
            vec![
                d.id.clone(),
                format!("{} ({})", d.placement.name_zh(), d.placement.key()),
                yes_no(d.active).to_string(),
                d.location.as_ref().map(both).unwrap_or_default(),
                d.signage_evidence.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

/// Generates the PIA report of `scenario` with the four Art. 9 contents.
pub fn pia_report(s: &Scenario, inp: &PiaInputs) -> PiaReport {
    let gaps = art14_gaps(&inp.security_measures);
    let public = s
        .devices
        .iter()
        .filter(|d| d.placement == Placement::PublicArea)
        .count();
    let level = if inp.headcount >= FILING_THRESHOLD {
        "高 / high"
    } else if inp.headcount >= 10_000 || public > 0 {
        "中 / medium"
    } else {
        "低 / low"
    };
    let title = format!("个人信息保护影响评估报告 / PIA report — {}", both(&s.name));
    let mut b = vec![
        Block::H(1, title.clone()),
        Block::Table(
            vec!["项目 / item".into(), "内容 / value".into()],
            vec![
                vec!["报告编号 / report id".into(), inp.report_id.clone()],
                vec!["场景 / scenario".into(), s.id.clone()],
                vec!["处理者 / processor".into(), both(&s.processor.name)],
                vec!["评估日期 / assessed on".into(), inp.assessed_on.to_string()],
                vec!["评估人 / assessor".into(), inp.assessor.clone()],
                vec!["指纹 / fingerprint".into(), s.pia_fingerprint()],
            ],
        ),
        Block::H(2, "一、处理目的、处理方式是否合法、正当、必要 / 1. Are the purpose and method lawful, legitimate and necessary".into()),
        Block::P(format!("处理目的 / purpose ({}): {}", s.purpose_id, both(&s.purpose))),
        Block::P(format!("必要性 / necessity: {}", both(&s.necessity))),
        Block::List(method_lines(s)),
        Block::P(format!(
            "结论 / finding: {}",
            if s.mode == Mode::Verification && s.storage.location == StorageLocation::Device && !s.is_face_only() {
                "采用影响最小的方式（1:1、设备端、提供其他方式）/ the least intrusive set-up is used (1:1, on device, alternatives offered)"
            } else {
                "须说明未采用1:1或设备端存储的理由 / the reasons for not using 1:1 or on-device storage must be documented"
            }
        )),
        Block::H(2, "二、对个人权益的影响及降低不利影响的措施是否有效 / 2. Impact on individuals' rights and whether the mitigations work".into()),
        Block::P(format!(
            "影响 / effect: {}",
            s.notice
                .as_ref()
                .and_then(|n| n.effect_on_rights.as_ref())
                .map(both)
                .unwrap_or_default()
        )),
        Block::List(rules_lines(s)),
        Block::H(2, "三、人脸信息泄露、篡改、丢失、毁损或者被非法获取、出售、使用的风险及可能造成的危害 / 3. Risks of leakage, tampering, loss, destruction or illegal acquisition, sale or use, and the harm that could follow".into()),
        Block::Table(
            vec!["指标 / figure".into(), "值 / value".into()],
            vec![
                vec!["存储人数（去重）/ distinct persons stored".into(), inp.headcount.to_string()],
                vec!["设备数 / devices".into(), s.devices.len().to_string()],
                vec!["公共场所设备 / public-area devices".into(), public.to_string()],
                vec!["风险等级 / risk level".into(), level.to_string()],
            ],
        ),
        Block::P("人脸信息不可更改，一旦泄露可能被用于冒用身份、伪造活体或追踪行踪，且无法像密码一样重置。/ Face information cannot be changed: once leaked it can be used to impersonate, to spoof liveness or to track people, and cannot be reset like a password.".into()),
    ];
    if !s.devices.is_empty() {
        b.push(Block::Table(
            vec![
                "设备 / device".into(),
                "位置类型 / placement".into(),
                "启用 / active".into(),
                "位置 / location".into(),
                "标识证明 / signage".into(),
            ],
            device_rows(s),
        ));
    }
    if !inp.incidents.is_empty() {
        b.push(Block::P(
            "自上次评估以来的重大安全事件 / major incidents since the last assessment:".into(),
        ));
        b.push(Block::List(inp.incidents.clone()));
    }
    b.push(Block::H(2, "四、所采取的保护措施是否合法、有效并与风险程度相适应 / 4. Are the protections lawful, effective and in proportion to the risk".into()));
    b.push(Block::List(if inp.security_measures.is_empty() {
        vec!["（未提供）/ (none given)".into()]
    } else {
        inp.security_measures.clone()
    }));
    b.push(Block::P(if gaps.is_empty() {
        "第十四条（R20）规定的五项措施均已具备 / all five Art. 14 (R20) measures are in place."
            .into()
    } else {
        format!(
            "缺少第十四条（R20）规定的措施 / missing Art. 14 (R20) measures: {}",
            gaps.join("；")
        )
    }));
    {
        // Liveness level (R20, issue 15): what guards against photo and
        // screen attacks, and per device what it comes to.
        let (en, zh) = crate::liveness::explain_liveness(s);
        b.push(Block::P(format!(
            "活体检测（防照片、屏幕翻拍攻击）/ liveness (against photo and screen attacks): {} / {}",
            zh, en
        )));
        let rows: Vec<Vec<String>> = s
            .devices
            .iter()
            .map(|d| {
                let level = crate::liveness::required_liveness(s, Some(d));
                vec![
                    d.id.clone(),
                    level.key().to_string(),
                    d.certified_pad()
                        .map(|p| format!("{} ({})", p.model, p.certificate))
                        .unwrap_or_else(|| "—".into()),
                ]
            })
            .collect();
        if !rows.is_empty() {
            b.push(Block::Table(
                vec![
                    "设备 / device".into(),
                    "活体检测等级 / liveness level".into(),
                    "活体传感器证书 / PAD sensor certificate".into(),
                ],
                rows,
            ));
        }
    }
    b.push(Block::P("本报告与处理记录至少保存3年（R14）。处理目的或方式变更、发生重大安全事件时须重新评估（R13）。/ Keep this report and the processing records at least 3 years (R14). Re-assess when purpose or method changes or after a major incident (R13).".into()));
    let (markdown, html) = render(&b, &title);
    let sha256 = hex::encode(Sha256::digest(markdown.as_bytes()));
    PiaReport {
        id: inp.report_id.clone(),
        scenario: s.id.clone(),
        assessed_on: inp.assessed_on,
        fingerprint: s.pia_fingerprint(),
        sha256,
        gaps,
        markdown,
        html,
    }
}

/// Inputs to the filing pack beyond the manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingPackInputs {
    /// Distinct persons with stored face information across all scenarios.
    pub headcount: u64,
    /// The date the 100,000 threshold was reached, if it was.
    pub threshold_reached_on: Option<NaiveDate>,
    /// Security measures in place.
    pub security_measures: Vec<String>,
    /// Operating procedures beyond what the manifests say (free text).
    pub procedures: Vec<String>,
}

/// The filing pack: one document with the five Art. 15 contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingPack {
    /// Markdown.
    pub markdown: String,
    /// HTML.
    pub html: String,
    /// Last day to file, when the threshold date is known.
    pub deadline: Option<crate::filing::Deadline>,
}

/// Builds the filing pack for the processor's `scenarios` (one processor;
/// the first scenario's processor block is used) with their PIA reports.
pub fn filing_pack(
    scenarios: &[Scenario],
    inp: &FilingPackInputs,
    pias: &[PiaReport],
) -> FilingPack {
    let p = scenarios
        .first()
        .map(|s| s.processor.clone())
        .unwrap_or_default();
    let deadline = inp
        .threshold_reached_on
        .map(|d| filing_deadline(d, FilingKind::Initial));
    let title = format!(
        "人脸识别技术应用备案材料 / Face recognition filing pack — {}",
        both(&p.name)
    );
    let mut b = vec![Block::H(1, title.clone())];
    if let Some(d) = &deadline {
        b.push(Block::P(format!(
            "达到10万人之日 / threshold reached: {}；备案截止 / file by: {}{}",
            d.trigger,
            d.last_day,
            if d.provisional {
                "（暂定：节假日安排未公布 / provisional: holiday schedule not yet published）"
            } else {
                ""
            }
        )));
    }
    b.push(Block::H(
        2,
        "一、个人信息处理者基本情况 / 1. Basic information about the processor".into(),
    ));
    b.push(Block::Table(
        vec!["项目 / item".into(), "内容 / value".into()],
        vec![
            vec!["名称 / name".into(), both(&p.name)],
            vec![
                "统一社会信用代码 / credit code".into(),
                p.credit_code.clone(),
            ],
            vec!["所在地 / province".into(), p.province.clone()],
            vec!["联系方式 / contact".into(), p.contact.clone()],
        ],
    ));
    b.push(Block::H(
        2,
        "二、人脸信息的处理目的和处理方式 / 2. Purpose and method of processing".into(),
    ));
    for s in scenarios {
        b.push(Block::H(3, format!("{} ({})", both(&s.name), s.id)));
        b.push(Block::P(format!("目的 / purpose: {}", both(&s.purpose))));
        b.push(Block::P(format!(
            "必要性 / necessity: {}",
            both(&s.necessity)
        )));
        b.push(Block::List(method_lines(s)));
    }
    b.push(Block::H(
        2,
        "三、存储数量和安全保护措施 / 3. Number stored and security measures".into(),
    ));
    b.push(Block::P(format!(
        "存储人脸信息的自然人数量（跨全部场景去重）/ distinct persons with stored face information, all scenarios: {}",
        inp.headcount
    )));
    b.push(Block::List(if inp.security_measures.is_empty() {
        vec!["（未提供）/ (none given)".into()]
    } else {
        inp.security_measures.clone()
    }));
    let gaps = art14_gaps(&inp.security_measures);
    if !gaps.is_empty() {
        b.push(Block::P(format!(
            "缺少第十四条（R20）规定的措施 / missing Art. 14 (R20) measures: {}",
            gaps.join("；")
        )));
    }
    b.push(Block::H(
        2,
        "四、人脸信息处理规则和操作规程 / 4. Processing rules and operating procedures".into(),
    ));
    for s in scenarios {
        b.push(Block::H(3, format!("{} ({})", both(&s.name), s.id)));
        b.push(Block::List(rules_lines(s)));
        if !s.devices.is_empty() {
            b.push(Block::Table(
                vec![
                    "设备 / device".into(),
                    "位置类型 / placement".into(),
                    "启用 / active".into(),
                    "位置 / location".into(),
                    "标识证明 / signage".into(),
                ],
                device_rows(s),
            ));
        }
    }
    if !inp.procedures.is_empty() {
        b.push(Block::List(inp.procedures.clone()));
    }
    b.push(Block::H(
        2,
        "五、个人信息保护影响评估报告 / 5. PIA report".into(),
    ));
    if pias.is_empty() {
        b.push(Block::P(
            "（未附影响评估报告 / no PIA report attached）".into(),
        ));
    }
    let (mut md, mut html) = render(&b, &title);
    html = html.replace("</body>\n</html>\n", "");
    for r in pias {
        md += &format!("<!-- PIA {} sha256 {} -->\n\n", r.id, r.sha256);
        // Demote the report's headings so they sit under "五、".
        for line in r.markdown.lines() {
            if line.starts_with('#') {
                md += "##";
            }
            md += line;
            md += "\n";
        }
        let body = r
            .html
            .split("<body>")
            .nth(1)
            .and_then(|x| x.split("</body>").next())
            .unwrap_or("")
            .replace("<h2>", "<h4>")
            .replace("</h2>", "</h4>")
            .replace("<h1>", "<h3>")
            .replace("</h1>", "</h3>");
        html += &format!(
            "<section class=\"pia\" data-id=\"{}\">\n{body}</section>\n",
            esc(&r.id)
        );
    }
    html += "</body>\n</html>\n";
    FilingPack {
        markdown: md,
        html,
        deadline,
    }
}
