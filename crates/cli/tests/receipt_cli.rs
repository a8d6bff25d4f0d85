//! `facegate receipt` as a person or a court would run it: the real binary,
//! offline, with nothing but the code and the public key.

use std::process::{Command, Output};

use chrono::{TimeZone, Utc};
use facegate_core::receipts::{code_bytes, code_from_bytes, Receipt, ReceiptSigner};
use facegate_store::StoreKeys;

fn facegate(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facegate"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run facegate")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn receipt_verify_accepts_the_signed_code_and_refuses_an_altered_one() {
    // The deployment's key comes from its identity key, as the server's does.
    let master = [9u8; 32];
    let hex: String = master.iter().map(|b| format!("{b:02x}")).collect();
    let signer = ReceiptSigner::from_seed(&StoreKeys::from_master(&master).receipt_signing_seed());
    let dir = std::env::temp_dir().join(format!("facegate-receipt-cli-{}", std::process::id()));
    let out = facegate(
        &["receipt", "public-key", "--data-dir", dir.to_str().unwrap()],
        &[("FACEGATE_IDENTITY_KEY", &hex)],
    );
    assert!(out.status.success(), "{}", text(&out));
    let pk = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(pk, signer.public_key_hex());

    let r = Receipt {
        receipt_id: uuid::Uuid::now_v7(),
        at: Utc.timestamp_opt(1_790_000_000, 0).unwrap(),
        decision: "refused".into(),
        method: "face".into(),
        scenario: "residential-gate".into(),
        device: Some("gate-north-1".into()),
        refusal_rule: Some("R8".into()),
        person: Some(signer.pseudonym(uuid::Uuid::nil())),
    };
    let code = signer.sign(&r);
    let out = facegate(&["receipt", "verify", &code, "--public-key", &pk], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&r.receipt_id.to_string()));
    assert!(text(&out).contains("R8"));
    let out = facegate(
        &["receipt", "verify", &code, "--public-key", &pk, "--json"],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);

    let mut b = code_bytes(&code).unwrap();
    b[3] ^= 0x40;
    let altered = code_from_bytes(&b);
    let out = facegate(&["receipt", "verify", &altered, "--public-key", &pk], &[]);
    assert!(!out.status.success(), "an altered receipt must fail");
    assert!(text(&out).contains("invalid receipt"), "{}", text(&out));
}
