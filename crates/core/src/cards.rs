//! A card or QR code identifies a resident on its own (R6, R9, R15): the
//! kiosk reads it as keyboard-wedge input and sends it with no resident
//! number first.
//!
//! Card numbers and QR tokens are stored only as a keyed hash (HMAC-SHA256
//! under a key derived from the deployment's identity key, see
//! `facegate_store::StoreKeys`), unique across the deployment and so within
//! each scenario. A lookup by an unknown identifier must not become an
//! oracle for guessing valid ones:
//!
//! - every lookup is reserved in the store *before* the hash is looked up,
//!   on two counters at once ([`facegate_store::Store::reserve_attempts`]):
//!   this device's (or, without a device, this caller's) and the scenario's
//!   whole identifier space, so neither more devices nor a restart widens
//!   the budget, and a lock on either charges neither (a scenario-wide
//!   lock-out does not spend a device's own misses);
//! - a card that is found (and passes policy) gives back what it reserved
//!   ([`facegate_store::Store::attempt_refunded`]): only misses count, and a
//!   guesser holding one good card cannot reset the misses counted beside
//!   it;
//! - a known and an unknown card get the same answer shape (an `Outcome`
//!   with its signed receipt, both audited), and a card whose holder policy
//!   refuses is answered as unknown, as face identification does; the
//!   device gets back only the person id the kiosk needs, never a name or a
//!   date of birth.

use facegate_policy as policy;
use facegate_store::{self as store, Attempt as Reserved, AttemptPolicy};
use uuid::Uuid;

use crate::ops::{credential_method, Outcome, Who};
use crate::pipeline::{self, Attempt};
use crate::{Core, CoreError, CoreResult, Deployed};

/// Unknown cards one device may present per 15 minutes before it is locked
/// out (with back-off, as PINs are).
pub const DEVICE_MISSES: i64 = 10;
/// Unknown cards all devices of a scenario together may present per 15
/// minutes (the identifier space's budget).
pub const SCENARIO_MISSES: i64 = 100;

/// The store keys of the two lookup counters.
pub fn counter_keys(d: &Deployed, who: Who<'_>) -> (String, String) {
    let by = match who.device {
        Some(dv) => format!("device:{dv}"),
        None => format!("caller:{}", who.actor),
    };
    let mut by_key = format!("card-lookup:{}:{by}", d.store_id);
    by_key.truncate(200);
    (by_key, format!("card-lookup:{}:*", d.store_id))
}

impl Core {
    /// Identify by a card or QR code alone and complete the check as that
    /// method: `pass` (with what passing grants and the person id) for a
    /// card issued to a person policy lets pass here, `unknown` otherwise;
    /// both with a signed, audited receipt. Refused (recorded, naming the
    /// rule) where the scenario does not offer the method; `Locked` once
    /// the device or the scenario has used its misses.
    pub async fn identify_by_credential(
        &self,
        d: &Deployed,
        who: Who<'_>,
        kind: &str,
        secret: &str,
    ) -> CoreResult<Outcome> {
        // A device of another scenario is refused here, before anything is
        // counted or looked up (as face identification refuses it).
        let device = crate::liveness::device_of(d, who.device)?.map(|dv| dv.facts());
        // `wedge`: what a reader typed, which may be a card or a QR code
        // (both present themselves as a keyboard): each kind the scenario
        // offers is looked up, under one reservation.
        let asked: Vec<(store::CredentialKind, policy::Method)> = if kind == "wedge" {
            ["card", "qr"]
                .iter()
                .map(|k| credential_method(k))
                .collect::<CoreResult<Vec<_>>>()?
                .into_iter()
                .filter(|(_, m)| d.scenario.methods.contains(m))
                .collect()
        } else {
            vec![credential_method(kind)?]
        };
        if asked.iter().any(|(k, _)| *k == store::CredentialKind::Pin) {
            return Err(CoreError::bad(
                "PIN 不能单独识别人员，请先输入住户编号。",
                "a PIN does not identify anyone on its own: give the resident number first",
            ));
        }
        let secret = secret.trim();
        if secret.is_empty() || secret.len() > 256 {
            return Err(CoreError::bad(
                "卡号或二维码内容应为 1 到 256 个字符。",
                "a card number or QR token is 1 to 256 characters",
            ));
        }
        let mut attempt = Attempt::new(self, d, None, who.device, who.actor);
        let (_, mut method) = asked
            .first()
            .copied()
            .unwrap_or((store::CredentialKind::Card, policy::Method::Card));
        if asked.is_empty() || !d.scenario.methods.contains(&method) {
            // Record and return the refusal the usual way (R2).
            attempt
                .authorize(
                    policy::Action::Verify,
                    method,
                    policy::PersonFacts::default(),
                    Some(d.notice_version.clone()),
                )
                .await?;
        }
        let (by_key, space_key) = counter_keys(d, who);
        // Both budgets in one transaction, or neither: a scenario-wide lock
        // does not spend the device's own misses.
        let rules = [
            (
                by_key.as_str(),
                AttemptPolicy::per_15_minutes(DEVICE_MISSES),
            ),
            (
                space_key.as_str(),
                AttemptPolicy::per_15_minutes(SCENARIO_MISSES),
            ),
        ];
        if let Reserved::Locked { until } = self.store.reserve_attempts(&rules, self.now()).await? {
            return Err(CoreError::Locked { until });
        }
        let mut holder = None;
        for (k, m) in &asked {
            if let Some(p) = self.store.find_by_credential(*k, secret).await? {
                holder = Some(p);
                method = *m;
                break;
            }
        }
        let mut grants = None;
        let mut person: Option<Uuid> = None;
        if let Some(pid) = holder {
            // The holder's facts and policy, silently: a refusal would tell
            // the presenter the card exists, so it is answered as unknown.
            let permitted = pipeline::quiet_grants(self, d, pid, method, device).await?;
            if let Some(g) = permitted {
                grants = Some(g);
                person = Some(pid);
            }
        }
        attempt.person = person;
        let result = if person.is_some() { "match" } else { "unknown" };
        let event = attempt
            .record(method.key(), result, None, None, None)
            .await?;
        if person.is_some() {
            self.store.attempts_refunded(&[&by_key, &space_key]).await?;
        }
        Ok(Outcome {
            outcome: if person.is_some() { "pass" } else { "unknown" },
            event,
            grants,
            liveness: None,
        })
    }
}

