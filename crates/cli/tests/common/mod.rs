//! Scaffolding shared by the hub tests (`hub.rs`, `hub_offline.rs`): the
//! `facegate` binary with a clean environment, child processes killed on
//! drop, a hub and a site started on loopback, enrolment from fixtures, the
//! hub's admin API over TLS, a fresh PostgreSQL database per test.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use facegate_hub::keys;
use facegate_hub::tls_http::{HubConn, HubUrl};
use serde_json::{json, Value};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facegate"));
    c.env_remove("FACEGATE_DATABASE_URL")
        .env_remove("FACEGATE_IDENTITY_KEY")
        .env_remove("FACEGATE_KEK")
        .env_remove("FACEGATE_DATA");
    c
}

pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
impl Proc {
    /// SIGKILL, as `kill -9`.
    pub fn kill9(mut self) {
        self.0.kill().unwrap();
        let _ = self.0.wait();
    }
}

/// Start a process and read its stdout until a line starting with `until`;
/// returns that line.
pub fn start(mut c: Command, until: &str) -> (Proc, String) {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut found = None;
    for line in out.by_ref() {
        let line = line.unwrap();
        if line.starts_with(until) {
            found = Some(line);
            break;
        }
    }
    // Keep reading, so later lines never meet a closed pipe.
    std::thread::spawn(move || out.for_each(drop));
    let line = found.unwrap_or_else(|| panic!("process ended before printing {until:?}"));
    (Proc(child), line)
}

pub fn hub(url: &str, dir: &Path, port: u16, bodies: &Path) -> (Proc, u16) {
    let mut c = bin();
    c.args(["hub", "serve", "--database-url", url, "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--dir")
        .arg(dir)
        .env("FACEGATE_HUB_BODY_LOG", bodies);
    let (p, line) = start(c, "hub: https://");
    let port = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.rsplit(':').next())
        .unwrap()
        .parse()
        .unwrap();
    (p, port)
}

pub struct Site {
    pub dir: PathBuf,
    pub id: String,
    pub key: PathBuf,
}

pub fn site(s: &Site, hub_port: u16, hubdir: &Path) -> Proc {
    let mut c = bin();
    c.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&s.dir)
        .arg("--hub")
        .arg(format!("https://localhost:{hub_port}"))
        .args(["--hub-site-id", &s.id, "--hub-site-key"])
        .arg(&s.key)
        .arg("--hub-pseudonym-key")
        .arg(hubdir.join("pseudonym.key"))
        .arg("--hub-ca")
        .arg(hubdir.join("hub.crt"))
        .args(["--hub-interval-ms", "200"]);
    start(c, "API:").0
}

pub fn enrol(data: &Path, root: &Path, files: &[(&str, &str, &str)]) {
    let images = root.join(format!("img-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&images).unwrap();
    let mut csv = String::from("file,name,date_of_birth,channel,evidence\n");
    for (f, name, dob) in files {
        std::fs::copy(
            facegate_assets::fixture(f).expect("fixture"),
            images.join(f),
        )
        .unwrap();
        csv.push_str(&format!("{f},{name},{dob},paper,signed form\n"));
    }
    let p = images.join("consents.csv");
    std::fs::write(&p, csv).unwrap();
    let st = bin()
        .arg("enrol")
        .arg(&images)
        .arg("--consents")
        .arg(&p)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "enrol at {}", data.display());
}

pub struct Admin {
    pub rt: tokio::runtime::Runtime,
    pub ca: PathBuf,
    pub token: String,
}

impl Admin {
    pub fn call(&self, port: u16, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.rt.block_on(async {
            let url = HubUrl::parse(&format!("https://localhost:{port}")).unwrap();
            let mut c = HubConn::connect(&url, keys::client_tls(&self.ca).unwrap())
                .await
                .unwrap();
            let (s, b) = c
                .send(
                    method,
                    path,
                    &[("authorization", format!("Bearer {}", self.token))],
                    body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
                )
                .await
                .unwrap();
            (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
        })
    }
    pub fn get(&self, port: u16, path: &str) -> Value {
        let (s, v) = self.call(port, "GET", path, None);
        assert_eq!(s, 200, "{path}: {v}");
        v
    }
}

pub fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

pub fn sqlite(rt: &tokio::runtime::Runtime, path: &Path, sql: &str) -> Vec<String> {
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>(0)
                    .or_else(|_| r.try_get::<i64, _>(0).map(|i| i.to_string()))
                    .or_else(|_| r.try_get::<Vec<u8>, _>(0).map(hex::encode))
                    .unwrap_or_default()
            })
            .collect()
    })
}

