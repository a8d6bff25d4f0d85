//! The manifest linter: parses a scenario manifest and checks it against the
//! Measures, producing rustc-style diagnostics (file:line:col, a caret under
//! the value, the requirement ID and article, a fix hint) in Chinese and
//! English, or JSON.

use crate::manifest::{
    zone_ok, Lang, LegalBasis, Mode, Placement, Scenario, StorageLocation, Text,
    MIN_LOG_RETENTION_DAYS,
};
use crate::rules::RuleId;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Explains a choice the manifest made (e.g. its liveness level);
    /// nothing to fix.
    Note,
    /// Should be fixed; the manifest is still accepted.
    Warning,
    /// The manifest is rejected.
    Error,
}

/// One finding of the linter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The requirement (None for TOML syntax / schema errors).
    pub rule: Option<RuleId>,
    /// Its article, e.g. `"Art. 10"`.
    pub article: Option<String>,
    /// The same article in Chinese, e.g. `"第十条"`, so a finding names its
    /// article in the reader's language.
    #[serde(default)]
    pub article_zh: Option<String>,
    /// Key path the finding is about (`devices[1].placement`).
    pub path: String,
    /// What is wrong, English.
    pub message_en: String,
    /// What is wrong, Chinese.
    pub message_zh: String,
    /// How to fix it, English.
    pub hint_en: String,
    /// How to fix it, Chinese.
    pub hint_zh: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// Byte range in the source.
    pub span: Range<usize>,
}

impl Diagnostic {
    /// `"R15"` or `"E0001"` for schema/syntax errors.
    pub fn code(&self) -> String {
        self.rule
            .map(|r| r.to_string())
            .unwrap_or_else(|| "E0001".to_string())
    }
}

/// The linter's result for one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LintReport {
    /// File name as given.
    pub file: String,
    /// Findings, in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// The parsed scenario when the TOML parsed (even with rule errors).
    #[serde(skip)]
    pub scenario: Option<Scenario>,
}

impl LintReport {
    /// True when any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Number of errors and warnings (notes are not counted).
    pub fn counts(&self) -> (usize, usize) {
        let n = |sev| {
            self.diagnostics
                .iter()
                .filter(|d| d.severity == sev)
                .count()
        };
        (n(Severity::Error), n(Severity::Warning))
    }

    /// Number of notes (explanations, nothing to fix).
    pub fn notes(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Note)
            .count()
    }

    /// Findings of one rule.
    pub fn of_rule(&self, rule: RuleId) -> Vec<&Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.rule == Some(rule))
            .collect()
    }

    /// JSON for machines: `{file, errors, warnings, diagnostics:[…]}`.
    pub fn to_json(&self) -> serde_json::Value {
        let (e, w) = self.counts();
        serde_json::json!({
            "file": self.file,
            "errors": e,
            "warnings": w,
            "notes": self.notes(),
            "diagnostics": self.diagnostics,
        })
    }

    /// Renders rustc-style, with the source lines and carets.
    pub fn render(&self, src: &str) -> String {
        let lines: Vec<&str> = src.lines().collect();
        let mut out = String::new();
        for d in &self.diagnostics {
            let sev = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "note",
            };
            out += &format!("{sev}[{}]: {}\n", d.code(), d.message_en);
            out += &format!("  {}\n", d.message_zh);
            let num = d.line.to_string();
            let pad = " ".repeat(num.len());
            out += &format!("{pad}--> {}:{}:{}\n", self.file, d.line, d.col);
            out += &format!("{pad} |\n");
            let text = lines.get(d.line.saturating_sub(1)).copied().unwrap_or("");
            out += &format!("{num} | {text}\n");
            let before: String = text.chars().take(d.col.saturating_sub(1)).collect();
            let line_start = line_start_offset(src, d.line);
            let span_end = d.span.end.min(line_start + text.len()).max(d.span.start);
            let under = src
                .get(d.span.start.min(src.len())..span_end.min(src.len()))
                .unwrap_or("");
            let carets = "^".repeat(display_width(under).max(1));
            let label = match (d.rule, &d.article) {
                (Some(r), Some(a)) => format!(" {r} / {a} ({})", r.article_zh()),
                _ => String::new(),
            };
            out += &format!(
                "{pad} | {}{carets}{label}\n",
                " ".repeat(display_width(&before))
            );
            out += &format!("{pad} |\n");
            if !d.hint_en.is_empty() {
                out += &format!("{pad} = help: {}\n", d.hint_en);
                out += &format!("{pad} = 提示: {}\n", d.hint_zh);
            }
            out += "\n";
        }
        let (e, w) = self.counts();
        out += &format!(
            "{}: {e} error(s), {w} warning(s) / {e} 个错误，{w} 个警告\n",
            self.file
        );
        out
    }
}

fn line_start_offset(src: &str, line: usize) -> usize {
    src.split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum()
}

