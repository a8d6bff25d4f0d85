//! R20 / principle 2: scan every SQLite file (main and biometric, with their
//! WAL) for face information and names, after enrolling and after deleting.

mod common;

use common::*;
use facegate_store::*;
use sqlx::{Connection, Row};

fn files_contain(files: &[std::path::PathBuf], needle: &[u8]) -> Option<String> {
    for f in files {
        // SQLite removes the -wal/-shm files when the last connection
        // closes; a file gone since it was listed holds nothing.
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", f.display()),
        };
        if data.windows(needle.len()).any(|w| w == needle) {
            return Some(f.display().to_string());
        }
    }
    None
}

struct Enrolled {
    person: Person,
    consent: Consent,
    name: String,
    plain: Vec<u8>,
    sealed: Vec<u8>,
    identity_ct: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r20_sqlite_files_hold_no_plaintext_templates_or_names() {
    let db = Db::sqlite().await;
    let w = world(&db.store).await;
    let bio: [u8; 32] = rand::random();
    let mut people = Vec::new();
    for i in 0..24u64 {
        let name = if i % 2 == 0 {
            format!("张伟{i:03}号 Zhang-Wei-{i:03}")
        } else {
            format!("Margaret Okonkwo-{i:03}")
        };
        let (person, consent) = consenting_person(&db.store, &w, &name).await;
        let v = template_f32(1000 + i);
        let plain = if i % 3 == 0 {
            template_i8(&v)
        } else {
            f32_bytes(&v)
        };
        let sealed = seal(&bio, &plain);
        db.store
            .enrol(&enrolment(&w, person.id, sealed.clone()), "test")
            .await
            .unwrap();
        let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        let identity_ct: Vec<u8> = sqlx::query("SELECT identity FROM persons WHERE id = $1")
            .bind(person.id.to_string())
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get("identity");
        c.close().await.unwrap();
        people.push(Enrolled {
            person,
            consent,
            name,
            plain,
            sealed,
            identity_ct,
        });
    }
    let files = db.store.sqlite_files().unwrap().all_existing();
    assert!(
        files.iter().any(|f| f
            .display()
            .to_string()
            .ends_with("facegate.biometric.db-wal")),
        "{files:?}"
    );
    assert!(
        files
            .iter()
            .any(|f| f.display().to_string().ends_with("facegate.db-wal")),
        "{files:?}"
    );

    let check_no_plaintext = |files: &[std::path::PathBuf], when: &str| {
        for e in &people {
            for chunk in [
                &e.plain[..32],
                &e.plain[e.plain.len() / 2..e.plain.len() / 2 + 32],
            ] {
                assert_eq!(
                    files_contain(files, chunk),
                    None,
                    "{when}: plaintext template bytes found"
                );
            }
            assert_eq!(
                files_contain(files, e.name.as_bytes()),
                None,
                "{when}: name {:?} found",
                e.name
            );
            assert_eq!(
                files_contain(files, b"13800000000"),
                None,
                "{when}: contact found"
            );
        }
    };
    check_no_plaintext(&files, "after enrolment");
    // The scan can see what is there: the sealed blobs are in the biometric
    // file (or its WAL) and nowhere in the identity files.
    for e in &people {
        let needle = &e.sealed[20..68];
        let hit = files_contain(&files, needle).expect("sealed blob present");
        assert!(
            hit.contains("biometric"),
            "sealed template found outside the template store: {hit}"
        );
        assert!(
            files_contain(&files, &e.identity_ct[13..45]).is_some(),
            "identity ciphertext present"
        );
    }

    // Delete half: withdrawal for some, erasure for others.
    let (gone, kept) = people.split_at(12);
    for (k, e) in gone.iter().enumerate() {
        if k % 2 == 0 {
            let r = db
                .store
                .withdraw_consent(e.consent.id, "portal", "test")
                .await
                .unwrap();
            assert_eq!(r.deletion.unwrap().templates_deleted, 1);
            db.store.erase_person(e.person.id, "test").await.unwrap();
        } else {
            db.store.erase_person(e.person.id, "test").await.unwrap();
        }
    }
    let files = db.store.sqlite_files().unwrap().all_existing();
    check_no_plaintext(&files, "after deletion");
    for e in gone {
        assert_eq!(
            files_contain(&files, &e.sealed[20..68]),
            None,
            "deleted sealed template lingers (secure_delete/WAL)"
        );
        assert_eq!(
            files_contain(&files, &e.identity_ct[13..45]),
            None,
            "erased identity ciphertext lingers"
        );
    }
    for e in kept {
        assert!(
            files_contain(&files, &e.sealed[20..68]).is_some(),
            "kept template must still be there"
        );
    }
    // And after the store is closed (checkpointed).
    let store = db.store.clone();
    store.close().await;
    let files = SqliteFiles::for_main(std::path::Path::new(db.url.trim_start_matches("sqlite:")))
        .all_existing();
    check_no_plaintext(&files, "after close");
    for e in gone {
        assert_eq!(
            files_contain(&files, &e.sealed[20..68]),
            None,
            "deleted sealed template lingers after close"
        );
    }
}
