//! The scenario manifest: a TOML file that declares one scenario (purpose,
//! necessity, methods, retention, storage, minors, notice, devices) of one
//! processor. [`Scenario`] is the parsed, plain value; `crate::lint` checks it
//! against the Measures with line/column positions.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A text in Chinese (required) and English (optional).
///
/// In TOML: `purpose = { zh = "…", en = "…" }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// zh-CN text (required by R4: plain language for people in China).
    #[serde(default)]
    pub zh: String,
    /// English text, optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl Text {
    /// A text with both languages.
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Text {
        Text {
            zh: zh.into(),
            en: Some(en.into()),
        }
    }
    /// The text in `lang`; English falls back to Chinese when absent.
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh => &self.zh,
            Lang::En => self
                .en
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or(&self.zh),
        }
    }
    /// True when the Chinese text is empty or blank.
    pub fn is_blank(&self) -> bool {
        self.zh.trim().is_empty()
    }
}

/// Output language of notices, reports and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// Simplified Chinese (zh-CN), the primary language.
    Zh,
    /// English.
    En,
}

/// A way a person can prove who they are in a scenario. `Face` is one of
/// them; every other one is an alternative (R15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Face recognition.
    Face,
    /// Access card / key fob.
    Card,
    /// Personal PIN.
    Pin,
    /// QR code (e.g. a visitor pass in an app).
    QrCode,
    /// Identity document checked by a reader or by staff.
    IdDocument,
    /// A member of staff checks the person.
    StaffedCheck,
    /// National network identity authentication (国家网络身份认证, R16).
    NationalNetworkId,
}

impl Method {
    /// All methods.
    pub const ALL: [Method; 7] = [
        Method::Face,
        Method::Card,
        Method::Pin,
        Method::QrCode,
        Method::IdDocument,
        Method::StaffedCheck,
        Method::NationalNetworkId,
    ];
    /// True for face recognition.
    pub fn is_face(self) -> bool {
        self == Method::Face
    }
    /// The manifest spelling (`qr_code`, …).
    pub fn key(self) -> &'static str {
        match self {
            Method::Face => "face",
            Method::Card => "card",
            Method::Pin => "pin",
            Method::QrCode => "qr_code",
            Method::IdDocument => "id_document",
            Method::StaffedCheck => "staffed_check",
            Method::NationalNetworkId => "national_network_id",
        }
    }
    /// Plain name in `lang`.
    pub fn name(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Method::Face, Lang::Zh) => "人脸识别",
            (Method::Card, Lang::Zh) => "门禁卡",
            (Method::Pin, Lang::Zh) => "个人密码",
            (Method::QrCode, Lang::Zh) => "二维码",
            (Method::IdDocument, Lang::Zh) => "身份证件",
            (Method::StaffedCheck, Lang::Zh) => "人工核验",
            (Method::NationalNetworkId, Lang::Zh) => "国家网络身份认证（网号、网证）",
            (Method::Face, Lang::En) => "face recognition",
            (Method::Card, Lang::En) => "access card",
            (Method::Pin, Lang::En) => "PIN",
            (Method::QrCode, Lang::En) => "QR code",
            (Method::IdDocument, Lang::En) => "identity document",
            (Method::StaffedCheck, Lang::En) => "check by staff",
            (Method::NationalNetworkId, Lang::En) => "national network identity",
        }
    }
}

/// Recognition mode (the capability allow-list of R2/R3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 1:1 verification of personal identity (验证个人身份): enrol + verify.
    Verification,
    /// 1:N identification of a specific individual (辨识特定个人): enrol +
    /// verify + identify. Needs a written justification (R3).
    Identification,
}

/// Legal basis for processing face information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// The person's separate consent (R7).
    Consent,
    /// A law or administrative regulation; `legal_basis_citation` required.
    Law,
}

/// Where templates are stored (R11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageLocation {
    /// In the face recognition device that captured them (default, R11).
    Device,
    /// On a central server: leaves the device, so each person needs a
    /// transmission consent.
    Central,
}

