//! Typed front-line operations: enrol, verify (face or an alternative),
//! identify. Each asks policy, acts (vision, gallery, store) and writes its
//! receipt in one place; the caller only says who and where.

use facegate_gallery::{
    Cascade, Decision as GalleryDecision, Encoding, FusedGallery, PersonId, Probe, Template,
};
use facegate_policy as policy;
use facegate_store as store;
use uuid::Uuid;

use crate::pipeline::{self, Attempt};
use crate::{Core, CoreError, CoreResult, Deployed};

/// Who acts, and at which device (already checked to be theirs).
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// Audit label of the caller (never a secret).
    pub actor: &'a str,
    /// The device (manifest id), for device keys and kiosk channels.
    pub device: Option<&'a str>,
}

/// The frames of one face capture, as sent (base64, data-URL prefix allowed).
#[derive(Debug, Clone, Copy)]
pub struct Frames<'a> {
    pub images_b64: &'a [String],
    /// The nonce of a challenge the server issued
    /// ([`Core::issue_challenge`]); without one the capture is passive-only,
    /// which a scenario requiring `active` refuses.
    pub nonce: Option<&'a str>,
    /// Photos an operator imports in process (the CLI's bulk enrolment from
    /// photos handed in with signed consent forms), never a request from a
    /// device or over HTTP: no challenge can be asked of a photo, so the
    /// level and replay checks do not apply; the passive model still does.
    pub operator_import: bool,
}

/// A decision and its receipt.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `pass`, `fail`, `enrolled`, `known`, `unknown`.
    pub outcome: &'static str,
    /// The stored receipt (verification event): method, person, score…
    pub event: store::VerificationEvent,
    /// What passing grants (same for face and every alternative, R15/R17);
    /// `None` unless the person passed or was enrolled.
    pub grants: Option<String>,
    /// Passive liveness score of the frame used.
    pub liveness: Option<f32>,
}

/// An alternative credential kind and the method policy knows it as.
pub fn credential_method(kind: &str) -> CoreResult<(store::CredentialKind, policy::Method)> {
    match kind {
        "pin" => Ok((store::CredentialKind::Pin, policy::Method::Pin)),
        "card" => Ok((store::CredentialKind::Card, policy::Method::Card)),
        "qr" | "qr_code" => Ok((store::CredentialKind::Qr, policy::Method::QrCode)),
        k => Err(CoreError::bad(
            format!("不支持的凭证类型：{k}"),
            format!("unsupported credential kind: {k}"),
        )),
    }
}

/// A consent as given at the front line.
#[derive(Debug, Clone, Copy)]
pub struct NewConsent<'a> {
    pub kind: store::ConsentKind,
    /// The `version` of the notice the person was shown (R4).
    pub notice_version: &'a str,
    /// `kiosk:<device>`, `portal`, `counter`…; default from the device.
    pub channel: Option<&'a str>,
    /// What the person did; default: "<actor> agreed after the notice was shown".
    pub evidence: &'a str,
    /// For a person under 14: the guardian who consents (R10).
    pub guardian: Option<Guardian<'a>>,
}

/// A guardian consenting for a person under 14.
#[derive(Debug, Clone, Copy)]
pub struct Guardian<'a> {
    pub name: &'a str,
    pub relationship: &'a str,
    pub contact: Option<&'a str>,
}

/// On whose behalf a person-level action is taken.
#[derive(Debug, Clone, Copy)]
pub enum Acting<'a> {
    /// The person themself (portal session): only their own records.
    Person(Uuid),
    /// A device key: only for the person it has just verified.
    Device(crate::DeviceAt<'a>),
    /// An operator or admin (role already checked by the caller).
    Operator,
}

