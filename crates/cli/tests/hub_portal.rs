//! Issue 16, the central portal: two `facegate hub` processes on one
//! PostgreSQL and two `facegate serve --hub` sites, each with its own
//! SQLite, on loopback over TLS. A person signs in at a site's own portal,
//! the site issues a hub access token signed with its site key, the person
//! opens a hub session with it (at hub A) and uses that session at hub B
//! too; they withdraw once and both holding sites delete, the portal
//! showing both receipts. A forged, foreign-signed, expired or replayed
//! token is refused. A complaint gets its working-day due date from the
//! official calendar; the operator lists, answers and closes it and the
//! person reads the answer. The dossier carries each site's consent
//! records (pseudonyms, never names) and still checks, and a scan of every
//! hub table and of every body the hubs received finds no image or sealed
//! template. Skips without FACEGATE_TEST_DATABASE_URL.

mod common;

use std::path::Path;

use common::*;
use facegate_hub::keys::SiteKey;
use facegate_hub::portal::{self, TokenClaims};
use facegate_hub::proto::Hash32;
use serde_json::{json, Value};

/// A site attached to the hub, with the address and first admin key it
/// printed.
fn site_with_key(s: &Site, hub_port: u16, hubdir: &Path) -> (Proc, String, String) {
    let p = site_serve(s, hub_port, hubdir, &[]);
    (
        p.proc,
        p.addr,
        p.admin.expect("the first start prints an admin key"),
    )
}

/// One plain HTTP/1.1 request to a site on loopback, with a JSON body.
fn site_http(addr: &str, method: &str, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    http(addr, method, path, key, Some(body.to_string()))
}

/// A client of the hub holding a person's session (or any bearer).
fn as_bearer(ca: &Path, bearer: &str) -> Admin {
    Admin {
        rt: tokio::runtime::Runtime::new().unwrap(),
        ca: ca.to_path_buf(),
        token: bearer.into(),
    }
}

