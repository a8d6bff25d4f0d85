//! What the server runs: the scenario(s) from their manifests, registered in
//! the store with their notice, PIA and devices, and the in-memory gallery of
//! each scenario built from its sealed templates.

use std::collections::HashMap;
use std::path::Path;

use facegate_gallery::{
    Calibration, FusedGallery, FusedSpec, Fusion, FusionN, GalleryOptions, ScenarioId,
    SealedTemplate,
};

use crate::Recognition;
use facegate_policy as policy;
use facegate_store::{NewNotice, NewPia, NewScenarioVersion, Store};
use uuid::Uuid;

use crate::CoreError as ApiError;

/// The manifest `facegate serve` runs when none is given: the policy crate's
/// residential-compound gate (小区门禁), with a PIN offered beside card, QR
/// code and the guard's check so a resident can pass without any token.
pub fn demo_manifest() -> String {
    let base = policy::init_template("residential-gate").unwrap_or_default();
    base.replacen(
        "methods = [\"face\", \"card\", \"qr_code\", \"staffed_check\"]",
        "methods = [\"face\", \"pin\", \"card\", \"qr_code\", \"staffed_check\"]",
        1,
    )
}

/// The demo manifest at `liveness = "passive"`: one still frame verifies.
/// For the load generator, whose fixture photos cannot perform a
/// server-chosen action sequence, and for tests that send single frames
/// (server-issued challenges have their own tests).
pub fn passive_demo_manifest() -> String {
    demo_manifest().replacen("\nliveness = \"active\"", "\nliveness = \"passive\"", 1)
}

/// A scenario as deployed: the parsed manifest and its ids in the store.
#[derive(Clone)]
pub struct Deployed {
    pub scenario: policy::Scenario,
    pub manifest: String,
    pub lint: Vec<policy::Diagnostic>,
    pub store_id: Uuid,
    pub version: i64,
    /// Manifest device id → store device id.
    pub devices: HashMap<String, Uuid>,
    /// Store device id → manifest device id: the inverse of `devices`, made
    /// once here, so naming a decision's device on its receipt is one look-up.
    pub device_names: HashMap<Uuid, String>,
    /// The PIA in force (generated from the manifest when it names none).
    pub pia: policy::PiaReport,
    /// Store notice id of the current zh-CN notice (consents point at it).
    pub notice_id: Uuid,
    /// [`policy::Scenario::notice_version`], hashed once here: every decision
    /// checks acknowledgements against it.
    pub notice_version: String,
    /// The PIA's state against this manifest (R13), also fixed at deploy:
    /// every decision passes it to policy.
    pub pia_status: policy::PiaStatus,
}

impl Deployed {
    /// The store id of this scenario's device `name` (its manifest id), or
    /// not found: a device the manifest does not declare has no place and
    /// no notice here (R19).
    pub fn device_id(&self, name: &str) -> Result<Uuid, ApiError> {
        self.devices.get(name).copied().ok_or_else(|| {
            ApiError::NotFound(format!("device {name} in scenario {}", self.scenario.id))
        })
    }
}

/// The operating procedures this system follows beyond what each manifest
/// says (they are in its code, whatever the scenario), for the filing pack's
/// fourth content (Art. 15: processing rules and operating procedures).
pub fn operating_procedures() -> Vec<String> {
    vec![
        format!(
            "个人请求 requests: a person's access, withdrawal, erasure and complaint are recorded with their due date and answered within {} working days; a withdrawal or erasure deletes the person's templates at once",
            crate::requests::ANSWER_WORKING_DAYS
        ),
        "替代方式 alternatives: wherever face is offered, the manifest's other methods (PIN, card, QR code, a guard's check) grant the same passage; a person's decline of face is kept in the store and honoured by every device of the scenario".into(),
        format!(
            "人工核验 guard's check: a kiosk asks, a named guard decides (a check waits at most {} minutes), and the decision is a signed receipt like any other",
            crate::staffed::STAFFED_CHECK_SECONDS / 60
        ),
        format!(
            "卡片查询 card look-ups: unknown cards are limited to {} per device and {} per scenario each 15 minutes, counted in the store",
            crate::cards::DEVICE_MISSES,
            crate::cards::SCENARIO_MISSES
        ),
        "回执 receipts: every decision carries a receipt signed by the deployment, which anyone can check offline with its public key".into(),
    ]
}

