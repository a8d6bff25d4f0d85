//! Plain record types the store reads and writes.
//!
//! These are the store's own types; `facegate-policy` has the rules about
//! them. Enumerations map 1:1 to the policy crate's names (`processing`,
//! `transmission`, `image_retention`...).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, StoreError};

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            /// The stored (snake_case) name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            /// Parse the stored name.
            pub fn parse(s: &str) -> Result<Self> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err(StoreError::Invalid(format!(concat!("unknown ", stringify!($name), " {:?}"), s))),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

text_enum!(
    /// What a consent covers (R7, R11, DESIGN domain words).
    ConsentKind {
        /// Face processing for the scenario's purpose (R7).
        Processing = "processing",
        /// Sending face information off the device (R11).
        Transmission = "transmission",
        /// Keeping a captured image (principle 2).
        ImageRetention = "image_retention",
    }
);

text_enum!(
    /// An alternative to the face (R15).
    CredentialKind {
        /// A PIN, stored as an argon2id hash with a pepper.
        Pin = "pin",
        /// A card number, stored as a keyed hash (looked up by it).
        Card = "card",
        /// A QR token, stored as a keyed hash (looked up by it).
        Qr = "qr",
    }
);

text_enum!(
    /// A person's request about their data (PIPL Arts. 44–47).
    RequestKind {
        /// See what is held.
        Access = "access",
        /// Get a copy.
        Copy = "copy",
        /// Delete.
        Delete = "delete",
        /// Correct.
        Correct = "correct",
    }
);

text_enum!(
    /// A filing record's kind (R21–R23).
    FilingKind {
        /// First filing at the 100,000-person threshold (R21).
        Initial = "initial",
        /// Change filing (R22).
        Change = "change",
        /// Deregistration (R23).
        Deregistration = "deregistration",
    }
);

/// A personal-information processor (个人信息处理者): the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processor {
    /// Random ID.
    pub id: Uuid,
    /// Legal name.
    pub name: String,
    /// Contact for the person (notice, complaints).
    pub contact: Option<String>,
    /// When registered.
    pub created_at: DateTime<Utc>,
}

/// Input for a new scenario or a new version of one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewScenarioVersion {
    /// The processor running it.
    pub processor_id: Uuid,
    /// Its short unique name within the processor (e.g. "building-gate").
    pub name: String,
    /// The manifest text (TOML) exactly as linted.
    pub manifest: String,
    /// How long templates are kept after enrolment (R12), in days.
    pub template_retention_days: i64,
    /// Purge a person's templates after this many days without a visit (R12).
    pub inactivity_days: Option<i64>,
}

/// One stored version of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioVersion {
    /// Scenario ID (stable across versions).
    pub scenario_id: Uuid,
    /// Processor.
    pub processor_id: Uuid,
    /// Scenario name.
    pub name: String,
    /// 1, 2, ...
    pub version: i64,
    /// Manifest text.
    pub manifest: String,
    /// SHA-256 of the manifest text, hex.
    pub manifest_sha256: String,
    /// Template retention in days.
    pub template_retention_days: i64,
    /// Inactivity purge in days.
    pub inactivity_days: Option<i64>,
    /// When this version was stored.
    pub created_at: DateTime<Utc>,
}

/// Input for a device (gate terminal, kiosk, phone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDevice {
    /// Operator.
    pub processor_id: Uuid,
    /// Scenario it serves, if one.
    pub scenario_id: Option<Uuid>,
    /// Human name ("north gate 2").
    pub name: String,
    /// Placement class (`public_area`, `non_public`...; policy checks it).
    pub placement: String,
    /// Where it is (free text).
    pub location: String,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Random ID.
    pub id: Uuid,
    /// Operator.
    pub processor_id: Uuid,
    /// Scenario.
    pub scenario_id: Option<Uuid>,
    /// Name.
    pub name: String,
    /// Placement class.
    pub placement: String,
    /// Location.
    pub location: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Taken out of service.
    pub retired_at: Option<DateTime<Utc>>,
}

/// Identity data of a person or guardian. Stored encrypted with the
/// identity key, bound to the row ID; never stored or logged in the clear.
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PersonIdentity {
    /// Name as shown to staff.
    pub display_name: String,
    /// Phone, e-mail or address.
    pub contact: Option<String>,
    /// Date of birth (for the under-14 rule, R10).
    pub date_of_birth: Option<NaiveDate>,
}

impl std::fmt::Debug for PersonIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonIdentity(..)")
    }
}

/// A person (subject). `identity` is `None` once erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Random pseudonymous ID (used in the audit log).
    pub id: Uuid,
    /// Operator.
    pub processor_id: Uuid,
    /// Decrypted identity; `None` after erasure.
    pub identity: Option<PersonIdentity>,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last enrolment or verification.
    pub last_seen_at: DateTime<Utc>,
    /// When erased (identity destroyed, templates and credentials deleted).
    pub erased_at: Option<DateTime<Utc>>,
}