impl Core {
    /// Withdraw a consent in one step (R8). Withdrawing the processing
    /// consent deletes every template of that person under the scenario in
    /// the same transaction (the receipt says how many) and drops them from
    /// the gallery. A person withdraws only their own; a device only for the
    /// person in front of it.
    pub async fn withdraw_consent(
        &self,
        consent: Uuid,
        acting: Acting<'_>,
        channel: &str,
        actor: &str,
    ) -> CoreResult<store::WithdrawalReceipt> {
        let c = self.store.consent(consent).await?;
        match acting {
            Acting::Person(me) if me != c.person_id => {
                return Err(CoreError::NotFound("consent".into()))
            }
            Acting::Device(dv) => self.require_person_at_device(dv, c.person_id).await?,
            _ => {}
        }
        let r = self.store.withdraw_consent(consent, channel, actor).await?;
        if c.kind == store::ConsentKind::Processing {
            self.forget_person(c.person_id, Some(c.scenario_id));
            self.sync_gallery(c.scenario_id).await?;
        }
        self.observe("facegate_withdrawals_total", &[]);
        Ok(r)
    }

    /// Erase a person: templates, credentials and identity go in one
    /// transaction (consent and audit records stay, R14); the galleries
    /// forget them and their portal sessions end.
    pub async fn erase_person(
        &self,
        person: Uuid,
        actor: &str,
    ) -> CoreResult<store::DeletionReceipt> {
        let r = self.store.erase_person(person, actor).await?;
        self.forget_person(person, None);
        self.reload_galleries().await?;
        self.store.end_portal_sessions(person).await?;
        Ok(r)
    }

    /// Give a separate consent (R7) under the notice just shown (R4); a
    /// person under 14 needs a guardian's (R10). One record per person,
    /// scenario and kind: giving it again while active returns that record.
    /// Agreeing to face processing after a decline is the person opting
    /// back in (R17), recorded.
    pub async fn give_consent(
        &self,
        d: &Deployed,
        person: Uuid,
        who: Who<'_>,
        c: NewConsent<'_>,
    ) -> CoreResult<store::Consent> {
        let p = pipeline::live_person(self, person).await?;
        if c.notice_version != d.notice_version {
            return Err(policy::Refusal::new(
                policy::RuleId::R4,
                "The notice acknowledged is not the current version; read the current notice before consenting.",
                "所确认的告知书不是当前版本，请重新阅读告知书后再同意。",
            )
            .into());
        }
        let minor = p
            .identity
            .as_ref()
            .and_then(|i| i.date_of_birth)
            .is_some_and(|dob| policy::is_under_14(dob, self.now()));
        let given_by = match (&c.guardian, minor) {
            (Some(g), _) => {
                if g.name.trim().is_empty() || g.relationship.trim().is_empty() {
                    return Err(CoreError::bad(
                        "请填写监护人姓名和关系。",
                        "give the guardian's name and relationship",
                    ));
                }
                let gu = self
                    .store
                    .add_guardian(
                        person,
                        &store::PersonIdentity {
                            display_name: g.name.trim().into(),
                            contact: g.contact.map(str::to_string),
                            date_of_birth: None,
                        },
                        g.relationship.trim(),
                        who.actor,
                    )
                    .await?;
                store::ConsentGiver::Guardian(gu.id)
            }
            (None, true) => {
                return Err(policy::Refusal::new(
                    policy::RuleId::R10,
                    "This person is under 14: a parent or other guardian must consent before face recognition is used.",
                    "未满十四周岁，须由父母或其他监护人同意后才能使用人脸识别。",
                )
                .into())
            }
            (None, false) => store::ConsentGiver::Subject,
        };
        let channel = c
            .channel
            .map(str::to_string)
            .unwrap_or_else(|| match who.device {
                Some(dv) => format!("kiosk:{dv}"),
                None => "api".into(),
            });
        let evidence = serde_json::to_string(&pipeline::ConsentEvidence {
            notice_version: d.notice_version.clone(),
            terms: d.scenario.consent_terms(),
            note: if c.evidence.trim().is_empty() {
                format!("{} agreed after the notice was shown", who.actor)
            } else {
                c.evidence.to_string()
            },
        })
        .map_err(CoreError::internal)?;
        let consent = self
            .store
            .give_consent(
                &store::NewConsent {
                    person_id: person,
                    scenario_id: d.store_id,
                    kind: c.kind,
                    notice_id: Some(d.notice_id),
                    given_by,
                    channel,
                    evidence,
                },
                who.actor,
            )
            .await?;
        if consent.kind == store::ConsentKind::Processing {
            self.opt_back_in(person, d, &consent.channel, who.actor)
                .await?;
        }
        Ok(consent)
    }