/// Terminal columns of `s`: East Asian wide characters take two.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let u = c as u32;
            if (0x1100..=0x115F).contains(&u)
                || (0x2E80..=0xA4CF).contains(&u)
                || (0xAC00..=0xD7A3).contains(&u)
                || (0xF900..=0xFAFF).contains(&u)
                || (0xFE30..=0xFE4F).contains(&u)
                || (0xFF00..=0xFF60).contains(&u)
                || (0xFFE0..=0xFFE6).contains(&u)
                || u >= 0x20000
            {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Byte offset → (1-based line, 1-based char column).
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Positions of keys and table headers in a TOML source, by key path
/// (`retention`, `retention.log_days`, `devices.1.placement`).
#[derive(Debug, Default)]
struct Locator {
    spans: HashMap<String, Range<usize>>,
}

impl Locator {
    fn new(src: &str) -> Locator {
        let mut spans = HashMap::new();
        let mut prefix = String::new();
        let mut counters: HashMap<String, usize> = HashMap::new();
        let mut depth: i32 = 0;
        let mut in_ml = false;
        let mut offset = 0;
        for raw in src.split_inclusive('\n') {
            let start = offset;
            offset += raw.len();
            let line = raw.trim_end_matches(['\n', '\r']);
            if in_ml {
                if line.matches("\"\"\"").count() % 2 == 1 {
                    in_ml = false;
                }
                continue;
            }
            if depth > 0 {
                depth += bracket_delta(line);
                continue;
            }
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix("[[") {
                let name = rest.split("]]").next().unwrap_or("").trim().to_string();
                let c = counters.entry(name.clone()).or_insert(0);
                prefix = format!("{name}.{c}");
                *c += 1;
                let end = start + indent + trimmed.find("]]").map(|i| i + 2).unwrap_or(0);
                spans.insert(prefix.clone(), start + indent..end);
                continue;
            }
            if let Some(rest) = trimmed.strip_prefix('[') {
                prefix = rest.split(']').next().unwrap_or("").trim().to_string();
                let end = start + indent + trimmed.find(']').map(|i| i + 1).unwrap_or(0);
                spans.insert(prefix.clone(), start + indent..end);
                continue;
            }
            if let Some(eq) = find_eq(trimmed) {
                let key = trimmed[..eq].trim().trim_matches('"');
                let after = &trimmed[eq + 1..];
                let vtrim = after.trim_start();
                let vstart = start + indent + eq + 1 + (after.len() - vtrim.len());
                let value = strip_comment(vtrim).trim_end();
                let path = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                spans.insert(path, vstart..vstart + value.len());
                if value.matches("\"\"\"").count() % 2 == 1 {
                    in_ml = true;
                }
                depth += bracket_delta(value);
            }
        }
        Locator { spans }
    }

    fn get(&self, path: &str) -> Option<Range<usize>> {
        self.spans.get(path).cloned()
    }
}

fn find_eq(s: &str) -> Option<usize> {
    let mut in_str = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '=' if !in_str => return Some(i),
            _ => {}
        }
    }
    None
}

/// Removes a trailing `# comment` outside strings.
fn strip_comment(s: &str) -> &str {
    let mut in_str: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match (in_str, c) {
            (None, '"' | '\'') => in_str = Some(c),
            (Some(q), _) if c == q && prev != '\\' => in_str = None,
            (None, '#') => return &s[..i],
            _ => {}
        }
        prev = c;
    }
    s
}

fn bracket_delta(s: &str) -> i32 {
    let s = strip_comment(s);
    let mut d = 0;
    let mut in_str: Option<char> = None;
    let mut prev = ' ';
    for c in s.chars() {
        match (in_str, c) {
            (None, '"' | '\'') => in_str = Some(c),
            (Some(q), _) if c == q && prev != '\\' => in_str = None,
            (None, '[' | '{') => d += 1,
            (None, ']' | '}') => d -= 1,
            _ => {}
        }
        prev = c;
    }
    d
}

struct Ctx<'a> {
    src: &'a str,
    loc: Locator,
    out: Vec<Diagnostic>,
}

/// One message in both languages plus a hint in both.
struct Msg<'a> {
    en: &'a str,
    zh: &'a str,
    hint_en: &'a str,
    hint_zh: &'a str,
}

impl Ctx<'_> {
    /// Adds a finding located at the first of `paths` that exists in the
    /// source (falling back to the scenario `id`, then 1:1).
    fn push(&mut self, sev: Severity, rule: RuleId, paths: &[&str], m: Msg<'_>) {
        let (path, span) = paths
            .iter()
            .chain(["id"].iter())
            .find_map(|p| self.loc.get(p).map(|s| (p.to_string(), s)))
            .unwrap_or_else(|| (paths.first().copied().unwrap_or("").to_string(), 0..0));
        let (line, col) = line_col(self.src, span.start);
        self.out.push(Diagnostic {
            severity: sev,
            rule: Some(rule),
            article: Some(rule.article().to_string()),
            article_zh: Some(rule.article_zh().to_string()),
            path: display_path(paths.first().copied().unwrap_or(&path)),
            message_en: m.en.to_string(),
            message_zh: m.zh.to_string(),
            hint_en: m.hint_en.to_string(),
            hint_zh: m.hint_zh.to_string(),
            line,
            col,
            span,
        });
    }
    /// Adds an error at an exact byte range of the source.
    fn error_at(&mut self, rule: RuleId, path: &str, span: Range<usize>, m: Msg<'_>) {
        let (line, col) = line_col(self.src, span.start);
        self.out.push(Diagnostic {
            severity: Severity::Error,
            rule: Some(rule),
            article: Some(rule.article().to_string()),
            article_zh: Some(rule.article_zh().to_string()),
            path: display_path(path),
            message_en: m.en.to_string(),
            message_zh: m.zh.to_string(),
            hint_en: m.hint_en.to_string(),
            hint_zh: m.hint_zh.to_string(),
            line,
            col,
            span,
        });
    }
    fn error(&mut self, rule: RuleId, paths: &[&str], m: Msg<'_>) {
        self.push(Severity::Error, rule, paths, m)
    }
    fn warn(&mut self, rule: RuleId, paths: &[&str], m: Msg<'_>) {
        self.push(Severity::Warning, rule, paths, m)
    }
    fn note(&mut self, rule: RuleId, paths: &[&str], m: Msg<'_>) {
        self.push(Severity::Note, rule, paths, m)
    }
}

