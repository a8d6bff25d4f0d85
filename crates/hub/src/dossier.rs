//! The inspection dossier (R24): filing pack, PIA, device placements,
//! processing records (each site's event log as the hub holds it), consent
//! records (per site: scenario, kind, notice version, given / withdrawn,
//! pseudonym), requests and complaints with their due dates and each
//! site's progress (`requests_and_complaints.json`), and the
//! audit anchors of every site, as one archive with an integrity manifest
//! (SHA-256 of every file, and of the manifest itself) that
//! [`check`] verifies.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::server::HubConfig;
use crate::Result;

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Assemble the dossier now.
pub async fn build(s: &HubConfig) -> Result<Value> {
    let hc = s.db.headcount().await?;
    let sites = s.db.sites().await?;
    let mut files: Map<String, Value> = Map::new();
    let filing = json!({
        "processor": s.processor_name,
        "rule": "R21 (第十五条 / Art. 15)",
        "distinct_persons_with_face_information": hc.headcount,
        "alert_level": hc.alert_level,
        "threshold_reached_on": hc.threshold_reached_on,
        "filing_deadline": hc.filing_deadline,
        "headcount_history": hc.history,
        "sites": sites.iter().map(|x| json!({"id": x.id, "name": x.name})).collect::<Vec<_>>(),
    });
    files.insert(
        "filing_pack.json".into(),
        Value::String(serde_json::to_string_pretty(&filing).expect("json")),
    );
    let mut devices = Vec::new();
    for x in &sites {
        for d in s.db.devices(x.id).await? {
            devices.push(json!({"site": x.name, "site_id": x.id, "device": d.device_id, "placement": d.placement, "location": d.location}));
        }
    }
    let pia = format!(
        "# 个人信息保护影响评估 / Personal information protection impact assessment — {p}\n\n\
         - 处理者 / Processor: {p}\n- 站点 / Sites: {n}\n- 存储人脸信息的去重人数 / Distinct persons with face information: {h}\n\
         - 人脸信息仅存于各站点设备，不经互联网传输 (R11, 第八条)；本中心只保存以处理者密钥计算的假名 (HMAC-SHA-256)、审计链哈希与删除回执。\n\
         - Face information stays in each site's device store and is not sent over the Internet (R11, Art. 8); the hub keeps only keyed pseudonyms (HMAC-SHA-256), audit-chain hashes and deletion receipts.\n\
         - 传输 / Transit: TLS (rustls), site requests signed with Ed25519 (R20).\n\
         - 撤回与删除 / Withdrawal and deletion: one request at the hub reaches every site that holds the person's face information; each returns a receipt (R8, R14).\n",
        p = s.processor_name,
        n = sites.len(),
        h = hc.headcount
    );
    files.insert("pia.md".into(), Value::String(pia));
    files.insert(
        "devices.json".into(),
        Value::String(serde_json::to_string_pretty(&devices).expect("json")),
    );
    let anchors = s.db.anchor_reports().await?;
    files.insert(
        "anchors.json".into(),
        Value::String(serde_json::to_string_pretty(&anchors).expect("json")),
    );
    for x in &sites {
        let lines = crate::portal::record_lines(s, x.id).await?;
        files.insert(format!("records/{}.jsonl", x.id), Value::String(lines));
        files.insert(
            format!("consents/{}.jsonl", x.id),
            Value::String(crate::portal::consent_lines(s, x.id).await?),
        );
    }
    // Every person's request and complaint with each site's progress, the
    // pending ones included (there is no second list of pending commands:
    // the only thing it held beyond these was a manifest push still on its
    // way, which is no person's request; `hub show manifests` shows those).
    files.insert(
        "requests_and_complaints.json".into(),
        Value::String(
            serde_json::to_string_pretty(&crate::portal::cases_for_dossier(s).await?)
                .expect("json"),
        ),
    );
    let manifest: Map<String, Value> = files
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(sha(v.as_str().expect("text")))))
        .collect();
    let manifest_sha256 = sha(&serde_json::to_string(&manifest).expect("json"));
    Ok(json!({
        "format": "facegate-dossier-v1",
        "generated_at": crate::ts(chrono::Utc::now()),
        "files": files,
        "manifest": manifest,
        "manifest_sha256": manifest_sha256,
    }))
}

/// Check a dossier's integrity: every file's hash matches the manifest,
/// the manifest matches its own hash, and no file is missing or extra.
pub fn check(d: &Value) -> std::result::Result<usize, String> {
    let files = d["files"].as_object().ok_or("no files")?;
    let manifest = d["manifest"].as_object().ok_or("no manifest")?;
    let m_sha = d["manifest_sha256"].as_str().ok_or("no manifest hash")?;
    if sha(&serde_json::to_string(manifest).expect("json")) != m_sha {
        return Err("the manifest does not match its hash".into());
    }
    if files.len() != manifest.len() {
        return Err("files and manifest differ in number".into());
    }
    for (k, v) in files {
        let want = manifest
            .get(k)
            .and_then(|x| x.as_str())
            .ok_or_else(|| format!("{k}: not in the manifest"))?;
        if sha(v.as_str().ok_or_else(|| format!("{k}: not text"))?) != want {
            return Err(format!("{k}: hash mismatch"));
        }
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use crate::db::Raised;
    use crate::portal::tests::{person_with_session, TestHub};
    use crate::proto::Hash32;

    /// The dossier lists requests once: `requests_and_complaints.json`,
    /// with a site's command still pending in it. Before, `requests.json`
    /// listed the pending commands a second time.
    #[tokio::test]
    async fn r24_the_dossier_lists_each_request_once_with_its_pending_sites() {
        let Some(t) = TestHub::open().await else {
            return;
        };
        let p = Hash32([5; 32]);
        let (site, _) = person_with_session(&t, p).await;
        let r = t.s.db.add_request("erase", p, Raised::Desk).await.unwrap();
        let d = super::build(&t.s).await.unwrap();
        let files = d["files"].as_object().unwrap();
        assert!(!files.contains_key("requests.json"), "one list of requests");
        let cases: serde_json::Value =
            serde_json::from_str(files["requests_and_complaints.json"].as_str().unwrap()).unwrap();
        let cases = cases.as_array().unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0]["id"], r.id.to_string());
        assert_eq!(cases[0]["done"], false);
        let sites = cases[0]["sites"].as_array().unwrap();
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0]["site_id"], site.to_string());
        assert!(sites[0]["receipted_at"].is_null(), "pending at the site");
        assert_eq!(super::check(&d), Ok(files.len()));
    }
}
