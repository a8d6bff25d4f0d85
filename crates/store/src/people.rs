//! Persons, guardians, consents, alternative credentials, erasure.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{append, write_audited, AuditEntry};
use crate::error::{Refusal, Result, StoreError};
use crate::records::*;
use crate::{new_id, ts, RowExt, Store};

const CONSENT_COLS: &str = "id, person_id, scenario_id, kind, notice_id, given_at, given_by, guardian_id, channel, evidence, withdrawn_at, withdrawn_channel";

fn consent_from_row(r: &sqlx::any::AnyRow) -> Result<Consent> {
    let given_by = match r.s("given_by")?.as_str() {
        "subject" => ConsentGiver::Subject,
        "guardian" => ConsentGiver::Guardian(
            r.oid("guardian_id")?
                .ok_or_else(|| StoreError::Corrupt("consents.guardian_id".into()))?,
        ),
        other => return Err(StoreError::Corrupt(format!("consents.given_by {other:?}"))),
    };
    Ok(Consent {
        id: r.id("id")?,
        person_id: r.id("person_id")?,
        scenario_id: r.id("scenario_id")?,
        kind: ConsentKind::parse(&r.s("kind")?)?,
        notice_id: r.oid("notice_id")?,
        given_at: r.t("given_at")?,
        given_by,
        channel: r.s("channel")?,
        evidence: r.s("evidence")?,
        withdrawn_at: r.ot("withdrawn_at")?,
        withdrawn_channel: r.os("withdrawn_channel")?,
    })
}

fn argon2<'k>(pepper: &'k [u8]) -> Argon2<'k> {
    Argon2::new_with_secret(
        pepper,
        Algorithm::Argon2id,
        Version::V0x13,
        Params::default(),
    )
    .expect("valid argon2 parameters")
}