/// The security measures this system has, for the PIA and the filing pack.
pub fn security_measures() -> Vec<String> {
    vec![
        "数据加密 encryption: templates sealed with AES-256-GCM per scenario key wrapped by a KEK; identity data encrypted with a separate key".into(),
        "安全审计 security audit: hash-chained, anchored audit log of every processing step, kept ≥ 3 years".into(),
        "访问控制 access control: API keys stored hashed with roles admin/operator/device/auditor; devices bound to their own id".into(),
        "授权管理 authorisation management: keys issued and revoked by admins; persons reach only their own records through one-time codes".into(),
        "入侵检测和防御 intrusion detection and prevention: per-key rate limits, per-credential lockout, body and pixel limits, failed-auth metrics".into(),
    ]
}

/// Lint a manifest before it is deployed: the one check every path uses
/// (an upload, a device added or revoked in the console, a manifest the hub
/// pushes). Errors that name a requirement refuse it (403 through the API):
/// the first one's rule and article, with every error's requirement,
/// article and line in Chinese and English; errors that name none (the
/// text is not a manifest) are a bad request (400). Passed: the scenario
/// and the linter's other findings (warnings).
pub fn lint_manifest(
    manifest: &str,
) -> Result<(policy::Scenario, Vec<policy::Diagnostic>), ApiError> {
    let report = policy::lint(manifest, "scenario.toml");
    if !report.has_errors() {
        return match report.scenario {
            Some(s) => Ok((s, report.diagnostics)),
            None => Err(ApiError::bad(
                "场景清单无法解析。",
                "the manifest could not be parsed",
            )),
        };
    }
    let errors: Vec<&policy::Diagnostic> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == policy::Severity::Error)
        .collect();
    let (mut zh, mut en) = (Vec::new(), Vec::new());
    for d in &errors {
        let (code_zh, code_en) = match d.rule {
            Some(r) => (
                format!("{r} / {}", r.article_zh()),
                format!("{r} / {}", r.article()),
            ),
            None => (d.code(), d.code()),
        };
        zh.push(format!(
            "{code_zh}（第 {} 行，{}）：{}",
            d.line, d.path, d.message_zh
        ));
        en.push(format!(
            "{code_en} (line {}, {}): {}",
            d.line, d.path, d.message_en
        ));
    }
    let zh = format!("场景清单有错误：{}", zh.join("；"));
    let en = format!("the scenario manifest has errors: {}", en.join("; "));
    Err(match errors.iter().find_map(|d| d.rule) {
        Some(rule) => ApiError::Refused(policy::Refusal::new(rule, en, zh)),
        None => ApiError::bad(zh, en),
    })
}