pub fn fresh_db(base: &str) -> String {
    let name = format!("fg_test_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(base).await.unwrap();
        sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
    });
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h.to_string(), format!("?{q}")),
        None => (base.to_string(), String::new()),
    };
    let scheme_end = head.find("://").unwrap() + 3;
    let host_end = head[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(head.len());
    format!("{}/{name}{query}", &head[..host_end])
}

pub fn b64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// `facegate hub init` in `root/hub`; returns that directory and an admin
/// client holding the hub's CA certificate and admin token.
pub fn init_hub(root: &Path) -> (PathBuf, Admin) {
    let hubdir = root.join("hub");
    assert!(bin()
        .args(["hub", "init"])
        .arg(&hubdir)
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success());
    let admin = Admin {
        rt: tokio::runtime::Runtime::new().unwrap(),
        ca: hubdir.join("hub.crt"),
        token: std::fs::read_to_string(hubdir.join("admin.token"))
            .unwrap()
            .trim()
            .into(),
    };
    (hubdir, admin)
}

/// A site key made with `facegate hub site-key` in `root/site{i}`, the site
/// registered at the hub on `port` with one non-public gate.
pub fn register_site(admin: &Admin, port: u16, root: &Path, i: usize) -> Site {
    let dir = root.join(format!("site{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("site.key");
    let out = bin().args(["hub", "site-key"]).arg(&key).output().unwrap();
    let public = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (s, v) = admin.call(
        port,
        "POST",
        "/v1/sites",
        Some(json!({"name": format!("compound {i}"), "public_key": public,
            "devices": [{"device_id": "gate-1", "placement": "non_public", "location": format!("compound {i} north gate")}]})),
    );
    assert_eq!(s, 200, "{v}");
    Site {
        dir,
        id: v["id"].as_str().unwrap().into(),
        key,
    }
}

/// Drop a database `fresh_db` made (tests that create databases drop them).
pub fn drop_db(base: &str, url: &str) {
    let name = url
        .split('?')
        .next()
        .and_then(|h| h.rsplit('/').next())
        .unwrap()
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(base).await.unwrap();
        let _ = sqlx::Executor::execute(
            &mut c,
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
        )
        .await;
    });
}

/// A site process with what it printed: its address and the admin and
/// kiosk keys it issued at its first start.
pub struct SiteProc {
    pub proc: Proc,
    pub addr: String,
    pub admin: Option<String>,
    pub kiosk: Option<String>,
    /// What serve printed up to its `API:` line.
    pub startup: Vec<String>,
}

/// Start a site attached to the hub on `hub_port`, pinning the hub's
/// manifest key (`manifest.pub`), with `extra` arguments (e.g.
/// `--scenario FILE`).
pub fn site_serve(s: &Site, hub_port: u16, hubdir: &Path, extra: &[&std::ffi::OsStr]) -> SiteProc {
    let mut c = bin();
    c.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&s.dir)
        .arg("--hub")
        .arg(format!("https://localhost:{hub_port}"))
        .args(["--hub-site-id", &s.id, "--hub-site-key"])
        .arg(&s.key)
        .arg("--hub-pseudonym-key")
        .arg(hubdir.join("pseudonym.key"))
        .arg("--hub-ca")
        .arg(hubdir.join("hub.crt"))
        .arg("--hub-manifest-key")
        .arg(hubdir.join("manifest.pub"))
        .args(["--hub-interval-ms", "200"])
        .args(extra);
    serve(c)
}

/// Start a site alone (no hub) in `dir`.
#[allow(dead_code)]
pub fn serve_alone(dir: &Path) -> SiteProc {
    let mut c = bin();
    c.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir);
    serve(c)
}

/// Run a `facegate serve` command and read its start-up lines.
fn serve(mut c: Command) -> SiteProc {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut addr, mut admin, mut kiosk) = (None, None, None);
    let mut startup = Vec::new();
    for line in out.by_ref() {
        let line = line.unwrap();
        startup.push(line.clone());
        if let Some(rest) = line.strip_prefix("portal:  http://") {
            addr = Some(rest.trim_end_matches("/portal").to_string());
        }
        if let Some(i) = line.find("&key=") {
            kiosk = Some(line[i + 5..].trim().to_string());
        }
        if line.starts_with("admin key (shown once") {
            admin = line.rsplit(' ').next().map(str::to_string);
        }
        if line.starts_with("API:") {
            break;
        }
    }
    std::thread::spawn(move || out.for_each(drop));
    SiteProc {
        proc: Proc(child),
        addr: addr.expect("serve printed its address"),
        admin,
        kiosk,
        startup,
    }
}