    /// A face decision against scenario `sid`'s gallery, the fusion run as
    /// a cascade: `cascade` answers from the first model's embedding where
    /// the gallery's bounds allow; otherwise the deferred second and third
    /// models run (outside the gallery lock) and `full` answers with every
    /// embedding. An engine that ran them already, or has none, goes to
    /// `full` at once. `None` when the scenario has no gallery.
    async fn decide<T>(
        &self,
        sid: uuid::Uuid,
        cap: &mut pipeline::Capture,
        cascade: impl Fn(&FusedGallery, &[f32]) -> Result<Cascade<T>, facegate_gallery::Error>,
        full: impl Fn(&FusedGallery, &Probe) -> Result<T, facegate_gallery::Error>,
    ) -> CoreResult<Option<Result<T, facegate_gallery::Error>>> {
        if cap.can_run_others() {
            let first = {
                let g = self.galleries.read().unwrap();
                g.get(&sid).map(|g| cascade(g, cap.embedding.as_slice()))
            };
            match first {
                None => return Ok(None),
                Some(Ok(Cascade::Decided(t))) => return Ok(Some(Ok(t))),
                Some(Err(e)) => return Ok(Some(Err(e))),
                Some(Ok(Cascade::NeedsOthers)) => cap.run_others(self).await?,
            }
        }
        let others = cap.other_parts();
        let probe = Probe {
            first: cap.embedding.as_slice(),
            others: others.as_deref(),
        };
        let g = self.galleries.read().unwrap();
        Ok(g.get(&sid).map(|g| full(g, &probe)))
    }

    /// Enrol a face (R4 notice, R7 consent, R10 guardian, R13 PIA, R17).
    pub async fn enrol_face(
        &self,
        d: &Deployed,
        person: Uuid,
        who: Who<'_>,
        frames: Frames<'_>,
        notice_version: Option<String>,
    ) -> CoreResult<Outcome> {
        let facts = pipeline::person_facts(self, d, person).await?;
        // The stored consent is the acknowledgement (R4): after a notice
        // change (R5), a template is made only once the person has consented
        // again under the new notice, whatever version the request names. A
        // request naming another version than the one in force is refused
        // for it.
        let ack = match (pipeline::acknowledged_notice(&facts), notice_version) {
            (_, Some(shown)) if shown != d.notice_version => Some(shown),
            (Some(stored), _) => Some(stored),
            (None, shown) => shown,
        };
        let attempt = Attempt::new(self, d, Some(person), who.device, who.actor);
        let permit = attempt
            .authorize(policy::Action::Enrol, policy::Method::Face, facts, ack)
            .await?;
        let mut cap = attempt.capture(frames, pipeline::ENROL_MIN_FACE_PX).await?;
        // Every model's embedding when the engine has them all (the
        // template the fusion decides with), else the first model's.
        cap.run_others(self).await?;
        let (p, s) = (PersonId(person), facegate_gallery::ScenarioId(d.store_id));
        let spec = crate::deploy::spec(self.recognition)?;
        let t = match cap.other_parts() {
            Some(others) if others.len() == spec.other_dims.len() => {
                let mut parts = vec![cap.embedding.as_slice()];
                parts.extend(others);
                facegate_gallery::parts_template(p, s, &spec.fused_model_id, &parts, Encoding::F32)
            }
            _ => Template::new(
                p,
                s,
                crate::deploy::model_id(),
                cap.embedding.as_slice(),
                Encoding::Int8,
            ),
        }
        .map_err(CoreError::internal)?;
        self.ensure_data_key(d.store_id).await?;
        let sealed = self.keyring.seal(&t).map_err(CoreError::internal)?;
        self.store
            .enrol(
                &store::Enrolment {
                    person_id: person,
                    scenario_id: d.store_id,
                    device_id: who.device.and_then(|x| d.devices.get(x).copied()),
                    sealed_template: sealed.to_bytes(),
                },
                who.actor,
            )
            .await?;
        drop(t);
        self.sync_gallery(d.store_id).await?;
        let event = attempt.record("face", "enrolled", None, None, None).await?;
        Ok(Outcome {
            outcome: "enrolled",
            event,
            grants: Some(permit.grants),
            liveness: cap.liveness,
        })
    }

