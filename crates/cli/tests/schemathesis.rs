//! The OpenAPI document is the contract: schemathesis, with every check,
//! against a real `facegate serve` on a fresh data directory, must find
//! nothing. Bounded in time (`FACEGATE_SCHEMATHESIS_SECONDS`, default 100).
//!
//! schemathesis comes from `FACEGATE_SCHEMATHESIS` (the `st` command), else
//! the venv `scripts/test.sh` creates (`tests/schemathesis/.venv`), else
//! `st` on the PATH; without it the test says so and passes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn schemathesis() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FACEGATE_SCHEMATHESIS") {
        return Some(PathBuf::from(p));
    }
    let venv = repo_root().join("tests/schemathesis/.venv/bin/st");
    if venv.exists() {
        return Some(venv);
    }
    let on_path = Command::new("st")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    on_path.then(|| PathBuf::from("st"))
}

/// Kills `facegate serve` when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What `facegate serve` prints at start: its address, the admin key and
/// the kiosk's device key.
struct Started {
    addr: String,
    admin: String,
    device: String,
    device_key: String,
}

fn start(dir: &Path) -> (Server, Started) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_facegate"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data"])
        .arg(dir)
        .env_remove("FACEGATE_DATABASE_URL")
        .env_remove("FACEGATE_SCENARIO")
        .env_remove("FACEGATE_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("facegate serve starts");
    let out = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("serve: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut addr, mut admin, mut kiosk) = (None, None, None);
    while addr.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("facegate serve prints its address within 5 minutes");
        if let Some(k) = line.strip_prefix("admin key (shown once; paste it into the console): ") {
            admin = Some(k.trim().to_string());
        } else if let Some(url) = line.strip_prefix("kiosk:") {
            kiosk = Some(url.trim().to_string());
        } else if let Some(url) = line.strip_prefix("API:") {
            let url = url.split_whitespace().next().unwrap();
            addr = Some(
                url.trim_start_matches("http://")
                    .trim_end_matches("/v1/openapi.json")
                    .to_string(),
            );
        }
    }
    // kiosk: http://ADDR/kiosk#device=DEV&key=KEY
    let kiosk = kiosk.expect("serve prints the kiosk URL");
    let frag = kiosk.split_once('#').unwrap().1;
    let field = |name: &str| {
        frag.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    let started = Started {
        addr: addr.unwrap(),
        admin: admin.expect("a fresh data directory gets an admin key"),
        device: field("device"),
        device_key: field("key"),
    };
    (server, started)
}

#[test]
fn schemathesis_with_every_check_finds_nothing() {
    let Some(st) = schemathesis() else {
        println!(
            "skipped: schemathesis is not installed (scripts/test.sh creates tests/schemathesis/.venv; or set FACEGATE_SCHEMATHESIS to its `st`)"
        );
        return;
    };
    let seconds: u64 = std::env::var("FACEGATE_SCHEMATHESIS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let dir = std::env::temp_dir().join(format!(
        "facegate-schemathesis-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (server, s) = start(&dir);
    println!(
        "facegate serve at {} (kiosk device {}, key {}…)",
        s.addr,
        s.device,
        &s.device_key[..12.min(s.device_key.len())]
    );
    let report = dir.join("report");
    let status = Command::new(&st)
        .current_dir(repo_root())
        .arg("--config-file")
        .arg(repo_root().join("tests/schemathesis/schemathesis.toml"))
        .args(["--no-color", "run"])
        .arg(format!("http://{}/v1/openapi.json", s.addr))
        // Every check is on by default (schemathesis 4); the config file
        // turns off or widens a check only where it says why. Naming the
        // checks here would override those exceptions.
        .args(["--max-time", &seconds.to_string()])
        .args(["--workers", "2", "--seed", "1", "--request-timeout", "30"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {}", s.admin))
        .arg("--report-dir")
        .arg(&report)
        .status()
        .expect("schemathesis runs");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        status.success(),
        "schemathesis found failures against facegate serve (see above)"
    );
}
