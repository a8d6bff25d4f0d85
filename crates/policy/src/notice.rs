//! The Art. 5 notice (R4), its version (a content hash) and what changed
//! between two versions (R5), with the material changes that need fresh
//! consent (R9).

use crate::manifest::{Lang, Method, Mode, Scenario, StorageLocation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One item of the notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeItemKey {
    /// Processor name and contact (Art. 5 ¶1 (1)).
    Processor,
    /// Purpose (Art. 5 ¶1 (2)).
    Purpose,
    /// Method: mode, methods, storage, transmission (Art. 5 ¶1 (2)).
    Method,
    /// Retention period (Art. 5 ¶1 (2)).
    Retention,
    /// Why necessary (Art. 5 ¶1 (3)).
    Necessity,
    /// Effect on the person's rights (Art. 5 ¶1 (3)).
    EffectOnRights,
    /// How to exercise statutory rights (Art. 5 ¶1 (4)).
    Rights,
    /// How to withdraw consent (R8).
    Withdrawal,
    /// The alternative to face (R15).
    Alternative,
    /// Rules for minors under 14 (R10).
    Minors,
    /// Complaint channels (R25).
    Complaints,
    /// Filing number, once filed (R21).
    Filing,
    /// Anything else a law requires (Art. 5 ¶1 (5)).
    Other,
}

impl NoticeItemKey {
    /// Item title.
    pub fn title(self, lang: Lang) -> &'static str {
        use NoticeItemKey::*;
        match (self, lang) {
            (Processor, Lang::Zh) => "个人信息处理者及联系方式",
            (Purpose, Lang::Zh) => "处理目的",
            (Method, Lang::Zh) => "处理方式",
            (Retention, Lang::Zh) => "保存期限",
            (Necessity, Lang::Zh) => "处理的必要性",
            (EffectOnRights, Lang::Zh) => "对个人权益的影响",
            (Rights, Lang::Zh) => "如何行使您的权利",
            (Withdrawal, Lang::Zh) => "如何撤回同意",
            (Alternative, Lang::Zh) => "不使用人脸识别的其他方式",
            (Minors, Lang::Zh) => "未成年人",
            (Complaints, Lang::Zh) => "投诉举报渠道",
            (Filing, Lang::Zh) => "备案编号",
            (Other, Lang::Zh) => "其他事项",
            (Processor, Lang::En) => "Who processes your face information, and how to reach them",
            (Purpose, Lang::En) => "Purpose",
            (Method, Lang::En) => "How it is processed",
            (Retention, Lang::En) => "How long it is kept",
            (Necessity, Lang::En) => "Why it is necessary",
            (EffectOnRights, Lang::En) => "Effect on your rights",
            (Rights, Lang::En) => "How to exercise your rights",
            (Withdrawal, Lang::En) => "How to withdraw consent",
            (Alternative, Lang::En) => "Other ways, without face recognition",
            (Minors, Lang::En) => "Children",
            (Complaints, Lang::En) => "Where to complain",
            (Filing, Lang::En) => "Filing number",
            (Other, Lang::En) => "Other",
        }
    }

    /// Items whose change alters purpose, method or data types: fresh
    /// consent is needed (R9). Other changes are shown (R5) but keep
    /// consents valid.
    pub fn is_material(self) -> bool {
        matches!(
            self,
            NoticeItemKey::Purpose | NoticeItemKey::Method | NoticeItemKey::Processor
        )
    }
}

/// One rendered item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeItem {
    /// Which item.
    pub key: NoticeItemKey,
    /// Title in the notice's language.
    pub title: String,
    /// Body in the notice's language.
    pub body: String,
}

/// A rendered notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Content hash (sha256 hex) over every item in both languages: the
    /// same for the zh and en renderings; any change is a new version.
    pub version: String,
    /// Language rendered.
    pub lang: Lang,
    /// Scenario id.
    pub scenario: String,
    /// Items in order.
    pub items: Vec<NoticeItem>,
    /// Plain text.
    pub text: String,
    /// Accessible HTML fragment (headings, lists, `lang` attribute).
    pub html: String,
}

/// An item that differs between two notices (R5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedItem {
    /// Which item.
    pub key: NoticeItemKey,
    /// Title.
    pub title: String,
    /// Old body (None when added).
    pub old: Option<String>,
    /// New body (None when removed).
    pub new: Option<String>,
    /// Needs fresh consent (R9).
    pub material: bool,
}

fn join_methods(methods: &[Method], lang: Lang) -> String {
    let sep = if lang == Lang::Zh { "、" } else { ", " };
    methods
        .iter()
        .map(|m| m.name(lang))
        .collect::<Vec<_>>()
        .join(sep)
}