/// Lint, register and prepare one manifest.
pub async fn deploy(
    store: &Store,
    processor_id: Uuid,
    manifest: &str,
    _data_dir: &Path,
) -> Result<Deployed, ApiError> {
    let (mut scenario, lint) = lint_manifest(manifest)?;
    let actor = "server:deploy";
    let st = |e: facegate_store::StoreError| ApiError::internal(e);

    // The scenario version: a new one whenever the manifest text changed.
    let mine = store
        .scenario_named(processor_id, &scenario.id)
        .await
        .map_err(st)?;
    let sv = match mine {
        Some(v) if v.manifest == manifest => v,
        _ => store
            .put_scenario(
                &NewScenarioVersion {
                    processor_id,
                    name: scenario.id.clone(),
                    manifest: manifest.to_string(),
                    template_retention_days: scenario.template_days().unwrap_or(365) as i64,
                    inactivity_days: scenario.retention.inactive_days.map(|d| d as i64),
                },
                actor,
            )
            .await
            .map_err(st)?,
    };

    // PIA (R13): the manifest's own, else one generated from the manifest and
    // archived in the store (kept ≥ 3 years), for the operator to review.
    let headcount = store.headcount().await.map_err(st)?.count.max(0) as u64;
    let pia = policy::pia_report(
        &scenario,
        &policy::PiaInputs {
            report_id: format!("PIA-{}-v{}", scenario.id, sv.version),
            assessed_on: policy::shanghai_date(sv.created_at),
            assessor: "facegate (generated; to be reviewed and signed by the operator)".into(),
            headcount,
            security_measures: security_measures(),
            incidents: vec![],
        },
    );
    let pias = store.pias(processor_id).await.map_err(st)?;
    if !pias
        .iter()
        .any(|p| p.pia.scenario_id == Some(sv.scenario_id) && p.pia.content == pia.markdown)
    {
        store
            .add_pia(
                &NewPia {
                    processor_id,
                    scenario_id: Some(sv.scenario_id),
                    content: pia.markdown.clone(),
                    approved_by: None,
                },
                actor,
            )
            .await
            .map_err(st)?;
    }
    if scenario.pia.is_none() {
        scenario.pia = Some(pia.link());
    }

    // Notice (R4/R5): publish a new version when its text changed. The body
    // ends with the policy's version hash, which consents refer to.
    let zh = policy::render_notice(&scenario, policy::Lang::Zh);
    let en = policy::render_notice(&scenario, policy::Lang::En);
    let mut notices = store.notices(sv.scenario_id).await.map_err(st)?;
    notices.sort_by_key(|n| n.version);
    let body_zh = format!("{}\n\n版本 / version: {}\n", zh.text, zh.version);
    let body_en = format!("{}\n\nversion: {}\n", en.text, en.version);
    let notice_id = match notices
        .iter()
        .rev()
        .find(|n| n.language == "zh-CN" && n.body == body_zh)
    {
        Some(n) => n.id,
        None => {
            let next = notices.last().map(|n| n.version + 1).unwrap_or(1);
            let n = store
                .publish_notice(
                    &NewNotice {
                        scenario_id: sv.scenario_id,
                        version: next,
                        language: "zh-CN".into(),
                        body: body_zh,
                    },
                    actor,
                )
                .await
                .map_err(st)?;
            store
                .publish_notice(
                    &NewNotice {
                        scenario_id: sv.scenario_id,
                        version: next,
                        language: "en".into(),
                        body: body_en,
                    },
                    actor,
                )
                .await
                .map_err(st)?;
            n.id
        }
    };

    // Devices: registered once each and found again in the store by
    // scenario and name, so every process on the database agrees on them.
    let mut devices = HashMap::new();
    for d in &scenario.devices {
        let id = match store
            .device_named(sv.scenario_id, &d.id)
            .await
            .map_err(st)?
        {
            Some(id) => id,
            None => {
                store
                    .add_device(
                        &facegate_store::NewDevice {
                            processor_id,
                            scenario_id: Some(sv.scenario_id),
                            name: d.id.clone(),
                            placement: d.placement.key().to_string(),
                            location: d
                                .location
                                .as_ref()
                                .map(|l| l.zh.clone())
                                .unwrap_or_default(),
                        },
                        actor,
                    )
                    .await
                    .map_err(st)?
                    .id
            }
        };
        devices.insert(d.id.clone(), id);
    }

    // The manifest's own PIA link, else the generated report's (set above).
    let pia_status = policy::pia_status(&scenario, scenario.pia.as_ref(), false);
    Ok(Deployed {
        notice_version: zh.version.clone(),
        pia_status,
        scenario,
        manifest: manifest.to_string(),
        lint,
        store_id: sv.scenario_id,
        version: sv.version,
        device_names: devices.iter().map(|(n, id)| (*id, n.clone())).collect(),
        devices,
        pia,
        notice_id,
    })
}

/// The model id templates are made and matched under: the engine's, when the
/// gallery's built-in calibration was measured for it. If the two crates
/// disagree (a new engine pipeline not yet recalibrated), the calibration's id
/// is used so matching still works, and a warning says the thresholds may be
/// off until `facegate bench` recalibrates.
pub fn model_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(model_id_uncached).clone()
}

fn model_id_uncached() -> String {
    match Calibration::builtin() {
        Ok(c) if c.model_id() != facegate_vision::MODEL_ID => {
            tracing::warn!(
                engine = facegate_vision::MODEL_ID,
                calibration = c.model_id(),
                "the gallery calibration was measured for another engine pipeline; thresholds may be off"
            );
            c.model_id().to_string()
        }
        _ => facegate_vision::MODEL_ID.to_string(),
    }
}

/// What a scenario's gallery decides with: the first model (its id as
/// [`model_id`] says, its table) and the shipped fusion the recognition
/// setting names (its model id, weights and table: the pair's
/// `crates/gallery/data/fusion.txt`, the three models'
/// `fusion3.txt`). [`Recognition::First`] keeps the pair's gallery, so
/// pair templates enrolled before stay matchable (on the first model's
/// scale, as every probe without the other embeddings is).
/// A copy, for a gallery to own; [`spec`] reads it without copying.
pub fn fused_spec(recognition: Recognition) -> Result<FusedSpec, ApiError> {
    spec(recognition).cloned()
}

/// The spec of [`fused_spec`], built once per setting (parsing the shipped
/// tables) and read in place after: a decision names its scale from it
/// without copying the tables.
pub fn spec(recognition: Recognition) -> Result<&'static FusedSpec, ApiError> {
    use std::sync::OnceLock;
    static SPECS: [OnceLock<FusedSpec>; 2] = [OnceLock::new(), OnceLock::new()];
    let slot = &SPECS[usize::from(recognition == Recognition::Three)];
    if let Some(s) = slot.get() {
        return Ok(s);
    }
    let built = build_fused_spec(recognition)?;
    Ok(slot.get_or_init(|| built))
}