/// `devices.1.placement` → `devices[1].placement`.
fn display_path(p: &str) -> String {
    let mut out = String::new();
    for (i, part) in p.split('.').enumerate() {
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out += &format!("[{part}]");
        } else {
            if i > 0 {
                out.push('.');
            }
            out += part;
        }
    }
    out
}

fn blank(t: &Option<Text>) -> bool {
    t.as_ref().is_none_or(Text::is_blank)
}

/// Phrases that tell people face is compulsory (R17 copy rule).
const COERCIVE: &[&str] = &[
    "必须刷脸",
    "必须使用人脸",
    "必须进行人脸",
    "只能刷脸",
    "只能使用人脸",
    "仅支持刷脸",
    "仅支持人脸",
    "强制刷脸",
    "不刷脸不能",
    "face is required",
    "face is mandatory",
    "must use face",
    "face recognition is required",
    "face recognition is mandatory",
    "only face",
];

/// Lints a manifest source. `file_name` is used in messages only.
pub fn lint(src: &str, file_name: &str) -> LintReport {
    let scenario = match toml::from_str::<Scenario>(src) {
        Ok(s) => s,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let (line, col) = line_col(src, span.start);
            let msg = e.message().to_string();
            return LintReport {
                file: file_name.to_string(),
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    rule: None,
                    article: None,
                    article_zh: None,
                    path: String::new(),
                    message_en: format!("invalid manifest: {msg}"),
                    message_zh: format!("清单格式错误：{msg}"),
                    hint_en: "see `facegate init` for a complete, commented manifest".into(),
                    hint_zh: "可运行 `facegate init` 生成带注释的完整清单作为参考".into(),
                    line,
                    col,
                    span,
                }],
                scenario: None,
            };
        }
    };
    let mut cx = Ctx {
        src,
        loc: Locator::new(src),
        out: vec![],
    };
    check(&scenario, &mut cx);
    let mut diagnostics = cx.out;
    diagnostics.sort_by_key(|d| (d.line, d.col, std::cmp::Reverse(d.severity)));
    LintReport {
        file: file_name.to_string(),
        diagnostics,
        scenario: Some(scenario),
    }
}

/// Lints a [`Scenario`] value (no source positions: every finding is at 1:1).
pub fn lint_scenario(s: &Scenario) -> Vec<Diagnostic> {
    let mut cx = Ctx {
        src: "",
        loc: Locator::default(),
        out: vec![],
    };
    check(s, &mut cx);
    cx.out
}

