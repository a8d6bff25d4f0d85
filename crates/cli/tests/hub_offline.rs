//! Issue 16: manifests signed at the hub and pushed to a site, and a site
//! that keeps serving while its hub is down. Real processes: one
//! `facegate hub` on PostgreSQL and one `facegate serve --hub` with its own
//! SQLite, over TLS on loopback.
//!
//! - A manifest the linter refuses is refused at the hub (R19, named).
//! - A manifest uploaded at the hub, signed and assigned, is deployed by
//!   the site; the hub shows the version the site runs. A manifest altered
//!   after signing is refused by the site and shown refused at the hub. A
//!   local upload at the site is refused while it is attached to the hub.
//! - The signed push delivered twice (its receipt lost at the hub) is
//!   applied once.
//! - The hub stopped: the site still verifies an enrolled person by face
//!   and by PIN, restarts and still serves, and takes a withdrawal locally;
//!   the hub restarted: every queued event arrives in order with the
//!   site's own hashes, and the headcount is right.
//!
//! Skips without FACEGATE_TEST_DATABASE_URL.

mod common;

use std::ffi::OsStr;

use common::*;
use serde_json::{json, Value};

#[test]
fn hub_offline_site_keeps_serving_and_takes_only_signed_manifests() {
    let Ok(base) = std::env::var("FACEGATE_TEST_DATABASE_URL") else {
        println!("SKIP postgres: FACEGATE_TEST_DATABASE_URL is not set (scripts/test.sh sets it)");
        return;
    };
    let url = fresh_db(&base);
    let root = std::env::temp_dir().join(format!("facegate-hub-off-{}", uuid::Uuid::now_v7()));
    let bodies = root.join("bodies");
    std::fs::create_dir_all(&bodies).unwrap();
    let (hubdir, admin) = init_hub(&root);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (hub_p, port) = hub(&url, &hubdir, 0, &bodies);
    let site0 = register_site(&admin, port, &root, 0);

    // The demo gate with single-frame (passive) liveness, so one still
    // frame verifies (challenges have their own tests).
    let manifest = facegate_server::deploy::passive_demo_manifest();
    let mfile = root.join("scenario.toml");
    std::fs::write(&mfile, &manifest).unwrap();
    let extra = [OsStr::new("--scenario"), mfile.as_os_str()];
    let s = site_serve(&site0, port, &hubdir, &extra);
    let (sadmin, kiosk) = (s.admin.clone().unwrap(), s.kiosk.clone().unwrap());
    let dev = "gate-north-1";

    // A person, consent, face and PIN, at the site.
    let (st, p) = http(
        &s.addr,
        "POST",
        "/v1/persons",
        Some(&sadmin),
        Some(json!({"display_name": "Barack Obama", "date_of_birth": "1961-08-04"}).to_string()),
    );
    assert_eq!(st, 200, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    let (_, n) = http(&s.addr, "GET", "/v1/notice", None, None);
    let nv = n["version"].as_str().unwrap().to_string();
    let (st, c) = http(
        &s.addr,
        "POST",
        "/v1/consents",
        Some(&kiosk),
        Some(json!({"person_id": pid, "notice_version": nv, "device_id": dev}).to_string()),
    );
    assert_eq!(st, 200, "{c}");
    let cid = c["id"].as_str().unwrap().to_string();
    let img = std::fs::read(facegate_assets::fixture("obama.jpg").unwrap()).unwrap();
    let img2 = std::fs::read(facegate_assets::fixture("obama2.jpg").unwrap()).unwrap();
    let (st, e) = http(
        &s.addr,
        "POST",
        "/v1/enrol",
        Some(&kiosk),
        Some(json!({"person_id": pid, "device_id": dev, "images": [fresh(&img)]}).to_string()),
    );
    assert_eq!(st, 200, "{e}");
    let (st, _) = http(
        &s.addr,
        "POST",
        "/v1/credentials",
        Some(&kiosk),
        Some(
            json!({"person_id": pid, "device_id": dev, "kind": "pin", "secret": "246810"})
                .to_string(),
        ),
    );
    assert_eq!(st, 200);
    wait_for("headcount 1 at the hub", 60, || {
        admin.get(port, "/v1/headcount")["headcount"] == 1
    });

    // --- Manifests: linted at the hub, signed, pushed. ---
    let (st, v) = admin.call_text(
        port,
        "/v1/manifests",
        &manifest.replacen(
            "placement = \"non_public\"",
            "placement = \"hotel_room\"",
            1,
        ),
    );
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"], "refused", "{v}");
    let en = v["message_en"].as_str().unwrap();
    assert!(en.contains("R19") && en.contains("Art. 13"), "{v}");
    assert!(
        v["message_zh"].as_str().unwrap().contains("第十三条"),
        "{v}"
    );

    let upload = |text: &str| {
        let (st, v) = admin.call_text(port, "/v1/manifests", text);
        assert_eq!(st, 200, "{v}");
        v
    };
    let assign = |id: &Value| {
        let (st, v) = admin.call(
            port,
            "POST",
            &format!("/v1/manifests/{}/assign", id.as_str().unwrap()),
            Some(json!({"sites": [site0.id]})),
        );
        assert_eq!(st, 200, "{v}");
        v["sites"][0]["command_id"].as_str().unwrap().to_string()
    };
    let site_view = || {
        admin.get(port, "/v1/manifests")["sites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["site_id"] == site0.id.as_str())
            .cloned()
            .unwrap_or(Value::Null)
    };
    // v1: the text the site runs; deployed (no new scenario version).
    let v1 = upload(&manifest);
    assert_eq!(v1["version"], 1);
    assert_eq!(
        v1["notice_version"],
        nv.as_str(),
        "the hub's notice version"
    );
    assign(&v1["id"]);
    wait_for("v1 deployed at the site", 60, || {
        site_view()["running"]["residential-gate"]["version"] == 1
    });
    // v2, altered in the hub's database after it was signed (as an
    // attacker between signing and delivery would): the site refuses it.
    let v2 = upload(&format!("{manifest}\n# v2\n"));
    assert_eq!(v2["version"], 2);
    pg(
        &url,
        &format!(
            "UPDATE hub_manifests SET manifest = replace(manifest, '# v2', '# v9') WHERE id = '{}' RETURNING id",
            v2["id"].as_str().unwrap()
        ),
    );
    assign(&v2["id"]);
    wait_for("v2 refused by the site", 60, || {
        site_view()["refused"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["version"] == 2))
    });
    assert_eq!(site_view()["running"]["residential-gate"]["version"], 1);
    let refused = sqlite(
        &rt,
        &site0.dir.join("facegate.db"),
        "SELECT refused FROM hub_manifests WHERE refused IS NOT NULL",
    );
    assert!(refused[0].contains("signature"), "{refused:?}");
    // v3, untouched: deployed; the hub shows it running, nothing pending.
    let v3 = upload(&format!("{manifest}\n# v3\n"));
    let c3 = assign(&v3["id"]);
    wait_for("v3 deployed at the site", 60, || {
        let v = site_view();
        v["running"]["residential-gate"]["version"] == 3
            && v["pending"].as_array().is_some_and(|p| p.is_empty())
    });
    let deployed_text = sqlite(
        &rt,
        &site0.dir.join("facegate.db"),
        "SELECT manifest FROM scenario_versions ORDER BY version DESC LIMIT 1",
    );
    assert!(deployed_text[0].ends_with("# v3\n"), "the core deployed v3");
    // A local upload at the attached site is refused.
    let (st, v) = http(
        &s.addr,
        "POST",
        "/v1/scenarios",
        Some(&sadmin),
        Some(format!("{manifest}\n# local\n")),
    );
    assert_eq!(st, 409, "{v}");
    assert!(v["message_en"].as_str().unwrap().contains("hub"), "{v}");

    // Delivered twice: the hub loses v3's receipt and sends the command
    // again; the site applies it once and sends the receipt again.
    let q = format!("SELECT applied_at FROM hub_inbox WHERE command_id = '{c3}'");
    let applied = sqlite(&rt, &site0.dir.join("facegate.db"), &q);
    pg(
        &url,
        &format!("UPDATE hub_commands SET receipted_at = NULL, status = NULL WHERE id = '{c3}' RETURNING id"),
    );
    wait_for("v3 receipted again", 60, || {
        pg(
            &url,
            &format!(
                "SELECT status FROM hub_commands WHERE id = '{c3}' AND receipted_at IS NOT NULL"
            ),
        ) == vec!["deployed".to_string()]
    });
    assert_eq!(sqlite(&rt, &site0.dir.join("facegate.db"), &q), applied);
    assert_eq!(
        sqlite(
            &rt,
            &site0.dir.join("facegate.db"),
            "SELECT COUNT(*) FROM scenario_versions WHERE manifest LIKE '%# v3%'"
        ),
        vec!["1"],
        "one scenario version for v3"
    );

    // --- The hub goes down. ---
    hub_p.kill9();
    let verify_face = |addr: &str| {
        http(
            addr,
            "POST",
            "/v1/verify",
            Some(&kiosk),
            Some(json!({"person_id": pid, "device_id": dev, "images": [fresh(&img2)]}).to_string()),
        )
    };
    let verify_pin = |addr: &str| {
        http(
            addr,
            "POST",
            "/v1/verify/credential",
            Some(&kiosk),
            Some(json!({"person_id": pid, "device_id": dev, "secret": "246810"}).to_string()),
        )
    };
    let (st, v) = verify_face(&s.addr);
    assert_eq!((st, v["outcome"].as_str()), (200, Some("pass")), "{v}");
    let (st, v) = verify_pin(&s.addr);
    assert_eq!((st, v["outcome"].as_str()), (200, Some("pass")), "{v}");
    // The site restarts with its hub down: it starts, runs the hub's v3
    // again (checked against the pinned key) and serves. The local
    // `--scenario` file was only the first bootstrap: the restart deploys
    // no local version over the hub's, so no new scenario version.
    let versions = || {
        sqlite(
            &rt,
            &site0.dir.join("facegate.db"),
            "SELECT COUNT(*) FROM scenario_versions",
        )
    };
    let before = versions();
    let SiteProc { proc, .. } = s;
    proc.kill9();
    let s = site_serve(&site0, port, &hubdir, &extra);
    assert!(
        s.startup
            .iter()
            .any(|l| l.contains("hub-signed version 3") && l.contains("not deployed")),
        "serve says it skipped the local file: {:?}",
        s.startup
    );

    let (st, v) = verify_face(&s.addr);
    assert_eq!((st, v["outcome"].as_str()), (200, Some("pass")), "{v}");
    let (st, v) = verify_pin(&s.addr);
    assert_eq!((st, v["outcome"].as_str()), (200, Some("pass")), "{v}");
    let (_, n) = http(&s.addr, "GET", "/v1/notice", None, None);
    assert_eq!(n["version"], nv.as_str());
    // Serving answers only after the start-up deploys: counted now.
    assert_eq!(versions(), before, "a restart creates no scenario version");
    let latest = sqlite(
        &rt,
        &site0.dir.join("facegate.db"),
        "SELECT manifest FROM scenario_versions ORDER BY version DESC LIMIT 1",
    );
    assert!(
        latest[0].ends_with("# v3\n"),
        "the hub's v3 is still the newest"
    );
    // A withdrawal taken locally, queued for the hub.
    let (st, w) = http(
        &s.addr,
        "POST",
        &format!("/v1/consents/{cid}/withdraw"),
        Some(&sadmin),
        Some("{}".into()),
    );
    assert_eq!(st, 200, "{w}");
    let (st, v) = verify_face(&s.addr);
    assert!(
        !(st == 200 && v["outcome"] == "pass"),
        "withdrawn: no face pass ({st} {v})"
    );
    // The PIN still works for the person (an alternative needs no face).
    let (st, v) = verify_pin(&s.addr);
    assert_eq!((st, v["outcome"].as_str()), (200, Some("pass")), "{v}");
    let mine = sqlite(
        &rt,
        &site0.dir.join("facegate.db"),
        "SELECT hash FROM audit_log ORDER BY seq",
    );

    // --- The hub comes back on its port. ---
    let (hub_p, p2) = hub(&url, &hubdir, port, &bodies);
    assert_eq!(p2, port);
    wait_for("every queued event at the hub, headcount 0", 60, || {
        let a = admin.get(port, "/v1/anchors");
        let events = a["sites"][0]["events"].as_i64().unwrap_or(0);
        events >= mine.len() as i64 && admin.get(port, "/v1/headcount")["headcount"] == 0
    });
    let d = admin.get(port, "/v1/dossier");
    let at_hub = dossier_records(&d, &site0.id);
    assert!(at_hub.len() >= mine.len());
    for (i, (seq, h)) in at_hub.iter().take(mine.len()).enumerate() {
        assert_eq!(*seq, i as i64 + 1, "in order, no gap");
        assert_eq!(h, &mine[i], "the site's own hash, in its order");
    }
    assert_eq!(admin.get(port, "/v1/anchors")["intact"], true);
    let hc = admin.get(port, "/v1/headcount");
    assert_eq!(hc["headcount"], 0, "{hc}");
    assert!(
        hc["history"].as_array().unwrap().iter().any(|d| d[1] == 1),
        "the day's high-water mark stays 1: {hc}"
    );
    drop((s, hub_p));
    drop_db(&base, &url);
    let _ = std::fs::remove_dir_all(&root);
}
