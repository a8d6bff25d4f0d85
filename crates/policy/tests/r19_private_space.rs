//! R19 / Art. 13 ¶2 by meaning: a device whose location text (zh or en)
//! names a private space is refused by the linter (at the term's span), at
//! deploy and at run time, whatever its `placement` says; places that are
//! only named after a neighbouring room are not. Property tests embed the
//! terms in random surrounding text.

mod common;

use common::*;
use facegate_policy::*;
use proptest::prelude::*;

/// Private-space phrases as venues write them, with the space they name.
const INSIDE_ZH: &[(&str, Placement)] = &[
    ("客房内", Placement::HotelRoom),
    ("客房", Placement::HotelRoom),
    ("酒店房间", Placement::HotelRoom),
    ("房间内", Placement::HotelRoom),
    ("大床房", Placement::HotelRoom),
    ("卧室", Placement::DormitoryRoom),
    ("宿舍房间", Placement::DormitoryRoom),
    ("浴室", Placement::Bathhouse),
    ("淋浴间", Placement::ShowerRoom),
    ("淋浴区内", Placement::ShowerRoom),
    ("洗浴区", Placement::Bathhouse),
    ("澡堂里", Placement::Bathhouse),
    ("桑拿房", Placement::Bathhouse),
    ("汗蒸房", Placement::Bathhouse),
    ("更衣室", Placement::ChangingRoom),
    ("男更衣室内", Placement::ChangingRoom),
    ("换衣间", Placement::ChangingRoom),
    ("试衣间", Placement::FittingRoom),
    ("卫生间", Placement::Toilet),
    ("女卫生间内", Placement::Toilet),
    ("洗手间", Placement::Toilet),
    ("厕所", Placement::Toilet),
    ("盥洗室", Placement::Toilet),
    ("母婴室", Placement::LactationRoom),
    ("哺乳室", Placement::LactationRoom),
];

const INSIDE_EN: &[(&str, Placement)] = &[
    ("inside guest room", Placement::HotelRoom),
    ("guest rooms", Placement::HotelRoom),
    ("hotel room", Placement::HotelRoom),
    ("bedroom", Placement::DormitoryRoom),
    ("bathroom", Placement::Bathhouse),
    ("in the shower area", Placement::ShowerRoom),
    ("showers", Placement::ShowerRoom),
    ("sauna", Placement::Bathhouse),
    ("changing room", Placement::ChangingRoom),
    ("Locker Room", Placement::ChangingRoom),
    ("fitting rooms", Placement::FittingRoom),
    ("toilet", Placement::Toilet),
    ("Restrooms", Placement::Toilet),
    ("washroom", Placement::Toilet),
    ("WC", Placement::Toilet),
    ("lavatory", Placement::Toilet),
    ("nursing room", Placement::LactationRoom),
];

/// Public places that real venues name after the room next to them.
const BESIDE: &[&str] = &[
    "客房部办公室",
    "客房部",
    "客房服务中心",
    "客房走廊",
    "客房楼层电梯厅",
    "通往客房的电梯厅",
    "卫生间旁的走廊",
    "卫生间外走廊",
    "卫生间门口",
    "洗手间对面",
    "靠近卫生间的过道",
    "更衣室入口外",
    "通往更衣室的通道",
    "洗浴中心前台",
    "洗浴中心大堂",
    "桑拿中心收银台",
    "浴室门外",
    "母婴室隔壁",
    "Room 101 corridor",
    "room 1208 lift lobby",
    "corridor next to the restrooms",
    "outside the changing rooms",
    "toilet entrance",
    "guest room floor lift lobby",
    "near the showers",
    "in front of the toilets",
    "housekeeping department",
    "entrance to the locker room",
];

/// Surroundings that name no private space and carry no qualifier.
const NEUTRAL: &[&str] = &[
    "北门",
    "南门人行通道",
    "一楼",
    "B2",
    "3F",
    "12楼",
    "东区",
    "1号楼",
    "A座",
    "north wing",
    "level 2",
    "gate 3",
    "Tower A",
    "",
];

