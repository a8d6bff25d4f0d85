//! The site side: runs inside `facegate serve --hub URL`. Every interval it
//! makes one signed `POST /v1/sync`: the audit chain from the hub's cursor
//! (the outbox *is* the chain: nothing is queued twice, nothing is lost by
//! a crash), the chain head, the rechecked hashes the hub asked for, and
//! the receipts of applied commands. Commands in the answer go to the
//! store's inbox first, then are applied in order through the core's own
//! withdraw / erase operations, each marked applied once. A site that
//! cannot reach the hub keeps serving; it catches up when it can.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use facegate_core::{ops::Acting, Core};
use uuid::Uuid;

use crate::keys::{PseudonymKey, SiteKey, H_SIG, H_SITE, H_TIME};
use crate::proto::*;
use crate::tls_http::{HubConn, HubUrl};
use crate::{HubError, Result};

/// Events per sync request.
pub const BATCH: i64 = 500;

/// How a site reaches its hub.
pub struct SiteConfig {
    pub hub: String,
    pub site_id: Uuid,
    pub site_key: PathBuf,
    pub pseudonym_key: PathBuf,
    /// The hub's certificate (or its CA), PEM.
    pub hub_ca: PathBuf,
    pub interval: Duration,
    /// The hub's manifest-signing public key (64 hex digits in a file),
    /// pinned in the store: manifests are then taken only signed by it.
    /// Without it every pushed manifest is refused.
    pub manifest_key: Option<PathBuf>,
}

/// What one sync did.
#[derive(Debug, Default, Clone)]
pub struct SyncOutcome {
    pub events_sent: usize,
    pub next_seq: i64,
    pub commands_applied: usize,
    pub receipts_sent: usize,
}

pub struct SiteSync {
    core: Arc<Core>,
    site_id: Uuid,
    key: SiteKey,
    pkey: PseudonymKey,
    url: HubUrl,
    tls: Arc<rustls::ClientConfig>,
    conn: Option<HubConn>,
    /// The hub's cursor and recheck request from the last answer (a cache:
    /// the hub's copy is the truth, so a restart only costs one round trip).
    cursor: Option<i64>,
    recheck: (i64, i64),
    /// The hub's manifest public key, as configured.
    manifest_pub: Option<String>,
}

impl SiteSync {
    pub fn new(core: Arc<Core>, cfg: &SiteConfig) -> Result<SiteSync> {
        Ok(SiteSync {
            core,
            site_id: cfg.site_id,
            key: SiteKey::load(&cfg.site_key)?,
            pkey: PseudonymKey::load(&cfg.pseudonym_key)?,
            url: HubUrl::parse(&cfg.hub)?,
            tls: crate::keys::client_tls(&cfg.hub_ca)?,
            conn: None,
            cursor: None,
            recheck: (1, 0),
            manifest_pub: cfg
                .manifest_key
                .as_deref()
                .map(load_manifest_key)
                .transpose()?,
        })
    }

    /// Before the first sync: pin the hub's manifest key in the store, if
    /// given (while pinned, the site's own `POST /v1/scenarios` is refused: manifests
    /// come signed from the hub), and deploy again, after checking its
    /// signature again, the newest hub manifest of each scenario (a restart
    /// runs what the hub last sent, not only the startup manifest). Needs
    /// no hub: an offline site starts the same way.
    pub async fn start(&self) -> Result<usize> {
        let store = &self.core.store;
        // Without a manifest key the pin is left as it is: only the
        // explicit `facegate hub-detach` removes it.
        if let Some(k) = &self.manifest_pub {
            store.hub_pin_manifest_key(k).await.map_err(Self::se)?;
        }
        let mut n = 0;
        for m in stored_hub_manifests(store, self.manifest_pub.as_deref())
            .await
            .map_err(Self::se)?
        {
            let sm = m.signed;
            if !m.verifies {
                tracing::warn!(
                    scenario = sm.scenario,
                    "a stored hub manifest no longer verifies with the pinned key; not deployed"
                );
                continue;
            }
            match self.core.deploy_scenario(&sm.manifest).await {
                Ok(_) => n += 1,
                Err(e) => tracing::warn!(scenario = sm.scenario, "hub manifest: {e}"),
            }
        }
        Ok(n)
    }

