//! State that decisions depend on and that used to live in process memory or
//! in files beside the database: API keys (hashed), face declines and
//! opt-ins (R17), portal codes and sessions (hashed), lock-out counters, and
//! bulk-enrolment row keys. Keeping them here means a restart of `serve`, or
//! a second `serve` on the same PostgreSQL database, changes nothing.
//!
//! Every secret arrives already hashed (`*_sha256`): the store never sees a
//! key, a portal code or a session token.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{append, AuditEntry};
use crate::error::{Result, StoreError};
use crate::{ts, RowExt, Store};

/// An API key as stored: the SHA-256 of its secret, never the secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Public id (the `<id>` in `fgk_<id>_<secret>`).
    pub id: String,
    /// `admin`, `operator`, `device`, `auditor`.
    pub role: String,
    /// For device keys: the one device this key acts as.
    pub device_id: Option<String>,
    /// For device keys: the scenario (store id) whose `device_id` it is; a
    /// device of the same name in another scenario is another device.
    pub scenario_id: Option<Uuid>,
    /// Free text.
    pub label: String,
    /// Hex SHA-256 of the secret part.
    pub secret_sha256: String,
    /// When issued.
    pub created_at: DateTime<Utc>,
    /// When revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// How many attempts a counter allows and what a lock-out costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    /// Failures allowed in one window before the counter locks.
    pub limit: i64,
    /// Length of the counting window.
    pub window: Duration,
    /// The first lock-out; each further one doubles it (back-off), up to `max_lock`.
    pub lock: Duration,
    /// Longest lock-out.
    pub max_lock: Duration,
}

impl AttemptPolicy {
    /// `limit` failures per 15 minutes, locking 15 minutes, doubling up to a day.
    pub fn per_15_minutes(limit: i64) -> AttemptPolicy {
        AttemptPolicy {
            limit: limit.max(1),
            window: Duration::minutes(15),
            lock: Duration::minutes(15),
            max_lock: Duration::hours(24),
        }
    }
}

/// The answer to [`Store::reserve_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The attempt is counted (as a failure until [`Store::attempt_succeeded`]
    /// clears it) and the secret may now be checked.
    Allowed {
        /// Attempts left in this window after this one.
        remaining: i64,
    },
    /// Locked: no secret may be checked before `until`.
    Locked {
        /// When the lock ends.
        until: DateTime<Utc>,
    },
}

/// One lock-out counter's row.
#[derive(Debug, Clone, Copy)]
struct Counter {
    start: DateTime<Utc>,
    failures: i64,
    lockouts: i64,
    locked_until: Option<DateTime<Utc>>,
}

/// One reservation on a counter (`None`: no row yet): the row to write
/// (`None`: nothing changes, it is still locked) and the answer.
fn step_counter(
    before: Option<Counter>,
    policy: AttemptPolicy,
    now: DateTime<Utc>,
) -> (Option<Counter>, Attempt) {
    let Counter {
        mut start,
        mut failures,
        mut lockouts,
        locked_until,
    } = before.unwrap_or(Counter {
        start: now,
        failures: 0,
        lockouts: 0,
        locked_until: None,
    });
    if let Some(until) = locked_until {
        if until > now {
            return (None, Attempt::Locked { until });
        }
        // A lock that ran out opens a fresh window (back-off remembered).
        start = now;
        failures = 0;
    }
    if now - start >= policy.window {
        start = now;
        failures = 0;
        // A quiet window forgets earlier lock-outs.
        if locked_until.is_none_or(|u| now - u >= policy.window) {
            lockouts = 0;
        }
    }
    let mut new_lock = None;
    let outcome = if failures >= policy.limit {
        let factor = 1i32 << lockouts.clamp(0, 16);
        let until = now + (policy.lock * factor).min(policy.max_lock);
        lockouts += 1;
        new_lock = Some(until);
        Attempt::Locked { until }
    } else {
        failures += 1;
        Attempt::Allowed {
            remaining: policy.limit - failures,
        }
    };
    let after = Counter {
        start,
        failures,
        lockouts,
        locked_until: new_lock,
    };
    (Some(after), outcome)
}

