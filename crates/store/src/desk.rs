//! The front desk's state: short resident and room numbers a kiosk keypad
//! can take, the guard's checks (人工核验) waiting for a guard, and the raw
//! series the console's charts are drawn from.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::audit::{append, AuditEntry};
use crate::error::{Result, StoreError};
use crate::{new_id, parse_ts, ts, RowExt, Store};

/// A resident's short numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resident {
    pub person_id: Uuid,
    /// Short number the person types at a kiosk (digits).
    pub resident_no: String,
    /// Room as written (e.g. `3-1502`).
    pub room: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A guard's check, asked for at a kiosk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaffedCheck {
    pub id: Uuid,
    /// Short code shown at the kiosk and in the guard's list.
    pub code: String,
    pub person_id: Uuid,
    pub scenario_id: Uuid,
    /// The kiosk (manifest device id).
    pub device: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `pending`, `decided` or `cancelled` as stored (expiry is read off
    /// `expires_at`).
    pub status: String,
    pub passed: Option<bool>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub guard_name: Option<String>,
    pub how: Option<String>,
    /// The verification event of the decision.
    pub receipt_id: Option<Uuid>,
    pub grants: Option<String>,
    /// The decision's signed receipt code, made once when it was decided
    /// (`None` before, and for checks decided before it was kept).
    pub receipt_code: Option<String>,
}

/// How many checks had one method, result and refusal rule within one UTC
/// hour, as the charts count them (hours, so a caller can fold them into
/// days of any time zone with a whole-hour offset).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckCount {
    /// The hour's start (UTC).
    pub hour: DateTime<Utc>,
    pub method: String,
    pub result: String,
    pub refusal_rule: Option<String>,
    pub count: u64,
}

/// Digits only: a room as a keypad types it.
pub fn room_key(room: &str) -> String {
    room.chars().filter(char::is_ascii_digit).collect()
}

const RESIDENT_COLS: &str = "person_id, resident_no, room, created_at, updated_at";
const CHECK_COLS: &str = "id, code, person_id, scenario_id, device, requested_by, created_at, expires_at, status, passed, decided_at, decided_by, guard_name, how, receipt_id, grants, receipt_code";

fn resident_from(r: &sqlx::any::AnyRow) -> Result<Resident> {
    Ok(Resident {
        person_id: r.id("person_id")?,
        resident_no: r.s("resident_no")?,
        room: r.os("room")?,
        created_at: r.t("created_at")?,
        updated_at: r.t("updated_at")?,
    })
}

fn check_from(r: &sqlx::any::AnyRow) -> Result<StaffedCheck> {
    Ok(StaffedCheck {
        id: r.id("id")?,
        code: r.s("code")?,
        person_id: r.id("person_id")?,
        scenario_id: r.id("scenario_id")?,
        device: r.os("device")?,
        requested_by: r.s("requested_by")?,
        created_at: r.t("created_at")?,
        expires_at: r.t("expires_at")?,
        status: r.s("status")?,
        passed: r.oi("passed")?.map(|x| x != 0),
        decided_at: r.ot("decided_at")?,
        decided_by: r.os("decided_by")?,
        guard_name: r.os("guard_name")?,
        how: r.os("how")?,
        receipt_id: r.oid("receipt_id")?,
        grants: r.os("grants")?,
        receipt_code: r.os("receipt_code")?,
    })
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// A guard's decision on a staffed check, with the verification event it
/// records and the grants the pass carries.
pub struct StaffedDecision<'a> {
    pub passed: bool,
    pub guard_name: &'a str,
    pub how: &'a str,
    pub now: DateTime<Utc>,
    pub actor: &'a str,
    pub event: &'a crate::NewVerificationEvent,
    pub grants: Option<&'a str>,
}