/// A guardian of a minor (R10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guardian {
    /// Random ID.
    pub id: Uuid,
    /// The minor.
    pub person_id: Uuid,
    /// Decrypted identity; `None` after the minor's erasure.
    pub identity: Option<PersonIdentity>,
    /// "parent", "legal guardian"...
    pub relationship: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
}

/// Input for a notice version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNotice {
    /// Scenario.
    pub scenario_id: Uuid,
    /// Version number (1, 2, ...).
    pub version: i64,
    /// Language tag ("zh-CN", "en").
    pub language: String,
    /// Full text as shown.
    pub body: String,
}

/// A published notice version (hashed, immutable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// Random ID.
    pub id: Uuid,
    /// Scenario.
    pub scenario_id: Uuid,
    /// Version.
    pub version: i64,
    /// Language.
    pub language: String,
    /// Text.
    pub body: String,
    /// SHA-256 of the text, hex.
    pub sha256: String,
    /// Published.
    pub published_at: DateTime<Utc>,
}

/// Who gave a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "guardian_id")]
pub enum ConsentGiver {
    /// The person themself.
    Subject,
    /// A guardian (for under-14s, R10).
    Guardian(Uuid),
}

/// Input for a consent (R7: kind, notice version, channel, evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewConsent {
    /// Subject.
    pub person_id: Uuid,
    /// Scenario.
    pub scenario_id: Uuid,
    /// Kind.
    pub kind: ConsentKind,
    /// Notice shown.
    pub notice_id: Option<Uuid>,
    /// Subject or guardian.
    pub given_by: ConsentGiver,
    /// Channel (`"kiosk:<device>"`, `"portal"`, `"paper"`).
    pub channel: String,
    /// Evidence (e.g. hash of the signed form, UI event ID). No images.
    pub evidence: String,
}

/// A consent record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    /// Random ID.
    pub id: Uuid,
    /// Subject.
    pub person_id: Uuid,
    /// Scenario.
    pub scenario_id: Uuid,
    /// Kind.
    pub kind: ConsentKind,
    /// Notice shown.
    pub notice_id: Option<Uuid>,
    /// When given.
    pub given_at: DateTime<Utc>,
    /// By whom.
    pub given_by: ConsentGiver,
    /// Channel.
    pub channel: String,
    /// Evidence.
    pub evidence: String,
    /// When withdrawn.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// Channel of withdrawal.
    pub withdrawn_channel: Option<String>,
}

impl Consent {
    /// Given and not withdrawn.
    pub fn is_active(&self) -> bool {
        self.withdrawn_at.is_none()
    }
}

/// Proof that a person's face information was deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionReceipt {
    /// Random receipt ID (give it to the person).
    pub receipt_id: Uuid,
    /// Whose.
    pub person_id: Uuid,
    /// Scenario, if the deletion was for one scenario.
    pub scenario_id: Option<Uuid>,
    /// How many templates were deleted.
    pub templates_deleted: u64,
    /// Their link IDs.
    pub link_ids: Vec<Uuid>,
    /// Why ("consent_withdrawn", "erasure_request", "retention"...).
    pub reason: String,
    /// When (the commit time).
    pub at: DateTime<Utc>,
    /// The audit record that logs it.
    pub audit_seq: i64,
}

/// Result of withdrawing a consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawalReceipt {
    /// The consent, now withdrawn.
    pub consent: Consent,
    /// Templates deleted in the same transaction (processing consent only).
    pub deletion: Option<DeletionReceipt>,
    /// The audit record that logs the withdrawal.
    pub audit_seq: i64,
}

/// An alternative credential (never the secret itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// Random ID.
    pub id: Uuid,
    /// Holder.
    pub person_id: Uuid,
    /// Kind.
    pub kind: CredentialKind,
    /// Issued.
    pub created_at: DateTime<Utc>,
    /// Revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Input for a verification or identification event (no biometrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewVerificationEvent {
    /// Subject, if known.
    pub person_id: Option<Uuid>,
    /// Scenario.
    pub scenario_id: Uuid,
    /// Device.
    pub device_id: Option<Uuid>,
    /// "face", "pin", "card", "qr", "staff"...
    pub method: String,
    /// "match", "no_match", "unknown", "refused"...
    pub result: String,
    /// Similarity score, if any.
    pub score: Option<f64>,
    /// Threshold used.
    pub threshold: Option<f64>,
    /// Requirement ID of a refusal ("R8").
    pub refusal_rule: Option<String>,
    /// The model (or fusion) whose scale `score` and `threshold` are on,
    /// with its calibration table: the first model's id (a cosine) or a
    /// fusion's (`…+…`, log-odds). `None` with no score, and for events
    /// recorded before it was kept.
    #[serde(default)]
    pub score_model: Option<String>,
}