/// Public places with no private-space term in them at all.
const PUBLIC: &[&str] = &[
    "北门人行通道",
    "一楼大堂前台",
    "地下车库电梯厅",
    "员工通道闸机",
    "游泳馆售票处",
    "健身房前台",
    "商场中庭",
    "Front desk, ground-floor lobby",
    "Room 101 corridor",
    "Main entrance turnstile",
    "Staff canteen",
    "Car park level B1",
    "Restaurant entrance",
];

fn neutral() -> impl Strategy<Value = String> {
    prop::sample::select(NEUTRAL.to_vec()).prop_map(str::to_string)
}

/// A separator between the surroundings and the term (never a qualifier).
fn sep() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", "，", "、", ", ", " / ", "（", "("])
}

/// A manifest: the hotel-checkin template with its lobby device's location
/// replaced.
fn hotel_with_location(zh: &str, en: &str) -> String {
    template_with(
        "hotel-checkin",
        r#"location = { zh = "一楼大堂前台", en = "Front desk, ground-floor lobby" }"#,
        &format!(
            "location = {{ zh = {}, en = {} }}",
            toml_str(zh),
            toml_str(en)
        ),
    )
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn r19_zh_term_in_any_surroundings_is_found(
        i in 0..INSIDE_ZH.len(),
        before in neutral(),
        after in neutral(),
        s1 in sep(),
        s2 in sep(),
    ) {
        let (term, placement) = INSIDE_ZH[i];
        let text = format!("{before}{s1}{term}{s2}{after}");
        let hit = private_space(&text);
        prop_assert!(hit.is_some(), "missed {text:?}");
        let hit = hit.unwrap();
        prop_assert_eq!(hit.placement, placement, "{:?}", text);
        prop_assert_eq!(&text[hit.range.clone()], hit.term.as_str());
    }

    #[test]
    fn r19_en_term_in_any_surroundings_is_found(
        i in 0..INSIDE_EN.len(),
        before in neutral(),
        after in neutral(),
        s1 in sep(),
        s2 in sep(),
    ) {
        let (term, placement) = INSIDE_EN[i];
        let text = format!("{before}{s1}{term}{s2}{after}");
        let hit = private_space(&text);
        prop_assert!(hit.is_some(), "missed {text:?}");
        prop_assert_eq!(hit.unwrap().placement, placement, "{:?}", text);
    }

    #[test]
    fn r19_places_beside_a_private_room_are_not_refused(
        i in 0..BESIDE.len(),
        before in neutral(),
        after in neutral(),
        s1 in sep(),
        s2 in sep(),
    ) {
        let text = format!("{before}{s1}{}{s2}{after}", BESIDE[i]);
        prop_assert_eq!(private_space(&text), None, "{:?}", text);
    }

    #[test]
    fn r19_public_places_are_not_refused(
        parts in prop::collection::vec(prop::sample::select(PUBLIC.to_vec()), 1..4),
        s in sep(),
    ) {
        let text = parts.join(s);
        prop_assert_eq!(private_space(&text), None, "{:?}", text);
    }

    /// The whole path: a `public_area` device with every R18 record, whose
    /// location (zh or en) embeds a private-space term, does not parse (R19
    /// at the term), and the scenario value, if used anyway, is refused at
    /// run time by check_device and authorize.
    #[test]
    fn r19_public_area_device_with_a_private_location_is_refused_everywhere(
        i in 0..INSIDE_ZH.len(),
        j in 0..INSIDE_EN.len(),
        in_zh in any::<bool>(),
        before in neutral(),
        s1 in sep(),
    ) {
        let (zh, en) = if in_zh {
            (format!("{before}{s1}{}", INSIDE_ZH[i].0), "Lobby".to_string())
        } else {
            ("大堂".to_string(), format!("{before}{s1}{}", INSIDE_EN[j].0))
        };
        let src = hotel_with_location(&zh, &en);
        let report = lint(&src, "m.toml");
        let r19 = report.of_rule(RuleId::R19);
        prop_assert_eq!(r19.len(), 1, "{}", report.render(&src));
        let d = r19[0];
        prop_assert_eq!(d.severity, Severity::Error);
        prop_assert_eq!(d.path.as_str(), "devices[0].location");
        let shown = &src[d.span.clone()];
        let hit = private_space(if in_zh { &zh } else { &en }).unwrap();
        prop_assert_eq!(shown, hit.term.as_str());
        prop_assert!(src.lines().nth(d.line - 1).unwrap().starts_with("location ="));

        // At run time, from the scenario value the linter would refuse.
        let s = report.scenario.clone().unwrap();
        let dev = &s.devices[0];
        prop_assert_eq!(dev.placement, Placement::PublicArea);
        prop_assert!(dev.effective_placement().is_forbidden());
        let e = check_device(&dev.facts()).unwrap_err();
        assert_refusal(&e, RuleId::R19);
        let e = check_device_declaration(dev).unwrap_err();
        assert_refusal(&e, RuleId::R19);
        let at = t("2025-08-01T03:00:00Z");
        let e = authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)).unwrap_err();
        assert_refusal(&e, RuleId::R19);
    }

    #[test]
    fn r19_public_area_device_beside_a_private_room_is_accepted(
        i in 0..BESIDE.len(),
    ) {
        let src = hotel_with_location(BESIDE[i], "Front desk");
        let s = parse_manifest(&src);
        prop_assert!(s.is_ok(), "{:?}", s.err());
        let s = s.unwrap();
        prop_assert!(check_device_declaration(&s.devices[0]).is_ok());
        let at = t("2025-08-01T03:00:00Z");
        prop_assert!(authorize(&s, &step(&s, Action::Verify, adult(&s, at), at)).is_ok());
    }
}

