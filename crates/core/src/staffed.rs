//! The guard's check (人工核验): a kiosk asks for it for the person in
//! front of it, a guard looks at the person and confirms or refuses in the
//! console, and the kiosk shows the outcome. It is one of the alternatives
//! to face (R6, R15): policy is asked as for any method, the decision is a
//! receipt like any other, and what passing grants is the same as face.

use chrono::Duration;
use facegate_policy as policy;
use facegate_store as store;
use uuid::Uuid;

use crate::ops::{Outcome, Who};
use crate::pipeline::{self, Attempt};
use crate::{Core, CoreError, CoreResult, Deployed};

/// How long a check waits for a guard.
pub const STAFFED_CHECK_SECONDS: i64 = 600;
/// The method key of the guard's check.
pub const METHOD: &str = "staffed_check";

/// A check and where it stands now.
#[derive(Debug, Clone)]
pub struct CheckState {
    pub check: store::StaffedCheck,
    /// `pending`, `decided`, `cancelled` or `expired` (as of the core's
    /// clock).
    pub status: &'static str,
}

impl CheckState {
    /// Once decided: the signed receipt code of the decision, signed once
    /// when the guard decided and kept with the check
    /// (`check.receipt_code`), so every poll gets the very code the guard's
    /// decision returned.
    pub fn receipt_code(&self) -> Option<&str> {
        self.check.receipt_code.as_deref()
    }
}

impl Core {
    fn state_of(&self, check: store::StaffedCheck) -> CheckState {
        let status = match check.status.as_str() {
            "decided" => "decided",
            "cancelled" => "cancelled",
            _ if check.expires_at <= self.now() => "expired",
            _ => "pending",
        };
        CheckState { check, status }
    }

    /// A kiosk asks for a guard's check of `person`: refused (and the
    /// refusal recorded) where the scenario does not offer it.
    pub async fn request_staffed_check(
        &self,
        d: &Deployed,
        person: Uuid,
        who: Who<'_>,
    ) -> CoreResult<CheckState> {
        let facts = pipeline::person_facts(self, d, person).await?;
        let attempt = Attempt::new(self, d, Some(person), who.device, who.actor);
        attempt
            .authorize(
                policy::Action::Verify,
                policy::Method::StaffedCheck,
                facts,
                Some(d.notice_version.clone()),
            )
            .await?;
        let c = self
            .store
            .open_staffed_check(
                person,
                d.store_id,
                who.device,
                self.now() + Duration::seconds(STAFFED_CHECK_SECONDS),
                who.actor,
            )
            .await?;
        Ok(self.state_of(c))
    }

    /// One check; a device (`(scenario store id, device id)`) sees only the
    /// checks asked for at it, not those of a same-named device of another
    /// scenario.
    pub async fn staffed_check(
        &self,
        id: Uuid,
        device: Option<(Uuid, &str)>,
    ) -> CoreResult<CheckState> {
        let mut c = self.store.staffed_check(id).await?;
        if let Some((scenario, dv)) = device {
            if c.scenario_id != scenario || c.device.as_deref() != Some(dv) {
                return Err(CoreError::NotFound("staffed check".into()));
            }
        }
        if let (None, Some(rid)) = (&c.receipt_code, c.receipt_id) {
            // Decided before codes were kept with the check: made from the
            // stored event, as it was then.
            if let Some(ev) = self.store.verification_event(rid).await? {
                c.receipt_code = Some(self.receipt(&ev).1);
            }
        }
        Ok(self.state_of(c))
    }

    /// The kiosk withdraws its pending check (the person left or chose
    /// another method), so no guard confirms someone no longer there.
    pub async fn cancel_staffed_check(
        &self,
        id: Uuid,
        device: Option<(Uuid, &str)>,
        actor: &str,
    ) -> CoreResult<()> {
        let c = self.staffed_check(id, device).await?;
        if c.status != "pending" || !self.store.cancel_staffed_check(id, actor).await? {
            return Err(CoreError::Conflict(format!(
                "this check is already {}",
                c.status
            )));
        }
        Ok(())
    }

    /// Checks waiting for a guard, oldest first, with the person's name for
    /// the guard to compare (the guard screen is an operator's).
    pub async fn pending_staffed_checks(&self) -> CoreResult<Vec<(CheckState, Option<String>)>> {
        let mut out = vec![];
        for c in self.store.pending_staffed_checks(self.now()).await? {
            let name = self
                .store
                .person(c.person_id)
                .await?
                .identity
                .map(|i| i.display_name);
            out.push((self.state_of(c), name));
        }
        Ok(out)
    }

    /// A guard decides a pending check: policy is asked again, the check is
    /// claimed once (a second decision is a conflict), and the decision is
    /// recorded as a verification with method `staffed_check`.
    pub async fn decide_staffed_check(
        &self,
        id: Uuid,
        passed: bool,
        guard_name: &str,
        how: &str,
        actor: &str,
    ) -> CoreResult<(CheckState, Outcome)> {
        let guard = guard_name.trim();
        if guard.is_empty() || guard.chars().count() > 100 {
            return Err(CoreError::bad(
                "请填写核验的保安姓名（不超过 100 字）。",
                "give the name of the guard who checked (at most 100 characters)",
            ));
        }
        let how = how.trim();
        if how.chars().count() > 500 {
            return Err(CoreError::bad(
                "核验方式说明过长。",
                "how is too long (at most 500 characters)",
            ));
        }
        let c = self.staffed_check(id, None).await?;
        if c.status != "pending" {
            return Err(CoreError::Conflict(format!(
                "this check is already {}",
                c.status
            )));
        }
        let d = self
            .scenario_by_store_id(c.check.scenario_id)
            .ok_or_else(|| CoreError::NotFound("scenario".into()))?;
        let facts = pipeline::person_facts(self, &d, c.check.person_id).await?;
        let attempt = Attempt::new(
            self,
            &d,
            Some(c.check.person_id),
            c.check.device.as_deref(),
            actor,
        );
        let permit = attempt
            .authorize(
                policy::Action::Verify,
                policy::Method::StaffedCheck,
                facts,
                Some(d.notice_version.clone()),
            )
            .await?;
        let how = if how.is_empty() { "in person" } else { how };
        let grants = passed.then(|| permit.grants.clone());
        let result = if passed { "match" } else { "no_match" };
        let e = attempt.event(METHOD, result, None, None, None);
        // The decision, its event and its receipt (signed once, here; polls
        // return the kept code) are one write.
        let decision = facegate_store::StaffedDecision {
            passed,
            guard_name: guard,
            how,
            now: self.now(),
            actor,
            event: &e,
            grants: grants.as_deref(),
        };
        let Some(event) = self
            .store
            .decide_staffed_check(id, &decision, |ev| self.receipt(ev).1)
            .await?
        else {
            return Err(CoreError::Conflict(
                "this check was decided or expired meanwhile".into(),
            ));
        };
        attempt.observe(METHOD, result, None);
        let state = self.staffed_check(id, None).await?;
        Ok((
            state,
            Outcome {
                outcome: if passed { "pass" } else { "fail" },
                event,
                grants,
                liveness: None,
            },
        ))
    }
}