impl Store {
    /// Give a person (not erased) a resident number and room, or change
    /// them. Without `resident_no` a person who has none gets a random
    /// six-digit one. A number already taken is refused.
    pub async fn set_resident(
        &self,
        person_id: Uuid,
        resident_no: Option<&str>,
        room: Option<&str>,
        actor: &str,
    ) -> Result<Resident> {
        if room.is_some_and(|r| r.chars().count() > 32 || room_key(r).is_empty()) {
            return Err(StoreError::Invalid(
                "a room has digits and at most 32 characters".into(),
            ));
        }
        let room = room.map(str::trim);
        if let Some(n) = resident_no {
            if n.is_empty() || n.len() > 8 || !n.chars().all(|c| c.is_ascii_digit()) {
                return Err(StoreError::Invalid(
                    "a resident number is 1 to 8 digits".into(),
                ));
            }
        }
        let p = self.person(person_id).await?;
        if p.erased_at.is_some() {
            return Err(StoreError::NotFound {
                kind: "person",
                id: person_id.to_string(),
            });
        }
        let existing = self.resident(person_id).await?;
        for _ in 0..20 {
            let no = match (resident_no, &existing) {
                (Some(n), _) => n.to_string(),
                (None, Some(e)) => e.resident_no.clone(),
                (None, None) => format!("{}", rand::thread_rng().gen_range(100_000..1_000_000)),
            };
            let now = crate::now();
            let mut tx = self.begin().await?;
            let q = if existing.is_some() {
                "UPDATE residents SET resident_no = $2, room = $3, room_key = $4, updated_at = $5 WHERE person_id = $1"
            } else {
                "INSERT INTO residents (person_id, resident_no, room, room_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)"
            };
            let r = sqlx::query(q)
                .bind(person_id.to_string())
                .bind(&no)
                .bind(room.map(str::to_string))
                .bind(room.map(room_key))
                .bind(ts(now))
                .execute(&mut *tx)
                .await;
            match r {
                Ok(_) => {}
                Err(e) if unique_violation(&e) && resident_no.is_none() && existing.is_none() => {
                    continue
                }
                Err(e) if unique_violation(&e) => {
                    return Err(StoreError::Invalid(format!(
                        "resident number {no} is already taken"
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            append(
                self,
                &mut tx,
                &AuditEntry::new(
                    if existing.is_some() {
                        "resident_corrected"
                    } else {
                        "resident_numbered"
                    },
                    actor,
                    json!({}),
                )
                .subject(person_id),
                now,
            )
            .await?;
            tx.commit().await?;
            return Ok(Resident {
                person_id,
                resident_no: no,
                room: room.map(str::to_string),
                created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(now),
                updated_at: now,
            });
        }
        Err(StoreError::Invalid(
            "no free resident number found; give one".into(),
        ))
    }

    /// A person's resident numbers, if any.
    pub async fn resident(&self, person_id: Uuid) -> Result<Option<Resident>> {
        let r = sqlx::query(&format!(
            "SELECT {RESIDENT_COLS} FROM residents WHERE person_id = $1"
        ))
        .bind(person_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map(resident_from).transpose()
    }

    /// Residents (not erased) whose resident number is `number`, or whose
    /// room's digits are `number`.
    pub async fn residents_by_number(&self, number: &str) -> Result<Vec<Resident>> {
        let rows = sqlx::query(
            "SELECT r.person_id, r.resident_no, r.room, r.created_at, r.updated_at FROM residents r
             JOIN persons p ON p.id = r.person_id
             WHERE p.erased_at IS NULL AND (r.resident_no = $1 OR r.room_key = $1)
             ORDER BY r.resident_no",
        )
        .bind(number)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(resident_from).collect()
    }

    /// Persons not erased, newest first, at most `limit` (their ids).
    pub async fn live_person_ids(&self, limit: i64) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT id FROM persons WHERE erased_at IS NULL ORDER BY created_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.id("id")).collect()
    }

    // ---- the guard's check ---------------------------------------------------

    /// Ask for a guard's check of `person` at `device`, open until
    /// `expires_at`.
    pub async fn open_staffed_check(
        &self,
        person_id: Uuid,
        scenario_id: Uuid,
        device: Option<&str>,
        expires_at: DateTime<Utc>,
        actor: &str,
    ) -> Result<StaffedCheck> {
        let id = new_id();
        let now = crate::now();
        let code = format!("{:04}", rand::thread_rng().gen_range(0..10_000));
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO staffed_checks (id, code, person_id, scenario_id, device, requested_by, created_at, expires_at, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
        )
        .bind(id.to_string())
        .bind(&code)
        .bind(person_id.to_string())
        .bind(scenario_id.to_string())
        .bind(device.map(str::to_string))
        .bind(actor)
        .bind(ts(now))
        .bind(ts(expires_at))
        .execute(&mut *tx)
        .await?;
        append(
            self,
            &mut tx,
            &AuditEntry::new(
                "staffed_check_requested",
                actor,
                json!({ "staffed_check_id": id, "device": device }),
            )
            .subject(person_id)
            .scenario(scenario_id),
            now,
        )
        .await?;
        tx.commit().await?;
        self.staffed_check(id).await
    }

    pub async fn staffed_check(&self, id: Uuid) -> Result<StaffedCheck> {
        let r = sqlx::query(&format!(
            "SELECT {CHECK_COLS} FROM staffed_checks WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "staffed check",
            id: id.to_string(),
        })?;
        check_from(&r)
    }

    /// Checks still waiting for a guard at `now`, oldest first.
    pub async fn pending_staffed_checks(&self, now: DateTime<Utc>) -> Result<Vec<StaffedCheck>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHECK_COLS} FROM staffed_checks WHERE status = 'pending' AND expires_at > $1 ORDER BY created_at"
        ))
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(check_from).collect()
    }