#[test]
fn r19_public_area_device_inside_a_guest_room_is_refused_with_no_override() {
    // The issue's case: placement says public_area, the location says the
    // device is inside a guest room; necessity, zone and signage are all
    // recorded, and the device is active.
    let src = hotel_with_location("12楼 1208 客房内", "Inside guest room 1208");
    let errs = parse_manifest(&src).unwrap_err();
    let d = errs.iter().find(|d| d.rule == Some(RuleId::R19)).unwrap();
    assert_eq!(d.article.as_deref(), Some("Art. 13"));
    assert_eq!(d.article_zh.as_deref(), Some("第十三条"));
    assert!(d.message_zh.contains("私密空间") && d.message_en.contains("private space"));
    // Setting it inactive changes nothing: the ban is on installation.
    let inactive = edit(
        &src,
        r#"placement = "public_area""#,
        "placement = \"public_area\"\nactive = false",
    );
    assert!(parse_manifest(&inactive)
        .unwrap_err()
        .iter()
        .any(|d| d.rule == Some(RuleId::R19)));
    // And a non_public declaration does not escape either.
    let non_public = edit(
        &src,
        r#"placement = "public_area""#,
        r#"placement = "non_public""#,
    );
    assert!(parse_manifest(&non_public)
        .unwrap_err()
        .iter()
        .any(|d| d.rule == Some(RuleId::R19)));
}

#[test]
fn r19_english_location_alone_is_read_too() {
    let src = hotel_with_location("十二楼", "Men's changing room, pool level");
    let errs = parse_manifest(&src).unwrap_err();
    let d = errs.iter().find(|d| d.rule == Some(RuleId::R19)).unwrap();
    assert_eq!(&src[d.span.clone()], "changing room");
}

#[test]
fn r19_the_shipped_templates_name_no_private_space() {
    for name in INIT_TEMPLATES {
        let s = parse_manifest(init_template(name).unwrap()).unwrap();
        for d in &s.devices {
            assert_eq!(d.private_space(), None, "{name}/{}", d.id);
            assert_eq!(d.effective_placement(), d.placement);
        }
    }
}
