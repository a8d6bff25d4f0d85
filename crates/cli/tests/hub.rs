//! Issue 16, must show: two `facegate hub` processes on one PostgreSQL and
//! three `facegate serve --hub` site processes, each with its own SQLite,
//! on loopback over TLS. The same person enrolled at two sites counts once;
//! a central withdrawal deletes the templates at both sites and the hub
//! shows both receipts; `kill -9` of a site during the withdrawal and of a
//! hub instance during the sync loses nothing; a site kept offline catches
//! up with every event in order; the anchors verify and an edited row in a
//! site's log is caught; the inspection dossier checks; and a scan of the
//! hub database and of every request body the hubs received finds no image,
//! embedding or sealed-template bytes. Skips without
//! FACEGATE_TEST_DATABASE_URL.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[test]
fn hub_two_instances_three_sites_no_face_at_the_hub() {
    let Ok(base) = std::env::var("FACEGATE_TEST_DATABASE_URL") else {
        println!("SKIP postgres: FACEGATE_TEST_DATABASE_URL is not set (scripts/test.sh sets it)");
        return;
    };
    let url = fresh_db(&base);
    let root = std::env::temp_dir().join(format!("facegate-hub-{}", uuid::Uuid::now_v7()));
    let bodies = root.join("bodies");
    std::fs::create_dir_all(&bodies).unwrap();
    let (hubdir, admin) = init_hub(&root);
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Two hub instances on one database.
    let (hub_a, pa) = hub(&url, &hubdir, 0, &bodies);
    let (hub_b, pb) = hub(&url, &hubdir, 0, &bodies);

    // Three sites, registered at A (B sees them: one database).
    let sites: Vec<Site> = (0..3)
        .map(|i| register_site(&admin, pa, &root, i))
        .collect();
    // R19: a device in a hotel room is refused at registration.
    let (s, v) = admin.call(
        pb,
        "POST",
        "/v1/sites",
        Some(json!({"name": "hotel", "public_key": "ab".repeat(32),
            "devices": [{"device_id": "d", "placement": "hotel_room", "location": "room 1"}]})),
    );
    assert_eq!(s, 400, "{v}");
    assert!(v["message_en"].as_str().unwrap().contains("R19"), "{v}");

    // The same person at sites 0 and 1; another at site 2.
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
    enrol(
        &sites[2].dir,
        &root,
        &[("biden.jpg", "Joe Biden", "1942-11-20")],
    );
    // The sealed templates, to look for at the hub later.
    let sealed = sealed_templates(&rt, &sites);
    assert_eq!(sealed.len(), 3);

    // Sites 0 and 1 sync with A; site 2 stays offline for now.
    let mut s0 = Some(site(&sites[0], pa, &hubdir));
    let mut s1 = Some(site(&sites[1], pa, &hubdir));
    wait_for("headcount 1 across two sites", 60, || {
        let h = admin.get(pb, "/v1/headcount");
        let synced = admin.get(pb, "/v1/anchors")["sites"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["anchors"].as_i64().unwrap_or(0) > 0)
            .count();
        synced >= 2 && h["headcount"] == 1
    });
    // More events at the offline site, then it comes online (at hub B).
    enrol(
        &sites[2].dir,
        &root,
        &[("obama3.jpg", "Someone Else", "1990-01-01")],
    );
    let s2 = Some(site(&sites[2], pb, &hubdir));
    wait_for("headcount 3 (the same person counted once)", 60, || {
        admin.get(pa, "/v1/headcount")["headcount"] == 3
    });
    let hc = admin.get(pa, "/v1/headcount");
    assert_eq!(hc["alert_level"], "none");
    assert!(!hc["history"].as_array().unwrap().is_empty(), "{hc}");

    // Central withdrawal of the person held at sites 0 and 1; site 1 is
    // killed -9 just before (so its command is sure to wait for it: killed
    // after the request, a 200 ms sync could apply it first) and hub A
    // (their hub) during the sync.
    s1.take().unwrap().kill9();
    let (s, req) = admin.call(
        pb,
        "POST",
        "/v1/requests",
        Some(json!({"kind": "withdraw", "display_name": "barack obama", "date_of_birth": "1961-08-04"})),
    );
    assert_eq!(s, 200, "{req}");
    assert_eq!(req["sites"].as_array().unwrap().len(), 2, "{req}");
    assert!(req["due_date"].as_str().unwrap().len() == 10);
    let rid = req["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(300));
    hub_a.kill9();
    let pending = admin.get(pb, "/v1/pending");
    assert!(
        !pending["pending"].as_array().unwrap().is_empty(),
        "{pending}"
    );
    std::thread::sleep(Duration::from_millis(700));
    let (hub_a, pa2) = hub(&url, &hubdir, pa, &bodies);
    assert_eq!(pa2, pa);
    s1 = Some(site(&sites[1], pa, &hubdir));
    wait_for("both sites' receipts", 60, || {
        admin.get(pa, &format!("/v1/requests/{rid}"))["done"] == true
    });
    let r = admin.get(pb, &format!("/v1/requests/{rid}"));
    for p in r["sites"].as_array().unwrap() {
        assert_eq!(p["status"], "applied", "{r}");
        assert_eq!(p["templates_deleted"], 1, "{r}");
        assert!(p["site_receipt_id"].is_string(), "{r}");
    }
    assert!(admin.get(pa, "/v1/pending")["pending"]
        .as_array()
        .unwrap()
        .is_empty());
    for s in &sites[..2] {
        let n = sqlite(
            &rt,
            &s.dir.join("facegate.db"),
            "SELECT COUNT(*) FROM template_links",
        );
        assert_eq!(n, vec!["0"], "templates deleted at {}", s.dir.display());
        let n = sqlite(
            &rt,
            &s.dir.join("facegate.db"),
            "SELECT COUNT(*) FROM hub_inbox WHERE applied_at IS NOT NULL",
        );
        assert_eq!(n, vec!["1"], "the command applied exactly once");
    }
    wait_for("headcount 2 after the withdrawal", 30, || {
        admin.get(pb, "/v1/headcount")["headcount"] == 2
    });

    // Every event of every site reached the hub, in order, with the
    // site's own hashes; the anchors verify.
    let dossier = admin.get(pa, "/v1/dossier");
    for s in &sites {
        let mine = sqlite(
            &rt,
            &s.dir.join("facegate.db"),
            "SELECT hash FROM audit_log ORDER BY seq",
        );
        wait_for("the hub has every event", 30, || {
            let d = admin.get(pa, "/v1/anchors");
            d["sites"].as_array().unwrap().iter().any(|x| {
                x["site_id"] == s.id.as_str() && x["events"].as_i64() >= Some(mine.len() as i64)
            })
        });
    }
    let dossier2 = admin.get(pb, "/v1/dossier");
    for s in &sites {
        let mine = sqlite(
            &rt,
            &s.dir.join("facegate.db"),
            "SELECT hash FROM audit_log ORDER BY seq",
        );
        let at_hub = dossier_records(&dossier2, &s.id);
        for (i, (seq, h)) in at_hub.iter().enumerate() {
            assert_eq!(*seq, i as i64 + 1, "in order, no gap");
            assert_eq!(h, &mine[i], "the site's own hash");
        }
        assert!(at_hub.len() >= mine.len() - 2, "caught up");
    }
    let anchors = admin.get(pb, "/v1/anchors");
    assert_eq!(anchors["intact"], true, "{anchors}");

    // The dossier checks, and a changed byte is caught.
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
    bad["files"]["pia.md"] = Value::String("edited".into());
    std::fs::write(&dpath, bad.to_string()).unwrap();
    assert!(!bin()
        .args(["hub", "check-dossier"])
        .arg(&dpath)
        .output()
        .unwrap()
        .status
        .success());
    assert!(dossier["files"]["devices.json"]
        .as_str()
        .unwrap()
        .contains("non_public"));

    // Edit one row of site 0's log while it is down: the site's recomputed
    // hash of that row no longer matches what the hub anchored.
    s0.take().unwrap().kill9();
    sqlite(
        &rt,
        &sites[0].dir.join("facegate.db"),
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 2 RETURNING seq",
    );
    s0 = Some(site(&sites[0], pb, &hubdir));
    wait_for("the edited row caught at the hub", 60, || {
        let a = admin.get(pa, "/v1/anchors");
        a["intact"] == false
            && a["sites"].as_array().unwrap().iter().any(|x| {
                x["site_id"] == sites[0].id.as_str()
                    && x["faults"].as_array().unwrap().iter().any(|f| f[0] == 2)
            })
    });

    // Nothing biometric at the hub: scan every table and every body.
    let (tables, text) = hub_tables_text(&rt, &url);
    assert!(tables.len() >= 9, "{tables:?}");
    let body_bytes = logged_bodies(&bodies);
    assert!(
        body_bytes.len() > 1000,
        "the hubs logged the bodies they received"
    );
    let bodies_text = String::from_utf8_lossy(&body_bytes).to_string();
    let images = ["obama.jpg", "obama2.jpg", "biden.jpg"];
    assert_nothing_biometric("hub database", &text, &images, &sealed);
    assert_nothing_biometric("request bodies", &bodies_text, &images, &sealed);
    assert!(
        !body_bytes.windows(3).any(|w| w == [0xff, 0xd8, 0xff]),
        "JPEG bytes in a body"
    );
    drop((s0, s1, s2, hub_a, hub_b));
    drop_db(&base, &url);
    let _ = std::fs::remove_dir_all(&root);
}
