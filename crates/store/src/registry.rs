//! Processors, scenarios, devices, notices, verification events, requests,
//! complaints, filing records and PIA versions.

use chrono::NaiveDate;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::audit::{append, write_audited, AuditEntry};
use crate::error::{Result, StoreError};
use crate::records::*;
use crate::{new_id, ts, RowExt, Store};

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn date(s: &str, what: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| StoreError::Corrupt(format!("{what}: date {s:?}")))
}

fn not_found(kind: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// A scenario joined with its versions; callers add the WHERE clause.
const SCENARIO_SELECT: &str =
    "SELECT s.id AS id, s.processor_id AS processor_id, s.name AS name, v.version AS version,
            v.manifest AS manifest, v.manifest_sha256 AS manifest_sha256,
            v.template_retention_days AS template_retention_days,
            v.inactivity_days AS inactivity_days, v.created_at AS created_at
     FROM scenarios s JOIN scenario_versions v ON v.scenario_id = s.id";

fn scenario_row(r: &AnyRow) -> Result<ScenarioVersion> {
    Ok(ScenarioVersion {
        scenario_id: r.id("id")?,
        processor_id: r.id("processor_id")?,
        name: r.s("name")?,
        version: r.i("version")?,
        manifest: r.s("manifest")?,
        manifest_sha256: r.s("manifest_sha256")?,
        template_retention_days: r.i("template_retention_days")?,
        inactivity_days: r.oi("inactivity_days")?,
        created_at: r.t("created_at")?,
    })
}

impl Store {
    /// Register a processor (operator).
    pub async fn add_processor(
        &self,
        name: &str,
        contact: Option<&str>,
        actor: &str,
    ) -> Result<Processor> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("processor name is empty".into()));
        }
        let id = new_id();
        let now = crate::now();
        write_audited(
            self,
            sqlx::query(
                "INSERT INTO processors (id, name, contact, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id.to_string())
            .bind(name)
            .bind(contact)
            .bind(ts(now)),
            "processor",
            id,
            &AuditEntry::new("processor_added", actor, json!({ "processor_id": id })),
            now,
        )
        .await?;
        Ok(Processor {
            id,
            name: name.into(),
            contact: contact.map(Into::into),
            created_at: now,
        })
    }

    /// All processors.
    pub async fn processors(&self) -> Result<Vec<Processor>> {
        let rows =
            sqlx::query("SELECT id, name, contact, created_at FROM processors ORDER BY created_at")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Processor {
                    id: r.id("id")?,
                    name: r.s("name")?,
                    contact: r.os("contact")?,
                    created_at: r.t("created_at")?,
                })
            })
            .collect()
    }

    /// Store a scenario manifest: creates the scenario on first use of its
    /// name, otherwise adds the next version. An unchanged manifest returns
    /// the current version without writing.
    pub async fn put_scenario(
        &self,
        s: &NewScenarioVersion,
        actor: &str,
    ) -> Result<ScenarioVersion> {
        if s.name.trim().is_empty() {
            return Err(StoreError::Invalid("scenario name is empty".into()));
        }
        if s.template_retention_days < 1 {
            return Err(StoreError::Invalid(
                "template retention must be at least 1 day".into(),
            ));
        }
        if s.inactivity_days.is_some_and(|d| d < 1) {
            return Err(StoreError::Invalid(
                "inactivity purge must be at least 1 day".into(),
            ));
        }
        let now = crate::now();
        let sum = sha256_hex(&s.manifest);
        let mut tx = self.begin().await?;
        let existing =
            sqlx::query("SELECT id FROM scenarios WHERE processor_id = $1 AND name = $2")
                .bind(s.processor_id.to_string())
                .bind(&s.name)
                .fetch_optional(&mut *tx)
                .await?;
        let (scenario_id, version) = match existing {
            Some(r) => {
                let id = r.id("id")?;
                let last = sqlx::query(
                    "SELECT version, manifest_sha256, template_retention_days, inactivity_days FROM scenario_versions
                     WHERE scenario_id = $1 ORDER BY version DESC LIMIT 1",
                )
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
                if last.s("manifest_sha256")? == sum
                    && last.i("template_retention_days")? == s.template_retention_days
                    && last.oi("inactivity_days")? == s.inactivity_days
                {
                    tx.rollback().await?;
                    return self.scenario(id).await;
                }
                (id, last.i("version")? + 1)
            }
            None => {
                let id = new_id();
                sqlx::query("INSERT INTO scenarios (id, processor_id, name, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(id.to_string())
                    .bind(s.processor_id.to_string())
                    .bind(&s.name)
                    .bind(ts(now))
                    .execute(&mut *tx)
                    .await?;
                (id, 1)
            }
        };
        sqlx::query(
            "INSERT INTO scenario_versions (scenario_id, version, manifest, manifest_sha256, template_retention_days, inactivity_days, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(scenario_id.to_string())
        .bind(version)
        .bind(&s.manifest)
        .bind(&sum)
        .bind(s.template_retention_days)
        .bind(s.inactivity_days)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        append(
            self,
            &mut tx,
            &AuditEntry::new(
                "scenario_version",
                actor,
                json!({ "version": version, "manifest_sha256": sum }),
            )
            .scenario(scenario_id),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(ScenarioVersion {
            scenario_id,
            processor_id: s.processor_id,
            name: s.name.clone(),
            version,
            manifest: s.manifest.clone(),
            manifest_sha256: sum,
            template_retention_days: s.template_retention_days,
            inactivity_days: s.inactivity_days,
            created_at: now,
        })
    }

    async fn scenario_where(
        &self,
        cond: &str,
        a: String,
        b: Option<i64>,
    ) -> Result<Option<ScenarioVersion>> {
        let sql = format!("{SCENARIO_SELECT} WHERE {cond} ORDER BY v.version DESC LIMIT 1");
        let mut q = sqlx::query(&sql).bind(a);
        if let Some(b) = b {
            q = q.bind(b);
        }
        let r = q.fetch_optional(&self.pool).await?;
        r.as_ref().map(scenario_row).transpose()
    }

    /// The latest version of a scenario.
    pub async fn scenario(&self, id: Uuid) -> Result<ScenarioVersion> {
        self.scenario_where("s.id = $1", id.to_string(), None)
            .await?
            .ok_or_else(|| not_found("scenario", id))
    }

    /// The latest version of the processor's scenario named `name`, if it
    /// has one (a scenario is unique by processor and name).
    pub async fn scenario_named(
        &self,
        processor_id: Uuid,
        name: &str,
    ) -> Result<Option<ScenarioVersion>> {
        let sql = format!(
            "{SCENARIO_SELECT} WHERE s.processor_id = $1 AND s.name = $2 ORDER BY v.version DESC LIMIT 1"
        );
        let r = sqlx::query(&sql)
            .bind(processor_id.to_string())
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(scenario_row).transpose()
    }

    /// A given version of a scenario.
    pub async fn scenario_version(&self, id: Uuid, version: i64) -> Result<ScenarioVersion> {
        self.scenario_where(
            "s.id = $1 AND v.version = $2",
            id.to_string(),
            Some(version),
        )
        .await?
        .ok_or_else(|| not_found("scenario version", format!("{id} v{version}")))
    }

    /// How many scenario versions the store holds (they are only ever
    /// added): a changed count tells an instance that another one deployed.
    pub async fn scenario_version_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM scenario_versions")
            .fetch_one(&self.pool)
            .await?)
    }

    /// The latest version of every scenario.
    pub async fn scenarios(&self) -> Result<Vec<ScenarioVersion>> {
        // One query, not one per scenario: the latest version is found by
        // the (scenario_id, version) primary key.
        let sql = format!(
            "{SCENARIO_SELECT}
             WHERE v.version = (SELECT MAX(version) FROM scenario_versions WHERE scenario_id = s.id)
             ORDER BY s.created_at, s.id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(scenario_row).collect()
    }

    /// Register a device.
    pub async fn add_device(&self, d: &NewDevice, actor: &str) -> Result<Device> {
        if d.name.trim().is_empty() || d.placement.trim().is_empty() {
            return Err(StoreError::Invalid(
                "device name and placement are required".into(),
            ));
        }
        let id = new_id();
        let now = crate::now();
        let mut e = AuditEntry::new("device_added", actor, json!({ "placement": d.placement }))
            .device(Some(id));
        e.scenario_id = d.scenario_id;
        write_audited(
            self,
            sqlx::query(
                "INSERT INTO devices (id, processor_id, scenario_id, name, placement, location, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id.to_string())
            .bind(d.processor_id.to_string())
            .bind(d.scenario_id.map(|s| s.to_string()))
            .bind(&d.name)
            .bind(&d.placement)
            .bind(&d.location)
            .bind(ts(now)),
            "device",
            id,
            &e,
            now,
        )
        .await?;
        Ok(Device {
            id,
            processor_id: d.processor_id,
            scenario_id: d.scenario_id,
            name: d.name.clone(),
            placement: d.placement.clone(),
            location: d.location.clone(),
            created_at: now,
            retired_at: None,
        })
    }

    /// A device.
    pub async fn device(&self, id: Uuid) -> Result<Device> {
        let r = sqlx::query(
            "SELECT id, processor_id, scenario_id, name, placement, location, created_at, retired_at FROM devices WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| not_found("device", id))?;
        Ok(Device {
            id,
            processor_id: r.id("processor_id")?,
            scenario_id: r.oid("scenario_id")?,
            name: r.s("name")?,
            placement: r.s("placement")?,
            location: r.s("location")?,
            created_at: r.t("created_at")?,
            retired_at: r.ot("retired_at")?,
        })
    }

    /// Take a device out of service (it can no longer enrol).
    pub async fn retire_device(&self, id: Uuid, actor: &str) -> Result<()> {
        let now = crate::now();
        write_audited(
            self,
            sqlx::query("UPDATE devices SET retired_at = $1 WHERE id = $2 AND retired_at IS NULL")
                .bind(ts(now))
                .bind(id.to_string()),
            "active device",
            id,
            &AuditEntry::new("device_retired", actor, json!({})).device(Some(id)),
            now,
        )
        .await
    }

    /// Publish a notice version (immutable; hashed).
    pub async fn publish_notice(&self, n: &NewNotice, actor: &str) -> Result<Notice> {
        if n.body.trim().is_empty() {
            return Err(StoreError::Invalid("notice text is empty".into()));
        }
        let id = new_id();
        let now = crate::now();
        let sum = sha256_hex(&n.body);
        write_audited(
            self,
            sqlx::query(
                "INSERT INTO notices (id, scenario_id, version, language, body, sha256, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id.to_string())
            .bind(n.scenario_id.to_string())
            .bind(n.version)
            .bind(&n.language)
            .bind(&n.body)
            .bind(&sum)
            .bind(ts(now)),
            "notice",
            id,
            &AuditEntry::new("notice_published", actor, json!({ "notice_id": id, "version": n.version, "language": n.language, "sha256": sum }))
                .scenario(n.scenario_id),
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Db(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                StoreError::Invalid(format!(
                    "notice version {} ({}) already exists; publish a new version",
                    n.version, n.language
                ))
            }
            e => e,
        })?;
        Ok(Notice {
            id,
            scenario_id: n.scenario_id,
            version: n.version,
            language: n.language.clone(),
            body: n.body.clone(),
            sha256: sum,
            published_at: now,
        })
    }

    /// Notices of a scenario, newest version first.
    pub async fn notices(&self, scenario_id: Uuid) -> Result<Vec<Notice>> {
        let rows = sqlx::query(
            "SELECT id, version, language, body, sha256, published_at FROM notices WHERE scenario_id = $1 ORDER BY version DESC, language",
        )
        .bind(scenario_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Notice {
                    id: r.id("id")?,
                    scenario_id,
                    version: r.i("version")?,
                    language: r.s("language")?,
                    body: r.s("body")?,
                    sha256: r.s("sha256")?,
                    published_at: r.t("published_at")?,
                })
            })
            .collect()
    }

    /// Record a verification/identification event and its audit record in
    /// one transaction; returns the event (its `id` is the receipt ID).
    /// Holds no biometrics: scores and thresholds only.
    pub async fn record_verification(
        &self,
        e: &NewVerificationEvent,
        actor: &str,
    ) -> Result<VerificationEvent> {
        let mut tx = self.begin().await?;
        let ev = self.insert_verification(&mut tx, e, actor).await?;
        tx.commit().await?;
        Ok(ev)
    }

    /// [`Store::record_verification`] inside the caller's transaction (a
    /// guard's decision records its event with the decision, at once).
    pub(crate) async fn insert_verification(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        e: &NewVerificationEvent,
        actor: &str,
    ) -> Result<VerificationEvent> {
        let id = new_id();
        let now = crate::now();
        // A missing score is written as a NULL literal, not a bound NULL:
        // through sqlx's Any driver a bound NULL makes PostgreSQL prepare
        // the statement with another parameter type, and the next call on
        // that connection with a real score then fails ("incorrect binary
        // data format"; found by the core's model-based test).
        let sql = format!(
            "INSERT INTO verification_events (id, at, person_id, scenario_id, device_id, method, result, score, threshold, refusal_rule, score_model)
             VALUES ($1, $2, $3, $4, $5, $6, $7, {}, {}, $8, $9)",
            if e.score.is_some() { "$10" } else { "NULL" },
            match (e.score.is_some(), e.threshold.is_some()) {
                (_, false) => "NULL",
                (true, true) => "$11",
                (false, true) => "$10",
            },
        );
        let mut q = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(ts(now))
            .bind(e.person_id.map(|p| p.to_string()))
            .bind(e.scenario_id.to_string())
            .bind(e.device_id.map(|d| d.to_string()))
            .bind(&e.method)
            .bind(&e.result)
            .bind(e.refusal_rule.clone())
            .bind(e.score_model.clone());
        if let Some(x) = e.score {
            q = q.bind(x);
        }
        if let Some(x) = e.threshold {
            q = q.bind(x);
        }
        q.execute(&mut **tx).await?;
        if let Some(p) = e.person_id {
            sqlx::query("UPDATE persons SET last_seen_at = $1 WHERE id = $2")
                .bind(ts(now))
                .bind(p.to_string())
                .execute(&mut **tx)
                .await?;
        }
        let mut entry = AuditEntry::new(
            "verification",
            actor,
            json!({ "receipt_id": id, "method": e.method, "result": e.result, "score": e.score, "threshold": e.threshold, "score_model": e.score_model, "refusal_rule": e.refusal_rule }),
        )
        .scenario(e.scenario_id)
        .device(e.device_id);
        entry.subject = e.person_id;
        append(self, tx, &entry, now).await?;
        Ok(VerificationEvent {
            id,
            at: now,
            event: e.clone(),
        })
    }

    /// Verification events of a person, newest first (for access requests).
    pub async fn verification_events(
        &self,
        person_id: Uuid,
        limit: i64,
    ) -> Result<Vec<VerificationEvent>> {
        let rows = sqlx::query(
            "SELECT id, at, person_id, scenario_id, device_id, method, result, score, threshold, refusal_rule, score_model
             FROM verification_events WHERE person_id = $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(person_id.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from).collect()
    }

    /// One verification event by its id (the receipt id), if it exists.
    pub async fn verification_event(&self, id: Uuid) -> Result<Option<VerificationEvent>> {
        let row = sqlx::query(
            "SELECT id, at, person_id, scenario_id, device_id, method, result, score, threshold, refusal_rule, score_model
             FROM verification_events WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(event_from).transpose()
    }

    /// Record a person's request (access, copy, delete, correct).
    pub async fn add_request(&self, r: &NewRequest, actor: &str) -> Result<SubjectRequest> {
        let id = new_id();
        let now = crate::now();
        let mut e = AuditEntry::new(
            "request_received",
            actor,
            json!({ "request_id": id, "kind": r.kind, "due_date": r.due_date }),
        );
        e.subject = r.person_id;
        write_audited(
            self,
            sqlx::query(
                "INSERT INTO requests (id, person_id, kind, channel, received_at, due_date, status) VALUES ($1, $2, $3, $4, $5, $6, 'open')",
            )
            .bind(id.to_string())
            .bind(r.person_id.map(|p| p.to_string()))
            .bind(r.kind.as_str())
            .bind(&r.channel)
            .bind(ts(now))
            .bind(r.due_date.format("%Y-%m-%d").to_string()),
            "request",
            id,
            &e,
            now,
        )
        .await?;
        Ok(SubjectRequest {
            id,
            person_id: r.person_id,
            kind: r.kind,
            channel: r.channel.clone(),
            received_at: now,
            due_date: r.due_date,
            status: "open".into(),
            completed_at: None,
            outcome: None,
        })
    }

    /// Close a request with its outcome (`status` "done" or "rejected").
    pub async fn complete_request(
        &self,
        id: Uuid,
        status: &str,
        outcome: &str,
        actor: &str,
    ) -> Result<()> {
        if !matches!(status, "done" | "rejected") {
            return Err(StoreError::Invalid(format!(
                "request status {status:?}: use done or rejected"
            )));
        }
        let now = crate::now();
        write_audited(
            self,
            sqlx::query("UPDATE requests SET status = $1, outcome = $2, completed_at = $3 WHERE id = $4 AND status = 'open'")
            .bind(status)
            .bind(outcome)
            .bind(ts(now))
            .bind(id.to_string()),
            "open request",
            id,
            &AuditEntry::new(
                "request_closed",
                actor,
                json!({ "request_id": id, "status": status }),
            ),
            now,
        )
        .await
    }

    /// Requests, open ones first, by due date.
    pub async fn requests(&self) -> Result<Vec<SubjectRequest>> {
        let rows = sqlx::query(
            "SELECT id, person_id, kind, channel, received_at, due_date, status, completed_at, outcome FROM requests
             ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, due_date, received_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SubjectRequest {
                    id: r.id("id")?,
                    person_id: r.oid("person_id")?,
                    kind: RequestKind::parse(&r.s("kind")?)?,
                    channel: r.s("channel")?,
                    received_at: r.t("received_at")?,
                    due_date: date(&r.s("due_date")?, "requests.due_date")?,
                    status: r.s("status")?,
                    completed_at: r.ot("completed_at")?,
                    outcome: r.os("outcome")?,
                })
            })
            .collect()
    }

    /// Record a complaint (text encrypted with the identity key).
    pub async fn add_complaint(&self, c: &NewComplaint, actor: &str) -> Result<Complaint> {
        if c.body.trim().is_empty() {
            return Err(StoreError::Invalid("complaint text is empty".into()));
        }
        let id = new_id();
        let now = crate::now();
        let ct = self.keys.seal(&id.to_string(), c.body.as_bytes());
        let mut e = AuditEntry::new("complaint_received", actor, json!({ "complaint_id": id }));
        e.subject = c.person_id;
        write_audited(
            self,
            sqlx::query(
                "INSERT INTO complaints (id, person_id, channel, received_at, body, status) VALUES ($1, $2, $3, $4, $5, 'open')",
            )
            .bind(id.to_string())
            .bind(c.person_id.map(|p| p.to_string()))
            .bind(&c.channel)
            .bind(ts(now))
            .bind(ct),
            "complaint",
            id,
            &e,
            now,
        )
        .await?;
        Ok(Complaint {
            id,
            person_id: c.person_id,
            channel: c.channel.clone(),
            received_at: now,
            body: c.body.clone(),
            status: "open".into(),
            resolved_at: None,
            response: None,
        })
    }

    /// Resolve a complaint with a response.
    pub async fn resolve_complaint(&self, id: Uuid, response: &str, actor: &str) -> Result<()> {
        let now = crate::now();
        write_audited(
            self,
            sqlx::query("UPDATE complaints SET status = 'resolved', resolved_at = $1, response = $2 WHERE id = $3 AND status = 'open'")
            .bind(ts(now))
            .bind(response)
            .bind(id.to_string()),
            "open complaint",
            id,
            &AuditEntry::new("complaint_resolved", actor, json!({ "complaint_id": id })),
            now,
        )
        .await
    }

    /// All complaints, decrypted, newest first.
    pub async fn complaints(&self) -> Result<Vec<Complaint>> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT id, person_id, channel, received_at, body, status, resolved_at, response FROM complaints ORDER BY received_at DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id = r.s("id")?;
                let body = self
                    .keys
                    .open(&id, &r.try_get::<Vec<u8>, _>("body")?, "complaint")?;
                Ok(Complaint {
                    id: crate::parse_id(&id, "complaints.id")?,
                    person_id: r.oid("person_id")?,
                    channel: r.s("channel")?,
                    received_at: r.t("received_at")?,
                    body: String::from_utf8_lossy(&body).into_owned(),
                    status: r.s("status")?,
                    resolved_at: r.ot("resolved_at")?,
                    response: r.os("response")?,
                })
            })
            .collect()
    }

    /// Record a filing (initial, change, deregistration) with its snapshot.
    pub async fn add_filing(&self, f: &NewFiling, actor: &str) -> Result<FilingRecord> {
        let id = new_id();
        let now = crate::now();
        let snapshot = serde_json::to_string(&f.snapshot).expect("Value serialises");
        write_audited(
            self,
            sqlx::query(
                "INSERT INTO filing_records (id, processor_id, kind, threshold_reached_date, due_date, snapshot, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id.to_string())
            .bind(f.processor_id.to_string())
            .bind(f.kind.as_str())
            .bind(f.threshold_reached_date.map(|d| d.format("%Y-%m-%d").to_string()))
            .bind(f.due_date.map(|d| d.format("%Y-%m-%d").to_string()))
            .bind(snapshot)
            .bind(ts(now)),
            "filing record",
            id,
            &AuditEntry::new(
                "filing_recorded",
                actor,
                json!({ "filing_id": id, "kind": f.kind, "due_date": f.due_date }),
            ),
            now,
        )
        .await?;
        Ok(FilingRecord {
            id,
            filing: f.clone(),
            filed_at: None,
            filing_number: None,
            created_at: now,
        })
    }

    /// Mark a filing as filed, with the number the CAC gave.
    pub async fn mark_filed(&self, id: Uuid, filing_number: &str, actor: &str) -> Result<()> {
        let now = crate::now();
        write_audited(
            self,
            sqlx::query("UPDATE filing_records SET filed_at = $1, filing_number = $2 WHERE id = $3 AND filed_at IS NULL")
            .bind(ts(now))
            .bind(filing_number)
            .bind(id.to_string()),
            "unfiled filing record",
            id,
            &AuditEntry::new(
                "filing_filed",
                actor,
                json!({ "filing_id": id, "filing_number": filing_number }),
            ),
            now,
        )
        .await
    }

    /// Filing records of a processor, oldest first.
    pub async fn filings(&self, processor_id: Uuid) -> Result<Vec<FilingRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, threshold_reached_date, due_date, filed_at, filing_number, snapshot, created_at
             FROM filing_records WHERE processor_id = $1 ORDER BY created_at",
        )
        .bind(processor_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FilingRecord {
                    id: r.id("id")?,
                    filing: NewFiling {
                        processor_id,
                        kind: FilingKind::parse(&r.s("kind")?)?,
                        threshold_reached_date: r
                            .os("threshold_reached_date")?
                            .map(|s| date(&s, "filing date"))
                            .transpose()?,
                        due_date: r
                            .os("due_date")?
                            .map(|s| date(&s, "filing due date"))
                            .transpose()?,
                        snapshot: serde_json::from_str(&r.s("snapshot")?)
                            .map_err(|_| StoreError::Corrupt("filing snapshot".into()))?,
                    },
                    filed_at: r.ot("filed_at")?,
                    filing_number: r.os("filing_number")?,
                    created_at: r.t("created_at")?,
                })
            })
            .collect()
    }

    /// Store the next PIA version of a processor (kept ≥ 3 years, R14).
    pub async fn add_pia(&self, p: &NewPia, actor: &str) -> Result<PiaVersion> {
        if p.content.trim().is_empty() {
            return Err(StoreError::Invalid("PIA content is empty".into()));
        }
        let id = new_id();
        let now = crate::now();
        let sum = sha256_hex(&p.content);
        let mut tx = self.begin().await?;
        let version = sqlx::query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) AS v FROM pia_versions WHERE processor_id = $1")
            .bind(p.processor_id.to_string())
            .fetch_one(&mut *tx)
            .await?
            .i("v")?
            + 1;
        sqlx::query(
            "INSERT INTO pia_versions (id, processor_id, scenario_id, version, content, sha256, approved_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id.to_string())
        .bind(p.processor_id.to_string())
        .bind(p.scenario_id.map(|s| s.to_string()))
        .bind(version)
        .bind(&p.content)
        .bind(&sum)
        .bind(p.approved_by.clone())
        .bind(ts(now))
        .execute(&mut *tx)
        .await?;
        let mut e = AuditEntry::new(
            "pia_version",
            actor,
            json!({ "pia_id": id, "version": version, "sha256": sum }),
        );
        e.scenario_id = p.scenario_id;
        append(self, &mut tx, &e, now).await?;
        tx.commit().await?;
        Ok(PiaVersion {
            id,
            version,
            sha256: sum,
            created_at: now,
            pia: p.clone(),
        })
    }

    /// PIA versions of a processor, oldest first.
    pub async fn pias(&self, processor_id: Uuid) -> Result<Vec<PiaVersion>> {
        let rows = sqlx::query(
            "SELECT id, scenario_id, version, content, sha256, approved_by, created_at FROM pia_versions
             WHERE processor_id = $1 ORDER BY version",
        )
        .bind(processor_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PiaVersion {
                    id: r.id("id")?,
                    version: r.i("version")?,
                    sha256: r.s("sha256")?,
                    created_at: r.t("created_at")?,
                    pia: NewPia {
                        processor_id,
                        scenario_id: r.oid("scenario_id")?,
                        content: r.s("content")?,
                        approved_by: r.os("approved_by")?,
                    },
                })
            })
            .collect()
    }
}

fn event_from(r: &sqlx::any::AnyRow) -> Result<VerificationEvent> {
    use sqlx::Row;
    Ok(VerificationEvent {
        id: r.id("id")?,
        at: r.t("at")?,
        event: NewVerificationEvent {
            person_id: r.oid("person_id")?,
            scenario_id: r.id("scenario_id")?,
            device_id: r.oid("device_id")?,
            method: r.s("method")?,
            result: r.s("result")?,
            score: r.try_get::<Option<f64>, _>("score")?,
            threshold: r.try_get::<Option<f64>, _>("threshold")?,
            refusal_rule: r.os("refusal_rule")?,
            score_model: r.os("score_model")?,
        },
    })
}