fn check(s: &Scenario, cx: &mut Ctx<'_>) {
    use RuleId::*;
    if s.version != 1 {
        cx.error(
            R2,
            &["version"],
            Msg {
                en: "unknown manifest version",
                zh: "未知的清单版本",
                hint_en: "set version = 1",
                hint_zh: "请设置 version = 1",
            },
        );
    }
    if s.id.trim().is_empty() {
        cx.error(
            R3,
            &["id"],
            Msg {
                en: "the scenario has no id",
                zh: "场景缺少标识（id）",
                hint_en: "give the scenario a short id such as \"residential-gate\"",
                hint_zh: "请填写简短的场景标识，例如 \"residential-gate\"",
            },
        );
    }
    // R1
    if s.purpose_id.trim() == "rnd_training" {
        cx.error(R1, &["purpose_id"], Msg {
            en: "a production scenario may not carry the rnd_training purpose",
            zh: "生产场景不得使用研发、算法训练目的（rnd_training）",
            hint_en: "keep R&D and training data in a separate store; use a production purpose id here",
            hint_zh: "研发、训练数据须另行存储；此处请使用生产用途的目的标识",
        });
    }
    // R3
    if s.purpose_id.trim().is_empty() {
        cx.error(
            R3,
            &["purpose_id"],
            Msg {
                en: "no registered purpose id",
                zh: "未登记处理目的标识（purpose_id）",
                hint_en: "set purpose_id; every processing call must carry it",
                hint_zh: "请设置 purpose_id，每次处理调用均须携带该标识",
            },
        );
    }
    if s.purpose.is_blank() {
        cx.error(R3, &["purpose"], Msg {
            en: "the specific purpose is not stated",
            zh: "未说明特定的处理目的",
            hint_en: "purpose = { zh = \"…\", en = \"…\" }: say exactly what face recognition is for",
            hint_zh: "purpose = { zh = \"…\", en = \"…\" }：具体说明人脸识别用于何种目的",
        });
    }
    if s.necessity.is_blank() {
        cx.error(R3, &["necessity"], Msg {
            en: "no necessity statement (why face, and why less intrusive means do not suffice)",
            zh: "缺少必要性说明（为何需要人脸识别，为何其他影响更小的方式不足以实现目的）",
            hint_en: "necessity = { zh = \"…\", en = \"…\" }",
            hint_zh: "请填写 necessity = { zh = \"…\", en = \"…\" }",
        });
    }
    if s.mode == Mode::Identification && blank(&s.identification_justification) {
        cx.error(R3, &["mode"], Msg {
            en: "1:N identification without a written justification; 1:1 verification has less impact",
            zh: "未说明采用1:N辨识的理由；1:1验证对个人权益影响更小",
            hint_en: "use mode = \"verification\", or add identification_justification = { zh = \"…\" }",
            hint_zh: "改为 mode = \"verification\"，或补充 identification_justification = { zh = \"…\" }",
        });
    }
    if s.storage.location == StorageLocation::Central {
        cx.warn(
            R3,
            &["storage.location", "storage"],
            Msg {
                en: "central storage: on-device matching has less impact on people",
                zh: "集中存储：在设备端比对对个人权益影响更小",
                hint_en: "prefer location = \"device\"",
                hint_zh: "建议使用 location = \"device\"",
            },
        );
        if !s.storage.transmit_templates {
            cx.error(R11, &["storage.location", "storage"], Msg {
                en: "central storage sends templates off the device, but transmit_templates = false",
                zh: "集中存储需将人脸特征传出设备，但 transmit_templates = false",
                hint_en: "store on the device, or set transmit_templates = true and collect each person's separate transmission consent",
                hint_zh: "改为设备端存储，或设置 transmit_templates = true 并逐人取得传输的单独同意",
            });
        }
    }
    // R7
    if s.legal_basis == LegalBasis::Law
        && s.legal_basis_citation
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
    {
        cx.error(R7, &["legal_basis"], Msg {
            en: "legal basis \"law\" without a citation; otherwise separate consent is required",
            zh: "法律依据为“法律规定”但未援引具体条文；否则须取得单独同意",
            hint_en: "add legal_basis_citation = \"…\" or use legal_basis = \"consent\"",
            hint_zh: "补充 legal_basis_citation = \"…\"，或使用 legal_basis = \"consent\"",
        });
    }
    // R15
    if s.methods.is_empty() {
        cx.error(
            R15,
            &["methods"],
            Msg {
                en: "no methods declared",
                zh: "未声明任何验证方式",
                hint_en: "methods = [\"face\", \"card\", \"staffed_check\"]",
                hint_zh: "例如 methods = [\"face\", \"card\", \"staffed_check\"]",
            },
        );
    } else if s.is_face_only() && s.face_only_exception().is_none() {
        cx.error(R15, &["methods"], Msg {
            en: "face is the only method and no state-rule exception is cited",
            zh: "人脸识别是唯一验证方式，且未援引国家规定的例外",
            hint_en: "add an alternative (card, pin, qr_code, id_document, staffed_check, national_network_id), or cite the state rule in face_only_exception",
            hint_zh: "增加其他方式（card、pin、qr_code、id_document、staffed_check、national_network_id），或在 face_only_exception 中援引国家规定",
        });
    }
    let mut seen = HashSet::new();
    if s.methods.iter().any(|m| !seen.insert(*m)) {
        cx.warn(
            R2,
            &["methods"],
            Msg {
                en: "a method is listed twice",
                zh: "验证方式重复",
                hint_en: "list each method once",
                hint_zh: "每种方式只列一次",
            },
        );
    }
    // R17
    if s.quiet_period_hours < 48 {
        cx.error(R17, &["quiet_period_hours"], Msg {
            en: "after someone declines face they must not be asked again so soon (at least 48 hours)",
            zh: "个人拒绝人脸识别后不得频繁再次要求（至少间隔48小时）",
            hint_en: "set quiet_period_hours = 48 or more",
            hint_zh: "请设置 quiet_period_hours = 48 或更长",
        });
    }
    let mut texts: Vec<(&str, &Text)> = vec![("purpose", &s.purpose), ("necessity", &s.necessity)];
    if let Some(n) = &s.notice {
        for (k, t) in [
            ("notice.effect_on_rights", &n.effect_on_rights),
            ("notice.rights", &n.rights),
            ("notice.withdrawal", &n.withdrawal),
            ("notice.other", &n.other),
        ] {
            if let Some(t) = t {
                texts.push((k, t));
            }
        }
    }
    for (path, t) in texts {
        let all = format!("{} {}", t.zh, t.en.as_deref().unwrap_or("")).to_lowercase();
        if let Some(p) = COERCIVE.iter().find(|p| all.contains(&p.to_lowercase())) {
            let en = format!("the text says face is compulsory (\"{p}\"); that misleads people when an alternative exists");
            let zh = format!("文案称必须使用人脸识别（“{p}”），在有其他方式时构成误导");
            cx.error(
                R17,
                &[path],
                Msg {
                    en: &en,
                    zh: &zh,
                    hint_en: "say face is optional and name the alternative",
                    hint_zh: "请说明人脸识别可自愿选择，并写明其他方式",
                },
            );
        }
    }
    // R4
    if s.processor.name.is_blank() {
        cx.error(
            R4,
            &["processor.name", "processor"],
            Msg {
                en: "the notice needs the processor's name",
                zh: "告知事项须包括个人信息处理者的名称",
                hint_en: "[processor] name = { zh = \"…\" }",
                hint_zh: "请填写 [processor] name = { zh = \"…\" }",
            },
        );
    }
    if s.processor.contact.trim().is_empty() {
        cx.error(
            R4,
            &["processor.contact", "processor"],
            Msg {
                en: "the notice needs the processor's contact details",
                zh: "告知事项须包括个人信息处理者的联系方式",
                hint_en: "[processor] contact = \"phone / e-mail / address\"",
                hint_zh: "请填写 [processor] contact = \"电话／邮箱／地址\"",
            },
        );
    }
    let cc = s.processor.credit_code.trim();
    if cc.len() != 18 || !cc.chars().all(|c| c.is_ascii_alphanumeric()) {
        cx.warn(R21, &["processor.credit_code", "processor"], Msg {
            en: "the unified social credit code should be 18 letters/digits (needed for filing)",
            zh: "统一社会信用代码应为18位字母或数字（备案需要）",
            hint_en: "copy it from the business licence",
            hint_zh: "请按营业执照填写",
        });
    }
    if s.processor.legal_representative.trim().is_empty() {
        cx.warn(
            R21,
            &["processor.legal_representative", "processor"],
            Msg {
                en: "the filing pack and the PIA name the processor's legal representative",
                zh: "备案材料和影响评估报告须写明个人信息处理者的法定代表人",
                hint_en: "[processor] legal_representative = \"name\"",
                hint_zh: "请填写 [processor] legal_representative = \"姓名\"",
            },
        );
    }
    if s.processor.pi_officer.trim().is_empty() {
        cx.warn(R21, &["processor.pi_officer", "processor"], Msg {
            en: "the filing pack and the PIA name the person in charge of personal information protection",
            zh: "备案材料和影响评估报告须写明个人信息保护负责人",
            hint_en: "[processor] pi_officer = \"name\", pi_officer_contact = \"phone / e-mail\"",
            hint_zh: "请填写 [processor] pi_officer = \"姓名\"，pi_officer_contact = \"电话／邮箱\"",
        });
    }
    match &s.notice {
        None => cx.error(
            R4,
            &["notice"],
            Msg {
                en: "no [notice] section: the Art. 5 notice items are missing",
                zh: "缺少 [notice] 部分：第五条规定的告知事项不全",
                hint_en: "add [notice] with effect_on_rights, rights and withdrawal",
                hint_zh: "请添加 [notice]，包括 effect_on_rights、rights、withdrawal",
            },
        ),
        Some(n) => {
            for (key, t, en, zh) in [
                (
                    "effect_on_rights",
                    &n.effect_on_rights,
                    "the notice does not say how the processing affects people's rights",
                    "告知事项未说明对个人权益的影响",
                ),
                (
                    "rights",
                    &n.rights,
                    "the notice does not say how to exercise statutory rights",
                    "告知事项未说明个人行使法定权利的方式",
                ),
                (
                    "withdrawal",
                    &n.withdrawal,
                    "the notice does not say how to withdraw consent",
                    "告知事项未说明撤回同意的方式",
                ),
            ] {
                if blank(t) {
                    let path = format!("notice.{key}");
                    let hint_en =
                        format!("add {key} = {{ zh = \"…\", en = \"…\" }} under [notice]");
                    let hint_zh =
                        format!("请在 [notice] 下补充 {key} = {{ zh = \"…\", en = \"…\" }}");
                    cx.error(
                        R4,
                        &[&path, "notice"],
                        Msg {
                            en,
                            zh,
                            hint_en: &hint_en,
                            hint_zh: &hint_zh,
                        },
                    );
                }
            }
        }
    }
    if s.complaint_channels.is_empty()
        || s.complaint_channels
            .iter()
            .any(|c| c.name.is_blank() || c.contact.trim().is_empty())
    {
        cx.error(
            R4,
            &["complaint_channels.0", "notice"],
            Msg {
                en: "the notice needs at least one complete complaint channel",
                zh: "告知事项须至少包含一个完整的投诉举报渠道",
                hint_en: "[[complaint_channels]] name = { zh = \"…\" }, contact = \"…\"",
                hint_zh: "请添加 [[complaint_channels]]，填写 name 与 contact",
            },
        );
    }
    // R6
    match &s.accessibility {
        None => cx.warn(R6, &["accessibility"], Msg {
            en: "no accessibility provisions for disabled and elderly people",
            zh: "未说明面向残疾人、老年人的无障碍措施",
            hint_en: "add [accessibility] (screen_reader_labels, large_text, audio_prompts, non_visual_liveness)",
            hint_zh: "请添加 [accessibility]（screen_reader_labels、large_text、audio_prompts、non_visual_liveness）",
        }),
        Some(a) => {
            if !(a.screen_reader_labels && a.large_text && a.audio_prompts) {
                cx.warn(R6, &["accessibility"], Msg {
                    en: "screen-reader labels, large text and audio prompts should all be on",
                    zh: "应同时提供读屏标签、大字模式和语音提示",
                    hint_en: "set screen_reader_labels, large_text and audio_prompts to true",
                    hint_zh: "请将 screen_reader_labels、large_text、audio_prompts 设为 true",
                });
            }
            if !a.non_visual_liveness {
                cx.warn(R6, &["accessibility.non_visual_liveness", "accessibility"], Msg {
                    en: "liveness needs a non-visual, non-motor option (or a route to the alternative)",
                    zh: "活体检测须提供非视觉、非肢体动作的选项（或转用其他方式）",
                    hint_en: "set non_visual_liveness = true",
                    hint_zh: "请设置 non_visual_liveness = true",
                });
            }
        }
    }
    // R10
    match &s.minors {
        None => cx.error(R10, &["minors"], Msg {
            en: "the manifest does not say whether people under 14 may use face recognition",
            zh: "清单未说明是否对不满十四周岁的未成年人使用人脸识别",
            hint_en: "add [minors] allowed = false (or allowed = true with guardian consent and dedicated rules)",
            hint_zh: "请添加 [minors] allowed = false（或 allowed = true，并要求监护人同意、制定专门规则）",
        }),
        Some(m) if m.allowed => {
            if blank(&m.rules) {
                cx.error(R10, &["minors.allowed", "minors"], Msg {
                    en: "minors are allowed but no dedicated processing rules for their face information are given",
                    zh: "允许未成年人使用，但未制定未成年人人脸信息的专门处理规则",
                    hint_en: "add rules = { zh = \"…\", en = \"…\" } under [minors], or set allowed = false",
                    hint_zh: "请在 [minors] 下补充 rules = { zh = \"…\" }，或设置 allowed = false",
                });
            }
            if !m.guardian_consent_required {
                cx.error(R10, &["minors.guardian_consent_required", "minors.allowed"], Msg {
                    en: "under-14s need a parent's or guardian's consent",
                    zh: "不满十四周岁须取得父母或者其他监护人的同意",
                    hint_en: "set guardian_consent_required = true",
                    hint_zh: "请设置 guardian_consent_required = true",
                });
            }
            if m.identification && s.mode == Mode::Identification {
                cx.warn(R10, &["minors.identification", "minors"], Msg {
                    en: "minors' faces join the 1:N gallery: the dedicated rules for minors should keep them to 1:1 verification unless justified",
                    zh: "未成年人人脸信息纳入1:N辨识库：未成年人专门处理规则原则上应仅限1:1验证，确有必要须说明理由",
                    hint_en: "set identification = false, or explain the need in [minors] rules",
                    hint_zh: "请设置 identification = false，或在 [minors] rules 中说明必要性",
                });
            }
            if m.transmit {
                cx.warn(R10, &["minors.transmit", "minors"], Msg {
                    en: "minors' face information should not leave the device",
                    zh: "未成年人的人脸信息不宜传出设备",
                    hint_en: "set transmit = false",
                    hint_zh: "请设置 transmit = false",
                });
            }
            match (m.template_days, s.retention.template_days) {
                (Some(a), Some(b)) if a > b => cx.warn(R10, &["minors.template_days", "minors"], Msg {
                    en: "minors' templates are kept longer than adults'",
                    zh: "未成年人人脸信息的保存期限长于成年人",
                    hint_en: "use a shorter minors.template_days",
                    hint_zh: "请缩短 minors.template_days",
                }),
                (None, Some(b)) if b > 0 => cx.warn(R10, &["minors"], Msg {
                    en: "no shorter retention for minors",
                    zh: "未为未成年人设定更短的保存期限",
                    hint_en: "set minors.template_days",
                    hint_zh: "请设置 minors.template_days",
                }),
                _ => {}
            }
        }
        Some(_) => {}
    }
    // R12, R14
    match s.retention.template_days {
        None => cx.error(R12, &["retention", "retention.log_days"], Msg {
            en: "no retention period for face templates",
            zh: "未设定人脸信息的保存期限",
            hint_en: "set [retention] template_days (the shortest time the purpose needs; 0 = delete right after the match)",
            hint_zh: "请设置 [retention] template_days（实现目的所需的最短时间；0 表示比对后立即删除）",
        }),
        Some(d) if d > 3650 => cx.warn(R12, &["retention.template_days"], Msg {
            en: "templates are kept more than 10 years: is that the shortest time needed?",
            zh: "人脸信息保存超过10年，是否为实现目的所需的最短时间？",
            hint_en: "shorten template_days, and set inactive_days",
            hint_zh: "请缩短 template_days，并设置 inactive_days",
        }),
        Some(_) => {}
    }
    if s.retention.template_days.is_some_and(|d| d > 0) && s.retention.inactive_days.is_none() {
        cx.warn(R12, &["retention.template_days", "retention"], Msg {
            en: "templates of people who stopped using the service are kept to the end of the period",
            zh: "不再使用服务的人员的人脸信息将保存至期满",
            hint_en: "set inactive_days to delete unused templates earlier",
            hint_zh: "请设置 inactive_days，提前删除长期未使用的人脸信息",
        });
    }
    if s.retention.keep_images && s.retention.image_days.is_none() {
        cx.error(
            R12,
            &["retention.keep_images", "retention"],
            Msg {
                en: "images are kept but no image retention period is set",
                zh: "保存人脸图像但未设定图像保存期限",
                hint_en:
                    "set image_days, or keep_images = false (images are discarded after the match)",
                hint_zh: "请设置 image_days，或设置 keep_images = false（比对后删除图像）",
            },
        );
    }
    match s.retention.log_days {
        None => cx.error(
            R14,
            &["retention", "retention.template_days"],
            Msg {
                en: "no retention period for processing records",
                zh: "未设定处理记录的保存期限",
                hint_en: "set log_days = 1095 (at least 3 years)",
                hint_zh: "请设置 log_days = 1095（至少3年）",
            },
        ),
        Some(d) if d < MIN_LOG_RETENTION_DAYS => cx.error(
            R14,
            &["retention.log_days"],
            Msg {
                en: "processing records must be kept at least 3 years (1,095 days)",
                zh: "处理记录至少保存3年（1095天）",
                hint_en: "set log_days = 1095 or more",
                hint_zh: "请设置 log_days = 1095 或更长",
            },
        ),
        Some(_) => {}
    }
    // R18, R19
    let mut ids = HashSet::new();
    for (i, d) in s.devices.iter().enumerate() {
        let p = |k: &str| format!("devices.{i}.{k}");
        let (pl, hdr) = (p("placement"), format!("devices.{i}"));
        if !ids.insert(d.id.as_str()) || d.id.trim().is_empty() {
            cx.error(
                R2,
                &[&p("id"), &hdr],
                Msg {
                    en: "device ids must be unique and non-empty",
                    zh: "设备标识须唯一且不能为空",
                    hint_en: "give each device its own id",
                    hint_zh: "请为每台设备设置不同的标识",
                },
            );
        }
        if !d.placement.is_forbidden() {
            if let Some((lang, hit)) = d.private_space() {
                let en = format!(
                    "device {} is declared {} but its location says it is in a private space ({}); face recognition devices are banned there, with no override",
                    d.id,
                    d.placement.key(),
                    hit.term_en()
                );
                let zh = format!(
                    "设备 {} 申报为{}，但其安装位置表明位于私密空间（“{}”，{}），私密空间内禁止安装人脸识别设备，不得例外",
                    d.id,
                    d.placement.name_zh(),
                    hit.term,
                    hit.placement.name_zh()
                );
                let (path, span) = location_span(cx, i, lang, &hit.term);
                cx.error_at(
                    R19,
                    &path,
                    span,
                    Msg {
                        en: &en,
                        zh: &zh,
                        hint_en: "remove this device; if it is outside the room, say so in the location (e.g. \"corridor outside the toilets\", \"卫生间外走廊\")",
                        hint_zh: "请拆除并删除该设备；如设备实际位于私密空间之外，请在位置中写明（如“卫生间外走廊”）",
                    },
                );
                continue;
            }
        }
        if d.placement.is_forbidden() {
            let en = format!(
                "a face recognition device may not be installed in a private space ({}); there is no override",
                d.placement.key()
            );
            let zh = format!(
                "私密空间（{}）内禁止安装人脸识别设备，不得例外",
                d.placement.name_zh()
            );
            cx.error(
                R19,
                &[&pl, &hdr],
                Msg {
                    en: &en,
                    zh: &zh,
                    hint_en: "remove this device",
                    hint_zh: "请拆除并删除该设备",
                },
            );
            continue;
        }
        if d.placement == Placement::PublicArea && d.active {
            if blank(&d.public_safety_necessity) {
                cx.error(R18, &[&p("public_safety_necessity"), &pl], Msg {
                    en: "a public-area device needs a public-safety necessity",
                    zh: "公共场所设备须以维护公共安全所必需为前提",
                    hint_en: "add public_safety_necessity = { zh = \"…\" }, or set active = false",
                    hint_zh: "请补充 public_safety_necessity = { zh = \"…\" }，或设置 active = false",
                });
            }
            if !d.capture_zone.as_deref().is_some_and(zone_ok) {
                cx.error(R18, &[&p("capture_zone"), &pl], Msg {
                    en: "a public-area device needs a capture zone (a polygon of ≥ 3 points within 0..1)",
                    zh: "公共场所设备须合理划定采集区域（至少3个点、坐标在0到1之间的多边形）",
                    hint_en: "capture_zone = [[0.2, 0.1], [0.8, 0.1], [0.8, 0.9], [0.2, 0.9]]",
                    hint_zh: "例如 capture_zone = [[0.2, 0.1], [0.8, 0.1], [0.8, 0.9], [0.2, 0.9]]",
                });
            }
            if d.signage_evidence
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
            {
                cx.error(
                    R18,
                    &[&p("signage_evidence"), &pl],
                    Msg {
                        en: "a public-area device needs evidence that prominent signage is posted",
                        zh: "公共场所设备须设置显著提示标识并留存证明",
                        hint_en:
                            "post the sign and record signage_evidence = \"photo or checklist id\"",
                        hint_zh: "请张贴提示标识并填写 signage_evidence = \"照片或检查单编号\"",
                    },
                );
            }
        }
    }
    // R20: liveness level (issue 15).
    if s.offers_face() {
        check_liveness_level(s, cx);
    }
    // R13
    if s.offers_face() {
        match &s.pia {
            None => cx.warn(R13, &["pia", "id"], Msg {
                en: "no impact assessment (PIA) linked: face processing is refused until one is",
                zh: "未关联个人信息保护影响评估：完成评估前不得处理人脸信息",
                hint_en: "run `facegate pia` and add [pia] id, assessed_on, fingerprint",
                hint_zh: "请运行 `facegate pia` 并添加 [pia] id、assessed_on、fingerprint",
            }),
            Some(p) if p.fingerprint != s.pia_fingerprint() => cx.warn(R13, &["pia.fingerprint", "pia"], Msg {
                en: "the purpose or method changed since the impact assessment: it is stale and new enrolment is blocked",
                zh: "处理目的或方式在影响评估后已变更：评估已失效，暂停新增采集",
                hint_en: "renew the PIA (`facegate pia`) and update [pia]",
                hint_zh: "请重新评估（`facegate pia`）并更新 [pia]",
            }),
            Some(_) => {}
        }
    }
    // R21
    if let Some(f) = &s.filing {
        if f.expected_headcount
            .is_some_and(|n| n >= crate::filing::FILING_THRESHOLD)
            && f.number.as_deref().is_none_or(|n| n.trim().is_empty())
        {
            cx.warn(R21, &["filing.expected_headcount", "filing"], Msg {
                en: "100,000 persons or more: file with the provincial CAC within 30 working days of reaching it",
                zh: "存储人脸信息达10万人：须在达到之日起30个工作日内向省级网信部门备案",
                hint_en: "run `facegate filing deadline --reached DATE`, then record filing.number",
                hint_zh: "运行 `facegate filing deadline --reached 日期` 计算期限，备案后填写 filing.number",
            });
        }
    }
}

