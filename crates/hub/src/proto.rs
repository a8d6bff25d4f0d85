//! The site ↔ hub protocol: every message the hub accepts from a site and
//! every command it sends back.
//!
//! **Nothing biometric can travel here, by construction.** No message has a
//! free-form text, byte or number-array field: identifiers are UUIDs, hashes
//! and pseudonyms are exactly 32 bytes written as 64 hex digits
//! ([`Hash32`]), kinds are closed enums, counts are integers, times are
//! RFC 3339 instants. Every struct denies unknown fields, so an `image`,
//! `embedding` or `template` key is a parse error, and a 512-float embedding
//! or a sealed template cannot fit in a 32-byte field. `tests::r11_*` prove
//! it against the real serialisation.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Exactly 32 bytes (a SHA-256 / HMAC-SHA-256 output), as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// Parse 64 hex digits.
    pub fn parse(s: &str) -> Option<Hash32> {
        if s.len() != 64 {
            return None;
        }
        let v = hex::decode(s).ok()?;
        Some(Hash32(v.try_into().ok()?))
    }
    /// The 64 hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", &self.hex()[..12])
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Hash32::parse(&s)
            .ok_or_else(|| serde::de::Error::custom("expected exactly 64 hex digits (32 bytes)"))
    }
}

/// What an audit record means to the hub. Everything else about the record
/// (actor, details) stays at the site; the hub keeps its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Face information of the person was stored (an enrolment).
    FaceStored,
    /// Face information of the person was deleted; `still_holds` says
    /// whether the site keeps any other template of theirs.
    FaceDeleted,
    /// Any other record (kept for the chain, not for the headcount).
    Other,
}

/// One record of the site's audit chain, as the hub sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteEvent {
    /// The record's position in the site's chain (from 1, no gaps).
    pub seq: i64,
    /// The record's hash in the site's chain.
    pub record_hash: Hash32,
    pub kind: EventKind,
    /// Keyed pseudonym of the person (HMAC with the processor's key), for
    /// face events whose person is known.
    pub pseudonym: Option<Hash32>,
    /// For `face_deleted`: the site still holds other face information of
    /// the person.
    pub still_holds: bool,
    pub at: DateTime<Utc>,
    /// What the record is (the site's event name): the dossier's processing
    /// records. Absent from a site that predates it.
    #[serde(default)]
    pub event: Option<EventWord>,
}

/// The name of a site's audit event ("verify", "enrol", "consent_given"…),
/// for the dossier's processing records: 1 to 40 characters of `a-z`,
/// `0-9` and `_`, starting with a letter; nothing else parses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventWord(String);

impl EventWord {
    pub fn parse(s: &str) -> Option<EventWord> {
        let ok = (1..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        ok.then(|| EventWord(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for EventWord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        EventWord::parse(&s).ok_or_else(|| serde::de::Error::custom("expected an event name"))
    }
}

/// The site's audit chain head, anchored at the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Hash32,
}

/// What a command did at the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Applied: the face information is deleted.
    Applied,
    /// The site holds nothing of this person (nothing to do).
    NothingHeld,
    /// A pushed manifest: its hub signature checked and deployed through
    /// the core's deploy path.
    Deployed,
    /// A pushed manifest the site refused (a signature that does not
    /// verify with the pinned hub key, an older version than the one it
    /// runs, or the core's deploy refused it).
    Refused,
    /// An access request: opened in the site's own request queue (the
    /// site's request id is `site_receipt_id`, due in 15 working days).
    Received,
    /// An access request answered at the site (`applied_at` is when); the
    /// person reads the export at that site's portal, so no personal data
    /// travels to the hub.
    Answered,
}

impl ReceiptStatus {
    pub const ALL: [ReceiptStatus; 6] = [
        ReceiptStatus::Applied,
        ReceiptStatus::NothingHeld,
        ReceiptStatus::Deployed,
        ReceiptStatus::Refused,
        ReceiptStatus::Received,
        ReceiptStatus::Answered,
    ];

    /// The one word for it: on the wire (serde), in the hub's and the
    /// site's tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Applied => "applied",
            ReceiptStatus::NothingHeld => "nothing_held",
            ReceiptStatus::Deployed => "deployed",
            ReceiptStatus::Refused => "refused",
            ReceiptStatus::Received => "received",
            ReceiptStatus::Answered => "answered",
        }
    }

    /// The status a word names (as [`ReceiptStatus::as_str`] writes it).
    pub fn parse(s: &str) -> Option<ReceiptStatus> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A site's deletion receipt for one hub command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandReceipt {
    pub command_id: Uuid,
    pub status: ReceiptStatus,
    pub templates_deleted: i64,
    /// The site's own deletion receipt id (in its audit log).
    pub site_receipt_id: Option<Uuid>,
    pub applied_at: DateTime<Utc>,
}

