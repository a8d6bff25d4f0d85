//! The evidence file a person takes to a complaint or a court: their
//! decisions, each with its signed receipt, the notice versions they were
//! shown (and which one was in force at each decision), their consents, the
//! filing number and the key that checks the receipts. No face data: the
//! receipts hold none, and neither does this.

use chrono::{DateTime, Utc};
use facegate_policy as policy;
use serde::Serialize;
use uuid::Uuid;

use crate::{Core, CoreResult};

/// At most this many decisions in one file (the newest).
pub const MAX_DECISIONS: i64 = 500;

/// One decision, with its signed receipt.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceDecision {
    pub receipt_id: Uuid,
    pub at: DateTime<Utc>,
    pub method: String,
    pub result: String,
    pub device: Option<String>,
    pub refusal_rule: Option<String>,
    pub refusal_article: Option<String>,
    pub refusal_article_zh: Option<String>,
    /// The signed receipt code (`FG1-…`), the same the kiosk showed.
    pub receipt_code: String,
    /// The scenario the decision was made under (manifest id).
    pub scenario: String,
    /// The version of that scenario's notice in force when the decision
    /// was made.
    pub notice_version: Option<i64>,
}

/// A version of the notice: its number, language, hash and date.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceNotice {
    /// The scenario whose notice this is (versions count per scenario).
    pub scenario: String,
    pub version: i64,
    pub language: String,
    /// SHA-256 of the notice text (hex): the text shown can be matched to it.
    pub sha256: String,
    pub published_at: DateTime<Utc>,
}

/// One consent and the notice it was given after.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceConsent {
    pub kind: String,
    pub given_at: DateTime<Utc>,
    pub given_by: String,
    pub channel: String,
    /// The scenario the consent was given for (manifest id).
    pub scenario: String,
    /// The version of that scenario's notice it was given after.
    pub notice_version: Option<i64>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// The whole evidence file.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceFile {
    pub generated_at: DateTime<Utc>,
    pub person_id: Uuid,
    /// The person's pseudonym on receipts (matches the receipts' `person`).
    pub person_pseudonym: String,
    pub display_name: Option<String>,
    pub processor_name_zh: String,
    pub processor_name_en: String,
    pub processor_contact: String,
    pub scenario: String,
    pub scenario_name_zh: String,
    pub scenario_name_en: String,
    pub filing_number: Option<String>,
    /// Ed25519 public key (hex) that checks every receipt here.
    pub public_key: String,
    pub decisions: Vec<EvidenceDecision>,
    /// Every notice version the person was or could have been shown: of
    /// the default scenario and of every scenario of their decisions and
    /// consents.
    pub notices: Vec<EvidenceNotice>,
    pub consents: Vec<EvidenceConsent>,
}

impl Core {
    /// The evidence file of one person (for the person's own portal session).
    pub async fn evidence(&self, person: Uuid) -> CoreResult<EvidenceFile> {
        let d = self.scenario(None)?;
        let p = self.store.person(person).await?;
        let events = self
            .store
            .verification_events(person, MAX_DECISIONS)
            .await?;
        let consents = self.store.consents(person).await?;
        // Each record is matched against its own scenario's notices.
        let mut scenarios = vec![d.store_id];
        for sid in events
            .iter()
            .map(|e| e.event.scenario_id)
            .chain(consents.iter().map(|c| c.scenario_id))
        {
            if !scenarios.contains(&sid) {
                scenarios.push(sid);
            }
        }
        let mut notices = Vec::new();
        for sid in &scenarios {
            notices.extend(self.store.notices(*sid).await?);
        }
        let name = |sid: Uuid| {
            self.scenario_by_store_id(sid)
                .map(|s| s.scenario.id.clone())
                .unwrap_or_else(|| sid.to_string())
        };
        let names: std::collections::HashMap<Uuid, String> =
            scenarios.iter().map(|&sid| (sid, name(sid))).collect();
        let rank = |sid: Uuid| scenarios.iter().position(|s| *s == sid);
        notices.sort_by_key(|n| (rank(n.scenario_id), n.version, n.language.clone()));
        let zh_in_force = |sid: Uuid, at: DateTime<Utc>| {
            notices
                .iter()
                .filter(|n| {
                    n.scenario_id == sid && n.language.starts_with("zh") && n.published_at <= at
                })
                .map(|n| n.version)
                .max()
        };
        let decisions = events
            .iter()
            .map(|e| {
                let (r, code) = self.receipt(e);
                let rule = e
                    .event
                    .refusal_rule
                    .as_deref()
                    .and_then(policy::RuleId::parse);
                EvidenceDecision {
                    receipt_id: e.id,
                    at: e.at,
                    method: e.event.method.clone(),
                    result: e.event.result.clone(),
                    device: r.device,
                    refusal_rule: e.event.refusal_rule.clone(),
                    refusal_article: rule.map(|r| r.article().to_string()),
                    refusal_article_zh: rule.map(|r| r.article_zh().to_string()),
                    receipt_code: code,
                    scenario: r.scenario,
                    notice_version: zh_in_force(e.event.scenario_id, e.at),
                }
            })
            .collect();
        let consents = consents
            .iter()
            .map(|c| EvidenceConsent {
                kind: c.kind.as_str().to_string(),
                given_at: c.given_at,
                given_by: match c.given_by {
                    facegate_store::ConsentGiver::Subject => "subject",
                    facegate_store::ConsentGiver::Guardian(_) => "guardian",
                }
                .to_string(),
                channel: c.channel.clone(),
                scenario: names[&c.scenario_id].clone(),
                notice_version: c
                    .notice_id
                    .and_then(|id| {
                        notices
                            .iter()
                            .find(|n| n.id == id && n.scenario_id == c.scenario_id)
                    })
                    .map(|n| n.version)
                    .or_else(|| zh_in_force(c.scenario_id, c.given_at)),
                withdrawn_at: c.withdrawn_at,
            })
            .collect();
        let proc = &d.scenario.processor;
        Ok(EvidenceFile {
            generated_at: self.now(),
            person_id: person,
            person_pseudonym: self.receipts.pseudonym(person),
            display_name: p.identity.as_ref().map(|i| i.display_name.clone()),
            processor_name_zh: proc.name.zh.clone(),
            processor_name_en: proc.name.get(policy::Lang::En).to_string(),
            processor_contact: proc.contact.clone(),
            scenario: d.scenario.id.clone(),
            scenario_name_zh: d.scenario.name.zh.clone(),
            scenario_name_en: d.scenario.name.get(policy::Lang::En).to_string(),
            filing_number: d.scenario.filing.as_ref().and_then(|f| f.number.clone()),
            public_key: self.receipts.public_key_hex(),
            decisions,
            notices: notices
                .iter()
                .map(|n| EvidenceNotice {
                    scenario: names[&n.scenario_id].clone(),
                    version: n.version,
                    language: n.language.clone(),
                    sha256: n.sha256.clone(),
                    published_at: n.published_at,
                })
                .collect(),
            consents,
        })
    }
}
