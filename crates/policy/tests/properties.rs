//! Property tests: no manifest the linter accepts can authorise face-only
//! verification without an exception, or an active device in a forbidden
//! place; minors and deadlines behave for arbitrary dates.

mod common;

use chrono::{Duration, NaiveDate};
use common::*;
use facegate_policy::*;
use proptest::prelude::*;

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(Method::ALL.to_vec())
}

fn placement() -> impl Strategy<Value = Placement> {
    prop::sample::select(Placement::ALL.to_vec())
}

#[derive(Debug, Clone)]
struct Dev {
    placement: Placement,
    active: bool,
    necessity: bool,
    zone: bool,
    signage: bool,
    /// Location text (zh, en), if any.
    location: Option<(&'static str, &'static str)>,
}

/// Locations: inside private spaces, beside them, and plain public places.
const LOCATIONS: &[(&str, &str)] = &[
    ("12楼 1208 客房内", "Inside guest room 1208"),
    ("游泳馆男更衣室", "Pool level"),
    ("二楼", "Second floor ladies' restroom"),
    ("洗浴中心淋浴区", "Shower area"),
    ("卫生间旁的走廊", "Corridor next to the toilets"),
    ("客房部", "Housekeeping department"),
    ("北门人行通道", "North gate, pedestrian lane"),
    ("一楼大堂前台", "Front desk, ground-floor lobby"),
];

fn dev() -> impl Strategy<Value = Dev> {
    (
        placement(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(LOCATIONS.to_vec())),
    )
        .prop_map(
            |(placement, active, necessity, zone, signage, location)| Dev {
                placement,
                active,
                necessity,
                zone,
                signage,
                location,
            },
        )
}