impl Store {
    fn encrypt_identity(&self, row_id: &Uuid, id: &PersonIdentity) -> Result<Vec<u8>> {
        if id.display_name.trim().is_empty() {
            return Err(StoreError::Invalid("display name is empty".into()));
        }
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(id).expect("serialises"));
        Ok(self.keys.seal(&row_id.to_string(), &plain))
    }

    fn decrypt_identity(
        &self,
        row_id: &str,
        ct: Option<Vec<u8>>,
    ) -> Result<Option<PersonIdentity>> {
        match ct {
            None => Ok(None),
            Some(ct) => {
                let plain = self.keys.open(row_id, &ct, "identity")?;
                serde_json::from_slice(&plain)
                    .map(Some)
                    .map_err(|_| StoreError::Corrupt("identity".into()))
            }
        }
    }

    /// Register a person. Name and contact are encrypted with the identity
    /// key; the audit log sees only the random ID.
    pub async fn add_person(
        &self,
        processor_id: Uuid,
        identity: &PersonIdentity,
        actor: &str,
    ) -> Result<Person> {
        let mut tx = self.begin().await?;
        let p = self
            .add_person_in(&mut tx, processor_id, identity, actor, crate::now())
            .await?;
        tx.commit().await?;
        Ok(p)
    }

    pub(crate) async fn add_person_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        processor_id: Uuid,
        identity: &PersonIdentity,
        actor: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<Person> {
        let id = new_id();
        let ct = self.encrypt_identity(&id, identity)?;
        sqlx::query(
            "INSERT INTO persons (id, processor_id, identity, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id.to_string())
        .bind(processor_id.to_string())
        .bind(ct)
        .bind(ts(now))
        .execute(&mut **tx)
        .await?;
        append(
            self,
            tx,
            &AuditEntry::new("person_added", actor, json!({})).subject(id),
            now,
        )
        .await?;
        Ok(Person {
            id,
            processor_id,
            identity: Some(identity.clone()),
            created_at: now,
            last_seen_at: now,
            erased_at: None,
        })
    }

    /// A person with their identity decrypted (`None` if erased).
    pub async fn person(&self, id: Uuid) -> Result<Person> {
        let r = sqlx::query(
            "SELECT id, processor_id, identity, created_at, last_seen_at, erased_at FROM persons WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "person",
            id: id.to_string(),
        })?;
        use sqlx::Row;
        Ok(Person {
            id,
            processor_id: r.id("processor_id")?,
            identity: self.decrypt_identity(&id.to_string(), r.try_get("identity")?)?,
            created_at: r.t("created_at")?,
            last_seen_at: r.t("last_seen_at")?,
            erased_at: r.ot("erased_at")?,
        })
    }

    /// Replace a person's identity data (correction request).
    pub async fn update_person_identity(
        &self,
        id: Uuid,
        identity: &PersonIdentity,
        actor: &str,
    ) -> Result<()> {
        let ct = self.encrypt_identity(&id, identity)?;
        let now = crate::now();
        write_audited(
            self,
            sqlx::query("UPDATE persons SET identity = $1 WHERE id = $2 AND erased_at IS NULL")
                .bind(ct)
                .bind(id.to_string()),
            "person",
            id,
            &AuditEntry::new("person_corrected", actor, json!({})).subject(id),
            now,
        )
        .await
    }

    /// Register a guardian for a minor (R10). Identity encrypted.
    pub async fn add_guardian(
        &self,
        person_id: Uuid,
        identity: &PersonIdentity,
        relationship: &str,
        actor: &str,
    ) -> Result<Guardian> {
        let id = new_id();
        let ct = self.encrypt_identity(&id, identity)?;
        let now = crate::now();
        write_audited(
            self,
            sqlx::query(
                "INSERT INTO guardians (id, person_id, identity, relationship, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id.to_string())
            .bind(person_id.to_string())
            .bind(ct)
            .bind(relationship)
            .bind(ts(now)),
            "guardian",
            id,
            &AuditEntry::new(
                "guardian_added",
                actor,
                json!({ "guardian_id": id, "relationship": relationship }),
            )
            .subject(person_id),
            now,
        )
        .await?;
        Ok(Guardian {
            id,
            person_id,
            identity: Some(identity.clone()),
            relationship: relationship.into(),
            created_at: now,
        })
    }

    /// The guardians of a person.
    pub async fn guardians(&self, person_id: Uuid) -> Result<Vec<Guardian>> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT id, identity, relationship, created_at FROM guardians WHERE person_id = $1 ORDER BY created_at",
        )
        .bind(person_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id = r.s("id")?;
                Ok(Guardian {
                    id: crate::parse_id(&id, "guardians.id")?,
                    person_id,
                    identity: self.decrypt_identity(&id, r.try_get("identity")?)?,
                    relationship: r.s("relationship")?,
                    created_at: r.t("created_at")?,
                })
            })
            .collect()
    }

    /// Record a consent (R7). Refuses empty channel or evidence.
    pub async fn give_consent(&self, c: &NewConsent, actor: &str) -> Result<Consent> {
        let mut tx = self.begin().await?;
        let r = self
            .give_consent_in(&mut tx, c, actor, crate::now())
            .await?;
        tx.commit().await?;
        Ok(r)
    }

    pub(crate) async fn give_consent_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        c: &NewConsent,
        actor: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<Consent> {
        if c.channel.trim().is_empty() || c.evidence.trim().is_empty() {
            return Err(StoreError::Refused(Refusal::new(
                facegate_policy::RuleId::R7,
                "A consent record must hold its channel and evidence.",
                "同意记录必须包含渠道和证据。",
            )));
        }
        let id = new_id();
        let (by, guardian) = match c.given_by {
            ConsentGiver::Subject => ("subject", None),
            ConsentGiver::Guardian(g) => ("guardian", Some(g.to_string())),
        };
        if let ConsentGiver::Guardian(g) = c.given_by {
            let ok = sqlx::query("SELECT id FROM guardians WHERE id = $1 AND person_id = $2")
                .bind(g.to_string())
                .bind(c.person_id.to_string())
                .fetch_optional(&mut **tx)
                .await?
                .is_some();
            if !ok {
                return Err(StoreError::Invalid(format!(
                    "guardian {g} is not registered for person {}",
                    c.person_id
                )));
            }
        }
        // One record per person, scenario and kind: giving it again while it
        // is active returns that record; under a newer notice, the new
        // record supersedes the old one (the consent never lapses, so the
        // templates it covers stay).
        let active = sqlx::query(&format!(
            "SELECT {CONSENT_COLS} FROM consents WHERE person_id = $1 AND scenario_id = $2
             AND kind = $3 AND withdrawn_at IS NULL ORDER BY given_at DESC, id DESC"
        ))
        .bind(c.person_id.to_string())
        .bind(c.scenario_id.to_string())
        .bind(c.kind.as_str())
        .fetch_all(&mut **tx)
        .await?;
        if let Some(r) = active.first() {
            let existing = consent_from_row(r)?;
            let same_giver = matches!(
                (existing.given_by, c.given_by),
                (ConsentGiver::Subject, ConsentGiver::Subject)
                    | (ConsentGiver::Guardian(_), ConsentGiver::Guardian(_))
            );
            if existing.notice_id == c.notice_id && same_giver {
                return Ok(existing);
            }
            sqlx::query(
                "UPDATE consents SET withdrawn_at = $1, withdrawn_channel = 'superseded'
                 WHERE person_id = $2 AND scenario_id = $3 AND kind = $4 AND withdrawn_at IS NULL",
            )
            .bind(ts(now))
            .bind(c.person_id.to_string())
            .bind(c.scenario_id.to_string())
            .bind(c.kind.as_str())
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query(&format!(
            "INSERT INTO consents ({CONSENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)"
        ))
        .bind(id.to_string())
        .bind(c.person_id.to_string())
        .bind(c.scenario_id.to_string())
        .bind(c.kind.as_str())
        .bind(c.notice_id.map(|n| n.to_string()))
        .bind(ts(now))
        .bind(by)
        .bind(guardian)
        .bind(&c.channel)
        .bind(&c.evidence)
        .execute(&mut **tx)
        .await?;
        append(
            self,
            tx,
            &AuditEntry::new(
                "consent_given",
                actor,
                json!({ "consent_id": id, "kind": c.kind, "notice_id": c.notice_id, "given_by": by, "channel": c.channel }),
            )
            .subject(c.person_id)
            .scenario(c.scenario_id),
            now,
        )
        .await?;
        Ok(Consent {
            id,
            person_id: c.person_id,
            scenario_id: c.scenario_id,
            kind: c.kind,
            notice_id: c.notice_id,
            given_at: now,
            given_by: c.given_by,
            channel: c.channel.clone(),
            evidence: c.evidence.clone(),
            withdrawn_at: None,
            withdrawn_channel: None,
        })
    }

    /// A consent by ID.
    pub async fn consent(&self, id: Uuid) -> Result<Consent> {
        let r = sqlx::query(&format!(
            "SELECT {CONSENT_COLS} FROM consents WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "consent",
            id: id.to_string(),
        })?;
        consent_from_row(&r)
    }

    /// All consents of a person (given and withdrawn), oldest first.
    pub async fn consents(&self, person_id: Uuid) -> Result<Vec<Consent>> {
        let rows = sqlx::query(&format!(
            "SELECT {CONSENT_COLS} FROM consents WHERE person_id = $1 ORDER BY given_at, id"
        ))
        .bind(person_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(consent_from_row).collect()
    }

    /// The active consent of a kind for a person and scenario, if any.
    pub async fn active_consent(
        &self,
        person_id: Uuid,
        scenario_id: Uuid,
        kind: ConsentKind,
    ) -> Result<Option<Consent>> {
        let r = sqlx::query(&format!(
            "SELECT {CONSENT_COLS} FROM consents WHERE person_id = $1 AND scenario_id = $2
             AND kind = $3 AND withdrawn_at IS NULL ORDER BY given_at DESC LIMIT 1"
        ))
        .bind(person_id.to_string())
        .bind(scenario_id.to_string())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(consent_from_row).transpose()
    }

    /// Withdraw a consent (R8). Withdrawing the *processing* consent deletes
    /// the person's templates for that scenario in the same transaction and
    /// returns the deletion receipt. Withdrawing twice is an error that
    /// changes nothing.
    pub async fn withdraw_consent(
        &self,
        consent_id: Uuid,
        channel: &str,
        actor: &str,
    ) -> Result<WithdrawalReceipt> {
        if channel.trim().is_empty() {
            return Err(StoreError::Invalid("withdrawal channel is empty".into()));
        }
        let now = crate::now();
        let mut tx = self.begin().await?;
        let r = sqlx::query(&format!(
            "SELECT {CONSENT_COLS} FROM consents WHERE id = $1"
        ))
        .bind(consent_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "consent",
            id: consent_id.to_string(),
        })?;
        let mut consent = consent_from_row(&r)?;
        if consent.withdrawn_at.is_some() {
            return Err(StoreError::Invalid(format!(
                "consent {consent_id} was already withdrawn"
            )));
        }
        sqlx::query("UPDATE consents SET withdrawn_at = $1, withdrawn_channel = $2 WHERE id = $3")
            .bind(ts(now))
            .bind(channel)
            .bind(consent_id.to_string())
            .execute(&mut *tx)
            .await?;
        consent.withdrawn_at = Some(now);
        consent.withdrawn_channel = Some(channel.into());
        let audit_seq = append(
            self,
            &mut tx,
            &AuditEntry::new(
                "consent_withdrawn",
                actor,
                json!({ "consent_id": consent_id, "kind": consent.kind, "channel": channel }),
            )
            .subject(consent.person_id)
            .scenario(consent.scenario_id),
            now,
        )
        .await?;
        let deletion = if consent.kind == ConsentKind::Processing {
            // One processing consent per person and scenario: withdrawing it
            // withdraws any older duplicate too (stores written before that
            // rule), and every template under the scenario goes now.
            sqlx::query(
                "UPDATE consents SET withdrawn_at = $1, withdrawn_channel = $2 WHERE person_id = $3
                 AND scenario_id = $4 AND kind = 'processing' AND withdrawn_at IS NULL",
            )
            .bind(ts(now))
            .bind(channel)
            .bind(consent.person_id.to_string())
            .bind(consent.scenario_id.to_string())
            .execute(&mut *tx)
            .await?;
            Some(
                self.delete_templates_in(
                    &mut tx,
                    consent.person_id,
                    Some(consent.scenario_id),
                    "consent_withdrawn",
                    actor,
                    now,
                )
                .await?,
            )
        } else {
            None
        };
        tx.commit().await?;
        if deletion.as_ref().is_some_and(|d| d.templates_deleted > 0) {
            self.checkpoint_best_effort().await;
        }
        Ok(WithdrawalReceipt {
            consent,
            deletion,
            audit_seq,
        })
    }

    /// Erase a person (deletion request): delete every template and
    /// credential, destroy the encrypted identity (theirs and their
    /// guardians'), withdraw every active consent, all in one transaction.
    /// Consent records and audit entries stay as evidence (R14); they hold
    /// no name. Returns the deletion receipt.
    pub async fn erase_person(&self, person_id: Uuid, actor: &str) -> Result<DeletionReceipt> {
        let now = crate::now();
        let pid = person_id.to_string();
        let mut tx = self.begin().await?;
        let n = sqlx::query("UPDATE persons SET identity = NULL, erased_at = $1 WHERE id = $2 AND erased_at IS NULL")
            .bind(ts(now))
            .bind(&pid)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound {
                kind: "person (not erased)",
                id: pid,
            });
        }
        sqlx::query("UPDATE guardians SET identity = NULL WHERE person_id = $1")
            .bind(&pid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE consents SET withdrawn_at = $1, withdrawn_channel = 'erasure' WHERE person_id = $2 AND withdrawn_at IS NULL")
            .bind(ts(now))
            .bind(&pid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM credentials WHERE person_id = $1")
            .bind(&pid)
            .execute(&mut *tx)
            .await?;
        // Resident and room numbers identify the person: they go too.
        sqlx::query("DELETE FROM residents WHERE person_id = $1")
            .bind(&pid)
            .execute(&mut *tx)
            .await?;
        let receipt = self
            .delete_templates_in(&mut tx, person_id, None, "erasure_request", actor, now)
            .await?;
        append(
            self,
            &mut tx,
            &AuditEntry::new(
                "person_erased",
                actor,
                json!({ "receipt_id": receipt.receipt_id }),
            )
            .subject(person_id),
            now,
        )
        .await?;
        tx.commit().await?;
        self.checkpoint_best_effort().await;
        Ok(receipt)
    }

    /// Issue an alternative credential (R15). PINs are hashed with argon2id
    /// (salted, peppered with a key derived from the identity key); card
    /// numbers and QR tokens with a keyed hash so they can be looked up.
    pub async fn add_credential(
        &self,
        person_id: Uuid,
        kind: CredentialKind,
        secret: &str,
        actor: &str,
    ) -> Result<Credential> {
        let secret = secret.trim();
        if secret.len() < 4 || secret.len() > 256 {
            return Err(StoreError::Invalid(
                "credential must be 4 to 256 characters".into(),
            ));
        }
        let (hash, lookup) = match kind {
            CredentialKind::Pin => {
                if !secret.chars().all(|c| c.is_ascii_digit()) {
                    return Err(StoreError::Invalid("a PIN is digits only".into()));
                }
                let salt = SaltString::generate(&mut rand::rngs::OsRng);
                let h = argon2(self.keys.pin_pepper())
                    .hash_password(secret.as_bytes(), &salt)
                    .map_err(|e| StoreError::Invalid(format!("argon2: {e}")))?
                    .to_string();
                (h, None)
            }
            CredentialKind::Card | CredentialKind::Qr => {
                let l = self.keys.credential_lookup(kind.as_str(), secret);
                (format!("hmac-sha256:{l}"), Some(l))
            }
        };
        let id = new_id();
        let now = crate::now();
        let mut tx = self.begin().await?;
        if kind == CredentialKind::Pin {
            // One PIN per person: issuing a new one revokes the old.
            sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE person_id = $2 AND kind = 'pin' AND revoked_at IS NULL")
                .bind(ts(now))
                .bind(person_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO credentials (id, person_id, kind, secret_hash, lookup, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(person_id.to_string())
        .bind(kind.as_str())
        .bind(hash)
        .bind(lookup)
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Invalid(format!("this {kind} is already issued"))
            }
            e => e.into(),
        })?;
        append(
            self,
            &mut tx,
            &AuditEntry::new(
                "credential_issued",
                actor,
                json!({ "credential_id": id, "kind": kind }),
            )
            .subject(person_id),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Credential {
            id,
            person_id,
            kind,
            created_at: now,
            revoked_at: None,
        })
    }

    /// Check a person's PIN against their active PIN credential.
    pub async fn verify_pin(&self, person_id: Uuid, pin: &str) -> Result<bool> {
        let r = sqlx::query("SELECT secret_hash FROM credentials WHERE person_id = $1 AND kind = 'pin' AND revoked_at IS NULL")
            .bind(person_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = r else { return Ok(false) };
        let stored = r.s("secret_hash")?;
        let parsed = PasswordHash::new(&stored)
            .map_err(|_| StoreError::Corrupt("credentials.secret_hash".into()))?;
        Ok(argon2(self.keys.pin_pepper())
            .verify_password(pin.trim().as_bytes(), &parsed)
            .is_ok())
    }

    /// Find the holder of a card number or QR token (active credentials only).
    pub async fn find_by_credential(
        &self,
        kind: CredentialKind,
        secret: &str,
    ) -> Result<Option<Uuid>> {
        if kind == CredentialKind::Pin {
            return Err(StoreError::Invalid(
                "PINs are checked per person (verify_pin), not looked up".into(),
            ));
        }
        let l = self.keys.credential_lookup(kind.as_str(), secret.trim());
        let r = sqlx::query(
            "SELECT person_id FROM credentials WHERE lookup = $1 AND revoked_at IS NULL",
        )
        .bind(l)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| r.id("person_id")).transpose()
    }

    /// A person's credentials (never the secrets).
    pub async fn credentials(&self, person_id: Uuid) -> Result<Vec<Credential>> {
        let rows = sqlx::query("SELECT id, kind, created_at, revoked_at FROM credentials WHERE person_id = $1 ORDER BY created_at")
            .bind(person_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Credential {
                    id: r.id("id")?,
                    person_id,
                    kind: CredentialKind::parse(&r.s("kind")?)?,
                    created_at: r.t("created_at")?,
                    revoked_at: r.ot("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revoke a credential.
    pub async fn revoke_credential(&self, id: Uuid, actor: &str) -> Result<()> {
        let now = crate::now();
        let mut tx = self.begin().await?;
        let r =
            sqlx::query("SELECT person_id FROM credentials WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "active credential",
                    id: id.to_string(),
                })?;
        let person = r.id("person_id")?;
        sqlx::query("UPDATE credentials SET revoked_at = $1 WHERE id = $2")
            .bind(ts(now))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        append(
            self,
            &mut tx,
            &AuditEntry::new("credential_revoked", actor, json!({ "credential_id": id }))
                .subject(person),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
