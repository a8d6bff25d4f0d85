//! One set of migrations for SQLite and PostgreSQL.
//!
//! The SQL uses the subset both engines accept (TEXT, BIGINT, DOUBLE
//! PRECISION, BYTEA). The template store is the schema/database named
//! `biometric`: on PostgreSQL a separate schema, on SQLite a separate database
//! file ATTACHed under that name, so `biometric.templates` means the same in
//! both. A statement prefixed with `--postgres-only` is skipped on SQLite.

/// A migration: number, name, statements.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

pub(crate) const PG_ONLY: &str = "--postgres-only\n";

pub(crate) const MIGRATIONS: &[Migration] = &[
Migration {
    version: 1,
    name: "initial",
    statements: &[
        "--postgres-only\nCREATE SCHEMA IF NOT EXISTS biometric",
        "CREATE TABLE processors (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            contact TEXT,
            created_at TEXT NOT NULL)",
        "CREATE TABLE scenarios (
            id TEXT PRIMARY KEY,
            processor_id TEXT NOT NULL REFERENCES processors(id),
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (processor_id, name))",
        "CREATE TABLE scenario_versions (
            scenario_id TEXT NOT NULL REFERENCES scenarios(id),
            version BIGINT NOT NULL,
            manifest TEXT NOT NULL,
            manifest_sha256 TEXT NOT NULL,
            template_retention_days BIGINT NOT NULL,
            inactivity_days BIGINT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (scenario_id, version))",
        "CREATE TABLE devices (
            id TEXT PRIMARY KEY,
            processor_id TEXT NOT NULL REFERENCES processors(id),
            scenario_id TEXT REFERENCES scenarios(id),
            name TEXT NOT NULL,
            placement TEXT NOT NULL,
            location TEXT NOT NULL,
            created_at TEXT NOT NULL,
            retired_at TEXT)",
        "CREATE TABLE persons (
            id TEXT PRIMARY KEY,
            processor_id TEXT NOT NULL REFERENCES processors(id),
            identity BYTEA,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            erased_at TEXT)",
        "CREATE TABLE guardians (
            id TEXT PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id),
            identity BYTEA,
            relationship TEXT NOT NULL,
            created_at TEXT NOT NULL)",
        "CREATE TABLE notices (
            id TEXT PRIMARY KEY,
            scenario_id TEXT NOT NULL REFERENCES scenarios(id),
            version BIGINT NOT NULL,
            language TEXT NOT NULL,
            body TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            published_at TEXT NOT NULL,
            UNIQUE (scenario_id, version, language))",
        "CREATE TABLE consents (
            id TEXT PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id),
            scenario_id TEXT NOT NULL REFERENCES scenarios(id),
            kind TEXT NOT NULL,
            notice_id TEXT REFERENCES notices(id),
            given_at TEXT NOT NULL,
            given_by TEXT NOT NULL,
            guardian_id TEXT REFERENCES guardians(id),
            channel TEXT NOT NULL,
            evidence TEXT NOT NULL,
            withdrawn_at TEXT,
            withdrawn_channel TEXT)",
        "CREATE INDEX consents_person ON consents (person_id, scenario_id, kind)",
        "CREATE TABLE template_links (
            link_id TEXT PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id),
            scenario_id TEXT NOT NULL REFERENCES scenarios(id),
            device_id TEXT REFERENCES devices(id),
            created_at TEXT NOT NULL)",
        "CREATE INDEX template_links_person ON template_links (person_id)",
        "CREATE INDEX template_links_scenario ON template_links (scenario_id, created_at)",
        "CREATE TABLE biometric.templates (
            link_id TEXT PRIMARY KEY,
            sealed BYTEA NOT NULL)",
        "CREATE TABLE biometric.wrapped_keys (
            key_id TEXT PRIMARY KEY,
            wrapped BYTEA NOT NULL,
            created_at TEXT NOT NULL,
            retired_at TEXT)",
        "CREATE TABLE credentials (
            id TEXT PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id),
            kind TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            lookup TEXT UNIQUE,
            created_at TEXT NOT NULL,
            revoked_at TEXT)",
        "CREATE INDEX credentials_person ON credentials (person_id)",
        "CREATE TABLE verification_events (
            id TEXT PRIMARY KEY,
            at TEXT NOT NULL,
            person_id TEXT,
            scenario_id TEXT NOT NULL REFERENCES scenarios(id),
            device_id TEXT,
            method TEXT NOT NULL,
            result TEXT NOT NULL,
            score DOUBLE PRECISION,
            threshold DOUBLE PRECISION,
            refusal_rule TEXT)",
        "CREATE INDEX verification_events_at ON verification_events (at)",
        "CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            person_id TEXT,
            kind TEXT NOT NULL,
            channel TEXT NOT NULL,
            received_at TEXT NOT NULL,
            due_date TEXT NOT NULL,
            status TEXT NOT NULL,
            completed_at TEXT,
            outcome TEXT)",
        "CREATE TABLE complaints (
            id TEXT PRIMARY KEY,
            person_id TEXT,
            channel TEXT NOT NULL,
            received_at TEXT NOT NULL,
            body BYTEA NOT NULL,
            status TEXT NOT NULL,
            resolved_at TEXT,
            response TEXT)",
        "CREATE TABLE filing_records (
            id TEXT PRIMARY KEY,
            processor_id TEXT NOT NULL REFERENCES processors(id),
            kind TEXT NOT NULL,
            threshold_reached_date TEXT,
            due_date TEXT,
            filed_at TEXT,
            filing_number TEXT,
            snapshot TEXT NOT NULL,
            created_at TEXT NOT NULL)",
        "CREATE TABLE pia_versions (
            id TEXT PRIMARY KEY,
            processor_id TEXT NOT NULL REFERENCES processors(id),
            scenario_id TEXT REFERENCES scenarios(id),
            version BIGINT NOT NULL,
            content TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            approved_by TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (processor_id, version))",
        "CREATE TABLE headcount (
            id BIGINT PRIMARY KEY CHECK (id = 1),
            count BIGINT NOT NULL,
            threshold_reached_at TEXT,
            updated_at TEXT NOT NULL)",
        "INSERT INTO headcount (id, count, threshold_reached_at, updated_at)
            VALUES (1, 0, NULL, '1970-01-01T00:00:00.000000Z')",
        "CREATE TABLE headcount_history (
            seq BIGINT PRIMARY KEY,
            at TEXT NOT NULL,
            count BIGINT NOT NULL,
            delta BIGINT NOT NULL)",
        "CREATE TABLE audit_log (
            seq BIGINT PRIMARY KEY,
            at TEXT NOT NULL,
            event TEXT NOT NULL,
            actor TEXT NOT NULL,
            subject TEXT,
            scenario_id TEXT,
            device_id TEXT,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL)",
        "CREATE TABLE audit_head (
            id BIGINT PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL,
            mac TEXT NOT NULL)",
        "INSERT INTO audit_head (id, seq, hash, mac)
            VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', '')",
        "CREATE TABLE audit_anchors (
            seq BIGINT PRIMARY KEY,
            hash TEXT NOT NULL,
            at TEXT NOT NULL,
            mac TEXT NOT NULL)",
    ],
},
Migration {
    version: 2,
    name: "state_in_the_store",
    statements: &[
        // API keys: only the SHA-256 of the secret part.
        "CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            device_id TEXT,
            label TEXT NOT NULL,
            secret_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            revoked_at TEXT)",
        // R17: the last time a person declined face in a scenario, and
        // whether they explicitly opted back in since.
        "CREATE TABLE face_declines (
            person_id TEXT NOT NULL REFERENCES persons(id),
            scenario_id TEXT NOT NULL REFERENCES scenarios(id),
            declined_at TEXT NOT NULL,
            opted_in_at TEXT,
            PRIMARY KEY (person_id, scenario_id))",
        // One-time portal codes and portal sessions: hashes only.
        "CREATE TABLE portal_codes (
            code_sha256 TEXT PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id),
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL)",
        "CREATE TABLE portal_sessions (
            token_sha256 TEXT PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL)",
        "CREATE INDEX portal_sessions_person ON portal_sessions (person_id)",
        // Lock-out counters (PIN per person and credential, portal codes per
        // source and per code space), counted before the secret is checked.
        "CREATE TABLE attempt_counters (
            key TEXT PRIMARY KEY,
            window_start TEXT NOT NULL,
            failures BIGINT NOT NULL,
            lockouts BIGINT NOT NULL,
            locked_until TEXT)",
        // Bulk enrolment: the CSV rows already enrolled, by row key.
        "CREATE TABLE enrol_rows (
            row_key TEXT PRIMARY KEY,
            person_id TEXT NOT NULL REFERENCES persons(id),
            created_at TEXT NOT NULL)",
        "CREATE INDEX verification_events_device ON verification_events (device_id, person_id, at)",
    ],
},
Migration {
    version: 3,
    name: "galleries_and_data_keys_across_instances",
    statements: &[
        // Bumped in the transaction of every template added or deleted: an
        // instance compares it with the one its in-memory galleries were
        // built at before each face decision, and applies the difference.
        "CREATE TABLE template_generation (
            id BIGINT PRIMARY KEY CHECK (id = 1),
            generation BIGINT NOT NULL)",
        "INSERT INTO template_generation (id, generation) VALUES (1, 1)",
        // The data key each scenario seals with: the first instance to
        // claim one wins, the others take the winner's.
        "CREATE TABLE scenario_data_keys (
            scenario_id TEXT PRIMARY KEY REFERENCES scenarios(id),
            key_id TEXT NOT NULL,
            claimed_at TEXT NOT NULL)",
    ],
},
Migration {
    version: 4,
    name: "liveness_challenges_and_frame_hashes",
    statements: &[
        // Server-issued liveness challenges (issue 15): the nonce hashed,
        // bound to the scenario, the device (manifest id, '' for none) and
        // the person claimed (NULL for 1:N); taken once.
        "CREATE TABLE liveness_challenges (
            nonce_sha256 TEXT PRIMARY KEY,
            scenario_id TEXT NOT NULL REFERENCES scenarios(id),
            device TEXT NOT NULL,
            person_id TEXT,
            actions TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL)",
        "CREATE INDEX liveness_challenges_expiry ON liveness_challenges (expires_at)",
        // Keyed hashes of the frames of recent captures (never an image), so
        // an exact replay is refused; swept after a short window.
        "CREATE TABLE capture_frame_hashes (
            frame_mac TEXT PRIMARY KEY,
            seen_at TEXT NOT NULL,
            expires_at TEXT NOT NULL)",
        "CREATE INDEX capture_frame_hashes_expiry ON capture_frame_hashes (expires_at)",
    ],
},
Migration {
    version: 5,
    name: "residents_and_staffed_checks",
    statements: &[
        // Short resident numbers and room numbers a kiosk keypad can take
        // (identifiers, not secrets: face, a PIN, a card or a guard still
        // checks the person). `room_key` is the room's digits, as a keypad
        // types them. Erasure deletes the row.
        "CREATE TABLE residents (
            person_id TEXT PRIMARY KEY REFERENCES persons(id),
            resident_no TEXT NOT NULL UNIQUE,
            room TEXT,
            room_key TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)",
        "CREATE INDEX residents_room_key ON residents (room_key)",
        // The guard's check (人工核验): asked for at a kiosk, decided by a
        // guard in the console; the decision's receipt is a verification
        // event (method staffed_check).
        "CREATE TABLE staffed_checks (
            id TEXT PRIMARY KEY,
            code TEXT NOT NULL,
            person_id TEXT NOT NULL REFERENCES persons(id),
            scenario_id TEXT NOT NULL REFERENCES scenarios(id),
            device TEXT,
            requested_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            status TEXT NOT NULL,
            passed BIGINT,
            decided_at TEXT,
            decided_by TEXT,
            guard_name TEXT,
            how TEXT,
            receipt_id TEXT,
            grants TEXT)",
        "CREATE INDEX staffed_checks_status ON staffed_checks (status, created_at)",
    ],
},
Migration {
    version: 6,
    name: "signage_photos",
    statements: &[
        // R19: a photo of each device's notice sign, shown in the filing pack.
        "CREATE TABLE signage_photos (
            device_id TEXT PRIMARY KEY REFERENCES devices(id),
            content_type TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            image BYTEA NOT NULL,
            uploaded_at TEXT NOT NULL,
            uploaded_by TEXT NOT NULL)",
    ],
},
Migration {
    version: 7,
    name: "hub_sync",
    statements: &[
        // The site side of the hub protocol (issue 16). The outbox is the
        // audit chain itself, read from the hub's cursor; these keep the
        // keyed pseudonym each person was announced under (so a deletion
        // after erasure still names them) and the inbox of hub commands,
        // keyed by the hub's idempotency key, applied once, in order.
        "CREATE TABLE hub_pseudonyms (
            person_id TEXT PRIMARY KEY REFERENCES persons(id),
            pseudonym TEXT NOT NULL)",
        "CREATE INDEX hub_pseudonyms_pseudonym ON hub_pseudonyms (pseudonym)",
        "CREATE TABLE hub_inbox (
            command_id TEXT PRIMARY KEY,
            seq BIGINT NOT NULL,
            kind TEXT NOT NULL,
            pseudonym TEXT NOT NULL,
            received_at TEXT NOT NULL,
            applied_at TEXT,
            status TEXT,
            templates_deleted BIGINT,
            site_receipt_id TEXT,
            acknowledged_at TEXT)",
    ],
},
Migration {
    version: 9,
    name: "hub_manifests",
    statements: &[
        // Scenario manifests pushed by the hub (issue 16). The hub's
        // manifest-signing public key is pinned here when the site starts
        // attached to a hub (while a pin exists, a local upload is refused:
        // manifests come signed from the hub); each signed manifest is kept
        // with its signature, keyed by the hub command that carried it, so
        // a restart re-deploys what the hub sent and re-checks it.
        "CREATE TABLE hub_manifest_pin (
            id INTEGER PRIMARY KEY,
            public_key TEXT NOT NULL,
            pinned_at TEXT NOT NULL)",
        "CREATE TABLE hub_manifests (
            command_id TEXT PRIMARY KEY,
            manifest_id TEXT NOT NULL,
            scenario TEXT NOT NULL,
            version BIGINT NOT NULL,
            notice_version TEXT NOT NULL,
            manifest TEXT NOT NULL,
            signature TEXT NOT NULL,
            received_at TEXT NOT NULL,
            deployed_at TEXT,
            refused TEXT)",
    ],
},
Migration {
    version: 10,
    name: "staffed_receipt_code",
    statements: &[
        // A guard's decision is signed once, when it is made, and the code
        // kept with the check: every poll returns that very code (a
        // receipt's code never changes, whatever is re-deployed later).
        "ALTER TABLE staffed_checks ADD COLUMN receipt_code TEXT",
    ],
},
Migration {
    version: 11,
    name: "device_keys_per_scenario",
    statements: &[
        // A device key acts as one device of one scenario: two scenarios may
        // each have a device of the same name, and revoking one revokes only
        // its own keys. NULL for admin, operator and auditor keys.
        "ALTER TABLE api_keys ADD COLUMN scenario_id TEXT REFERENCES scenarios(id)",
        // Existing device keys: the scenario whose registered devices (one
        // row per scenario and manifest device id, made at deploy) have that
        // name, when exactly one scenario does. A name in several scenarios,
        // or in none, leaves the key unscoped: the server refuses it until
        // a new key is issued for the device of the scenario meant.
        "UPDATE api_keys SET scenario_id = (
            SELECT MIN(d.scenario_id) FROM devices d WHERE d.name = api_keys.device_id)
         WHERE device_id IS NOT NULL
           AND (SELECT COUNT(DISTINCT d.scenario_id) FROM devices d
                WHERE d.name = api_keys.device_id) = 1",
        "CREATE INDEX api_keys_device ON api_keys (scenario_id, device_id)",
    ],
},
Migration {
    version: 12,
    name: "verification_score_model",
    statements: &[
        // The scale a decision's score and threshold are on: the first
        // model's cosine or a fusion's log-odds (issue 13), so an auditor
        // reads "3.2 against 3.5" and "0.42 against 0.33" against the right
        // calibration table. NULL for events recorded before it was kept.
        "ALTER TABLE verification_events ADD COLUMN score_model TEXT",
    ],
},
];