/// Where a device is installed (R18, R19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// A public place (lobby, street, station): needs necessity, capture
    /// zone and signage before it may be active (R18).
    PublicArea,
    /// Not a public place (a residential compound gate, an office turnstile).
    NonPublic,
    /// Hotel guest room: forbidden (R19).
    HotelRoom,
    /// Public bath: forbidden (R19).
    Bathhouse,
    /// Public changing room: forbidden (R19).
    ChangingRoom,
    /// Public toilet: forbidden (R19).
    Toilet,
    /// Shower room: forbidden (R19).
    ShowerRoom,
    /// Fitting room in a shop: forbidden (R19).
    FittingRoom,
    /// Nursing / lactation room: forbidden (R19).
    LactationRoom,
    /// Dormitory bedroom: forbidden (R19).
    DormitoryRoom,
}

impl Placement {
    /// Every placement, in declaration order.
    pub const ALL: [Placement; 10] = [
        Placement::PublicArea,
        Placement::NonPublic,
        Placement::HotelRoom,
        Placement::Bathhouse,
        Placement::ChangingRoom,
        Placement::Toilet,
        Placement::ShowerRoom,
        Placement::FittingRoom,
        Placement::LactationRoom,
        Placement::DormitoryRoom,
    ];
    /// Private spaces within public places, where devices are banned with
    /// no override (R19).
    pub fn is_forbidden(self) -> bool {
        !matches!(self, Placement::PublicArea | Placement::NonPublic)
    }
    /// The manifest spelling.
    pub fn key(self) -> &'static str {
        match self {
            Placement::PublicArea => "public_area",
            Placement::NonPublic => "non_public",
            Placement::HotelRoom => "hotel_room",
            Placement::Bathhouse => "bathhouse",
            Placement::ChangingRoom => "changing_room",
            Placement::Toilet => "toilet",
            Placement::ShowerRoom => "shower_room",
            Placement::FittingRoom => "fitting_room",
            Placement::LactationRoom => "lactation_room",
            Placement::DormitoryRoom => "dormitory_room",
        }
    }
    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Placement::PublicArea => "公共场所",
            Placement::NonPublic => "非公共场所",
            Placement::HotelRoom => "宾馆客房",
            Placement::Bathhouse => "公共浴室",
            Placement::ChangingRoom => "公共更衣室",
            Placement::Toilet => "公共卫生间",
            Placement::ShowerRoom => "淋浴间",
            Placement::FittingRoom => "试衣间",
            Placement::LactationRoom => "母婴室",
            Placement::DormitoryRoom => "宿舍卧室",
        }
    }
}

/// The personal information processor (个人信息处理者).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Processor {
    /// Legal name.
    #[serde(default)]
    pub name: Text,
    /// Contact (phone, e-mail, address) for people and regulators.
    #[serde(default)]
    pub contact: String,
    /// Unified social credit code (统一社会信用代码), 18 characters.
    #[serde(default)]
    pub credit_code: String,
    /// Province where the processor is located (filing goes to its CAC).
    #[serde(default)]
    pub province: String,
    /// Legal representative (法定代表人), named in the filing pack and the PIA.
    #[serde(default)]
    pub legal_representative: String,
    /// The person in charge of personal information protection
    /// (个人信息保护负责人), named in the filing pack and the PIA.
    #[serde(default)]
    pub pi_officer: String,
    /// How to reach the person in charge of personal information.
    #[serde(default)]
    pub pi_officer_contact: String,
}

/// Storage rules (R11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Where templates live.
    pub location: StorageLocation,
    /// Whether templates may leave the device (only per person with a
    /// transmission consent).
    #[serde(default)]
    pub transmit_templates: bool,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            location: StorageLocation::Device,
            transmit_templates: false,
        }
    }
}

/// Retention rules (R12, R14).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days a template is kept after enrolment; `0` means it is discarded
    /// right after the match (no enrolment kept). Required.
    pub template_days: Option<u32>,
    /// Days without use after which a template is deleted (inactive subjects).
    pub inactive_days: Option<u32>,
    /// Days processing records (audit log) are kept: at least 1,095 (R14).
    pub log_days: Option<u32>,
    /// Whether face images may be kept (needs the person's separate
    /// image-retention consent). Default false.
    #[serde(default)]
    pub keep_images: bool,
    /// Days kept images live, required when `keep_images`.
    pub image_days: Option<u32>,
}

