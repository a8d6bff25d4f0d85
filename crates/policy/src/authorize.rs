//! Runtime decisions: [`authorize`] says whether one processing step may
//! happen now, and if not, which requirement refuses it.

use crate::manifest::{Device, LegalBasis, Method, Mode, Placement, Scenario, StorageLocation};
use crate::rules::{Refusal, RuleId};
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What is about to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Enrol a person (create a template, or register a credential for a
    /// non-face method).
    Enrol,
    /// 1:1 verification.
    Verify,
    /// 1:N identification.
    Identify,
    /// Send a template/image off the device (R11).
    Transmit,
    /// Keep the face image after the template is made (R12, GB/T 41819).
    KeepImage,
    /// Export face information out of the store (R11).
    Export,
    /// Ask (prompt) the person to use face (R17 quiet period).
    PromptFace,
    /// Infer attributes (emotion, health, ethnicity…) from a face: a
    /// prohibited use, always refused (R2).
    AnalyseAttributes,
    /// Copy production face data into an R&D / training store: refused (R1).
    ExportToResearch,
    /// Withdraw consent: always allowed, at once (R8).
    Withdraw,
    /// Delete the person's face information: always allowed.
    Delete,
}

impl Action {
    /// Actions that process face information when `method` is face (or
    /// always, for transmit/keep image/export).
    fn touches_face(self, method: Method) -> bool {
        match self {
            Action::Enrol | Action::Verify | Action::Identify | Action::PromptFace => {
                method.is_face()
            }
            Action::Transmit | Action::KeepImage | Action::Export => true,
            Action::AnalyseAttributes | Action::ExportToResearch => true,
            Action::Withdraw | Action::Delete => false,
        }
    }
}

/// Kinds of separate consent (R7, R11, R12). Each is given per scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKind {
    /// Face processing in the scenario (R7).
    Processing,
    /// Sending face information off the device (R11).
    Transmission,
    /// Keeping face images (R12).
    ImageRetention,
}

/// Who gave a consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum ConsentGiver {
    /// The person themself.
    #[default]
    Subject,
    /// A parent or other guardian (R10).
    Guardian {
        /// Pseudonymous guardian id.
        guardian_id: String,
        /// Relationship (父母, 其他监护人…).
        relationship: String,
    },
}

/// A consent record (R7): who, what kind, for which scenario, under which
/// notice version and terms, when, how, and its evidence; withdrawn when
/// `withdrawn_at` is set (R8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Kind of consent.
    pub kind: ConsentKind,
    /// Scenario id it was given for.
    pub scenario: String,
    /// Notice version shown when it was given.
    pub notice_version: String,
    /// [`Scenario::consent_terms`] when it was given (R9).
    pub terms: String,
    /// When it was given.
    pub given_at: DateTime<Utc>,
    /// When it was withdrawn, if it was.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// Channel (kiosk, app, counter…).
    pub channel: String,
    /// Evidence reference (signed record id, screenshot hash…).
    pub evidence: String,
    /// Who gave it.
    #[serde(default)]
    pub given_by: ConsentGiver,
}

impl ConsentRecord {
    /// A fresh consent for `scenario` of `kind`, given now by the subject
    /// under the scenario's current notice and terms.
    pub fn given(
        scenario: &Scenario,
        kind: ConsentKind,
        at: DateTime<Utc>,
        channel: &str,
        evidence: &str,
    ) -> ConsentRecord {
        ConsentRecord {
            kind,
            scenario: scenario.id.clone(),
            notice_version: scenario.notice_version(),
            terms: scenario.consent_terms(),
            given_at: at,
            withdrawn_at: None,
            channel: channel.to_string(),
            evidence: evidence.to_string(),
            given_by: ConsentGiver::Subject,
        }
    }

    /// Withdraws the consent at `at` (one step, effective at once, R8). A
    /// second withdrawal keeps the first time.
    pub fn withdraw(&mut self, at: DateTime<Utc>) {
        self.withdrawn_at.get_or_insert(at);
    }

    /// True when given at or before `at` and not withdrawn by `at`.
    pub fn is_active(&self, at: DateTime<Utc>) -> bool {
        self.given_at <= at && self.withdrawn_at.is_none_or(|w| w > at)
    }
}