/// One sync round trip, initiated by the site (sites sit behind NAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// Events from the hub's `next_seq` on, in order.
    pub events: Vec<SiteEvent>,
    /// The site's chain head now.
    pub head: Option<ChainHead>,
    /// The site's hashes, recomputed now, of the records the hub asked to
    /// recheck (its anchors).
    pub recheck: Vec<ChainHead>,
    /// Receipts for commands applied since the last sync.
    pub receipts: Vec<CommandReceipt>,
    /// The consent records that the events in this batch gave or withdrew
    /// (R24 dossier); absent from a site that predates them.
    #[serde(default)]
    pub consents: Vec<ConsentRecord>,
}

/// Which consent (the store's kinds, as closed words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKindWord {
    Processing,
    Transmission,
    ImageRetention,
}

impl ConsentKindWord {
    pub const ALL: [ConsentKindWord; 3] = [
        ConsentKindWord::Processing,
        ConsentKindWord::Transmission,
        ConsentKindWord::ImageRetention,
    ];

    /// The one word for it: on the wire (serde), in the hub's table and
    /// the dossier, and the site store's own word for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentKindWord::Processing => "processing",
            ConsentKindWord::Transmission => "transmission",
            ConsentKindWord::ImageRetention => "image_retention",
        }
    }

    /// The kind a word names (as [`ConsentKindWord::as_str`] writes it).
    pub fn parse(s: &str) -> Option<ConsentKindWord> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One consent record as the hub keeps it for the inspection dossier: who
/// (a pseudonym, never a name or a face), which scenario, which kind, under
/// which notice, given and withdrawn when. Identifiers, times, a version
/// number and a 32-byte notice hash only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecord {
    pub consent_id: Uuid,
    pub pseudonym: Option<Hash32>,
    pub scenario_id: Uuid,
    pub kind: ConsentKindWord,
    pub notice_id: Option<Uuid>,
    pub notice_version: Option<i64>,
    pub notice_sha256: Option<Hash32>,
    pub given_at: DateTime<Utc>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// What the hub wants done at a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// Withdraw the person's processing consents (R8): templates deleted.
    Withdraw,
    /// Erase the person (deletion request, R14).
    Erase,
    /// Deploy the hub-signed scenario manifest in `manifest`.
    Deploy,
    /// The person asks for access to (a copy of) their information: the
    /// site opens a request in its own queue and answers it there.
    Access,
}

impl CommandKind {
    pub const ALL: [CommandKind; 4] = [
        CommandKind::Withdraw,
        CommandKind::Erase,
        CommandKind::Deploy,
        CommandKind::Access,
    ];

    /// The one word for it: on the wire (serde), in the hub's and the
    /// site's tables, and as a person's request kind.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Withdraw => "withdraw",
            CommandKind::Erase => "erase",
            CommandKind::Deploy => "deploy",
            CommandKind::Access => "access",
        }
    }

    /// The kind a word names (as [`CommandKind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<CommandKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A scenario manifest authored, linted and signed at the hub (Ed25519,
/// the hub's manifest key, whose public half the site pins). Travels only
/// hub → site: the manifest is the operator's text, never face
/// information, and no site message carries one back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedManifest {
    /// The hub's id of this manifest upload.
    pub manifest_id: Uuid,
    /// The scenario id the manifest declares.
    pub scenario: String,
    /// The hub's version of this scenario (1, 2, …).
    pub version: i64,
    /// The notice version the manifest renders (R4/R5), as the hub
    /// computed it; the site checks its own deploy gives the same.
    pub notice_version: String,
    /// The manifest text (TOML), exactly as uploaded.
    pub manifest: String,
    /// Ed25519 signature (128 hex digits) over
    /// [`SignedManifest::signed_bytes`].
    pub signature: String,
}

/// A command for one site; `id` is the idempotency key, `seq` the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubCommand {
    pub id: Uuid,
    pub seq: i64,
    pub kind: CommandKind,
    /// The person's pseudonym; for `deploy`, the SHA-256 of the manifest.
    pub pseudonym: Hash32,
    /// The person's request; for `deploy`, the manifest's id.
    pub request_id: Uuid,
    /// For `deploy` only: the signed manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<SignedManifest>,
}