/// The scenario's liveness level: `none` only where every device has a
/// certified PAD sensor (error otherwise); `passive` is warned about; the
/// choice is always explained (R20 / Art. 14).
fn check_liveness_level(s: &Scenario, cx: &mut Ctx<'_>) {
    use crate::liveness::LivenessLevel;
    use RuleId::R20;
    if s.liveness == LivenessLevel::None {
        if s.devices.is_empty() {
            cx.error(R20, &["liveness"], Msg {
                en: "liveness = \"none\" needs devices that each declare a certified PAD sensor, and this scenario declares no device",
                zh: "liveness = \"none\" 要求每台设备声明经认证的活体检测传感器，但本场景未声明任何设备",
                hint_en: "use liveness = \"active\", or declare the devices with [devices.pad_sensor] model and certificate",
                hint_zh: "请使用 liveness = \"active\"，或声明设备并填写 [devices.pad_sensor] 的 model 与 certificate",
            });
        }
        let mut any_missing = false;
        for (i, d) in s.devices.iter().enumerate() {
            if d.certified_pad().is_none() {
                any_missing = true;
                let en = format!(
                    "liveness = \"none\" but device {} declares no certified PAD sensor: photo and screen attacks would go unchecked there",
                    d.id
                );
                let zh = format!(
                    "liveness = \"none\"，但设备 {} 未声明经认证的活体检测传感器：照片、屏幕翻拍攻击将无人把关",
                    d.id
                );
                let (cert, pad, id, hdr) = (
                    format!("devices.{i}.pad_sensor.certificate"),
                    format!("devices.{i}.pad_sensor"),
                    format!("devices.{i}.id"),
                    format!("devices.{i}"),
                );
                cx.error(
                    R20,
                    &[&cert, &pad, &id, &hdr, "liveness"],
                    Msg {
                        en: &en,
                        zh: &zh,
                        hint_en: "add pad_sensor = { model = \"…\", certificate = \"lab and report number\" } to the device, or use liveness = \"active\"",
                        hint_zh: "请为该设备填写 pad_sensor = { model = \"…\", certificate = \"检测机构及报告编号\" }，或使用 liveness = \"active\"",
                    },
                );
            }
        }
        if any_missing || s.devices.is_empty() {
            return;
        }
    }
    let (en, zh) = crate::liveness::explain_liveness(s);
    let m = |hint_en, hint_zh| Msg {
        en: &en,
        zh: &zh,
        hint_en,
        hint_zh,
    };
    match s.liveness {
        LivenessLevel::Passive => cx.warn(
            R20,
            &["liveness"],
            m(
                "gates should use liveness = \"active\" (server-issued challenge); keep passive only where staff watch every capture",
                "门禁等无人值守场景应使用 liveness = \"active\"（服务器下发动作指令）；仅在工作人员全程在场时使用 passive",
            ),
        ),
        LivenessLevel::Active | LivenessLevel::None => {
            cx.note(R20, &["liveness"], m("", ""))
        }
    }
}