/// One HTTP/1.1 request to a site (plain HTTP on loopback); the JSON body
/// (or the text as a JSON string).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<String>,
) -> (u16, Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let body = body.unwrap_or_default();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map(|i| i + 1).unwrap_or(body.len());
    let v = serde_json::from_str(&body[start..end]).unwrap_or(Value::String(body.into()));
    (status, v)
}

/// A still frame with a tail of its own (the server refuses an exact
/// replay, R20), base64.
pub fn fresh(raw: &[u8]) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut b = raw.to_vec();
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    b.extend_from_slice(&n.to_le_bytes());
    b64(&b)
}

/// Run SQL on a PostgreSQL database; the first column of each row as text.
pub fn pg(url: &str, sql: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>(0)
                    .or_else(|_| r.try_get::<i64, _>(0).map(|i| i.to_string()))
                    .unwrap_or_default()
            })
            .collect()
    })
}

impl Admin {
    /// POST a text body (a manifest) to the hub.
    pub fn call_text(&self, port: u16, path: &str, text: &str) -> (u16, Value) {
        self.rt.block_on(async {
            let url = HubUrl::parse(&format!("https://localhost:{port}")).unwrap();
            let mut c = HubConn::connect(&url, keys::client_tls(&self.ca).unwrap())
                .await
                .unwrap();
            let (s, b) = c
                .send(
                    "POST",
                    path,
                    &[("authorization", format!("Bearer {}", self.token))],
                    text.as_bytes().to_vec(),
                )
                .await
                .unwrap();
            (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
        })
    }
}

/// Drops the test's database however the test ends.
pub struct DropDb(pub String, pub String);
impl Drop for DropDb {
    fn drop(&mut self) {
        drop_db(&self.0, &self.1);
    }
}

/// The sealed templates (hex) every site holds, to look for at the hub.
pub fn sealed_templates(rt: &tokio::runtime::Runtime, sites: &[Site]) -> Vec<String> {
    sites
        .iter()
        .flat_map(|s| {
            sqlite(
                rt,
                &s.dir.join("facegate.biometric.db"),
                "SELECT sealed FROM templates",
            )
        })
        .collect()
}

/// Every row of every table of the hub's database as JSON text, one row a
/// line, and the tables' names.
pub fn hub_tables_text(rt: &tokio::runtime::Runtime, url: &str) -> (Vec<String>, String) {
    rt.block_on(async {
        use sqlx::{Connection, Row};
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        let mut text = String::new();
        for t in &tables {
            for r in sqlx::query(&format!("SELECT row_to_json(x)::text FROM {t} x"))
                .fetch_all(&mut c)
                .await
                .unwrap()
            {
                text.push_str(&r.get::<String, _>(0));
                text.push('\n');
            }
        }
        (tables, text)
    })
}

/// Every request body the hubs logged under `dir`, concatenated.
pub fn logged_bodies(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    all
}

/// `hay` (named `name` in failures) holds none of the fixture `images`'
/// bytes (hex or base64), no encoded JPEG or PNG, none of the `sealed`
/// templates' bytes, and no run of 16 or more decimals (an embedding).
pub fn assert_nothing_biometric(name: &str, hay: &str, images: &[&str], sealed: &[String]) {
    for img in images {
        let bytes = std::fs::read(facegate_assets::fixture(img).unwrap()).unwrap();
        for needle in [hex::encode(&bytes[..24]), b64(&bytes[..24])] {
            assert!(!hay.contains(&needle), "{name}: image bytes of {img}");
        }
    }
    assert!(
        !hay.contains("/9j/") && !hay.contains("iVBORw0KGgo"),
        "{name}: an encoded image"
    );
    for s in sealed {
        let raw = hex::decode(s).unwrap();
        for needle in [s[..48].to_string(), b64(&raw[..36])] {
            assert!(!hay.contains(&needle), "{name}: sealed template bytes");
        }
    }
    let mut run = 0;
    for tok in hay.split([',', '[', ']']) {
        if tok.trim().parse::<f64>().is_ok() && tok.contains('.') {
            run += 1;
            assert!(run < 16, "{name}: a run of floats");
        } else {
            run = 0;
        }
    }
}

/// The dossier's processing records of site `site`: (seq, record hash).
pub fn dossier_records(dossier: &Value, site: &str) -> Vec<(i64, String)> {
    dossier["files"][format!("records/{site}.jsonl")]
        .as_str()
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["seq"].as_i64().unwrap(),
                v["record_hash"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
