//! Bulk `facegate enrol` resumes (issue 11): killed with SIGKILL several
//! times and restarted, it ends with every CSV row's person registered
//! exactly once, each with one template, and the true headcount.

use std::process::{Command, Stdio};
use std::time::Duration;

use facegate_store::{Store, StoreKeys};

const FILES: [&str; 4] = ["obama.jpg", "biden.jpg", "obama2.jpg", "obama3.jpg"];
const ROWS: usize = 8;

fn facegate(data: &std::path::Path, images: &std::path::Path, csv: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facegate"));
    c.arg("enrol")
        .arg(images)
        .arg("--consents")
        .arg(csv)
        .arg("--data-dir")
        .arg(data)
        .env_remove("FACEGATE_DATABASE_URL")
        .env_remove("FACEGATE_IDENTITY_KEY")
        .env_remove("FACEGATE_DATA")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[test]
fn bulk_enrol_killed_and_restarted_ends_with_each_person_once() {
    let root = std::env::temp_dir().join(format!("facegate-bulk-{}", uuid::Uuid::now_v7()));
    let (data, images) = (root.join("data"), root.join("images"));
    std::fs::create_dir_all(&images).unwrap();
    let mut csv = String::from("file,name,date_of_birth,channel,evidence\n");
    for i in 0..ROWS {
        let f = FILES[i % FILES.len()];
        let src = facegate_assets::fixture(f).expect("fixture");
        let name = format!("{i}-{f}");
        std::fs::copy(src, images.join(&name)).unwrap();
        csv.push_str(&format!(
            "{name},Resident {i},1980-01-{:02},paper,signed form {i}\n",
            i + 1
        ));
    }
    let csv_path = root.join("consents.csv");
    std::fs::write(&csv_path, csv).unwrap();

    // Kill it at different points, several times.
    for (round, ms) in [1500u64, 2500, 3500, 4500, 5500].into_iter().enumerate() {
        let mut child = facegate(&data, &images, &csv_path).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
        }
        let _ = child.wait();
        println!("round {round}: killed after {ms} ms");
    }
    // Then let it finish.
    let status = facegate(&data, &images, &csv_path).status().unwrap();
    assert!(status.success(), "the last run finishes");
    // Once more: every row is recognised and skipped.
    let status = facegate(&data, &images, &csv_path).status().unwrap();
    assert!(status.success());

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let keys = StoreKeys::from_file(&data.join("identity.key")).unwrap();
        let url = format!("sqlite:{}", data.join("facegate.db").display());
        let store = Store::open(&url, keys).await.unwrap();
        let recs = store.audit_records(1, 100_000).await.unwrap();
        let persons: Vec<_> = recs
            .iter()
            .filter(|r| r.event == "person_added")
            .filter_map(|r| r.subject.clone())
            .collect();
        assert_eq!(
            persons.len(),
            ROWS,
            "each row's person registered exactly once"
        );
        assert_eq!(store.headcount().await.unwrap().count, ROWS as i64);
        let scenario = store.scenarios().await.unwrap()[0].scenario_id;
        for p in persons {
            let id = uuid::Uuid::parse_str(&p).unwrap();
            assert_eq!(store.template_count(id, scenario).await.unwrap(), 1, "{p}");
        }
        assert!(store.verify_chain().await.unwrap().is_intact());
    });
    let _ = std::fs::remove_dir_all(&root);
}