/// Rules for minors (R10).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Minors {
    /// Whether people under 14 may use face recognition in this scenario.
    #[serde(default)]
    pub allowed: bool,
    /// Must be true when `allowed`: a guardian's consent record is needed.
    #[serde(default)]
    pub guardian_consent_required: bool,
    /// Shorter template retention for minors (days).
    pub template_days: Option<u32>,
    /// Whether minors' templates may leave the device (should be false).
    #[serde(default)]
    pub transmit: bool,
    /// Whether minors' templates may join a 1:N identification gallery
    /// (default false: in an identification scenario they are used for 1:1
    /// verification only).
    #[serde(default)]
    pub identification: bool,
    /// The dedicated processing rules for minors' face information.
    pub rules: Option<Text>,
}

/// Accessibility provisions (R6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accessibility {
    /// Screens carry screen-reader labels.
    #[serde(default)]
    pub screen_reader_labels: bool,
    /// Large text / high contrast mode.
    #[serde(default)]
    pub large_text: bool,
    /// Audio prompts.
    #[serde(default)]
    pub audio_prompts: bool,
    /// Liveness has a non-visual, non-motor option (or routes to the
    /// alternative).
    #[serde(default)]
    pub non_visual_liveness: bool,
    /// Other provisions in words.
    pub notes: Option<Text>,
}

/// Notice items that cannot be derived from the rest of the manifest
/// (R4 / Art. 5 ¶1 items 3 and 4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticeTexts {
    /// How the processing affects the person's rights and interests.
    pub effect_on_rights: Option<Text>,
    /// How to exercise statutory rights (access, copy, correct, delete).
    pub rights: Option<Text>,
    /// How to withdraw consent (one step, same channel).
    pub withdrawal: Option<Text>,
    /// Anything else a law requires to be told.
    pub other: Option<Text>,
}

/// A complaint channel shown in the notice (R25, PIPL Art. 50).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintChannel {
    /// Name of the channel.
    pub name: Text,
    /// Phone, address, URL or e-mail.
    pub contact: String,
}

/// A face recognition device of the scenario (R18, R19).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Device id (unique within the scenario).
    pub id: String,
    /// Where it is installed.
    pub placement: Placement,
    /// Whether it is active (may capture). Default true.
    #[serde(default = "yes")]
    pub active: bool,
    /// Public-safety necessity (required for `public_area`).
    pub public_safety_necessity: Option<Text>,
    /// Capture zone: polygon of ≥ 3 points, normalised 0..1 image
    /// coordinates; frames outside are masked (required for `public_area`).
    pub capture_zone: Option<Vec<[f64; 2]>>,
    /// Reference to evidence that prominent signage is posted (photo id,
    /// checklist id; required for `public_area`).
    pub signage_evidence: Option<String>,
    /// Where exactly (free text). Read for private-space terms (R19).
    pub location: Option<Text>,
    /// The device's own certified presentation-attack-detection sensor;
    /// required on every device of a scenario with `liveness = "none"`.
    pub pad_sensor: Option<crate::liveness::PadSensor>,
}

fn yes() -> bool {
    true
}

impl Device {
    /// The private space this device's location text (zh, then en) says it
    /// is in, whatever `placement` declares (R19 by meaning, see
    /// [`crate::private_space()`]).
    pub fn private_space(&self) -> Option<(Lang, crate::PrivateSpaceHit)> {
        let loc = self.location.as_ref()?;
        if let Some(h) = crate::private_space(&loc.zh) {
            return Some((Lang::Zh, h));
        }
        let en = loc.en.as_deref()?;
        crate::private_space(en).map(|h| (Lang::En, h))
    }