fn build_fused_spec(recognition: Recognition) -> Result<FusedSpec, ApiError> {
    let (fused_model_id, fusion, other_dims) = match recognition {
        Recognition::Three => {
            let (id, f) = FusionN::builtin3().map_err(ApiError::internal)?;
            (
                id,
                f,
                vec![facegate_vision::SECOND_DIM, facegate_vision::THIRD_DIM],
            )
        }
        Recognition::First | Recognition::Pair => {
            let f = Fusion::builtin().map_err(ApiError::internal)?;
            let n = FusionN {
                weights: f.weights.to_vec(),
                bias: f.bias,
            };
            (f.model_id, n, vec![facegate_vision::SECOND_DIM])
        }
    };
    Ok(FusedSpec {
        first_model_id: model_id(),
        first_dim: facegate_vision::EMBEDDING_DIM,
        first_calibration: Calibration::builtin().map_err(ApiError::internal)?,
        fused_calibration: Calibration::builtin_for(&fused_model_id).map_err(ApiError::internal)?,
        fused_model_id,
        other_dims,
        fusion,
    })
}

/// An empty gallery for scenario `scenario_id` (the core fills it from the
/// store, [`crate::Core::sync_gallery`]).
pub fn empty_gallery(
    scenario_id: Uuid,
    recognition: Recognition,
) -> Result<FusedGallery, ApiError> {
    FusedGallery::new(
        ScenarioId(scenario_id),
        fused_spec(recognition)?,
        GalleryOptions {
            threads: 1,
            ..GalleryOptions::default()
        },
    )
    .map_err(ApiError::internal)
}

/// The gallery of a scenario, opened from its sealed templates in the store.
pub async fn load_gallery(
    store: &Store,
    keyring: &facegate_gallery::Keyring,
    scenario_id: Uuid,
    recognition: Recognition,
) -> Result<FusedGallery, ApiError> {
    let mut g = empty_gallery(scenario_id, recognition)?;
    let rows = store
        .scenario_templates(scenario_id, "server:startup")
        .await
        .map_err(ApiError::internal)?;
    let mut bad = 0usize;
    for (_link, _person, blob) in rows {
        let opened = SealedTemplate::from_bytes(&blob)
            .and_then(|s| keyring.open_as_recorded(&s))
            .and_then(|t| g.add(&t));
        if opened.is_err() {
            bad += 1;
        }
    }
    if bad > 0 {
        tracing::warn!(
            bad,
            "templates that did not open were left out of the gallery"
        );
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    /// The passive demo differs from the demo in its liveness level only,
    /// and lints clean (the load generator and the tests rely on both).
    #[test]
    fn the_passive_demo_is_the_demo_at_passive_liveness() {
        let (demo, passive) = (super::demo_manifest(), super::passive_demo_manifest());
        assert!(demo.contains("\nliveness = \"active\""));
        assert_eq!(
            passive.replacen("\nliveness = \"passive\"", "\nliveness = \"active\"", 1),
            demo
        );
        let (scenario, _) = super::lint_manifest(&passive).expect("the passive demo lints clean");
        assert_eq!(scenario.liveness, facegate_policy::LivenessLevel::Passive);
    }

    /// Each shipped fusion was fitted for the very models the engine runs,
    /// in the engine's order, and its table is embedded.
    #[test]
    fn the_gallery_fuses_the_engines_models() {
        use crate::Recognition;
        let (first, second, third) = (
            facegate_vision::MODEL_ID,
            facegate_vision::SECOND_MODEL_ID,
            facegate_vision::THIRD_MODEL_ID,
        );
        for (r, id, dims) in [
            (Recognition::Pair, format!("{first}+{second}"), 1),
            (Recognition::First, format!("{first}+{second}"), 1),
            (Recognition::Three, format!("{first}+{second}+{third}"), 2),
        ] {
            let spec = super::fused_spec(r).unwrap();
            assert_eq!(spec.fused_model_id, id, "{r:?}");
            assert_eq!(spec.first_model_id, first);
            assert_eq!(
                (spec.other_dims.len(), spec.fusion.weights.len()),
                (dims, dims + 1)
            );
            super::empty_gallery(uuid::Uuid::now_v7(), r).unwrap();
            assert_eq!(Recognition::parse(r.as_str()), Some(r));
        }
        let pair = super::fused_spec(Recognition::Pair).unwrap();
        assert_eq!(pair.fused_model_id, facegate_vision::FUSED_MODEL_ID);
        assert_eq!(Recognition::default(), Recognition::Pair);
        assert_eq!(Recognition::parse("fused"), None);
    }
}