    /// 1:1 face verification of a claimed person.
    pub async fn verify_face(
        &self,
        d: &Deployed,
        person: Uuid,
        who: Who<'_>,
        frames: Frames<'_>,
        notice_version: Option<String>,
    ) -> CoreResult<Outcome> {
        let facts = pipeline::person_facts(self, d, person).await?;
        let ack = pipeline::acknowledged_notice(&facts).or(notice_version);
        let mut attempt = Attempt::new(self, d, Some(person), who.device, who.actor);
        let permit = attempt
            .authorize(policy::Action::Verify, policy::Method::Face, facts, ack)
            .await?;
        let mut cap = attempt.capture(frames, 40.0).await?;
        self.sync_gallery(d.store_id).await?;
        let who = PersonId(person);
        let m = self
            .decide(
                d.store_id,
                &mut cap,
                |g, first| g.verify_cascade(who, first),
                |g, probe| g.verify(who, probe),
            )
            .await?;
        if let Some(Ok(m)) = &m {
            attempt.scored_by(m.fused)?;
        }
        let (pass, score, threshold) = match m {
            Some(Ok(m)) => (m.accepted, Some(m.score), Some(m.threshold)),
            Some(Err(facegate_gallery::Error::UnknownPerson(_))) | None => (false, None, None),
            Some(Err(e)) => return Err(CoreError::internal(e)),
        };
        let result = if pass { "match" } else { "no_match" };
        let event = attempt
            .record("face", result, score, threshold, None)
            .await?;
        Ok(pass_or_fail(event, pass, permit, cap.liveness))
    }

    /// 1:N identification over the consenting gallery, with an open-set
    /// answer. A match whose person has no active processing consent (or
    /// guardian's) under the notice in force is answered `unknown`, and
    /// nothing about the probe is kept. Refused where the scenario's mode
    /// forbids 1:N (R3).
    pub async fn identify(
        &self,
        d: &Deployed,
        who: Who<'_>,
        frames: Frames<'_>,
    ) -> CoreResult<Outcome> {
        let mut attempt = Attempt::new(self, d, None, who.device, who.actor);
        let device_facts = match who.device {
            Some(id) => Some(
                d.scenario
                    .device(id)
                    .ok_or_else(|| CoreError::NotFound(format!("device {id}")))?
                    .facts(),
            ),
            None => None,
        };
        // Policy first, before any pixel is looked at: scenario, mode (R3),
        // device (R18/R19), PIA (R13). The person in front of the camera is
        // not known yet, so a consent-based scenario's R7 is checked per
        // match below.
        let pre = policy::authorize_with_notice(
            &d.scenario,
            &d.notice_version,
            &policy::Processing {
                action: policy::Action::Identify,
                method: policy::Method::Face,
                purpose_id: d.scenario.purpose_id.clone(),
                person: policy::PersonFacts::default(),
                device: device_facts.clone(),
                at: self.now(),
                notice_version: Some(d.notice_version.clone()),
                pia: d.pia_status,
            },
        );
        let consent_based = d.scenario.legal_basis == policy::LegalBasis::Consent;
        match pre {
            Ok(_) => {}
            Err(r) if r.rule == policy::RuleId::R7 && consent_based => {}
            Err(_) => {
                // Record and return the refusal the usual way.
                attempt
                    .authorize(
                        policy::Action::Identify,
                        policy::Method::Face,
                        policy::PersonFacts::default(),
                        Some(d.notice_version.clone()),
                    )
                    .await?;
            }
        }
        let mut cap = attempt.capture(frames, 40.0).await?;
        self.sync_gallery(d.store_id).await?;
        let id = self
            .decide(
                d.store_id,
                &mut cap,
                |g, first| match g.is_empty() {
                    true => Ok(Cascade::Decided(None)),
                    false => Ok(match g.identify_cascade(first, 5)? {
                        Cascade::Decided(i) => Cascade::Decided(Some(i)),
                        Cascade::NeedsOthers => Cascade::NeedsOthers,
                    }),
                },
                |g, probe| match g.is_empty() {
                    true => Ok(None),
                    false => g.identify(probe, 5).map(Some),
                },
            )
            .await?
            .transpose()
            .map_err(CoreError::internal)?
            .flatten();
        if let Some(i) = &id {
            attempt.scored_by(i.fused)?;
        }
        let (mut person, mut score, threshold) = match &id {
            Some(i) => match i.decision {
                GalleryDecision::Known { person, score } => {
                    (Some(person.0), Some(score), Some(i.threshold))
                }
                GalleryDecision::Unknown => (None, None, Some(i.threshold)),
            },
            None => (None, None, None),
        };
        let mut grants = None;
        if let Some(pid) = person {
            let permitted =
                pipeline::quiet_grants(self, d, pid, policy::Method::Face, device_facts).await?;
            match permitted {
                Some(g) => grants = Some(g),
                None => {
                    person = None;
                    score = None;
                }
            }
        }
        attempt.person = person;
        let result = if person.is_some() { "known" } else { "unknown" };
        let event = attempt
            .record("face", result, score, threshold, None)
            .await?;
        Ok(Outcome {
            outcome: result,
            event,
            grants,
            liveness: cap.liveness,
        })
    }