    /// Decide a pending, unexpired check (once: a second guard, or a second
    /// instance, gets `None`) and record, in the same transaction, its
    /// verification event and the receipt code `sign` makes of it: a crash
    /// can no longer leave a check decided with no event and no receipt
    /// (the kiosk would never open, and the guard's retry would be refused
    /// as already decided).
    pub async fn decide_staffed_check(
        &self,
        id: Uuid,
        d: &StaffedDecision<'_>,
        sign: impl FnOnce(&crate::VerificationEvent) -> String,
    ) -> Result<Option<crate::VerificationEvent>> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE staffed_checks SET status = 'decided', passed = $2, decided_at = $3, decided_by = $4, guard_name = $5, how = $6
             WHERE id = $1 AND status = 'pending' AND expires_at > $3",
        )
        .bind(id.to_string())
        .bind(i64::from(d.passed))
        .bind(ts(d.now))
        .bind(d.actor)
        .bind(d.guard_name)
        .bind(d.how)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        append(
            self,
            &mut tx,
            &AuditEntry::new(
                "staffed_check_decided",
                d.actor,
                json!({ "staffed_check_id": id, "passed": d.passed }),
            ),
            d.now,
        )
        .await?;
        let ev = self.insert_verification(&mut tx, d.event, d.actor).await?;
        let code = sign(&ev);
        sqlx::query(
            "UPDATE staffed_checks SET receipt_id = $2, grants = $3, receipt_code = $4 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(ev.id.to_string())
        .bind(d.grants.map(str::to_string))
        .bind(code)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(ev))
    }

    /// The kiosk withdraws a pending check (the person left, or chose
    /// another method): `false` when it was no longer pending.
    pub async fn cancel_staffed_check(&self, id: Uuid, actor: &str) -> Result<bool> {
        let now = crate::now();
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "UPDATE staffed_checks SET status = 'cancelled', decided_at = $2 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id.to_string())
        .bind(ts(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        append(
            self,
            &mut tx,
            &AuditEntry::new(
                "staffed_check_cancelled",
                actor,
                json!({ "staffed_check_id": id }),
            ),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    // ---- series for the charts ---------------------------------------------

    /// The checks recorded since `from`, counted in the store by UTC hour,
    /// method, result and refusal rule: one row per group, not per check,
    /// so a dashboard over a busy gate reads at most hours × kinds rows
    /// (timestamps are stored as `YYYY-MM-DDTHH:…Z`, so the first 13
    /// characters are the hour on both SQLite and PostgreSQL).
    pub async fn check_counts(&self, from: DateTime<Utc>) -> Result<Vec<CheckCount>> {
        let rows = sqlx::query(
            "SELECT substr(at, 1, 13) AS hour, method, result, refusal_rule, \
                    CAST(COUNT(*) AS BIGINT) AS n \
             FROM verification_events WHERE at >= $1 \
             GROUP BY substr(at, 1, 13), method, result, refusal_rule \
             ORDER BY hour, method, result, refusal_rule",
        )
        .bind(ts(from))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let hour = r.s("hour")?;
                Ok(CheckCount {
                    hour: parse_ts(&format!("{hour}:00:00Z"), "hour")?,
                    method: r.s("method")?,
                    result: r.s("result")?,
                    refusal_rule: r.os("refusal_rule")?,
                    count: u64::try_from(r.i("n")?).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The headcount as it stood just before `at` (0 before any change).
    pub async fn headcount_before(&self, at: DateTime<Utc>) -> Result<i64> {
        let r = sqlx::query(
            "SELECT count FROM headcount_history WHERE at < $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(ts(at))
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| r.i("count")).transpose()?.unwrap_or(0))
    }
}