fn row_key_ok(s: &str) -> Result<()> {
    if s.is_empty() || s.len() > 200 {
        return Err(StoreError::Invalid("key must be 1..=200 characters".into()));
    }
    Ok(())
}

impl Store {
    // ---- API keys -------------------------------------------------------

    /// Store a new API key (its secret already hashed).
    pub async fn add_api_key(&self, k: &ApiKeyRecord, actor: &str) -> Result<()> {
        row_key_ok(&k.id)?;
        if k.scenario_id.is_some() && k.device_id.is_none() {
            return Err(StoreError::Invalid(
                "only a device key belongs to a scenario".into(),
            ));
        }
        let now = crate::now();
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, role, device_id, scenario_id, label, secret_sha256, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&k.id)
        .bind(&k.role)
        .bind(k.device_id.clone())
        .bind(k.scenario_id.map(|s| s.to_string()))
        .bind(&k.label)
        .bind(&k.secret_sha256)
        .bind(ts(k.created_at))
        .execute(&mut *tx)
        .await?;
        append(
            self,
            &mut tx,
            &AuditEntry::new(
                "api_key_issued",
                actor,
                json!({ "key_id": k.id, "role": k.role, "device_id": k.device_id, "scenario_id": k.scenario_id, "label": k.label }),
            ),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    fn api_key_from_row(r: &sqlx::any::AnyRow) -> Result<ApiKeyRecord> {
        Ok(ApiKeyRecord {
            id: r.s("id")?,
            role: r.s("role")?,
            device_id: r.os("device_id")?,
            scenario_id: r.oid("scenario_id")?,
            label: r.s("label")?,
            secret_sha256: r.s("secret_sha256")?,
            created_at: r.t("created_at")?,
            revoked_at: r.ot("revoked_at")?,
        })
    }

    /// One API key by id (revoked ones too).
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let r = sqlx::query(
            "SELECT id, role, device_id, scenario_id, label, secret_sha256, created_at, revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(Self::api_key_from_row).transpose()
    }

    /// Every API key, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(
            "SELECT id, role, device_id, scenario_id, label, secret_sha256, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::api_key_from_row).collect()
    }