/// Where device `i`'s location term is in the source: the term itself
/// inside the location value when it can be found there, else the whole
/// location value, else the device's placement or header.
fn location_span(cx: &Ctx<'_>, i: usize, lang: Lang, term: &str) -> (String, Range<usize>) {
    let key = match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    };
    for path in [
        format!("devices.{i}.location.{key}"),
        format!("devices.{i}.location"),
    ] {
        let Some(span) = cx.loc.get(&path) else {
            continue;
        };
        let value = cx.src.get(span.clone()).unwrap_or("");
        // In an inline table, start at `en =` for an English hit.
        let from = if path.ends_with(".location") {
            find_key(value, key).unwrap_or(0)
        } else {
            0
        };
        if let Some(at) = value[from..].find(term) {
            let start = span.start + from + at;
            return (path, start..start + term.len());
        }
        return (path, span);
    }
    let path = format!("devices.{i}.placement");
    let span = cx
        .loc
        .get(&path)
        .or_else(|| cx.loc.get(&format!("devices.{i}")))
        .unwrap_or(0..0);
    (path, span)
}

/// Byte offset of `key =` in an inline table's source, outside strings.
fn find_key(table: &str, key: &str) -> Option<usize> {
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in table.char_indices() {
        if c == '"' && prev != '\\' {
            in_str = !in_str;
        } else if !in_str && table[i..].starts_with(key) {
            let rest = table[i + key.len()..].trim_start();
            let before_ok = !prev.is_ascii_alphanumeric() && prev != '_';
            if before_ok && rest.starts_with('=') {
                return Some(i);
            }
        }
        prev = c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locator_finds_keys_headers_and_array_tables() {
        let src = "id = \"x\"\nmethods = [\n  \"face\",\n]\n[retention]\nlog_days = 1095 # c\n[[devices]]\nid = \"a\"\n[[devices]]\nplacement = \"toilet\"\n";
        let l = Locator::new(src);
        assert_eq!(line_col(src, l.get("retention").unwrap().start), (5, 1));
        assert_eq!(&src[l.get("retention.log_days").unwrap()], "1095");
        assert_eq!(
            line_col(src, l.get("devices.1.placement").unwrap().start),
            (10, 13)
        );
        assert_eq!(&src[l.get("devices.1.placement").unwrap()], "\"toilet\"");
        assert!(l.get("devices.0.id").is_some());
    }

    #[test]
    fn wide_chars_take_two_columns() {
        assert_eq!(display_width("ab人脸"), 6);
    }
}