/// A manifest source built from the residential-gate template with the
/// methods, exception and devices replaced.
fn manifest(methods: &[Method], exception: bool, devices: &[Dev]) -> String {
    let base = init_template("residential-gate").unwrap();
    let (head, _) = base.split_once("[[devices]]").unwrap();
    let list = methods
        .iter()
        .map(|m| format!("\"{}\"", m.key()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut src = edit(
        head,
        r#"methods = ["face", "card", "qr_code", "staffed_check"]"#,
        &format!("methods = [{list}]"),
    );
    if exception {
        src = edit(
            &src,
            "quiet_period_hours = 72",
            "quiet_period_hours = 72\nface_only_exception = \"示例规定第一条\"",
        );
    }
    for (i, d) in devices.iter().enumerate() {
        src += &format!(
            "\n[[devices]]\nid = \"d{i}\"\nplacement = \"{}\"\nactive = {}\n",
            d.placement.key(),
            d.active
        );
        if d.necessity {
            src += "public_safety_necessity = { zh = \"维护公共安全\" }\n";
        }
        if d.zone {
            src += "capture_zone = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]\n";
        }
        if d.signage {
            src += "signage_evidence = \"photo:1\"\n";
        }
        if let Some((zh, en)) = d.location {
            src += &format!("location = {{ zh = \"{zh}\", en = \"{en}\" }}\n");
        }
    }
    src
}

fn face_verify(s: &Scenario, device: Option<DeviceFacts>) -> Processing {
    let at = t("2025-08-01T03:00:00Z");
    let mut p = step(s, Action::Verify, adult(s, at), at);
    p.device = device;
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn accepted_manifest_never_authorises_face_only_without_exception(
        methods in prop_oneof![
            Just(vec![Method::Face]),
            Just(vec![Method::Face, Method::Face]),
            prop::collection::vec(method(), 0..4),
        ],
        exception in any::<bool>(),
        devices in prop::collection::vec(dev(), 0..3),
    ) {
        let src = manifest(&methods, exception, &devices);
        let Ok(s) = parse_manifest(&src) else { return Ok(()) };
        let face_only = s.offers_face() && s.alternatives().is_empty();
        for d in s.devices.iter().map(Device::facts).map(Some).chain([None]) {
            let r = authorize(&s, &face_verify(&s, d));
            if face_only && r.is_ok() {
                prop_assert!(s.face_only_exception().is_some(), "face-only permitted without exception: {src}");
            }
        }
        // Even if someone strips the exception from an accepted scenario,
        // face-only stays refused at run time.
        if face_only {
            let mut stripped = s.clone();
            stripped.face_only_exception = None;
            for d in stripped.devices.iter().map(Device::facts) {
                let e = authorize(&stripped, &face_verify(&stripped, Some(d))).unwrap_err();
                prop_assert!(e.rule == RuleId::R15 || e.rule == RuleId::R19 || e.rule == RuleId::R18 || e.rule == RuleId::R2, "{e}");
            }
        }
    }

    #[test]
    fn accepted_manifest_never_has_an_active_device_in_a_forbidden_place(
        devices in prop::collection::vec(dev(), 1..4),
        exception in any::<bool>(),
    ) {
        let src = manifest(&[Method::Face, Method::Card], exception, &devices);
        match parse_manifest(&src) {
            Ok(s) => {
                for d in &s.devices {
                    prop_assert!(!d.placement.is_forbidden(), "accepted a {:?} device", d.placement);
                    // Nor one whose location text says it is in a private space.
                    prop_assert!(!d.effective_placement().is_forbidden(), "accepted {:?}", d.location);
                    prop_assert!(d.private_space().is_none());
                    if d.placement == Placement::PublicArea && d.active {
                        prop_assert!(check_device(&d.facts()).is_ok());
                    }
                }
            }
            Err(diags) => {
                let private_text = |d: &Dev| {
                    d.location
                        .is_some_and(|(zh, en)| private_space(zh).is_some() || private_space(en).is_some())
                };
                if devices.iter().any(|d| d.placement.is_forbidden() || private_text(d)) {
                    prop_assert!(diags.iter().any(|x| x.rule == Some(RuleId::R19)));
                }
            }
        }
    }

    #[test]
    fn forbidden_places_are_refused_whatever_else_is_recorded(
        d in dev(),
        m in method(),
        action in prop::sample::select(vec![Action::Enrol, Action::Verify, Action::Identify]),
    ) {
        let s = gate();
        let facts = DeviceFacts {
            id: "x".into(),
            placement: d.placement,
            active: d.active,
            public_safety_necessity: d.necessity,
            capture_zone: d.zone,
            signage_evidence: d.signage,
        };
        let at = t("2025-08-01T03:00:00Z");
        let mut p = step(&s, action, adult(&s, at), at);
        p.method = m;
        p.device = Some(facts);
        let r = authorize(&s, &p);
        if d.placement.is_forbidden() && m.is_face() {
            prop_assert!(r.is_err());
            let e = r.unwrap_err();
            // R3 may refuse 1:N first; the device is never the reason it passes.
            prop_assert!(e.rule == RuleId::R19 || e.rule == RuleId::R3, "{e}");
        }
    }

    #[test]
    fn under_14_exactly_when_the_14th_birthday_has_not_come(
        days_from_birth in 0i64..(20 * 366),
        y in 1990i32..2020,
        doy in 0u32..365,
    ) {
        let dob = NaiveDate::from_yo_opt(y, doy + 1).unwrap();
        let on = dob + Duration::days(days_from_birth);
        let fourteenth = NaiveDate::from_ymd_opt(y + 14, dob.month0() + 1, dob.day0() + 1)
            .unwrap_or_else(|| NaiveDate::from_ymd_opt(y + 14, 3, 1).unwrap());
        prop_assert_eq!(age_on(dob, on) < 14, on < fourteenth);
    }

    #[test]
    fn deadline_is_a_working_day_after_the_trigger(
        offset in 0i64..(2 * 365),
    ) {
        let trigger = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap() + Duration::days(offset);
        let dl = filing_deadline(trigger, FilingKind::Initial);
        let cal = WorkCalendar::official();
        prop_assert!(dl.last_day > trigger);
        prop_assert!(cal.is_working_day(dl.last_day));
        let mut n = 0;
        let mut x = trigger;
        while x < dl.last_day {
            x += Duration::days(1);
            if cal.is_working_day(x) { n += 1; }
        }
        prop_assert_eq!(n, 30);
        prop_assert_eq!(dl.provisional, dl.last_day.year() > 2026);
    }
}

use chrono::Datelike;
