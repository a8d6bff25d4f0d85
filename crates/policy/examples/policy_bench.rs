//! Prints what the R19 location scan and one runtime decision cost, so the
//! per-decision price of reading location text (in `Device::facts`) is known.
//!
//! `cargo run --release -p facegate-policy --example policy_bench [ITERATIONS]`

use chrono::{DateTime, Duration, Utc};
use facegate_policy::*;
use std::hint::black_box;
use std::time::Instant;

fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n.min(1000) {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let s = parse_manifest(init_template("residential-gate").unwrap()).unwrap();
    let notice = s.notice_version();
    let at: DateTime<Utc> = "2025-08-01T03:00:00Z".parse().unwrap();
    let person = PersonFacts {
        date_of_birth: Some("1985-03-02".parse().unwrap()),
        consents: vec![ConsentRecord::given(
            &s,
            ConsentKind::Processing,
            at - Duration::days(1),
            "kiosk",
            "sig",
        )],
        ..PersonFacts::default()
    };
    let p = Processing {
        action: Action::Verify,
        method: Method::Face,
        purpose_id: s.purpose_id.clone(),
        person,
        device: s.devices.first().map(Device::facts),
        at,
        notice_version: Some(notice.clone()),
        pia: PiaStatus::Current,
    };
    let texts = [
        "北门人行通道",
        "12楼 1208 客房内",
        "卫生间旁的走廊",
        "Front desk, ground-floor lobby",
        "corridor next to the restrooms",
    ];
    println!("iterations: {n}");
    for t in texts {
        let ns = per_call(n, || {
            black_box(private_space(black_box(t)));
        });
        println!("private_space({t:?}): {ns:.0} ns");
    }
    let d = &s.devices[0];
    println!(
        "Device::facts (location scan included): {:.0} ns",
        per_call(n, || {
            black_box(black_box(d).facts());
        })
    );
    println!(
        "authorize_with_notice (face verify, permit): {:.0} ns",
        per_call(n, || {
            black_box(authorize_with_notice(&s, &notice, black_box(&p)).unwrap());
        })
    );
    println!(
        "required_liveness: {:.0} ns",
        per_call(n, || {
            black_box(required_liveness(&s, Some(black_box(d))));
        })
    );
}