/// A stored verification event; `id` is the receipt ID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationEvent {
    /// Receipt ID.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// The rest as given.
    #[serde(flatten)]
    pub event: NewVerificationEvent,
}

/// Input for a person's request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewRequest {
    /// Requester, if identified.
    pub person_id: Option<Uuid>,
    /// Kind.
    pub kind: RequestKind,
    /// Channel.
    pub channel: String,
    /// Answer due (Asia/Shanghai date, computed by policy).
    pub due_date: NaiveDate,
}

/// A person's request and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectRequest {
    /// Random ID.
    pub id: Uuid,
    /// Requester.
    pub person_id: Option<Uuid>,
    /// Kind.
    pub kind: RequestKind,
    /// Channel.
    pub channel: String,
    /// Received.
    pub received_at: DateTime<Utc>,
    /// Due.
    pub due_date: NaiveDate,
    /// "open", "done", "rejected".
    pub status: String,
    /// Closed.
    pub completed_at: Option<DateTime<Utc>>,
    /// What was done.
    pub outcome: Option<String>,
}

/// Input for a complaint; the body is stored encrypted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewComplaint {
    /// Complainant, if identified.
    pub person_id: Option<Uuid>,
    /// Channel.
    pub channel: String,
    /// Text.
    pub body: String,
}

/// A complaint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Complaint {
    /// Random ID.
    pub id: Uuid,
    /// Complainant.
    pub person_id: Option<Uuid>,
    /// Channel.
    pub channel: String,
    /// Received.
    pub received_at: DateTime<Utc>,
    /// Decrypted text.
    pub body: String,
    /// "open", "resolved".
    pub status: String,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Answer.
    pub response: Option<String>,
}

/// Input for a filing record (R21–R23).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFiling {
    /// Processor.
    pub processor_id: Uuid,
    /// Kind.
    pub kind: FilingKind,
    /// First day the headcount reached 100,000 (Asia/Shanghai date).
    pub threshold_reached_date: Option<NaiveDate>,
    /// Filing deadline (30 working days, computed by policy).
    pub due_date: Option<NaiveDate>,
    /// Snapshot of the filed attributes (purpose, method, measures, PIA version...).
    pub snapshot: serde_json::Value,
}

/// A filing record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilingRecord {
    /// Random ID.
    pub id: Uuid,
    /// Input as given.
    #[serde(flatten)]
    pub filing: NewFiling,
    /// When filed with the CAC.
    pub filed_at: Option<DateTime<Utc>>,
    /// Number given by the CAC.
    pub filing_number: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// Input for a PIA version (kept ≥ 3 years, R14).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewPia {
    /// Processor.
    pub processor_id: Uuid,
    /// Scenario, if the PIA is for one.
    pub scenario_id: Option<Uuid>,
    /// Report text (Markdown).
    pub content: String,
    /// Who approved it.
    pub approved_by: Option<String>,
}

/// A stored PIA version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiaVersion {
    /// Random ID.
    pub id: Uuid,
    /// Version number within the processor (1, 2, ...).
    pub version: i64,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Input as given.
    #[serde(flatten)]
    pub pia: NewPia,
}

/// The policy crate's name for the same kind (the two serialise alike), so
/// stored consents feed `facegate_policy::authorize` without a hand-written
/// match at every caller.
impl From<ConsentKind> for facegate_policy::ConsentKind {
    fn from(k: ConsentKind) -> Self {
        match k {
            ConsentKind::Processing => facegate_policy::ConsentKind::Processing,
            ConsentKind::Transmission => facegate_policy::ConsentKind::Transmission,
            ConsentKind::ImageRetention => facegate_policy::ConsentKind::ImageRetention,
        }
    }
}

impl From<facegate_policy::ConsentKind> for ConsentKind {
    fn from(k: facegate_policy::ConsentKind) -> Self {
        match k {
            facegate_policy::ConsentKind::Processing => ConsentKind::Processing,
            facegate_policy::ConsentKind::Transmission => ConsentKind::Transmission,
            facegate_policy::ConsentKind::ImageRetention => ConsentKind::ImageRetention,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consent_kinds_match_policy_by_name() {
        for k in [
            ConsentKind::Processing,
            ConsentKind::Transmission,
            ConsentKind::ImageRetention,
        ] {
            let p = facegate_policy::ConsentKind::from(k);
            assert_eq!(serde_json::to_value(p).unwrap(), k.as_str());
            assert_eq!(ConsentKind::from(p), k);
        }
    }
}