/// The hub's answer to a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncResponse {
    /// The next event seq the hub expects from this site.
    pub next_seq: i64,
    /// Records `recheck_from ..= recheck_to` whose hashes the site must
    /// recompute and send next time (empty when `recheck_to < recheck_from`).
    pub recheck_from: i64,
    pub recheck_to: i64,
    /// Commands not yet receipted, in order.
    pub commands: Vec<HubCommand>,
}

#[cfg(test)]
mod tests {
    /// One mapping of kinds and statuses to their words: the same as the
    /// wire's, and read back to the same value.
    #[test]
    fn command_kinds_and_receipt_statuses_have_one_word_each() {
        for k in CommandKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(CommandKind::parse(k.as_str()), Some(k));
        }
        for r in ReceiptStatus::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert_eq!(ReceiptStatus::parse(r.as_str()), Some(r));
        }
        assert_eq!(CommandKind::parse("complaint"), None);
        assert_eq!(ReceiptStatus::parse("Applied"), None);
    }

    /// One word per consent kind: the wire's, read back to the same kind,
    /// and every kind a site's store records has its word here (the site
    /// sends its store's word; the hub writes this one).
    #[test]
    fn consent_kinds_have_one_word_each_and_every_stored_kind_has_one() {
        for k in ConsentKindWord::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(ConsentKindWord::parse(k.as_str()), Some(k));
        }
        use facegate_store::ConsentKind as Stored;
        for k in [
            Stored::Processing,
            Stored::Transmission,
            Stored::ImageRetention,
        ] {
            let w = ConsentKindWord::parse(k.as_str()).expect("a hub word for every stored kind");
            assert_eq!(Stored::parse(w.as_str()).unwrap(), k);
        }
        assert_eq!(ConsentKindWord::parse("Processing"), None);
    }

    use super::*;

    fn sample() -> SyncRequest {
        SyncRequest {
            events: vec![SiteEvent {
                seq: 1,
                record_hash: Hash32([7; 32]),
                kind: EventKind::FaceStored,
                pseudonym: Some(Hash32([9; 32])),
                still_holds: false,
                at: Utc::now(),
                event: EventWord::parse("verify"),
            }],
            head: Some(ChainHead {
                seq: 1,
                hash: Hash32([7; 32]),
            }),
            recheck: vec![],
            receipts: vec![CommandReceipt {
                command_id: Uuid::now_v7(),
                status: ReceiptStatus::Applied,
                templates_deleted: 1,
                site_receipt_id: Some(Uuid::now_v7()),
                applied_at: Utc::now(),
            }],
            consents: vec![ConsentRecord {
                consent_id: Uuid::now_v7(),
                pseudonym: Some(Hash32([9; 32])),
                scenario_id: Uuid::now_v7(),
                kind: ConsentKindWord::Processing,
                notice_id: Some(Uuid::now_v7()),
                notice_version: Some(1),
                notice_sha256: Some(Hash32([3; 32])),
                given_at: Utc::now(),
                withdrawn_at: Some(Utc::now()),
            }],
        }
    }

    /// Every string a message can hold is a UUID, a time, an enum word or
    /// exactly 64 hex digits: walk the real serialisation and check.
    fn assert_no_free_form(v: &serde_json::Value, path: &str) {
        match v {
            serde_json::Value::String(s) => {
                let ok = Hash32::parse(s).is_some()
                    || Uuid::parse_str(s).is_ok()
                    || DateTime::parse_from_rfc3339(s).is_ok()
                    || (s.len() <= 16 && s.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                assert!(ok, "{path}: free-form string {s:?}");
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    assert!(!x.is_number(), "{path}[{i}]: an array of numbers");
                    assert_no_free_form(x, &format!("{path}[{i}]"));
                }
            }
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    assert_no_free_form(x, &format!("{path}.{k}"));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn r11_messages_have_no_field_that_can_carry_face_information() {
        let req = serde_json::to_value(sample()).unwrap();
        assert_no_free_form(&req, "sync_request");
        let resp = serde_json::to_value(SyncResponse {
            next_seq: 2,
            recheck_from: 1,
            recheck_to: 1,
            commands: vec![
                HubCommand {
                    id: Uuid::now_v7(),
                    seq: 1,
                    kind: CommandKind::Erase,
                    pseudonym: Hash32([1; 32]),
                    request_id: Uuid::now_v7(),
                    manifest: None,
                },
                HubCommand {
                    id: Uuid::now_v7(),
                    seq: 2,
                    kind: CommandKind::Access,
                    pseudonym: Hash32([1; 32]),
                    request_id: Uuid::now_v7(),
                    manifest: None,
                },
            ],
        })
        .unwrap();
        assert_no_free_form(&resp, "sync_response");
        // An access request's receipts: received, then answered (a time),
        // never the data.
        let mut req = sample();
        req.receipts[0].status = ReceiptStatus::Received;
        let mut answered = req.receipts[0].clone();
        answered.status = ReceiptStatus::Answered;
        req.receipts.push(answered);
        assert_no_free_form(&serde_json::to_value(&req).unwrap(), "sync_request");
    }

    /// A pushed manifest travels hub → site only: a deploy command carries
    /// it and round-trips; nothing a site sends can (a receipt with a
    /// manifest, or any extra key, is a parse error).
    #[test]
    fn r11_a_manifest_travels_only_from_the_hub() {
        let m = SignedManifest {
            manifest_id: Uuid::now_v7(),
            scenario: "gate".into(),
            version: 2,
            notice_version: "ab".repeat(32),
            manifest: "id = \"gate\"\n".into(),
            signature: "cd".repeat(64),
        };
        let resp = SyncResponse {
            next_seq: 1,
            recheck_from: 1,
            recheck_to: 0,
            commands: vec![HubCommand {
                id: Uuid::now_v7(),
                seq: 1,
                kind: CommandKind::Deploy,
                pseudonym: Hash32([3; 32]),
                request_id: m.manifest_id,
                manifest: Some(m.clone()),
            }],
        };
        let back: SyncResponse =
            serde_json::from_value(serde_json::to_value(&resp).unwrap()).unwrap();
        assert_eq!(back, resp);
        let mut req = serde_json::to_value(sample()).unwrap();
        req["receipts"][0]["manifest"] = serde_json::to_value(&m).unwrap();
        assert!(serde_json::from_value::<SyncRequest>(req).is_err());
        let mut req = serde_json::to_value(sample()).unwrap();
        req["receipts"][0]["status"] = serde_json::json!("deployed");
        serde_json::from_value::<SyncRequest>(req).unwrap();
    }

    #[test]
    fn r11_an_image_embedding_or_template_is_refused_in_every_position() {
        let good = serde_json::to_value(sample()).unwrap();
        // A 512-d embedding, a base64 JPEG and a sealed template (as hex,
        // longer than 32 bytes) tried in every field and as extra keys.
        let embedding = serde_json::json!((0..512).map(|i| i as f32 / 512.0).collect::<Vec<_>>());
        let image =
            serde_json::json!("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDAoIChQNDAsLDA");
        let sealed = serde_json::json!(hex::encode([0xa5u8; 600]));
        let payloads = [embedding, image, sealed];
        let mut tried = 0;
        fn positions(v: &serde_json::Value, path: Vec<String>, out: &mut Vec<Vec<String>>) {
            if let serde_json::Value::Object(o) = v {
                for (k, x) in o {
                    let mut p = path.clone();
                    p.push(k.clone());
                    out.push(p.clone());
                    positions(x, p, out);
                }
            } else if let serde_json::Value::Array(a) = v {
                for (i, x) in a.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(i.to_string());
                    positions(x, p, out);
                }
            }
        }
        let mut all = Vec::new();
        positions(&good, vec![], &mut all);
        for p in &all {
            for bad in &payloads {
                let mut v = good.clone();
                let mut cur = &mut v;
                for k in p {
                    cur = match cur {
                        serde_json::Value::Object(o) => o.get_mut(k).unwrap(),
                        serde_json::Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
                        _ => unreachable!(),
                    };
                }
                *cur = bad.clone();
                assert!(
                    serde_json::from_value::<SyncRequest>(v).is_err(),
                    "{p:?} accepted a biometric payload"
                );
                tried += 1;
            }
        }
        for key in ["image", "embedding", "template", "sealed_template", "note"] {
            let mut v = good.clone();
            v["events"][0][key] = payloads[1].clone();
            assert!(serde_json::from_value::<SyncRequest>(v.clone()).is_err());
            let mut v = good.clone();
            v["consents"][0][key] = payloads[1].clone();
            assert!(serde_json::from_value::<SyncRequest>(v.clone()).is_err());
            let mut v = good.clone();
            v[key] = payloads[0].clone();
            assert!(serde_json::from_value::<SyncRequest>(v).is_err());
        }
        assert!(tried > 20);
        // The good message still parses.
        serde_json::from_value::<SyncRequest>(good).unwrap();
    }
}