    /// Where the device really is: the declared placement, or the private
    /// space its location names when the declared one is not already a
    /// forbidden one (a `public_area` device "inside guest room 1203" is in
    /// a hotel room).
    pub fn effective_placement(&self) -> Placement {
        if self.placement.is_forbidden() {
            return self.placement;
        }
        self.private_space()
            .map(|(_, h)| h.placement)
            .unwrap_or(self.placement)
    }

    /// The facts `authorize` needs about this device. `placement` is the
    /// [`Device::effective_placement`], so a device whose location names a
    /// private space is refused (R19) by every check that reads the facts.
    pub fn facts(&self) -> crate::DeviceFacts {
        self.facts_at(self.effective_placement())
    }

    /// The facts with `placement` as the effective placement.
    pub(crate) fn facts_at(&self, placement: Placement) -> crate::DeviceFacts {
        crate::DeviceFacts {
            id: self.id.clone(),
            placement,
            active: self.active,
            public_safety_necessity: self
                .public_safety_necessity
                .as_ref()
                .is_some_and(|t| !t.is_blank()),
            capture_zone: self.capture_zone.as_ref().is_some_and(|z| zone_ok(z)),
            signage_evidence: self
                .signage_evidence
                .as_ref()
                .is_some_and(|s| !s.trim().is_empty()),
        }
    }
}

pub(crate) fn zone_ok(z: &[[f64; 2]]) -> bool {
    z.len() >= 3
        && z.iter()
            .all(|p| p.iter().all(|v| v.is_finite() && (0.0..=1.0).contains(v)))
}

/// The PIA linked to the scenario (R13).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiaLink {
    /// Report id.
    pub id: String,
    /// Date of the assessment, `YYYY-MM-DD`.
    pub assessed_on: String,
    /// [`Scenario::pia_fingerprint`] at assessment time; a different value
    /// now means purpose or method changed and the PIA is stale.
    pub fingerprint: String,
}

/// Filing facts (R21).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilingInfo {
    /// Filing number (备案编号) once filed.
    pub number: Option<String>,
    /// Expected number of distinct persons (for the 100,000 threshold).
    pub expected_headcount: Option<u64>,
}

/// One scenario of one processor, as declared in a manifest.
///
/// Build one with [`crate::parse_manifest`] (which also lints); the fields
/// are public so stores can persist it (serde) and tests can vary it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Manifest format version (1).
    #[serde(default = "one")]
    pub version: u32,
    /// Scenario id, e.g. `residential-gate`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Text,
    /// Registered purpose id; every processing call carries it (R3).
    #[serde(default)]
    pub purpose_id: String,
    /// The specific purpose in words (R3, notice item 2).
    #[serde(default)]
    pub purpose: Text,
    /// Why face recognition is necessary, and why less intrusive means do
    /// not suffice (R3, notice item 3).
    #[serde(default)]
    pub necessity: Text,
    /// Legal basis.
    #[serde(default = "consent")]
    pub legal_basis: LegalBasis,
    /// The law cited when `legal_basis = "law"`.
    pub legal_basis_citation: Option<String>,
    /// Recognition mode.
    #[serde(default = "verification")]
    pub mode: Mode,
    /// Why 1:N is needed (required with `mode = "identification"`, R3).
    pub identification_justification: Option<Text>,
    /// Methods offered, face and its alternatives (R15).
    #[serde(default)]
    pub methods: Vec<Method>,
    /// State rule that allows face as the only method (国家另有规定).
    pub face_only_exception: Option<String>,
    /// Liveness level of face captures (R20): `active` (default), `passive`,
    /// or `none` where every device has a certified PAD sensor.
    #[serde(default)]
    pub liveness: crate::liveness::LivenessLevel,
    /// Hours after a person declines face during which they are not asked
    /// again (R17; at least 48).
    #[serde(default = "h48")]
    pub quiet_period_hours: u32,
    /// The processor.
    #[serde(default)]
    pub processor: Processor,
    /// Storage (R11).
    #[serde(default)]
    pub storage: Storage,
    /// Retention (R12, R14).
    #[serde(default)]
    pub retention: Retention,
    /// Minors (R10); required.
    pub minors: Option<Minors>,
    /// Accessibility (R6).
    pub accessibility: Option<Accessibility>,
    /// Notice texts (R4).
    pub notice: Option<NoticeTexts>,
    /// Complaint channels (R25).
    #[serde(default)]
    pub complaint_channels: Vec<ComplaintChannel>,
    /// Devices (R18, R19).
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Linked PIA (R13).
    pub pia: Option<PiaLink>,
    /// Filing (R21).
    pub filing: Option<FilingInfo>,
}