    /// Deploy the signed manifest a `deploy` command carried: refused
    /// unless it verifies with the pinned hub key and is not older than the
    /// version of its scenario the site runs; then the core's own deploy
    /// (lint, notice change, PIA). Returns the receipt status.
    async fn apply_manifest(&self, command: Uuid) -> Result<ReceiptStatus> {
        let store = &self.core.store;
        let refuse = |why: String| async move {
            tracing::warn!("hub manifest refused: {why}");
            store
                .hub_manifest_outcome(command, Some(&why))
                .await
                .map_err(Self::se)?;
            Ok::<_, HubError>(ReceiptStatus::Refused)
        };
        let Some(m) = store.hub_manifest(command).await.map_err(Self::se)? else {
            return refuse("the command carried no manifest".into()).await;
        };
        let pinned = store.hub_manifest_key().await.map_err(Self::se)?;
        let sm = SignedManifest::from(&m);
        let Some(pinned) = pinned else {
            return refuse("no hub manifest key is pinned at this site".into()).await;
        };
        if !crate::manifests::verify(&pinned, &sm) {
            return refuse("the signature does not verify with the pinned hub key".into()).await;
        }
        let running = store.hub_manifests_deployed().await.map_err(Self::se)?;
        if let Some(r) = running
            .iter()
            .find(|r| r.scenario == m.scenario && r.version > m.version)
        {
            return refuse(format!(
                "version {} is older than version {} this site runs",
                m.version, r.version
            ))
            .await;
        }
        match self.core.deploy_scenario(&m.manifest).await {
            Ok(d) => {
                if d.notice_version != m.notice_version {
                    tracing::warn!(
                        "hub manifest {}: the site's notice version differs from the hub's",
                        m.manifest_id
                    );
                }
                store
                    .hub_manifest_outcome(command, None)
                    .await
                    .map_err(Self::se)?;
                Ok(ReceiptStatus::Deployed)
            }
            Err(e) => refuse(format!("deploy: {e}")).await,
        }
    }