fn items(s: &Scenario, lang: Lang) -> Vec<(NoticeItemKey, String)> {
    use NoticeItemKey as K;
    let zh = lang == Lang::Zh;
    let mut v = vec![];
    v.push((
        K::Processor,
        format!(
            "{}{}{}",
            s.processor.name.get(lang),
            if zh {
                "；联系方式："
            } else {
                "; contact: "
            },
            s.processor.contact
        ),
    ));
    v.push((K::Purpose, s.purpose.get(lang).to_string()));
    let mode = match (s.mode, zh) {
        (Mode::Verification, true) => "1:1 身份验证（将现场采集的人脸与一份参照信息比对：您本人登记的人脸信息或您所持证件的照片）",
        (Mode::Verification, false) => {
            "1:1 verification (a live capture is compared with one reference: your own enrolled face information or the photo on your document)"
        }
        (Mode::Identification, true) => "1:N 辨识（将现场采集的人脸在限定范围的人脸库中检索）",
        (Mode::Identification, false) => {
            "1:N identification (a live capture is searched in a gallery of limited scope)"
        }
    };
    let storage = match (s.storage.location, s.storage.transmit_templates, zh) {
        (StorageLocation::Device, false, true) => "人脸特征仅存储于采集设备内，不通过互联网对外传输",
        (StorageLocation::Device, false, false) => {
            "face templates are stored only in the capturing device and never sent over the Internet"
        }
        (StorageLocation::Device, true, true) => {
            "人脸特征存储于采集设备内；仅在您另行单独同意后方可传出设备"
        }
        (StorageLocation::Device, true, false) => {
            "face templates are stored in the capturing device; they leave it only with your separate consent"
        }
        (StorageLocation::Central, _, true) => "人脸特征经加密后存储于服务器，传输须取得您的单独同意",
        (StorageLocation::Central, _, false) => {
            "face templates are stored encrypted on a server; sending them there needs your separate consent"
        }
    };
    let images = match (s.retention.keep_images, zh) {
        (false, true) => "现场图像在比对完成后立即删除，不予保存",
        (false, false) => "the captured image is deleted as soon as the match is done",
        (true, true) => "仅在您单独同意后保存人脸图像",
        (true, false) => "face images are kept only with your separate consent",
    };
    v.push((
        K::Method,
        if zh {
            format!("{mode}；{storage}；{images}。")
        } else {
            format!("{mode}; {storage}; {images}.")
        },
    ));
    let days = s.retention.template_days.unwrap_or(0);
    let mut ret = match (days, zh) {
        (0, true) => "人脸特征在本次比对完成后即删除，不予保存".to_string(),
        (0, false) => "Face templates are deleted right after the match".to_string(),
        (d, true) => format!("人脸特征自登记之日起最长保存 {d} 天，到期自动删除"),
        (d, false) => format!(
            "Face templates are kept at most {d} days after enrolment, then deleted automatically"
        ),
    };
    if let Some(i) = s.retention.inactive_days {
        ret += &if zh {
            format!("；连续 {i} 天未使用的提前删除")
        } else {
            format!("; deleted earlier after {i} days without use")
        };
    }
    if let (true, Some(i)) = (s.retention.keep_images, s.retention.image_days) {
        ret += &if zh {
            format!("；经同意保存的图像最长 {i} 天")
        } else {
            format!("; images kept with consent at most {i} days")
        };
    }
    ret += if zh {
        "；处理记录（不含人脸信息）依法至少保存三年。"
    } else {
        "; processing records (without face information) are kept at least three years as the law requires."
    };
    v.push((K::Retention, ret));
    v.push((K::Necessity, s.necessity.get(lang).to_string()));
    let n = s.notice.clone().unwrap_or_default();
    let txt = |t: &Option<crate::manifest::Text>| t.as_ref().map(|t| t.get(lang).to_string());
    v.push((
        K::EffectOnRights,
        txt(&n.effect_on_rights).unwrap_or_default(),
    ));
    v.push((K::Rights, txt(&n.rights).unwrap_or_default()));
    v.push((K::Withdrawal, txt(&n.withdrawal).unwrap_or_default()));
    let alts = s.alternatives();
    let alt = if alts.is_empty() {
        match (s.face_only_exception(), zh) {
            (Some(e), true) => format!("依据国家规定（{e}），本场景仅使用人脸识别"),
            (Some(e), false) => format!("A state rule ({e}) makes face the only method here"),
            (None, true) => "未提供".to_string(),
            (None, false) => "none".to_string(),
        }
    } else if zh {
        format!(
            "您可以不同意人脸识别，改用：{}。选择其他方式不会影响您办理业务的结果，也不会收取额外费用。",
            join_methods(&alts, lang)
        )
    } else {
        format!(
            "You may decline face recognition and use: {}. Choosing another way does not change what you can do and costs nothing extra.",
            join_methods(&alts, lang)
        )
    };
    v.push((K::Alternative, alt));
    if let Some(m) = &s.minors {
        let body = match (m.allowed, zh) {
            (false, true) => "不对不满十四周岁的未成年人使用人脸识别，请使用其他方式。".to_string(),
            (false, false) => {
                "Face recognition is not used for children under 14; they use another way."
                    .to_string()
            }
            (true, _) => {
                let head = if zh {
                    "不满十四周岁的未成年人须经父母或者其他监护人同意。"
                } else {
                    "Children under 14 need the consent of a parent or guardian. "
                };
                format!(
                    "{head}{}",
                    m.rules.as_ref().map(|t| t.get(lang)).unwrap_or_default()
                )
            }
        };
        v.push((K::Minors, body));
    }
    let sep = if zh { "；" } else { "; " };
    let complaints = s
        .complaint_channels
        .iter()
        .map(|c| format!("{}：{}", c.name.get(lang), c.contact))
        .collect::<Vec<_>>()
        .join(sep);
    v.push((K::Complaints, complaints));
    if let Some(num) = s.filing.as_ref().and_then(|f| f.number.as_deref()) {
        v.push((K::Filing, num.to_string()));
    }
    if let Some(o) = txt(&n.other) {
        v.push((K::Other, o));
    }
    v
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The notice's version: sha256 over every item in both languages.
fn version_of(s: &Scenario) -> String {
    let mut h = Sha256::new();
    h.update(b"notice/v1\0");
    h.update(s.id.as_bytes());
    for lang in [Lang::Zh, Lang::En] {
        for (k, body) in items(s, lang) {
            h.update(format!("{k:?}").as_bytes());
            h.update([0]);
            h.update((body.len() as u64).to_le_bytes());
            h.update(body.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// Renders the Art. 5 notice of `scenario` in `lang`, as text and HTML.
pub fn render_notice(scenario: &Scenario, lang: Lang) -> Notice {
    let version = version_of(scenario);
    let items: Vec<NoticeItem> = items(scenario, lang)
        .into_iter()
        .map(|(key, body)| NoticeItem {
            key,
            title: key.title(lang).to_string(),
            body,
        })
        .collect();
    let (head, ver) = match lang {
        Lang::Zh => (
            format!("人脸识别告知书 · {}", scenario.name.get(lang)),
            "版本",
        ),
        Lang::En => (
            format!("Face recognition notice · {}", scenario.name.get(lang)),
            "Version",
        ),
    };
    let mut text = format!("{head}\n{ver}: {}\n\n", &version[..16]);
    for it in &items {
        text += &format!("【{}】\n{}\n\n", it.title, it.body);
    }
    let code = if lang == Lang::Zh { "zh-CN" } else { "en" };
    let mut html = format!(
        "<section class=\"notice\" lang=\"{code}\" data-version=\"{version}\" aria-labelledby=\"notice-title\">\n<h1 id=\"notice-title\">{}</h1>\n<dl>\n",
        html_escape(&head)
    );
    for it in &items {
        html += &format!(
            "<dt>{}</dt>\n<dd>{}</dd>\n",
            html_escape(&it.title),
            html_escape(&it.body)
        );
    }
    html += &format!(
        "</dl>\n<p class=\"notice-version\">{ver}: <code>{}</code></p>\n</section>\n",
        &version[..16]
    );
    Notice {
        version,
        lang,
        scenario: scenario.id.clone(),
        items,
        text: text.trim_end().to_string() + "\n",
        html,
    }
}

/// What changed from `old` to `new` (same language): the part that must be
/// shown to people (R5). Items marked `material` need fresh consent (R9).
pub fn notice_changes(old: &Notice, new: &Notice) -> Vec<ChangedItem> {
    let mut keys: Vec<NoticeItemKey> = old.items.iter().chain(&new.items).map(|i| i.key).collect();
    keys.sort();
    keys.dedup();
    let find = |n: &Notice, k| n.items.iter().find(|i| i.key == k).map(|i| i.body.clone());
    keys.into_iter()
        .filter_map(|k| {
            let (o, n) = (find(old, k), find(new, k));
            (o != n).then(|| ChangedItem {
                key: k,
                title: k.title(new.lang).to_string(),
                old: o,
                new: n,
                material: k.is_material(),
            })
        })
        .collect()
}

/// True when any change needs fresh consent (R9).
pub fn requires_reconsent(changes: &[ChangedItem]) -> bool {
    changes.iter().any(|c| c.material)
}

/// Renders the changes as a short text to show at the next interaction (R5).
pub fn render_changes(changes: &[ChangedItem], lang: Lang) -> String {
    let mut out = String::new();
    let (head, before, after) = match lang {
        Lang::Zh => ("告知事项变更：", "原", "现"),
        Lang::En => ("The notice has changed:", "was", "now"),
    };
    out += head;
    out += "\n";
    for c in changes {
        out += &format!(
            "【{}】\n  {before}: {}\n  {after}: {}\n",
            c.title,
            c.old.as_deref().unwrap_or("—"),
            c.new.as_deref().unwrap_or("—")
        );
    }
    out
}