    /// What registering and checking a credential share: the credential's
    /// kind and method, the attempt, and policy's permit for `action`.
    async fn authorize_credential<'a>(
        &'a self,
        d: &'a Deployed,
        person: Uuid,
        who: Who<'a>,
        kind: &str,
        action: policy::Action,
    ) -> CoreResult<(
        store::CredentialKind,
        policy::Method,
        Attempt<'a>,
        policy::Permit,
    )> {
        let (kind, method) = credential_method(kind)?;
        let facts = pipeline::person_facts(self, d, person).await?;
        let attempt = Attempt::new(self, d, Some(person), who.device, who.actor);
        let permit = attempt
            .authorize(action, method, facts, Some(d.notice_version.clone()))
            .await?;
        Ok((kind, method, attempt, permit))
    }

    /// Register an alternative credential (R15): a PIN, card or QR token.
    pub async fn add_credential(
        &self,
        d: &Deployed,
        person: Uuid,
        who: Who<'_>,
        kind: &str,
        secret: &str,
    ) -> CoreResult<Outcome> {
        let (kind, method, attempt, permit) = self
            .authorize_credential(d, person, who, kind, policy::Action::Enrol)
            .await?;
        self.store
            .add_credential(person, kind, secret, who.actor)
            .await?;
        let event = attempt
            .record(method.key(), "enrolled", None, None, None)
            .await?;
        Ok(Outcome {
            outcome: "enrolled",
            event,
            grants: Some(permit.grants),
            liveness: None,
        })
    }

    /// Verify by an alternative credential: the same outcome face would give
    /// (R15, R17). The attempt is counted in the store before the secret is
    /// checked (at most `limit` per person and credential per window, with
    /// back-off, across processes), except for a person this device has
    /// just verified another way.
    pub async fn verify_credential(
        &self,
        d: &Deployed,
        person: Uuid,
        who: Who<'_>,
        kind: &str,
        secret: &str,
        limit: i64,
    ) -> CoreResult<Outcome> {
        let (kind, method, attempt, permit) = self
            .authorize_credential(d, person, who, kind, policy::Action::Verify)
            .await?;
        let at = who.device.map(|name| crate::DeviceAt {
            name,
            scenario: Some(d.store_id),
        });
        self.reserve_credential_attempt(person, method.key(), at, limit)
            .await?;
        let ok = match kind {
            store::CredentialKind::Pin => self.store.verify_pin(person, secret).await?,
            k => self.store.find_by_credential(k, secret).await? == Some(person),
        };
        if ok {
            self.credential_succeeded(person, method.key()).await?;
        }
        let result = if ok { "match" } else { "no_match" };
        let event = attempt
            .record(method.key(), result, None, None, None)
            .await?;
        Ok(pass_or_fail(event, ok, permit, None))
    }
}

/// The outcome of a 1:1 check (face or an alternative): what passing grants
/// is the same whichever method passed (R15, R17).
fn pass_or_fail(
    event: store::VerificationEvent,
    pass: bool,
    permit: policy::Permit,
    liveness: Option<f32>,
) -> Outcome {
    Outcome {
        outcome: if pass { "pass" } else { "fail" },
        event,
        grants: pass.then_some(permit.grants),
        liveness,
    }
}