    /// Sync forever, every `interval`; errors are logged and retried.
    pub async fn run(mut self, interval: Duration) {
        loop {
            match self.sync_once().await {
                Ok(o) if o.commands_applied > 0 || o.events_sent as i64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    tracing::warn!("hub sync: {e}");
                }
            }
            tokio::time::sleep(interval).await;
        }
    }

    fn se<E: std::fmt::Display>(e: E) -> HubError {
        HubError::Transport(format!("site store: {e}"))
    }

    async fn pseudonym_of(&self, person: Uuid) -> Result<Option<Hash32>> {
        person_pseudonym(&self.core.store, &self.pkey, person)
            .await
            .map_err(Self::se)
    }

    /// The consent record an audit record gave or withdrew, as the hub
    /// keeps it (pseudonym, scenario, kind, notice; nothing else).
    async fn consent_of(&self, details: &str) -> Result<Option<ConsentRecord>> {
        let store = &self.core.store;
        let Some(id) = serde_json::from_str::<serde_json::Value>(details)
            .ok()
            .and_then(|d| {
                d["consent_id"]
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
            })
        else {
            return Ok(None);
        };
        let Ok(c) = store.consent(id).await else {
            return Ok(None);
        };
        let notice = match c.notice_id {
            Some(n) => store
                .notices(c.scenario_id)
                .await
                .map_err(Self::se)?
                .into_iter()
                .find(|x| x.id == n),
            None => None,
        };
        let kind = ConsentKindWord::parse(c.kind.as_str()).ok_or_else(|| {
            HubError::Transport(format!(
                "consent kind {:?} has no hub word",
                c.kind.as_str()
            ))
        })?;
        Ok(Some(ConsentRecord {
            consent_id: c.id,
            pseudonym: self.pseudonym_of(c.person_id).await?,
            scenario_id: c.scenario_id,
            kind,
            notice_id: c.notice_id,
            notice_version: notice.as_ref().map(|n| n.version),
            notice_sha256: notice.as_ref().and_then(|n| Hash32::parse(&n.sha256)),
            given_at: c.given_at,
            withdrawn_at: c.withdrawn_at,
        }))
    }

    async fn events_from(&self, from: i64) -> Result<(Vec<SiteEvent>, Vec<ConsentRecord>)> {
        let store = &self.core.store;
        let recs = store.audit_records(from, BATCH).await.map_err(Self::se)?;
        let mut out = Vec::with_capacity(recs.len());
        let mut consents = Vec::new();
        for r in recs {
            if matches!(r.event.as_str(), "consent_given" | "consent_withdrawn") {
                if let Some(c) = self.consent_of(&r.details).await? {
                    consents.push(c);
                }
            }
            let subject = r.subject.as_deref().and_then(|s| Uuid::parse_str(s).ok());
            let kind = match r.event.as_str() {
                "enrol" => EventKind::FaceStored,
                "face_data_deleted" => EventKind::FaceDeleted,
                _ => EventKind::Other,
            };
            let (pseudonym, still_holds) = match (kind, subject) {
                (EventKind::Other, _) | (_, None) => (None, false),
                (_, Some(p)) => (
                    self.pseudonym_of(p).await?,
                    kind == EventKind::FaceDeleted
                        && store.hub_template_count(p).await.map_err(Self::se)? > 0,
                ),
            };
            out.push(SiteEvent {
                seq: r.seq,
                record_hash: Hash32::parse(&r.hash)
                    .ok_or_else(|| HubError::Transport("audit hash is not 32 bytes".into()))?,
                kind,
                pseudonym,
                still_holds,
                at: chrono::DateTime::parse_from_rfc3339(&r.at)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .unwrap_or_else(|_| chrono::Utc::now()),
                event: EventWord::parse(&r.event),
            });
        }
        Ok((out, consents))
    }

    /// Apply every received, unapplied command in order (exactly once: the
    /// inbox row is marked applied after the core's operation; a crash in
    /// between re-runs an operation that finds nothing left to delete).
    pub async fn apply_inbox(&self) -> Result<usize> {
        let store = &self.core.store;
        let mut n = 0;
        for c in store.hub_inbox_unapplied().await.map_err(Self::se)? {
            let kind = CommandKind::parse(&c.kind).ok_or_else(|| {
                HubError::Transport(format!("site inbox: unknown command kind {:?}", c.kind))
            })?;
            if kind == CommandKind::Deploy {
                let status = self.apply_manifest(c.command_id).await?;
                if store
                    .hub_inbox_applied(c.command_id, status.as_str(), 0, None)
                    .await
                    .map_err(Self::se)?
                {
                    n += 1;
                }
                continue;
            }
            let persons = store.hub_persons_of(&c.pseudonym).await.map_err(Self::se)?;
            let mut deleted = 0i64;
            let mut receipt = None;
            for p in &persons {
                if kind == CommandKind::Access {
                    // A request in this site's own queue, due in 15 working
                    // days, answered here (the person reads the export at
                    // this site's portal): the hub only learns received,
                    // then answered. Its channel names the command, so a
                    // crash before the inbox row is marked applied finds
                    // the request again instead of opening a second one.
                    let channel = format!("hub:{}", c.command_id);
                    let existing = store
                        .hub_request_opened(&channel, *p)
                        .await
                        .map_err(Self::se)?;
                    let opened = match existing {
                        Some(id) => Ok(id),
                        None => self
                            .core
                            .open_request(
                                *p,
                                facegate_store::RequestKind::Access,
                                &channel,
                                "hub:access",
                                facegate_core::requests::Due::WorkingDays,
                            )
                            .await
                            .map(|r| r.id),
                    };
                    match opened {
                        Ok(id) => receipt = receipt.or(Some(id)),
                        Err(facegate_core::CoreError::NotFound(_)) => {}
                        Err(e) => return Err(Self::se(e)),
                    }
                } else if kind == CommandKind::Erase {
                    match self.core.erase_person(*p, "hub:erase").await {
                        Ok(r) => {
                            deleted += r.templates_deleted as i64;
                            receipt = Some(r.receipt_id);
                        }
                        Err(facegate_core::CoreError::NotFound(_)) => {}
                        Err(e) => return Err(Self::se(e)),
                    }
                } else {
                    let consents = store.consents(*p).await.map_err(Self::se)?;
                    for k in consents.into_iter().filter(|k| {
                        k.kind == facegate_store::ConsentKind::Processing
                            && k.withdrawn_at.is_none()
                    }) {
                        let r = self
                            .core
                            .withdraw_consent(k.id, Acting::Operator, "hub", "hub:withdraw")
                            .await
                            .map_err(Self::se)?;
                        if let Some(d) = r.deletion {
                            deleted += d.templates_deleted as i64;
                            receipt = Some(d.receipt_id);
                        }
                    }
                }
            }
            let access = kind == CommandKind::Access;
            let status = if persons.is_empty() || (access && receipt.is_none()) {
                ReceiptStatus::NothingHeld
            } else if access {
                ReceiptStatus::Received
            } else {
                ReceiptStatus::Applied
            };
            if store
                .hub_inbox_applied(c.command_id, status.as_str(), deleted, receipt)
                .await
                .map_err(Self::se)?
            {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Access requests from the hub that this site has answered since the
    /// last look: their "answered" receipt (with the time) goes next.
    pub async fn note_answers(&self) -> Result<usize> {
        let store = &self.core.store;
        let mut n = 0;
        for c in store.hub_inbox_awaiting_answer().await.map_err(Self::se)? {
            let Some(id) = c.site_receipt_id else {
                continue;
            };
            let r = match self.core.request(id).await {
                Ok(r) => r,
                Err(facegate_core::CoreError::NotFound(_)) => continue,
                Err(e) => return Err(Self::se(e)),
            };
            if r.status != "open" {
                let at = r.completed_at.unwrap_or_else(chrono::Utc::now);
                store
                    .hub_inbox_answered(c.command_id, at)
                    .await
                    .map_err(Self::se)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// One round trip with the hub.
    pub async fn sync_once(&mut self) -> Result<SyncOutcome> {
        let store = self.core.store.clone();
        self.apply_inbox().await?;
        self.note_answers().await?;
        let (events, consents) = match self.cursor {
            Some(c) => self.events_from(c).await?,
            None => (Vec::new(), Vec::new()),
        };
        let head = store.audit_head().await.map_err(Self::se)?;
        let head = Hash32::parse(&head.hash)
            .filter(|_| head.seq > 0)
            .map(|h| ChainHead {
                seq: head.seq,
                hash: h,
            });
        let mut recheck = Vec::new();
        let (a, b) = self.recheck;
        if b >= a {
            for r in store.audit_records(a, b - a + 1).await.map_err(Self::se)? {
                if let Some(h) = Hash32::parse(&r.compute_hash()) {
                    recheck.push(ChainHead {
                        seq: r.seq,
                        hash: h,
                    });
                }
            }
        }
        let unacked = store.hub_inbox_unacknowledged().await.map_err(Self::se)?;
        let receipts: Vec<CommandReceipt> = unacked
            .iter()
            .map(|c| CommandReceipt {
                command_id: c.command_id,
                status: c
                    .status
                    .as_deref()
                    .and_then(ReceiptStatus::parse)
                    .unwrap_or(ReceiptStatus::Applied),
                templates_deleted: c.templates_deleted.unwrap_or(0),
                site_receipt_id: c.site_receipt_id,
                applied_at: c.applied_at.unwrap_or_else(chrono::Utc::now),
            })
            .collect();
        let req = SyncRequest {
            events,
            head,
            recheck,
            receipts,
            consents,
        };
        let body = serde_json::to_vec(&req).expect("serialises");
        let resp = self.post_sync(body).await?;
        store
            .hub_inbox_acknowledge(
                &req.receipts
                    .iter()
                    .map(|r| r.command_id)
                    .collect::<Vec<_>>(),
            )
            .await
            .map_err(Self::se)?;
        for c in &resp.commands {
            // The manifest first, so the inbox row never lacks it.
            if let Some(m) = &c.manifest {
                store
                    .hub_manifest_receive(
                        c.id,
                        m.manifest_id,
                        &m.scenario,
                        m.version,
                        &m.notice_version,
                        &m.manifest,
                        &m.signature,
                    )
                    .await
                    .map_err(Self::se)?;
            }
            store
                .hub_inbox_receive(c.id, c.seq, c.kind.as_str(), &c.pseudonym.hex())
                .await
                .map_err(Self::se)?;
            // Delivered again after it was applied and its receipt
            // acknowledged (the hub lost track of the receipt): applied
            // once still; the receipt is sent again.
            store
                .hub_inbox_resend_receipt(c.id)
                .await
                .map_err(Self::se)?;
        }
        let applied = self.apply_inbox().await?;
        self.cursor = Some(resp.next_seq);
        self.recheck = (resp.recheck_from, resp.recheck_to);
        Ok(SyncOutcome {
            events_sent: req.events.len(),
            next_seq: resp.next_seq,
            commands_applied: applied,
            receipts_sent: req.receipts.len(),
        })
    }

    async fn post_sync(&mut self, body: Vec<u8>) -> Result<SyncResponse> {
        if self.conn.is_none() {
            self.conn = Some(HubConn::connect(&self.url, self.tls.clone()).await?);
        }
        let conn = self.conn.as_mut().expect("connected");
        let (status, out) = signed_post(conn, &self.key, self.site_id, "/v1/sync", body).await;
        let (status, out) = match (status, out) {
            (Ok(s), o) => (s, o),
            (Err(e), _) => {
                self.conn = None;
                return Err(e);
            }
        };
        if status != 200 {
            return Err(HubError::Transport(format!(
                "hub answered {status}: {}",
                String::from_utf8_lossy(&out)
            )));
        }
        serde_json::from_slice(&out).map_err(|e| HubError::Transport(format!("hub answer: {e}")))
    }
}

/// The hub's manifest public key from its file (`manifest.pub`): 64 hex
/// digits, or a configuration error.
pub fn load_manifest_key(path: &std::path::Path) -> Result<String> {
    let k = std::fs::read_to_string(path)
        .map_err(|e| HubError::Config(format!("hub manifest key {}: {e}", path.display())))?;
    let k = k.trim().to_string();
    if Hash32::parse(&k).is_none() {
        return Err(HubError::Config(format!(
            "hub manifest key {}: 64 hex digits expected",
            path.display()
        )));
    }
    Ok(k)
}

impl From<&facegate_store::HubManifestRow> for SignedManifest {
    fn from(m: &facegate_store::HubManifestRow) -> SignedManifest {
        SignedManifest {
            manifest_id: m.manifest_id,
            scenario: m.scenario.clone(),
            version: m.version,
            notice_version: m.notice_version.clone(),
            manifest: m.manifest.clone(),
            signature: m.signature.clone(),
        }
    }
}

/// A hub-signed manifest this site deployed, and whether its signature
/// verifies now with the hub key.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub signed: SignedManifest,
    pub verifies: bool,
}

/// The newest deployed hub manifest of each scenario in this site's store,
/// each with its signature checked again under `key` (none: nothing
/// verifies). The one check a start makes, whether `serve` picks what it
/// starts with or [`SiteSync::start`] deploys again.
pub async fn stored_hub_manifests(
    store: &facegate_store::Store,
    key: Option<&str>,
) -> facegate_store::Result<Vec<StoredManifest>> {
    Ok(store
        .hub_manifests_deployed()
        .await?
        .iter()
        .map(|m| {
            let signed = SignedManifest::from(m);
            let verifies = key.is_some_and(|k| crate::manifests::verify(k, &signed));
            StoredManifest { signed, verifies }
        })
        .collect())
}

/// Sign and send one site request (also used by the bench's simulated sites).
pub async fn signed_post(
    conn: &mut HubConn,
    key: &SiteKey,
    site: Uuid,
    path: &str,
    body: Vec<u8>,
) -> (Result<u16>, Vec<u8>) {
    let time = chrono::Utc::now().timestamp();
    let sig = key.sign("POST", path, time, &body);
    match conn
        .send(
            "POST",
            path,
            &[
                (H_SITE, site.to_string()),
                (H_TIME, time.to_string()),
                (H_SIG, sig),
            ],
            body,
        )
        .await
    {
        Ok((s, b)) => (Ok(s), b),
        Err(e) => (Err(e), Vec::new()),
    }
}

/// The hub pseudonym of a person at this site: the one remembered, or made
/// from their identity under the processor's key and remembered (so the
/// hub sees one pseudonym even if the identity is later corrected). `None`
/// if the site holds no identity for them.
pub async fn person_pseudonym(
    store: &facegate_store::Store,
    key: &PseudonymKey,
    person: Uuid,
) -> facegate_store::Result<Option<Hash32>> {
    if let Some(p) = store.hub_pseudonym_of(person).await? {
        return Ok(Hash32::parse(&p));
    }
    let Ok(p) = store.person(person).await else {
        return Ok(None);
    };
    let Some(id) = p.identity else {
        return Ok(None);
    };
    let dob = id.date_of_birth.map(|d| d.to_string());
    let h = key.pseudonym(&id.display_name, id.contact.as_deref(), dob.as_deref());
    store.hub_remember_pseudonym(person, &h.hex()).await?;
    Ok(Some(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifests::ManifestKey;

    /// The one check a site's start makes on the hub manifests it holds:
    /// the newest deployed one of each scenario, verified under the hub
    /// key; another key's, or any without a key, does not verify.
    #[tokio::test]
    async fn a_start_checks_the_newest_deployed_hub_manifest_of_each_scenario() {
        let dir = std::env::temp_dir().join(format!("fg-hub-site-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}", dir.join("facegate.db").display());
        let store =
            facegate_store::Store::open(&url, facegate_store::StoreKeys::from_master(&[3; 32]))
                .await
                .unwrap();
        let hub = ManifestKey::from_seed([1; 32]);
        let other = ManifestKey::from_seed([2; 32]);
        let nv = "ab".repeat(32);
        let put = |k: &ManifestKey, scenario: &str, version: i64, deployed: bool| {
            let m = k.sign(Uuid::now_v7(), scenario, version, &nv, "id = \"x\"\n");
            let store = &store;
            async move {
                let c = Uuid::now_v7();
                store
                    .hub_manifest_receive(
                        c,
                        m.manifest_id,
                        &m.scenario,
                        m.version,
                        &m.notice_version,
                        &m.manifest,
                        &m.signature,
                    )
                    .await
                    .unwrap();
                if deployed {
                    store.hub_manifest_outcome(c, None).await.unwrap();
                }
                m
            }
        };
        put(&hub, "gate", 1, true).await;
        let gate = put(&hub, "gate", 2, true).await;
        put(&hub, "gate", 3, false).await;
        let lobby = put(&other, "lobby", 1, true).await;

        let got = stored_hub_manifests(&store, Some(&hub.public_hex()))
            .await
            .unwrap();
        let got: Vec<(SignedManifest, bool)> =
            got.into_iter().map(|m| (m.signed, m.verifies)).collect();
        assert_eq!(got, vec![(gate.clone(), true), (lobby.clone(), false)]);
        let none = stored_hub_manifests(&store, None).await.unwrap();
        assert!(none.iter().all(|m| !m.verifies));
        assert_eq!(none.len(), 2);
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