/// What is known about the person at the time of processing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonFacts {
    /// Date of birth (needed to enrol by face: R10).
    pub date_of_birth: Option<NaiveDate>,
    /// Consents the person (or for minors, a guardian) has given.
    pub consents: Vec<ConsentRecord>,
    /// Guardian's consent for a person under 14 (R10); its `given_by` must
    /// be [`ConsentGiver::Guardian`].
    pub guardian_consent: Option<ConsentRecord>,
    /// When the person last declined face (R17 quiet period).
    pub last_face_refusal_at: Option<DateTime<Utc>>,
    /// When the person explicitly opted back in to face after declining
    /// (a recorded act, e.g. tapping "use face after all", or giving consent
    /// again): lifts the quiet period of any earlier decline (R17).
    #[serde(default)]
    pub face_opt_in_at: Option<DateTime<Utc>>,
}

impl PersonFacts {
    /// The end of the R17 quiet period in force at `at`, if any: a decline
    /// less than `quiet_period_hours` (at least 48) ago that no later
    /// explicit opt-in (at or before `at`) has lifted.
    pub fn face_quiet_until(
        &self,
        scenario: &Scenario,
        at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let t = self.last_face_refusal_at.filter(|t| *t <= at)?;
        if self.face_opt_in_at.is_some_and(|o| o >= t && o <= at) {
            return None;
        }
        let until = t + Duration::hours(i64::from(scenario.quiet_period_hours.max(48)));
        (at < until).then_some(until)
    }
}

/// What is known about the device doing the processing (R18, R19).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFacts {
    /// Device id.
    pub id: String,
    /// Placement.
    pub placement: Placement,
    /// Whether it is marked active.
    pub active: bool,
    /// A public-safety necessity is recorded.
    pub public_safety_necessity: bool,
    /// A valid capture zone is set.
    pub capture_zone: bool,
    /// Signage evidence is recorded.
    pub signage_evidence: bool,
}

/// State of the PIA linked to the scenario (R13); see
/// [`crate::pia::pia_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiaStatus {
    /// Linked and made for the current purpose and method.
    Current,
    /// Purpose or method changed, or a major incident happened since: new
    /// enrolment is blocked until renewed.
    Stale,
    /// No PIA linked: the scenario cannot be enabled.
    Missing,
}

/// One processing step about to happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processing {
    /// What.
    pub action: Action,
    /// By which method.
    pub method: Method,
    /// Purpose id the call carries; must be the scenario's (R3).
    pub purpose_id: String,
    /// To whom.
    pub person: PersonFacts,
    /// Where (None for server-side steps such as export).
    pub device: Option<DeviceFacts>,
    /// When.
    pub at: DateTime<Utc>,
    /// The latest notice version shown to and acknowledged by the person
    /// (R4, R5); None when none was shown.
    pub notice_version: Option<String>,
    /// PIA state (R13).
    pub pia: PiaStatus,
}

/// A "yes": what was checked and what follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permit {
    /// Scenario id.
    pub scenario: String,
    /// Action allowed.
    pub action: Action,
    /// Method used.
    pub method: Method,
    /// What the person reaches (the scenario's purpose id): the same for
    /// face and for every alternative (R15, R17).
    pub grants: String,
    /// Requirements that were checked for this decision.
    pub checked: Vec<RuleId>,
    /// The person is under 14 (minors' rules apply).
    pub minor: bool,
    /// For a face enrolment: when the template must be deleted (R12).
    pub template_expires_at: Option<DateTime<Utc>>,
    /// The image must be discarded after the template/match (true unless
    /// the action is an allowed `KeepImage`).
    pub discard_image: bool,
}

/// China Standard Time (no DST since 1991).
pub fn china_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// The calendar date in Asia/Shanghai of an instant.
pub fn shanghai_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&china_offset()).date_naive()
}