#[test]
fn hub_portal_person_withdraws_once_with_a_site_token_and_reads_the_answer() {
    let Ok(base) = std::env::var("FACEGATE_TEST_DATABASE_URL") else {
        println!("SKIP postgres: FACEGATE_TEST_DATABASE_URL is not set (scripts/test.sh sets it)");
        return;
    };
    let url = fresh_db(&base);
    let _db = DropDb(base.clone(), url.clone());
    let root = std::env::temp_dir().join(format!("facegate-hubp-{}", uuid::Uuid::now_v7()));
    let bodies = root.join("bodies");
    std::fs::create_dir_all(&bodies).unwrap();
    let (hubdir, admin) = init_hub(&root);
    let ca = hubdir.join("hub.crt");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (hub_a, pa) = hub(&url, &hubdir, 0, &bodies);
    let (hub_b, pb) = hub(&url, &hubdir, 0, &bodies);
    let sites: Vec<Site> = (0..2)
        .map(|i| register_site(&admin, pa, &root, i))
        .collect();

    // The same person at both sites (the name written differently).
    enrol(
        &sites[0].dir,
        &root,
        &[("obama.jpg", "Barack Obama", "1961-08-04")],
    );
    enrol(
        &sites[1].dir,
        &root,
        &[("obama2.jpg", "Barack  obama", "1961-08-04")],
    );
    let sealed = sealed_templates(&rt, &sites);
    assert_eq!(sealed.len(), 2);
    let (s0, addr0, key0) = site_with_key(&sites[0], pa, &hubdir);
    let (s1, addr1, key1) = site_with_key(&sites[1], pb, &hubdir);
    wait_for("both sites hold the person at the hub", 60, || {
        let h = admin.get(pb, "/v1/headcount");
        let synced = admin.get(pb, "/v1/anchors")["sites"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["anchors"].as_i64().unwrap_or(0) > 0)
            .count();
        synced == 2 && h["headcount"] == 1
    });

    // The person signs in at site 0's own portal (a code after the desk's
    // identity check) and asks the site for a hub access token.
    let pid = sqlite(
        &rt,
        &sites[0].dir.join("facegate.db"),
        "SELECT id FROM persons",
    )[0]
    .clone();
    let (st, code) = site_http(
        &addr0,
        "POST",
        &format!("/v1/persons/{pid}/portal-code"),
        Some(&key0),
        json!({"identity_check": "居民身份证 checked at the property office"}),
    );
    assert_eq!(st, 200, "{code}");
    let (st, ps) = site_http(
        &addr0,
        "POST",
        "/v1/portal/session",
        None,
        json!({"code": code["code"]}),
    );
    assert_eq!(st, 200, "{ps}");
    let site_session = ps["token"].as_str().unwrap().to_string();
    let (st, v) = site_http(&addr0, "GET", "/v1/hub", None, json!({}));
    assert_eq!(st, 200, "the site's portal learns it has a hub: {v}");
    let (st, v) = site_http(&addr0, "POST", "/v1/hub/portal-token", None, json!({}));
    assert_eq!(st, 401, "no site session, no token: {v}");
    assert!(v["message_zh"].is_string() && v["message_en"].is_string());
    let (st, v) = site_http(
        &addr0,
        "POST",
        "/v1/hub/portal-token",
        Some(&key0),
        json!({}),
    );
    assert_eq!(st, 401, "an admin key is not a person: {v}");
    let mint = || {
        let (st, v) = site_http(
            &addr0,
            "POST",
            "/v1/hub/portal-token",
            Some(&site_session),
            json!({}),
        );
        assert_eq!(st, 200, "{v}");
        assert!(v["portal_url"].as_str().unwrap().contains("/portal#token="));
        v["token"].as_str().unwrap().to_string()
    };
    let token = mint();

    // Forged and expired tokens are refused.
    let anyone = as_bearer(&ca, "");
    let refused = |t: &str, why: &str| {
        let (st, v) = anyone.call(pa, "POST", "/portal/v1/session", Some(json!({"token": t})));
        assert_eq!(st, 401, "{why}: {v}");
        assert!(v["message_en"].as_str().unwrap().contains("refused"), "{v}");
    };
    let (payload_hex, sig) = token
        .strip_prefix("fght_")
        .unwrap()
        .split_once('.')
        .unwrap();
    let mut claims: TokenClaims =
        serde_json::from_slice(&hex::decode(payload_hex).unwrap()).unwrap();
    let real = claims.clone();
    claims.pseudonym = Hash32([7; 32]);
    let forged = format!(
        "fght_{}.{sig}",
        hex::encode(serde_json::to_vec(&claims).unwrap())
    );
    refused(&forged, "another pseudonym under the site's signature");
    refused(
        &portal::sign_claims(&SiteKey::generate(), &real),
        "signed by a key the hub never registered",
    );
    let site_key = SiteKey::load(&sites[0].key).unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut old = real.clone();
    old.jti = uuid::Uuid::new_v4();
    old.iat = now - 400;
    old.exp = now - 100;
    refused(&portal::sign_claims(&site_key, &old), "expired");
    let mut long = real.clone();
    long.jti = uuid::Uuid::new_v4();
    long.exp = now + 86_400;
    refused(&portal::sign_claims(&site_key, &long), "a day-long token");
    refused("fgp_not-a-hub-token", "garbage");

    // The real token opens a session at hub A, once.
    let (st, v) = anyone.call(
        pa,
        "POST",
        "/portal/v1/session",
        Some(json!({"token": token})),
    );
    assert_eq!(st, 200, "{v}");
    let session = v["session"].as_str().unwrap().to_string();
    refused(
        &token,
        "the same token a second time (at the other instance too)",
    );
    let (st, _) = anyone.call(
        pb,
        "POST",
        "/portal/v1/session",
        Some(json!({"token": token})),
    );
    assert_eq!(st, 401);
    let me_client = as_bearer(&ca, &session);
    wait_for("both sites' enrolments at the hub", 60, || {
        me_client.get(pa, "/portal/v1/me")["sites"]
            .as_array()
            .unwrap()
            .len()
            == 2
    });
    // Hub B serves the session hub A opened (sessions live in PostgreSQL).
    let me_b = me_client.get(pb, "/portal/v1/me");
    assert_eq!(me_b["sites"].as_array().unwrap().len(), 2, "{me_b}");
    assert_eq!(me_b, me_client.get(pa, "/portal/v1/me"));
    // The admin token is not a person's session, and no session sees nothing.
    let (st, _) = admin.call(pa, "GET", "/portal/v1/me", None);
    assert_eq!(st, 401);
    let (st, _) = anyone.call(pb, "GET", "/portal/v1/me", None);
    assert_eq!(st, 401);
    // The page itself is served (both languages in it).
    let (st, _) = anyone.call(pa, "GET", "/portal", None);
    assert_eq!(st, 200);

    // Ask for access once, at hub A: the request reaches both holding
    // sites through the inbox and becomes a request in each site's own
    // queue (due in 15 working days there); each site answers it (the
    // person reads the export at that site's portal) and the hub shows
    // received, then answered with the time, never the data itself.
    let (st, a) = me_client.call(
        pa,
        "POST",
        "/portal/v1/requests",
        Some(json!({"kind": "access"})),
    );
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["sites"].as_array().unwrap().len(), 2, "{a}");
    assert_eq!(a["open"], true, "{a}");
    let aid = a["id"].as_str().unwrap().to_string();
    let access_of = |me: &Value| {
        me["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == aid.as_str())
            .expect("the access request is listed")
            .clone()
    };
    wait_for("both sites received the access request", 60, || {
        let r = access_of(&me_client.get(pa, "/portal/v1/me"));
        r["sites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "received" && x["site_receipt_id"].is_string())
    });
    let r = access_of(&me_client.get(pb, "/portal/v1/me"));
    assert_eq!(r["done"], false, "received is not answered: {r}");
    assert_eq!(r["open"], true, "{r}");
    let today = chrono::Utc::now()
        .with_timezone(&facegate_policy::authorize::china_offset())
        .date_naive();
    let (due, _) = facegate_policy::filing::WorkCalendar::official().add_working_days(today, 15);
    for p in r["sites"].as_array().unwrap() {
        let (addr, key) = if p["site_id"] == sites[0].id.as_str() {
            (&addr0, &key0)
        } else {
            assert_eq!(p["site_id"], sites[1].id.as_str(), "{p}");
            (&addr1, &key1)
        };
        let site_req = p["site_receipt_id"].as_str().unwrap();
        let (st, list) = http(addr, "GET", "/v1/requests", Some(key), None);
        assert_eq!(st, 200, "{list}");
        let mine: Vec<&Value> = list
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["kind"] == "access" && x["channel"].as_str().unwrap().starts_with("hub:"))
            .collect();
        assert_eq!(mine.len(), 1, "one request at the site, made once: {list}");
        assert_eq!(mine[0]["id"], site_req, "{list}");
        assert_eq!(mine[0]["status"], "open");
        assert_eq!(mine[0]["due_date"], due.to_string(), "15 working days");
        // The site answers in its own queue.
        let (st, v) = site_http(
            addr,
            "POST",
            &format!("/v1/requests/{site_req}/close"),
            Some(key),
            json!({"status": "done", "outcome": "导出已在本站门户提供 / the export is ready in this site's portal"}),
        );
        assert_eq!(st, 200, "{v}");
    }
    wait_for("both sites answered the access request", 60, || {
        access_of(&me_client.get(pb, "/portal/v1/me"))["done"] == true
    });
    let r = access_of(&me_client.get(pa, "/portal/v1/me"));
    assert_eq!(r["open"], false, "{r}");
    for p in r["sites"].as_array().unwrap() {
        assert_eq!(p["status"], "answered", "{r}");
        assert!(p["answered_at"].is_string(), "{r}");
        assert!(p["applied_at"].is_string(), "the received time stays: {r}");
    }
    assert!(
        !admin.get(pb, "/v1/desk/requests?open=true")["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == aid.as_str()),
        "the answered access request is not open at the hub"
    );

    // Withdraw once, at hub B: both holding sites delete.
    let (st, w) = me_client.call(
        pb,
        "POST",
        "/portal/v1/requests",
        Some(json!({"kind": "withdraw"})),
    );
    assert_eq!(st, 200, "{w}");
    assert_eq!(w["sites"].as_array().unwrap().len(), 2, "{w}");
    let wid = w["id"].as_str().unwrap().to_string();
    wait_for("both sites' receipts in the portal", 60, || {
        let me = me_client.get(pa, "/portal/v1/me");
        me["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == wid.as_str() && r["done"] == true)
    });
    let me = me_client.get(pb, "/portal/v1/me");
    let r = me["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == wid.as_str())
        .unwrap()
        .clone();
    let mut names: Vec<&str> = Vec::new();
    for p in r["sites"].as_array().unwrap() {
        assert_eq!(p["status"], "applied", "{r}");
        assert_eq!(p["templates_deleted"], 1, "{r}");
        assert!(p["site_receipt_id"].is_string(), "{r}");
        names.push(p["site_name"].as_str().unwrap());
    }
    names.sort();
    assert_eq!(names, ["compound 0", "compound 1"]);
    for s in &sites {
        let n = sqlite(
            &rt,
            &s.dir.join("facegate.db"),
            "SELECT COUNT(*) FROM template_links",
        );
        assert_eq!(n, vec!["0"], "templates deleted at {}", s.dir.display());
    }
    wait_for("no site holds the person any more", 30, || {
        me_client.get(pa, "/portal/v1/me")["sites"]
            .as_array()
            .unwrap()
            .is_empty()
    });

    // A complaint: due in 15 working days on the official calendar; text
    // that looks like an encoded image is refused (R11).
    let (st, v) = me_client.call(
        pa,
        "POST",
        "/portal/v1/requests",
        Some(json!({"kind": "complaint", "text": format!("photo: {}", b64(&[0xffu8; 90]))})),
    );
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["rule"], "R11", "{v}");
    assert!(v["message_en"].as_str().unwrap().contains("R11"), "{v}");
    assert!(v["message_zh"].as_str().unwrap().contains("第八条"), "{v}");
    let (st, v) = me_client.call(
        pa,
        "POST",
        "/portal/v1/requests",
        Some(json!({"kind": "complaint"})),
    );
    assert_eq!(st, 400, "a complaint without text: {v}");
    let (st, c) = me_client.call(
        pa,
        "POST",
        "/portal/v1/requests",
        Some(json!({"kind": "complaint", "text": "北门闸机两次没认出我 / the north gate failed me twice"})),
    );
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["due_date"], due.to_string());
    assert_eq!(c["open"], true);
    let cid = c["id"].as_str().unwrap().to_string();

    // The operator lists what is open (with due dates), answers and closes.
    let open = admin.get(pb, "/v1/desk/requests?open=true");
    let listed = open["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == cid.as_str())
        .expect("the complaint is listed")
        .clone();
    assert_eq!(listed["due_date"], due.to_string());
    assert!(listed["text"].as_str().unwrap().contains("north gate"));
    assert!(
        !open["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == wid.as_str()),
        "the receipted withdrawal is not open: {open}"
    );
    let (st, v) = admin.call(pb, "GET", "/v1/desk/requests?open=maybe", None);
    assert_eq!(st, 400, "a JSON error body: {v}");
    assert!(v["message_en"].is_string());
    let (st, v) = as_bearer(&ca, &session).call(
        pb,
        "POST",
        &format!("/v1/desk/requests/{cid}/answer"),
        Some(json!({"reply": "x"})),
    );
    assert_eq!(st, 401, "a person cannot answer: {v}");
    let (st, v) = admin.call(
        pb,
        "POST",
        &format!("/v1/desk/requests/{cid}/answer"),
        Some(json!({"reply": "已调整北门摄像头角度并道歉 / The north gate camera was re-aimed; we apologise."})),
    );
    assert_eq!(st, 200, "{v}");
    assert!(v["closed_at"].is_string());
    let me = me_client.get(pa, "/portal/v1/me");
    let seen = me["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == cid.as_str())
        .unwrap()
        .clone();
    assert!(
        seen["reply"].as_str().unwrap().contains("re-aimed"),
        "{seen}"
    );
    assert_eq!(seen["open"], false);
    assert!(!admin.get(pa, "/v1/desk/requests?open=true")["requests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == cid.as_str()));

    // The dossier: each site's consent records (withdrawn now), by
    // pseudonym, never a name; it still checks.
    wait_for("the withdrawals reach the consent records", 30, || {
        let d = admin.get(pa, "/v1/dossier");
        sites.iter().all(|s| {
            d["files"][format!("consents/{}.jsonl", s.id)]
                .as_str()
                .is_some_and(|l| {
                    l.lines().any(|x| {
                        let v: Value = serde_json::from_str(x).unwrap();
                        v["kind"] == "processing" && v["withdrawn_at"].is_string()
                    })
                })
        })
    });
    let dossier = admin.get(pb, "/v1/dossier");
    let mut pseudonyms = Vec::new();
    for s in &sites {
        let lines = dossier["files"][format!("consents/{}.jsonl", s.id)]
            .as_str()
            .unwrap();
        for l in lines.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(
                v["scenario_id"].is_string() && v["given_at"].is_string(),
                "{v}"
            );
            assert!(v["notice_version"].is_i64(), "{v}");
            assert_eq!(v["notice_sha256"].as_str().unwrap().len(), 64);
            pseudonyms.push(v["pseudonym"].as_str().unwrap().to_string());
        }
    }
    pseudonyms.sort();
    pseudonyms.dedup();
    assert_eq!(
        pseudonyms.len(),
        1,
        "one person, one pseudonym at both sites"
    );
    // Processing records: each site's events by name (an enrolment, the
    // consent given and withdrawn, the deletion).
    for s in &sites {
        let recs = dossier["files"][format!("records/{}.jsonl", s.id)]
            .as_str()
            .unwrap();
        let events: Vec<String> = recs
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["event"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        for want in [
            "enrol",
            "consent_given",
            "consent_withdrawn",
            "face_data_deleted",
        ] {
            assert!(events.iter().any(|e| e == want), "{want} in {events:?}");
        }
    }
    let text = dossier.to_string().to_lowercase();
    assert!(!text.contains("obama"), "no name in the dossier");
    assert!(text.contains("requests_and_complaints.json"));
    assert!(
        dossier["files"].get("requests.json").is_none(),
        "requests are listed once, in requests_and_complaints.json"
    );
    let dpath = root.join("dossier.json");
    std::fs::write(&dpath, dossier.to_string()).unwrap();
    let ok = bin()
        .args(["hub", "check-dossier"])
        .arg(&dpath)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mut bad = dossier.clone();
    bad["files"][format!("consents/{}.jsonl", sites[0].id)] = Value::String(String::new());
    std::fs::write(&dpath, bad.to_string()).unwrap();
    assert!(!bin()
        .args(["hub", "check-dossier"])
        .arg(&dpath)
        .output()
        .unwrap()
        .status
        .success());

    // Nothing biometric and no name at the hub: every table, every body.
    let (tables, hay) = hub_tables_text(&rt, &url);
    for t in ["hub_portal_sessions", "hub_request_cases", "hub_consents"] {
        assert!(tables.iter().any(|x| x == t), "{t} scanned");
    }
    let bodies_text = String::from_utf8_lossy(&logged_bodies(&bodies)).to_string();
    assert!(bodies_text.contains("/portal/v1/requests"));
    assert!(bodies_text.contains("\"consents\":[{"), "consents synced");
    for (name, hay) in [("hub database", &hay), ("request bodies", &bodies_text)] {
        assert!(!hay.to_lowercase().contains("obama"), "{name}: a name");
        assert_nothing_biometric(name, hay, &["obama.jpg", "obama2.jpg"], &sealed);
    }
    drop((s0, s1, hub_a, hub_b));
    let _ = std::fs::remove_dir_all(&root);
}