fn one() -> u32 {
    1
}
fn consent() -> LegalBasis {
    LegalBasis::Consent
}
fn verification() -> Mode {
    Mode::Verification
}
fn h48() -> u32 {
    48
}

/// Minimum log/PIA retention: 3 years (R14).
pub const MIN_LOG_RETENTION_DAYS: u32 = 1095;

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Scenario {
    /// True when face is among the methods.
    pub fn offers_face(&self) -> bool {
        self.methods.contains(&Method::Face)
    }

    /// Alternatives to face that the scenario offers.
    pub fn alternatives(&self) -> Vec<Method> {
        self.methods
            .iter()
            .copied()
            .filter(|m| !m.is_face())
            .collect()
    }

    /// True when face is offered with no alternative.
    pub fn is_face_only(&self) -> bool {
        self.offers_face() && self.alternatives().is_empty()
    }

    /// The cited state-rule exception for face-only, if any non-blank one.
    pub fn face_only_exception(&self) -> Option<&str> {
        self.face_only_exception
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Template retention in days (`0` = discarded after the match). `None`
    /// when the manifest does not say (lint error R12).
    pub fn template_days(&self) -> Option<u32> {
        self.retention.template_days
    }

    /// Log retention actually applied: the configured value, never below
    /// [`MIN_LOG_RETENTION_DAYS`] (R14).
    pub fn log_retention_days(&self) -> u32 {
        self.retention
            .log_days
            .unwrap_or(MIN_LOG_RETENTION_DAYS)
            .max(MIN_LOG_RETENTION_DAYS)
    }

    /// The device with this id.
    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// Whether under-14s may use face here.
    pub fn minors_allowed(&self) -> bool {
        self.minors.as_ref().is_some_and(|m| m.allowed)
    }

    fn methods_key(&self) -> String {
        let mut m: Vec<&str> = self.methods.iter().map(|m| m.key()).collect();
        m.sort_unstable();
        m.dedup();
        m.join(",")
    }

    /// Fingerprint of what a consent agrees to (R9): purpose, method (mode,
    /// methods, storage, transmission) and data types (images kept or not).
    /// A consent whose `terms` differ from this is no longer valid.
    pub fn consent_terms(&self) -> String {
        let mode = format!("{:?}", self.mode);
        let storage = format!(
            "{:?}/{}",
            self.storage.location, self.storage.transmit_templates
        );
        let images = self.retention.keep_images.to_string();
        let methods = self.methods_key();
        sha256_hex(&[
            "consent-terms/v1",
            &self.id,
            &self.purpose_id,
            &self.purpose.zh,
            &mode,
            &methods,
            &storage,
            &images,
        ])
    }

    /// Fingerprint of purpose and method: a PIA made for another value is
    /// stale (R13).
    pub fn pia_fingerprint(&self) -> String {
        let mode = format!("{:?}", self.mode);
        let storage = format!(
            "{:?}/{}",
            self.storage.location, self.storage.transmit_templates
        );
        let methods = self.methods_key();
        let mut parts = vec![
            "pia/v1",
            &self.purpose_id,
            &self.purpose.zh,
            &self.necessity.zh,
            &mode,
            &methods,
            &storage,
        ];
        // A liveness level other than the default is part of the assessed
        // method (the default adds nothing, so existing PIAs stay current).
        if self.liveness != crate::liveness::LivenessLevel::Active {
            parts.push(self.liveness.key());
        }
        sha256_hex(&parts)
    }

    /// The version (content hash) of the notice this scenario renders.
    pub fn notice_version(&self) -> String {
        crate::notice::render_notice(self, Lang::Zh).version
    }
}