    /// Revoke a key; `false` if there is no such active key.
    pub async fn revoke_api_key(&self, id: &str, actor: &str) -> Result<bool> {
        let now = crate::now();
        let mut tx = self.begin().await?;
        let n =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(ts(now))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        append(
            self,
            &mut tx,
            &AuditEntry::new("api_key_revoked", actor, json!({ "key_id": id })),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revoke every active key of device `device` of scenario `scenario`
    /// (keys of a same-named device in another scenario are left alone), in
    /// one statement and one transaction with their audit records; the ids
    /// revoked.
    pub async fn revoke_device_keys(
        &self,
        scenario: Uuid,
        device: &str,
        actor: &str,
    ) -> Result<Vec<String>> {
        let now = crate::now();
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1
             WHERE scenario_id = $2 AND device_id = $3 AND revoked_at IS NULL
             RETURNING id",
        )
        .bind(ts(now))
        .bind(scenario.to_string())
        .bind(device)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = rows.iter().map(|r| r.s("id")).collect::<Result<Vec<_>>>()?;
        ids.sort();
        for id in &ids {
            append(
                self,
                &mut tx,
                &AuditEntry::new(
                    "api_key_revoked",
                    actor,
                    json!({ "key_id": id, "device_id": device, "scenario_id": scenario }),
                ),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// The one scenario that has a device registered under `name`, or
    /// `None` when no scenario or several do (how a device key written
    /// before keys had a scenario is given one, as migration 11 does).
    pub async fn sole_scenario_of_device(&self, name: &str) -> Result<Option<Uuid>> {
        let rows = sqlx::query(
            "SELECT DISTINCT scenario_id FROM devices WHERE name = $1 AND scenario_id IS NOT NULL",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        match rows.as_slice() {
            [one] => Ok(Some(one.id("scenario_id")?)),
            _ => Ok(None),
        }
    }

    // ---- R17: declines and opting back in ---------------------------------

    async fn live_person_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        person: Uuid,
    ) -> Result<()> {
        let r = sqlx::query("SELECT erased_at FROM persons WHERE id = $1")
            .bind(person.to_string())
            .fetch_optional(&mut **tx)
            .await?;
        match r {
            Some(r) if r.os("erased_at")?.is_none() => Ok(()),
            _ => Err(StoreError::NotFound {
                kind: "person",
                id: person.to_string(),
            }),
        }
    }

    /// The person declined face in this scenario (R17): kept until the
    /// person opts back in. Only for an existing, not erased person.
    pub async fn record_decline(
        &self,
        person: Uuid,
        scenario: Uuid,
        at: DateTime<Utc>,
        channel: &str,
        actor: &str,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        self.live_person_in(&mut tx, person).await?;
        let n = sqlx::query(
            "UPDATE face_declines SET declined_at = $1, opted_in_at = NULL WHERE person_id = $2 AND scenario_id = $3",
        )
        .bind(ts(at))
        .bind(person.to_string())
        .bind(scenario.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query(
                "INSERT INTO face_declines (person_id, scenario_id, declined_at, opted_in_at) VALUES ($1, $2, $3, NULL)",
            )
            .bind(person.to_string())
            .bind(scenario.to_string())
            .bind(ts(at))
            .execute(&mut *tx)
            .await?;
        }
        append(
            self,
            &mut tx,
            &AuditEntry::new("face_declined", actor, json!({ "channel": channel }))
                .subject(person)
                .scenario(scenario),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The person explicitly asks for face again (R17 opt-in); recorded.
    /// Returns `false` when there was no decline to lift.
    pub async fn opt_back_in(
        &self,
        person: Uuid,
        scenario: Uuid,
        at: DateTime<Utc>,
        channel: &str,
        actor: &str,
    ) -> Result<bool> {
        let mut tx = self.begin().await?;
        self.live_person_in(&mut tx, person).await?;
        let n = sqlx::query(
            "UPDATE face_declines SET opted_in_at = $1 WHERE person_id = $2 AND scenario_id = $3 AND opted_in_at IS NULL",
        )
        .bind(ts(at))
        .bind(person.to_string())
        .bind(scenario.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        append(
            self,
            &mut tx,
            &AuditEntry::new("face_opted_in", actor, json!({ "channel": channel }))
                .subject(person)
                .scenario(scenario),
            at,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// When the person last declined face in this scenario, unless they
    /// opted back in since.
    pub async fn active_decline(
        &self,
        person: Uuid,
        scenario: Uuid,
    ) -> Result<Option<DateTime<Utc>>> {
        let r = sqlx::query(
            "SELECT declined_at FROM face_declines WHERE person_id = $1 AND scenario_id = $2 AND opted_in_at IS NULL",
        )
        .bind(person.to_string())
        .bind(scenario.to_string())
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| r.t("declined_at")).transpose()
    }

    // ---- portal codes and sessions -----------------------------------------

    /// Keep a portal code (hashed) for a person, and log why it was issued
    /// (`basis`: the passing check at a device, or how an operator checked
    /// identity).
    pub async fn put_portal_code(
        &self,
        code_sha256: &str,
        person: Uuid,
        expires_at: DateTime<Utc>,
        basis: serde_json::Value,
        actor: &str,
    ) -> Result<()> {
        let now = crate::now();
        let mut tx = self.begin().await?;
        self.live_person_in(&mut tx, person).await?;
        sqlx::query("DELETE FROM portal_codes WHERE expires_at <= $1")
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portal_codes (code_sha256, person_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(code_sha256)
        .bind(person.to_string())
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(&mut *tx)
        .await?;
        append(
            self,
            &mut tx,
            &AuditEntry::new("portal_code_issued", actor, json!({ "basis": basis }))
                .subject(person),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Redeem a code (once): it is deleted, and a session (token hashed) is
    /// opened for its person. `None` if the code is unknown or expired.
    pub async fn redeem_portal_code(
        &self,
        code_sha256: &str,
        token_sha256: &str,
        session_expires: DateTime<Utc>,
    ) -> Result<Option<Uuid>> {
        let now = crate::now();
        let mut tx = self.begin().await?;
        let r = sqlx::query(&format!(
            "SELECT person_id, expires_at FROM portal_codes WHERE code_sha256 = $1{}",
            self.for_update()
        ))
        .bind(code_sha256)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = r else { return Ok(None) };
        sqlx::query("DELETE FROM portal_codes WHERE code_sha256 = $1")
            .bind(code_sha256)
            .execute(&mut *tx)
            .await?;
        if r.t("expires_at")? <= now {
            tx.commit().await?;
            return Ok(None);
        }
        let person = r.id("person_id")?;
        self.live_person_in(&mut tx, person).await?;
        sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portal_sessions (token_sha256, person_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_sha256)
        .bind(person.to_string())
        .bind(ts(now))
        .bind(ts(session_expires))
        .execute(&mut *tx)
        .await?;
        append(
            self,
            &mut tx,
            &AuditEntry::new("portal_session_opened", "portal", json!({})).subject(person),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(person))
    }

    /// The person a live portal session belongs to.
    pub async fn portal_session(&self, token_sha256: &str) -> Result<Option<Uuid>> {
        let r = sqlx::query(
            "SELECT person_id FROM portal_sessions WHERE token_sha256 = $1 AND expires_at > $2",
        )
        .bind(token_sha256)
        .bind(ts(crate::now()))
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| r.id("person_id")).transpose()
    }

    /// End every portal session and code of a person (logout, erasure).
    pub async fn end_portal_sessions(&self, person: Uuid) -> Result<u64> {
        let mut n = sqlx::query("DELETE FROM portal_sessions WHERE person_id = $1")
            .bind(person.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        n += sqlx::query("DELETE FROM portal_codes WHERE person_id = $1")
            .bind(person.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n)
    }

    /// End one portal session (logout).
    pub async fn end_portal_session(&self, token_sha256: &str) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM portal_sessions WHERE token_sha256 = $1")
                .bind(token_sha256)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    // ---- lock-out counters --------------------------------------------------

    /// Count one attempt on `key` **before** its secret is checked, in one
    /// write transaction, so a burst of concurrent attempts gets at most
    /// `policy.limit` evaluated. The attempt counts as a failure until
    /// [`Store::attempt_succeeded`] clears the counter.
    pub async fn reserve_attempt(
        &self,
        key: &str,
        policy: AttemptPolicy,
        now: DateTime<Utc>,
    ) -> Result<Attempt> {
        self.reserve_attempts(&[(key, policy)], now).await
    }

    /// Count one attempt on every counter in `counters` at once, or on none
    /// of them: in one write transaction, each counter is read and stepped
    /// as [`Store::reserve_attempt`] does; if any of them is locked (or
    /// locks now), only the lock is written and no other counter is
    /// charged, so a lock-out on one budget (a whole scenario's) never
    /// spends another (a device's own). A crash cannot leave one counter
    /// charged and the other not. `Allowed` carries the fewest attempts
    /// left; `Locked` the latest end of the locks met.
    pub async fn reserve_attempts(
        &self,
        counters: &[(&str, AttemptPolicy)],
        now: DateTime<Utc>,
    ) -> Result<Attempt> {
        for (key, _) in counters {
            row_key_ok(key)?;
        }
        let mut tx = self.begin().await?;
        let mut steps = Vec::with_capacity(counters.len());
        for &(key, policy) in counters {
            let r = sqlx::query(&format!(
                "SELECT window_start, failures, lockouts, locked_until FROM attempt_counters WHERE key = $1{}",
                self.for_update()
            ))
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            let before = match &r {
                Some(r) => Some(Counter {
                    start: r.t("window_start")?,
                    failures: r.i("failures")?,
                    lockouts: r.i("lockouts")?,
                    locked_until: r.ot("locked_until")?,
                }),
                None => None,
            };
            steps.push((key, before.is_some(), step_counter(before, policy, now)));
        }
        let locked = steps
            .iter()
            .filter_map(|(_, _, (_, o))| match o {
                Attempt::Locked { until } => Some(*until),
                Attempt::Allowed { .. } => None,
            })
            .max();
        for (key, exists, (after, outcome)) in &steps {
            // Under a lock only the locking counters change (a new lock and
            // its back-off); the others are not charged.
            let write = match (locked, after) {
                (None, Some(_)) => true,
                (Some(_), Some(_)) => matches!(outcome, Attempt::Locked { .. }),
                (_, None) => false,
            };
            let Some(c) = after.filter(|_| write) else {
                continue;
            };
            let sql = if *exists {
                "UPDATE attempt_counters SET window_start = $1, failures = $2, lockouts = $3, locked_until = $4 WHERE key = $5"
            } else {
                "INSERT INTO attempt_counters (window_start, failures, lockouts, locked_until, key) VALUES ($1, $2, $3, $4, $5)"
            };
            sqlx::query(sql)
                .bind(ts(c.start))
                .bind(c.failures)
                .bind(c.lockouts)
                .bind(c.locked_until.map(ts))
                .bind(*key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(match locked {
            Some(until) => Attempt::Locked { until },
            None => Attempt::Allowed {
                remaining: steps
                    .iter()
                    .filter_map(|(_, _, (_, o))| match o {
                        Attempt::Allowed { remaining } => Some(*remaining),
                        Attempt::Locked { .. } => None,
                    })
                    .min()
                    .unwrap_or(0),
            },
        })
    }

    /// The secret was right: forget the counter's failures (not its lock).
    pub async fn attempt_succeeded(&self, key: &str) -> Result<()> {
        sqlx::query(
            "UPDATE attempt_counters SET failures = 0, lockouts = 0 WHERE key = $1 AND locked_until IS NULL",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Take back one attempt counted on `key` (atomically, never below
    /// zero, never lifting a lock): for counters of lookups where only the
    /// misses should count, a hit gives back what it reserved without
    /// wiping the misses counted beside it (as [`Store::attempt_succeeded`]
    /// would, letting one good card reset a guesser's budget).
    pub async fn attempt_refunded(&self, key: &str) -> Result<()> {
        self.attempts_refunded(&[key]).await
    }

    /// [`Store::attempt_refunded`] for several counters in one transaction:
    /// what [`Store::reserve_attempts`] reserved together is given back
    /// together (a crash cannot refund one counter and not the other).
    pub async fn attempts_refunded(&self, keys: &[&str]) -> Result<()> {
        let mut tx = self.begin().await?;
        for key in keys {
            sqlx::query(
                "UPDATE attempt_counters SET failures = failures - 1 WHERE key = $1 AND failures > 0 AND locked_until IS NULL",
            )
            .bind(key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Failures counted in the current window on `key` (0 if none).
    pub async fn attempt_failures(&self, key: &str) -> Result<i64> {
        let r = sqlx::query("SELECT failures FROM attempt_counters WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| r.i("failures"))
            .transpose()
            .map(|x| x.unwrap_or(0))
    }

    /// The latest passing check of `person` at `device` since `since`
    /// (method and time), read off the verification events: the basis for
    /// a device issuing a portal code, or for letting a person past a
    /// credential lock-out at a device that has just verified them.
    pub async fn recent_pass(
        &self,
        device: Uuid,
        person: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Option<(Uuid, String, DateTime<Utc>)>> {
        let r = sqlx::query(
            "SELECT id, method, at FROM verification_events WHERE device_id = $1 AND person_id = $2
             AND at >= $3 AND result = 'match' ORDER BY at DESC LIMIT 1",
        )
        .bind(device.to_string())
        .bind(person.to_string())
        .bind(ts(since))
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| Ok((r.id("id")?, r.s("method")?, r.t("at")?)))
            .transpose()
    }

    /// Did `person` pass an alternative check (any method but face: PIN,
    /// card, QR or the guard's check) at `device` since `since`? Registering
    /// a credential does not count (a device may register one for anyone). A device records a decline of face (R17) only
    /// for the person who has just used the alternative in front of it.
    pub async fn recent_alternative_check(
        &self,
        device: Uuid,
        person: Uuid,
        since: DateTime<Utc>,
    ) -> Result<bool> {
        let r = sqlx::query(
            "SELECT id FROM verification_events WHERE device_id = $1 AND person_id = $2
             AND at >= $3 AND method <> 'face' AND result = 'match' LIMIT 1",
        )
        .bind(device.to_string())
        .bind(person.to_string())
        .bind(ts(since))
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.is_some())
    }

    // ---- bulk enrolment rows ------------------------------------------------

    /// The person a bulk-enrolment row key already produced, if any.
    pub async fn enrol_row(&self, row_key: &str) -> Result<Option<Uuid>> {
        let r = sqlx::query("SELECT person_id FROM enrol_rows WHERE row_key = $1")
            .bind(row_key)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| r.id("person_id")).transpose()
    }

    /// The person for a bulk-enrolment row: the one an earlier run created
    /// for `row_key`, or a new one registered together with the row key in
    /// one transaction, so a run killed at any point and restarted never
    /// registers a row's person twice. Returns the person and whether it
    /// was created now.
    pub async fn person_for_row(
        &self,
        row_key: &str,
        processor_id: Uuid,
        identity: &crate::PersonIdentity,
        actor: &str,
    ) -> Result<(crate::Person, bool)> {
        row_key_ok(row_key)?;
        let mut tx = self.begin().await?;
        let have = sqlx::query("SELECT person_id FROM enrol_rows WHERE row_key = $1")
            .bind(row_key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(r) = have {
            drop(tx);
            let p = self.person(r.id("person_id")?).await?;
            return Ok((p, false));
        }
        let now = crate::now();
        let p = self
            .add_person_in(&mut tx, processor_id, identity, actor, now)
            .await?;
        sqlx::query("INSERT INTO enrol_rows (row_key, person_id, created_at) VALUES ($1, $2, $3)")
            .bind(row_key)
            .bind(p.id.to_string())
            .bind(ts(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((p, true))
    }

    /// How many templates a person has in a scenario (no face data read).
    pub async fn template_count(&self, person: Uuid, scenario: Uuid) -> Result<i64> {
        let r = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM template_links WHERE person_id = $1 AND scenario_id = $2",
        )
        .bind(person.to_string())
        .bind(scenario.to_string())
        .fetch_one(&self.pool)
        .await?;
        r.i("n")
    }

    /// The active device registered under `name` for a scenario, if any
    /// (how a deployment finds its devices again, from any process).
    pub async fn device_named(&self, scenario: Uuid, name: &str) -> Result<Option<Uuid>> {
        let r = sqlx::query(
            "SELECT id FROM devices WHERE scenario_id = $1 AND name = $2 AND retired_at IS NULL
             ORDER BY created_at LIMIT 1",
        )
        .bind(scenario.to_string())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| r.id("id")).transpose()
    }
}