/// Age in whole years (周岁) on `on` for someone born on `dob`.
///
/// The birthday is reached on the same month and day; a person born on
/// 29 February turns a year older on 1 March in common years (and on 29
/// February in leap years). Returns 0 for dates before the birth.
pub fn age_on(dob: NaiveDate, on: NaiveDate) -> u32 {
    if on < dob {
        return 0;
    }
    let mut years = on.year() - dob.year();
    if (on.month(), on.day()) < (dob.month(), dob.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// Age below which a guardian's consent is needed (R10).
pub const GUARDIAN_AGE: u32 = 14;

/// True when the person is under 14 on the Shanghai date of `at`.
pub fn is_under_14(dob: NaiveDate, at: DateTime<Utc>) -> bool {
    age_on(dob, shanghai_date(at)) < GUARDIAN_AGE
}

fn refuse(rule: RuleId, en: impl Into<String>, zh: impl Into<String>) -> Result<(), Refusal> {
    Err(Refusal::new(rule, en, zh))
}

/// Checks a device may capture (R18, R19). Forbidden placements are refused
/// whatever else is recorded: there is no override.
pub fn check_device(device: &DeviceFacts) -> Result<(), Refusal> {
    if device.placement.is_forbidden() {
        return refuse(
            RuleId::R19,
            format!(
                "device {} is in a private space ({}); face recognition devices are banned there with no exception",
                device.id,
                device.placement.key()
            ),
            format!(
                "设备 {} 位于私密空间（{}），禁止安装人脸识别设备，不得例外",
                device.id,
                device.placement.name_zh()
            ),
        );
    }
    if device.placement == Placement::PublicArea {
        let mut missing_en = vec![];
        let mut missing_zh = vec![];
        if !device.public_safety_necessity {
            missing_en.push("public-safety necessity");
            missing_zh.push("维护公共安全所必需的说明");
        }
        if !device.capture_zone {
            missing_en.push("capture zone");
            missing_zh.push("采集区域");
        }
        if !device.signage_evidence {
            missing_en.push("signage evidence");
            missing_zh.push("显著提示标识的证明");
        }
        if !missing_en.is_empty() {
            return refuse(
                RuleId::R18,
                format!(
                    "public-area device {} lacks {}; it may not capture",
                    device.id,
                    missing_en.join(", ")
                ),
                format!(
                    "公共场所设备 {} 缺少{}，不得采集",
                    device.id,
                    missing_zh.join("、")
                ),
            );
        }
    }
    if !device.active {
        return refuse(
            RuleId::R2,
            format!("device {} is not active", device.id),
            format!("设备 {} 未启用", device.id),
        );
    }
    Ok(())
}

/// Checks a device as declared in the manifest: its location text must not
/// name a private space (R19, whatever `placement` says, no override), then
/// [`check_device`] on its facts.
pub fn check_device_declaration(device: &Device) -> Result<(), Refusal> {
    if device.placement.is_forbidden() {
        return check_device(&device.facts_at(device.placement));
    }
    if let Some((_, hit)) = device.private_space() {
        return refuse(
            RuleId::R19,
            format!(
                "device {} is declared {} but its location says it is in a private space ({}); face recognition devices are banned there with no exception",
                device.id,
                device.placement.key(),
                hit.term_en()
            ),
            format!(
                "设备 {} 申报为{}，但其安装位置表明位于私密空间（“{}”，{}），禁止安装人脸识别设备，不得例外",
                device.id,
                device.placement.name_zh(),
                hit.term,
                hit.placement.name_zh()
            ),
        );
    }
    // No private space in the location: the declared placement stands.
    check_device(&device.facts_at(device.placement))
}

/// Checks the scenario itself may run face recognition (the invariants the
/// linter enforces, re-checked at run time so a hand-built [`Scenario`]
/// cannot slip through).
pub fn check_scenario(scenario: &Scenario) -> Result<(), Refusal> {
    if scenario.purpose_id.trim() == "rnd_training" {
        return refuse(
            RuleId::R1,
            "a production scenario may not carry the rnd_training purpose",
            "生产场景不得使用研发、算法训练目的标签（rnd_training）",
        );
    }
    if scenario.purpose_id.trim().is_empty()
        || scenario.purpose.is_blank()
        || scenario.necessity.is_blank()
    {
        return refuse(
            RuleId::R3,
            "the scenario has no registered purpose and necessity statement",
            "场景未登记处理目的和必要性说明",
        );
    }
    if scenario.is_face_only() && scenario.face_only_exception().is_none() {
        return refuse(
            RuleId::R15,
            "face is the only method and no state-rule exception is cited; offer an alternative",
            "人脸识别是唯一验证方式且未援引国家规定的例外，须提供其他方式",
        );
    }
    if scenario.template_days().is_none() {
        return refuse(
            RuleId::R12,
            "the scenario sets no template retention period",
            "场景未设定人脸信息保存期限",
        );
    }
    Ok(())
}

/// Decides whether `p` may happen in `scenario` now.
///
/// Checks, in order: R8 (withdraw/delete always allowed), R1/R2 (prohibited
/// uses), R3 (purpose registered; 1:N only when declared), R2 (method
/// offered), then for face steps: scenario invariants (R1, R3, R12, R15),
/// R17 (quiet period), R18/R19 (device, its location text included), R13
/// (PIA), R10 (age, guardian; a guardian's withdrawal is R8), R7/R8/R9
/// (consent present, not withdrawn, current), and only then R4/R5 (notice
/// shown): a person who withdrew is told R8 whatever notice version the
/// request carries. Then R11 (transmission), R12 (image retention).
///
/// The liveness level is not part of this decision (it needs the capture):
/// the caller checks it with [`crate::check_liveness`].
///
/// Non-face methods need no face consent: declining face never blocks the
/// alternative, and the permit's `grants` is the same either way.
///
/// This renders the scenario's notice to learn its version; a caller that
/// decides many steps for one scenario should compute
/// [`Scenario::notice_version`] once and call [`authorize_with_notice`].
pub fn authorize(scenario: &Scenario, p: &Processing) -> Result<Permit, Refusal> {
    authorize_with_notice(scenario, &scenario.notice_version(), p)
}

/// [`authorize`] with the scenario's current notice version already known
/// (`current_notice` must be [`Scenario::notice_version`] of `scenario`,
/// e.g. computed once when the scenario is deployed): rendering the notice in
/// both languages to hash it is most of a decision's work, and the notice
/// only changes with the manifest.
pub fn authorize_with_notice(
    scenario: &Scenario,
    current_notice: &str,
    p: &Processing,
) -> Result<Permit, Refusal> {
    debug_assert_eq!(
        current_notice,
        scenario.notice_version(),
        "authorize_with_notice was given another scenario's notice version"
    );
    decide(scenario, current_notice, p, false)
}

/// 1:N under consent (issue 11): may an identification probe of a person
/// not yet known run at all? Checks everything that does not depend on who
/// the person is: prohibited uses, purpose and mode (R1–R3), method, the
/// scenario's invariants (R12, R15), the device (R18, R19) and the PIA (R13).
/// The person's consent is *not* asked for here, because the person in front
/// of the camera is unknown until the search is done.
///
/// The search then runs over the consenting gallery only, and each match
/// must pass [`authorize`] with [`Action::Identify`] and the matched
/// person's facts (their consent's notice version as `notice_version`): a
/// refusal there (no active consent, withdrawn, a minor outside the 1:N
/// rules, a recent decline) is answered `unknown`, and nothing about the
/// probe is kept.
pub fn authorize_identification_probe(
    scenario: &Scenario,
    p: &Processing,
) -> Result<Permit, Refusal> {
    if p.action != Action::Identify || !p.method.is_face() {
        return Err(Refusal::new(
            RuleId::R3,
            "an identification probe is a 1:N face search; use authorize for other steps",
            "辨识探测仅适用于1:N人脸检索，其他处理请逐项授权",
        ));
    }
    decide(scenario, "", p, true)
}

fn decide(
    scenario: &Scenario,
    current_notice: &str,
    p: &Processing,
    probe: bool,
) -> Result<Permit, Refusal> {
    let mut checked = vec![];
    let permit = |checked: Vec<RuleId>, minor: bool, expires: Option<DateTime<Utc>>| Permit {
        scenario: scenario.id.clone(),
        action: p.action,
        method: p.method,
        grants: scenario.purpose_id.clone(),
        checked,
        minor,
        template_expires_at: expires,
        discard_image: p.action != Action::KeepImage,
    };

    if matches!(p.action, Action::Withdraw | Action::Delete) {
        return Ok(permit(vec![RuleId::R8], false, None));
    }
    if p.action == Action::ExportToResearch {
        refuse(
            RuleId::R1,
            "production face information may not be copied into an R&D or training store",
            "不得将生产环境的人脸信息复制到研发或算法训练存储",
        )?;
    }
    if p.action == Action::AnalyseAttributes {
        refuse(
            RuleId::R2,
            "inferring attributes (emotion, health, ethnicity…) from faces is a prohibited use",
            "禁止利用人脸信息推断情绪、健康、民族等特征",
        )?;
    }
    checked.push(RuleId::R2);

    if p.purpose_id != scenario.purpose_id {
        refuse(
            RuleId::R3,
            format!(
                "purpose '{}' is not registered for scenario {} (registered: '{}')",
                p.purpose_id, scenario.id, scenario.purpose_id
            ),
            format!(
                "处理目的“{}”未在场景 {} 登记（已登记：“{}”）",
                p.purpose_id, scenario.id, scenario.purpose_id
            ),
        )?;
    }
    if p.action == Action::Identify && scenario.mode != Mode::Identification {
        refuse(
            RuleId::R3,
            "1:N identification is not registered for this scenario (1:1 verification only)",
            "本场景仅登记了1:1验证，不得进行1:N辨识",
        )?;
    }
    checked.push(RuleId::R3);

    let face = p.action.touches_face(p.method);
    if matches!(
        p.action,
        Action::Enrol | Action::Verify | Action::Identify | Action::PromptFace
    ) && !scenario.methods.contains(&p.method)
    {
        refuse(
            RuleId::R2,
            format!("method {} is not offered in this scenario", p.method.key()),
            format!("本场景未提供“{}”方式", p.method.name(crate::Lang::Zh)),
        )?;
    }
    if !face {
        // An alternative credential: no face information is processed, so
        // no face consent, notice ack or PIA is needed; declining face has
        // no effect on this path (R15, R17).
        checked.extend([RuleId::R15, RuleId::R17]);
        return Ok(permit(checked, false, None));
    }

    check_scenario(scenario)?;
    checked.extend([RuleId::R1, RuleId::R12, RuleId::R15]);

    if p.action == Action::PromptFace {
        check_quiet_period(scenario, p)?;
        checked.push(RuleId::R17);
        return Ok(permit(checked, false, None));
    }

    if let Some(d) = &p.device {
        check_device(d)?;
        if let Some(decl) = scenario.device(&d.id) {
            // The manifest's own record of the device must agree, location
            // text included (R19 by meaning).
            check_device_declaration(decl)?;
        }
        checked.extend([RuleId::R18, RuleId::R19]);
    } else if matches!(p.action, Action::Enrol | Action::Verify | Action::Identify) {
        refuse(
            RuleId::R18,
            "face capture needs a registered device (placement unknown)",
            "人脸采集须在已登记的设备上进行（安装位置未知）",
        )?;
    }

    match p.pia {
        PiaStatus::Missing => refuse(
            RuleId::R13,
            "no impact assessment (PIA) is linked to this scenario; it cannot process faces",
            "本场景未完成个人信息保护影响评估，不得处理人脸信息",
        )?,
        PiaStatus::Stale if p.action == Action::Enrol => refuse(
            RuleId::R13,
            "the impact assessment is stale (purpose or method changed, or a major incident); renew it before new enrolments",
            "处理目的或方式已变更或发生重大安全事件，影响评估已失效，重新评估前不得新增采集",
        )?,
        _ => {}
    }
    checked.push(RuleId::R13);
    if probe {
        // Who it is is not known yet: consent, decline and notice are
        // checked per match (see `authorize_identification_probe`).
        return Ok(permit(checked, false, None));
    }

    // Consent before notice: a person who withdrew (or never consented) is
    // told so (R7/R8/R10), whatever notice version the request carries.
    let minor = check_person(scenario, p)?;
    checked.extend([RuleId::R7, RuleId::R8, RuleId::R9, RuleId::R10]);

    // R17 on the server: a face attempt for a person who declined face is
    // refused for the quiet period unless they explicitly opted back in.
    if matches!(p.action, Action::Enrol | Action::Verify | Action::Identify) {
        check_quiet_period(scenario, p)?;
        checked.push(RuleId::R17);
    }

    match &p.notice_version {
        None => refuse(
            RuleId::R4,
            "the notice has not been shown and acknowledged",
            "尚未向个人告知并取得确认",
        )?,
        Some(v) if *v != current_notice => refuse(
            RuleId::R5,
            "the notice has changed since the person last saw it; show the changed part first",
            "告知事项已变更，须先向个人告知变更部分",
        )?,
        _ => {}
    }
    checked.extend([RuleId::R4, RuleId::R5]);

    let leaves_device = matches!(p.action, Action::Transmit | Action::Export)
        || (p.action == Action::Enrol && scenario.storage.location == StorageLocation::Central);
    if leaves_device {
        if !scenario.storage.transmit_templates {
            refuse(
                RuleId::R11,
                "this scenario does not allow face information to leave the device",
                "本场景不允许人脸信息传出设备",
            )?;
        }
        if minor {
            let ok = p
                .person
                .consents
                .iter()
                .chain(&p.person.guardian_consent)
                .any(|c| {
                    c.kind == ConsentKind::Transmission
                        && c.scenario == scenario.id
                        && c.is_active(p.at)
                });
            if !ok {
                refuse(
                    RuleId::R11,
                    "no separate transmission consent: face information stays on the device",
                    "未取得传输的单独同意，人脸信息不得传出设备",
                )?;
            }
        } else {
            check_consent(scenario, p, ConsentKind::Transmission)?;
        }
        checked.push(RuleId::R11);
    }

    if p.action == Action::KeepImage {
        if !scenario.retention.keep_images {
            refuse(
                RuleId::R12,
                "this scenario does not keep face images; discard the image after the match",
                "本场景不保存人脸图像，比对完成后须删除图像",
            )?;
        }
        check_consent(scenario, p, ConsentKind::ImageRetention)?;
    }

    let expires = if p.action == Action::Enrol {
        Some(crate::retention::template_expiry(
            scenario, p.at, None, minor,
        ))
    } else {
        None
    };
    Ok(permit(checked, minor, expires))
}

fn check_quiet_period(scenario: &Scenario, p: &Processing) -> Result<(), Refusal> {
    let Some(until) = p.person.face_quiet_until(scenario, p.at) else {
        return Ok(());
    };
    let t = p.person.last_face_refusal_at.unwrap_or(p.at);
    let (ts, us) = (
        shanghai_date(t).to_string(),
        until
            .with_timezone(&china_offset())
            .format("%Y-%m-%d %H:%M"),
    );
    refuse(
        RuleId::R17,
        format!(
            "the person declined face on {ts}; face is not used or asked for again before {us} (Beijing time) unless they opt back in; offer the alternative"
        ),
        format!("该人员已于 {ts} 拒绝人脸识别，{us}（北京时间）前不得再次使用或要求人脸识别，除非本人明确重新选择；请提供其他方式"),
    )
}

/// The person-level checks of a face step: age and guardian (R10), separate
/// consent present, not withdrawn and for the current terms (R7, R8, R9),
/// and the minors' transmission rule. Returns whether the person is under
/// 14. Runs before the notice check in [`authorize`].
fn check_person(scenario: &Scenario, p: &Processing) -> Result<bool, Refusal> {
    let minor = match p.person.date_of_birth {
        Some(dob) => is_under_14(dob, p.at),
        None if p.action == Action::Enrol => {
            return Err(Refusal::new(
                RuleId::R10,
                "date of birth is needed before face enrolment (to apply the under-14 rules)",
                "人脸采集前须登记出生日期（以适用不满十四周岁的规则）",
            ));
        }
        None => false,
    };
    if minor {
        let Some(rules) = scenario.minors.as_ref().filter(|m| m.allowed) else {
            return Err(Refusal::new(
                RuleId::R10,
                "this scenario does not use face recognition for people under 14; use the alternative",
                "本场景不对不满十四周岁的未成年人使用人脸识别，请使用其他方式",
            ));
        };
        let g = p
            .person
            .guardian_consent
            .as_ref()
            .filter(|g| matches!(g.given_by, ConsentGiver::Guardian { .. }));
        match g {
            None => refuse(
                RuleId::R10,
                "the person is under 14: a parent's or guardian's consent is required",
                "该人员不满十四周岁，须取得父母或者其他监护人的同意",
            )?,
            Some(g) if g.scenario != scenario.id || g.kind != ConsentKind::Processing => refuse(
                RuleId::R10,
                "the guardian's consent is for another scenario or purpose; a parent's or guardian's consent for this one is required",
                "监护人同意属于其他场景或其他目的，须取得父母或者其他监护人对本场景的同意",
            )?,
            Some(g) if g.given_at > p.at => refuse(
                RuleId::R10,
                "the guardian's consent is not yet given at this time",
                "此时尚未取得监护人同意",
            )?,
            Some(g) if !g.is_active(p.at) => refuse(
                RuleId::R8,
                "the guardian withdrew consent; face processing stopped at once",
                "监护人已撤回同意，人脸信息处理已立即停止",
            )?,
            Some(g) if g.terms != scenario.consent_terms() => refuse(
                RuleId::R9,
                "purpose or method changed since the guardian consented; fresh consent is needed",
                "处理目的或方式已变更，须重新取得监护人同意",
            )?,
            _ => {}
        }
        if p.action == Action::Identify && !rules.identification {
            refuse(
                RuleId::R10,
                "minors' face information is not used for 1:N identification in this scenario (1:1 verification only)",
                "本场景不对未成年人的人脸信息进行1:N辨识，仅用于1:1验证",
            )?;
        }
        if matches!(p.action, Action::Transmit | Action::Export) && !rules.transmit {
            refuse(
                RuleId::R10,
                "minors' face information may not leave the device in this scenario",
                "本场景未成年人的人脸信息不得传出设备",
            )?;
        }
    } else if scenario.legal_basis == LegalBasis::Consent {
        check_consent(scenario, p, ConsentKind::Processing)?;
    }
    Ok(minor)
}

fn check_consent(scenario: &Scenario, p: &Processing, kind: ConsentKind) -> Result<(), Refusal> {
    let (rule, what_en, what_zh) = match kind {
        ConsentKind::Processing => (RuleId::R7, "face processing", "人脸信息处理"),
        ConsentKind::Transmission => (RuleId::R11, "transmission off the device", "传出设备"),
        ConsentKind::ImageRetention => (RuleId::R12, "keeping face images", "保存人脸图像"),
    };
    let mine: Vec<&ConsentRecord> = p
        .person
        .consents
        .iter()
        .filter(|c| c.kind == kind && c.scenario == scenario.id && c.given_at <= p.at)
        .collect();
    if mine.is_empty() {
        return refuse(
            rule,
            format!(
                "no separate consent for {what_en} in scenario {}",
                scenario.id
            ),
            format!("未取得场景 {} 中{what_zh}的单独同意", scenario.id),
        );
    }
    let active: Vec<&&ConsentRecord> = mine.iter().filter(|c| c.is_active(p.at)).collect();
    if active.is_empty() {
        return refuse(
            RuleId::R8,
            format!("consent for {what_en} was withdrawn; processing stopped at once"),
            format!("{what_zh}的同意已撤回，处理已立即停止"),
        );
    }
    let terms = scenario.consent_terms();
    if !active.iter().any(|c| c.terms == terms) {
        return refuse(
            RuleId::R9,
            "purpose, method or data types changed since the consent; fresh consent is needed",
            "处理目的、方式或数据种类已变更，须重新取得同意",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn ages_around_birthdays() {
        assert_eq!(age_on(d("2010-06-15"), d("2024-06-14")), 13);
        assert_eq!(age_on(d("2010-06-15"), d("2024-06-15")), 14);
        assert_eq!(age_on(d("2012-02-29"), d("2026-02-28")), 13);
        assert_eq!(age_on(d("2012-02-29"), d("2026-03-01")), 14);
        assert_eq!(age_on(d("2012-02-29"), d("2028-02-29")), 16);
        assert_eq!(age_on(d("2012-02-29"), d("2010-01-01")), 0);
    }

    #[test]
    fn shanghai_date_is_utc_plus_8() {
        let at: DateTime<Utc> = "2025-06-14T16:30:00Z".parse().unwrap();
        assert_eq!(shanghai_date(at), d("2025-06-15"));
    }
}
