//! R19 signage evidence: a device's signage photo is kept in the store
//! (SQLite and PostgreSQL alike), survives a reopen, is replaced by a new
//! upload, and each upload is audited with its hash (never the image).

#[macro_use]
mod common;

use common::*;

async fn r19_signage_photo_is_stored_replaced_and_audited(db: Db) {
    let w = world(&db.store).await;
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 0xFF, 0xD9];
    let p = db
        .store
        .put_signage_photo(w.device, "image/jpeg", &jpeg, "admin:test")
        .await
        .unwrap();
    assert_eq!(p.sha256.len(), 64);
    let again = db.reopen().await;
    let all = again.signage_photos().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].bytes, jpeg);
    assert_eq!(all[0].content_type, "image/jpeg");
    // A new photo replaces the old one.
    let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 9, 9];
    again
        .put_signage_photo(w.device, "image/png", &png, "admin:test")
        .await
        .unwrap();
    let all = again.signage_photos().await.unwrap();
    assert_eq!((all.len(), all[0].bytes.as_slice()), (1, &png[..]));
    // Audited with the hash, not the image; the chain still verifies.
    let n = again.audit_len().await.unwrap();
    let recs = again.audit_records(1, n).await.unwrap();
    let ups: Vec<_> = recs
        .iter()
        .filter(|r| r.event == "signage_uploaded")
        .collect();
    assert_eq!(ups.len(), 2);
    assert!(ups[1].details.contains(&all[0].sha256));
    assert!(again.verify_chain().await.unwrap().fault.is_none());
}
both!(r19_signage_photo_is_stored_replaced_and_audited);