impl Core {
    /// A person's cards and QR codes, active and revoked (never the secret
    /// nor its hash): what the console lists.
    pub async fn person_cards(&self, person: Uuid) -> CoreResult<Vec<store::Credential>> {
        self.store.person(person).await?;
        Ok(self
            .store
            .credentials(person)
            .await?
            .into_iter()
            .filter(|c| c.kind != store::CredentialKind::Pin)
            .collect())
    }

    /// Issue a card or QR code to a person, replacing (revoking) any other
    /// active one of the same kind once the new one is stored: a lost card
    /// stops opening the gate the moment its successor is issued. Policy is
    /// asked as for every registration (R15), and the issue is a receipt.
    pub async fn issue_card(
        &self,
        d: &Deployed,
        person: Uuid,
        who: Who<'_>,
        kind: &str,
        secret: &str,
    ) -> CoreResult<Outcome> {
        let (k, _) = credential_method(kind)?;
        if k == store::CredentialKind::Pin {
            return Err(CoreError::bad(
                "此处只发放卡或二维码；PIN 在自助机上设置。",
                "only a card or QR code is issued here; a PIN is set at the kiosk",
            ));
        }
        let before = self.person_cards(person).await?;
        let o = self.add_credential(d, person, who, kind, secret).await?;
        for c in before
            .iter()
            .filter(|c| c.kind == k && c.revoked_at.is_none())
        {
            self.store.revoke_credential(c.id, who.actor).await?;
        }
        Ok(o)
    }

    /// Revoke one of a person's cards or QR codes (audited); it stops
    /// identifying them at once on every instance (the store is asked on
    /// every presentation).
    pub async fn revoke_card(&self, person: Uuid, id: Uuid, actor: &str) -> CoreResult<()> {
        let c = self
            .person_cards(person)
            .await?
            .into_iter()
            .find(|c| c.id == id && c.revoked_at.is_none())
            .ok_or_else(|| CoreError::NotFound("active card".into()))?;
        self.store.revoke_credential(c.id, actor).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate, Utc};
    use facegate_policy as policy;

    /// Why [`crate::pipeline::quiet_grants`] reads no facts of a card's or
    /// code's holder: for every method that does not touch the face, policy
    /// decides the same whatever the person's facts are (no consent, a
    /// withdrawn one, a minor, a decline of face in its quiet period). If
    /// policy ever read them for such a method, this fails, and
    /// `quiet_grants` must read them again.
    #[test]
    fn r15_r17_policy_decides_a_non_face_method_without_the_persons_facts() {
        let scenario = policy::lint(&crate::deploy::demo_manifest(), "scenario.toml")
            .scenario
            .expect("the demo manifest lints");
        let notice = scenario.notice_version();
        let now = Utc::now();
        let mut withdrawn = policy::ConsentRecord::given(
            &scenario,
            policy::ConsentKind::Processing,
            now - Duration::days(3),
            "kiosk",
            "test",
        );
        withdrawn.withdraw(now - Duration::days(1));
        let refusing = policy::PersonFacts {
            date_of_birth: NaiveDate::from_ymd_opt(2020, 1, 1),
            consents: vec![withdrawn],
            guardian_consent: None,
            last_face_refusal_at: Some(now - Duration::hours(1)),
            face_opt_in_at: None,
        };
        let decide = |method, person: &policy::PersonFacts| {
            policy::authorize_with_notice(
                &scenario,
                &notice,
                &policy::Processing {
                    action: policy::Action::Verify,
                    method,
                    purpose_id: scenario.purpose_id.clone(),
                    person: person.clone(),
                    device: None,
                    at: now,
                    notice_version: Some(notice.clone()),
                    pia: policy::PiaStatus::Current,
                },
            )
            .map(|p| p.grants)
            .map_err(|r| r.rule)
        };
        let none = policy::PersonFacts::default();
        let mut offered = 0;
        for method in policy::Method::ALL {
            if method.is_face() {
                continue;
            }
            let decision = decide(method, &none);
            offered += usize::from(decision.is_ok());
            assert_eq!(decide(method, &refusing), decision, "{method:?}");
        }
        assert!(offered >= 2, "the demo offers card and QR code at least");
    }
}
