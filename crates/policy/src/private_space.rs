//! R19 by meaning: reads a device's free-text location (Chinese and English)
//! for the private spaces of Art. 13 ¶2 (私密空间: hotel guest rooms, public
//! baths, changing rooms, toilets and their kin), so a device declared
//! `placement = "public_area"` whose location says 客房内 or "inside the
//! shower area" is refused like a `hotel_room` or `bathhouse` device.
//!
//! The vocabulary follows the Measures' own examples (宾馆客房、公共浴室、
//! 公共更衣室、公共卫生间), GB/T 41819's private-space wording, and the names
//! Chinese venues put on their doors and floor plans (洗手间、盥洗室、淋浴间、
//! 汗蒸房、试衣间、母婴室、寝室…), plus the English signage used beside them
//! (restroom, WC, washroom, locker room, fitting room…).
//!
//! A term does not count when the text says the place is *beside* the room
//! rather than in it, because real venues name public spots after the rooms
//! they lead to: 客房部 (the housekeeping office), 客房走廊 / 客房楼层电梯厅
//! (the corridor and lift lobby of a guest floor), 卫生间旁的走廊, 通往更衣室的
//! 通道, 洗浴中心前台, "corridor next to the restrooms", "toilet entrance".
//! An explicit "inside" (客房内, 浴室里, "in the shower area") always counts.
//! A bare term counts: a location that only says 二楼女卫生间 is inside it.

use crate::manifest::Placement;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A private-space term found in a location text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateSpaceHit {
    /// The forbidden placement the term names.
    pub placement: Placement,
    /// The term as it appears in the text.
    pub term: String,
    /// Byte range of the term in the text.
    pub range: Range<usize>,
}

impl PrivateSpaceHit {
    /// The term quoted for an English message: itself when it is English,
    /// else the placement's key (an English message carries no Chinese).
    pub fn term_en(&self) -> String {
        if self.term.is_ascii() {
            format!("\"{}\": {}", self.term, self.placement.key())
        } else {
            self.placement.key().to_string()
        }
    }
}

/// Chinese terms (simplified, with the common traditional forms), each with
/// the private space it names. Longer terms first so the reported term is
/// the most specific one.
const ZH_TERMS: &[(&str, Placement)] = &[
    // Guest rooms (宾馆客房) and rooms people sleep in.
    ("宾馆客房", Placement::HotelRoom),
    ("酒店客房", Placement::HotelRoom),
    ("酒店房间", Placement::HotelRoom),
    ("宾馆房间", Placement::HotelRoom),
    ("旅馆房间", Placement::HotelRoom),
    ("民宿房间", Placement::HotelRoom),
    ("住宿房间", Placement::HotelRoom),
    ("大床房", Placement::HotelRoom),
    ("双床房", Placement::HotelRoom),
    ("标准间", Placement::HotelRoom),
    ("房间内", Placement::HotelRoom),
    ("客房", Placement::HotelRoom),
    ("宿舍房间", Placement::DormitoryRoom),
    ("卧室", Placement::DormitoryRoom),
    ("臥室", Placement::DormitoryRoom),
    ("寝室", Placement::DormitoryRoom),
    ("寢室", Placement::DormitoryRoom),
    // Public baths (公共浴室) and showers.
    ("淋浴", Placement::ShowerRoom),
    ("冲凉房", Placement::ShowerRoom),
    ("浴室", Placement::Bathhouse),
    ("洗浴", Placement::Bathhouse),
    ("澡堂", Placement::Bathhouse),
    ("浴池", Placement::Bathhouse),
    ("浴区", Placement::Bathhouse),
    ("沐浴", Placement::ShowerRoom),
    ("汤池", Placement::Bathhouse),
    ("桑拿", Placement::Bathhouse),
    ("汗蒸", Placement::Bathhouse),
    ("蒸汽房", Placement::Bathhouse),
    // Changing rooms (公共更衣室).
    ("更衣", Placement::ChangingRoom),
    ("换衣", Placement::ChangingRoom),
    ("換衣", Placement::ChangingRoom),
    ("化妆间", Placement::ChangingRoom),
    ("试衣", Placement::FittingRoom),
    ("試衣", Placement::FittingRoom),
    // Toilets (公共卫生间).
    ("卫生间", Placement::Toilet),
    ("衛生間", Placement::Toilet),
    ("洗手间", Placement::Toilet),
    ("洗手間", Placement::Toilet),
    ("厕所", Placement::Toilet),
    ("廁所", Placement::Toilet),
    ("公厕", Placement::Toilet),
    ("男厕", Placement::Toilet),
    ("女厕", Placement::Toilet),
    ("厕位", Placement::Toilet),
    ("盥洗", Placement::Toilet),
    ("如厕", Placement::Toilet),
    // Nursing rooms.
    ("母婴室", Placement::LactationRoom),
    ("母婴间", Placement::LactationRoom),
    ("哺乳室", Placement::LactationRoom),
    ("哺乳间", Placement::LactationRoom),
];

/// Words right after a Chinese term that put the place beside the room, not
/// in it (客房部, 卫生间旁, 更衣室门口, 洗浴中心前台…). Checked before the
/// "inside" markers so 中心 is not read as 中.
const ZH_AFTER_OUTSIDE: &[&str] = &[
    "中心", "部", "服务", "管理", "办公", "楼", "外", "门口", "门前", "门外", "入口", "出口", "旁",
    "边", "隔壁", "附近", "对面", "前", "走廊", "过道", "通道", "大堂", "电梯", "前台", "收银",
    "用品", "清洁",
];

/// Words right after a Chinese term that say "inside".
const ZH_AFTER_INSIDE: &[&str] = &["内", "里", "中"];

/// Words right before a Chinese term that say the place only leads to or is
/// near the room (通往卫生间的走廊, 靠近更衣室).
const ZH_BEFORE_OUTSIDE: &[&str] = &[
    "通往", "去往", "前往", "靠近", "邻近", "毗邻", "紧邻", "临近", "接近",
];

/// English terms (lower case, whole words; a trailing plural `s` is also
/// accepted), each with the private space it names.
const EN_TERMS: &[(&str, Placement)] = &[
    ("guest room", Placement::HotelRoom),
    ("guestroom", Placement::HotelRoom),
    ("hotel room", Placement::HotelRoom),
    ("motel room", Placement::HotelRoom),
    ("in-room", Placement::HotelRoom),
    ("bedroom", Placement::DormitoryRoom),
    ("dorm room", Placement::DormitoryRoom),
    ("dormitory room", Placement::DormitoryRoom),
    ("sleeping quarters", Placement::DormitoryRoom),
    ("bathroom", Placement::Bathhouse),
    ("bath house", Placement::Bathhouse),
    ("bathhouse", Placement::Bathhouse),
    ("public bath", Placement::Bathhouse),
    ("bathing area", Placement::Bathhouse),
    ("sauna", Placement::Bathhouse),
    ("steam room", Placement::Bathhouse),
    ("shower", Placement::ShowerRoom),
    ("changing room", Placement::ChangingRoom),
    ("change room", Placement::ChangingRoom),
    ("changing area", Placement::ChangingRoom),
    ("locker room", Placement::ChangingRoom),
    ("dressing room", Placement::ChangingRoom),
    ("fitting room", Placement::FittingRoom),
    ("toilet", Placement::Toilet),
    ("restroom", Placement::Toilet),
    ("rest room", Placement::Toilet),
    ("washroom", Placement::Toilet),
    ("wc", Placement::Toilet),
    ("lavatory", Placement::Toilet),
    ("lavatories", Placement::Toilet),
    ("men's room", Placement::Toilet),
    ("ladies' room", Placement::Toilet),
    ("women's room", Placement::Toilet),
    ("powder room", Placement::Toilet),
    ("nursing room", Placement::LactationRoom),
    ("lactation room", Placement::LactationRoom),
    ("breastfeeding room", Placement::LactationRoom),
    ("mother and baby room", Placement::LactationRoom),
    ("mother-and-baby room", Placement::LactationRoom),
];

/// A word right after an English term that puts the place beside the room
/// ("toilet entrance", "guest room corridor", "housekeeping / guest room
/// department").
const EN_AFTER_OUTSIDE: &[&str] = &[
    "corridor",
    "corridors",
    "hallway",
    "hall",
    "passage",
    "passageway",
    "entrance",
    "entry",
    "exit",
    "door",
    "doors",
    "doorway",
    "lobby",
    "floor",
    "floors",
    "department",
    "dept",
    "wing",
    "block",
    "sign",
    "signs",
    "building",
];

/// Prepositions before an English term that put the place outside it.
const EN_BEFORE_OUTSIDE: &[&str] = &[
    "outside", "near", "beside", "besides", "next", "opposite", "across", "facing", "toward",
    "towards", "between", "past", "adjacent", "leading", "by", "front", "behind", "around", "from",
    "beyond",
];

/// Prepositions before an English term that put the place inside it.
const EN_BEFORE_INSIDE: &[&str] = &["in", "inside", "within", "into", "interior"];

/// Words that turn a following "to" into "outside" ("next to", "entrance
/// to", "way to"): "mounted to the toilet wall" is still inside.
const EN_TO_OUTSIDE: &[&str] = &[
    "next", "entrance", "entry", "way", "path", "route", "access", "leading", "adjacent", "close",
    "door", "corridor",
];

/// Characters that end a clause: a qualifier never reaches across them.
fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        ',' | ';'
            | '.'
            | '/'
            | '('
            | ')'
            | ':'
            | '|'
            | '，'
            | '、'
            | '；'
            | '。'
            | '（'
            | '）'
            | '：'
            | '／'
            | '\n'
    )
}

/// Every private-space term in `text` that is not qualified as "beside",
/// in text order (Chinese and English vocabularies are both applied to the
/// text, since venues mix them: 二楼WC旁, "3F 更衣室").
pub fn private_spaces(text: &str) -> Vec<PrivateSpaceHit> {
    let mut hits: Vec<PrivateSpaceHit> = vec![];
    // Each vocabulary only where its script occurs (most locations are all
    // Chinese or all English).
    let zh = !text.is_ascii();
    let en = text.bytes().any(|b| b.is_ascii_alphabetic());
    // Only terms whose first character occurs in the text are searched.
    let chars: Vec<char> = if zh { text.chars().collect() } else { vec![] };
    let first_in_text = |t: &str| t.chars().next().is_some_and(|c| chars.contains(&c));
    for (term, placement) in ZH_TERMS.iter().filter(|(t, _)| zh && first_in_text(t)) {
        for (i, _) in text.match_indices(term) {
            let end = i + term.len();
            if zh_inside(&text[..i], &text[end..]) {
                hits.push(PrivateSpaceHit {
                    placement: *placement,
                    term: term.to_string(),
                    range: i..end,
                });
            }
        }
    }
    let lower = if en { ascii_lower(text) } else { String::new() };
    let mut bytes = [false; 128];
    for b in lower.bytes().filter(u8::is_ascii) {
        bytes[usize::from(b)] = true;
    }
    for (term, placement) in EN_TERMS
        .iter()
        .filter(|(t, _)| en && bytes[usize::from(t.as_bytes()[0])])
    {
        for (i, _) in lower.match_indices(term) {
            let mut end = i + term.len();
            if !word_start(&lower, i) {
                continue;
            }
            // Plurals: toilets, showers, restrooms, changing rooms.
            let rest = &lower[end..];
            if rest.starts_with("es") && !word_char_at(rest, 2) {
                end += 2;
            } else if rest.starts_with('s') && !word_char_at(rest, 1) {
                end += 1;
            }
            if word_char_at(&lower, end) {
                continue;
            }
            if en_inside(&lower[..i], &lower[end..]) {
                hits.push(PrivateSpaceHit {
                    placement: *placement,
                    term: text[i..end].to_string(),
                    range: i..end,
                });
            }
        }
    }
    // One hit per place in the text: the earliest, then the longest.
    hits.sort_by_key(|h| (h.range.start, std::cmp::Reverse(h.range.end)));
    let mut out: Vec<PrivateSpaceHit> = vec![];
    for h in hits {
        if out.last().is_none_or(|l| h.range.start >= l.range.end) {
            out.push(h);
        }
    }
    out
}

/// The first private space `text` says the place is in, if any.
pub fn private_space(text: &str) -> Option<PrivateSpaceHit> {
    private_spaces(text).into_iter().next()
}

/// Lower-cases ASCII only, so byte offsets stay those of `text`.
fn ascii_lower(text: &str) -> String {
    text.chars().map(|c| c.to_ascii_lowercase()).collect()
}

fn word_char_at(s: &str, i: usize) -> bool {
    s[i.min(s.len())..]
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
}

fn word_start(s: &str, i: usize) -> bool {
    s[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !c.is_ascii_alphanumeric())
}

fn zh_inside(before: &str, after: &str) -> bool {
    let after = after.trim_start();
    let after = after
        .strip_prefix('的')
        .or_else(|| after.strip_prefix('之'))
        .unwrap_or(after)
        .trim_start();
    // Room words that continue the term (更衣室, 淋浴间, 试衣间) are skipped
    // before the qualifier is read: 更衣室门口 is beside the room.
    let mut rest = after;
    for suffix in [
        "区域", "區域", "室", "间", "間", "房", "区", "區", "处", "池", "场",
    ] {
        if let Some(r) = rest.strip_prefix(suffix) {
            rest = r.trim_start();
            rest = rest
                .strip_prefix('的')
                .or_else(|| rest.strip_prefix('之'))
                .unwrap_or(rest)
                .trim_start();
            break;
        }
    }
    if ZH_AFTER_OUTSIDE.iter().any(|w| rest.starts_with(w)) {
        return false;
    }
    if ZH_AFTER_INSIDE.iter().any(|w| rest.starts_with(w)) {
        return true;
    }
    // 非客房区域: "not the guest-room area".
    if before.trim_end().ends_with('非') {
        return false;
    }
    let clause: String = before
        .chars()
        .rev()
        .take_while(|c| !is_clause_break(*c))
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let clause = clause.trim_end();
    !ZH_BEFORE_OUTSIDE
        .iter()
        .any(|w| clause.ends_with(w) || clause.contains(w))
}

fn en_inside(before: &str, after: &str) -> bool {
    let clause = before
        .rsplit(|c: char| is_clause_break(c) || c == '-')
        .next()
        .unwrap_or("");
    let words: Vec<&str> = clause
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    // "inside guest room 1208" / "in the toilets": an explicit inside wins.
    let near: Vec<&str> = words
        .iter()
        .rev()
        .take(2)
        .copied()
        .filter(|w| !matches!(*w, "the" | "a" | "an"))
        .collect();
    if near.first().is_some_and(|w| EN_BEFORE_INSIDE.contains(w)) {
        return true;
    }
    let next = after
        .trim_start_matches(['\'', ' ', '\t'])
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    if EN_AFTER_OUTSIDE.contains(&next) {
        return false;
    }
    if next == "inside" || next == "interior" {
        return true;
    }
    let window = &words[words.len().saturating_sub(4)..];
    for (k, w) in window.iter().enumerate().rev() {
        if EN_BEFORE_INSIDE.contains(w) {
            return true;
        }
        if EN_BEFORE_OUTSIDE.contains(w) {
            return false;
        }
        if *w == "to" && k > 0 && EN_TO_OUTSIDE.contains(&window[k - 1]) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(s: &str) -> Option<Placement> {
        private_space(s).map(|h| h.placement)
    }

    #[test]
    fn inside_is_found() {
        assert_eq!(hit("3楼 1203 客房内"), Some(Placement::HotelRoom));
        assert_eq!(hit("二楼女卫生间"), Some(Placement::Toilet));
        assert_eq!(hit("Inside guest room 1203"), Some(Placement::HotelRoom));
        assert_eq!(hit("Men's toilets, 2F"), Some(Placement::Toilet));
        assert_eq!(hit("游泳馆男更衣室"), Some(Placement::ChangingRoom));
        assert_eq!(hit("shower area, pool level"), Some(Placement::ShowerRoom));
        assert_eq!(hit("二楼WC"), Some(Placement::Toilet));
        assert_eq!(hit("客房区域内"), Some(Placement::HotelRoom));
        assert_eq!(hit("员工更衣柜旁"), Some(Placement::ChangingRoom));
        assert_eq!(hit("温泉汤池区"), Some(Placement::Bathhouse));
        assert_eq!(
            hit("camera in the changing room, near the door"),
            Some(Placement::ChangingRoom)
        );
        assert_eq!(hit("2F ladies' room"), Some(Placement::Toilet));
        assert_eq!(hit("Hotel room 1208"), Some(Placement::HotelRoom));
        assert_eq!(hit("泳池沐浴区"), Some(Placement::ShowerRoom));
        // Shrunk counterexamples the property tests found while the
        // vocabulary was written ("building"/"level" read as "beside").
        assert_eq!(
            hit("北门 inside guest room Building A"),
            Some(Placement::HotelRoom)
        );
        assert_eq!(hit("北门 guest rooms level 2"), Some(Placement::HotelRoom));
    }

    #[test]
    fn beside_is_not() {
        for s in [
            "客房部办公室",
            "客房楼层电梯厅",
            "客房走廊",
            "卫生间旁的走廊",
            "通往更衣室的通道",
            "洗浴中心前台",
            "更衣室门口",
            "Room 101 corridor",
            "corridor next to the restrooms",
            "toilet entrance",
            "guest room floor lift lobby",
            "outside the changing rooms",
            "大堂前台",
            "客房区域走廊",
            "员工更衣室旁通道",
            "大堂公共卫生间入口",
            "宿舍楼门口",
            "泳池更衣室外",
            "Restrooms entrance, 1F",
            "lobby near the fitting rooms",
            "哺乳期妇女优先通道",
            "Restaurant entrance",
            "toiletries shop",
            "非客房区域电梯厅",
        ] {
            assert_eq!(hit(s), None, "{s}");
        }
    }

    #[test]
    fn offsets_are_those_of_the_text() {
        let s = "North wing, INSIDE the Shower Room";
        let h = private_space(s).unwrap();
        assert_eq!(&s[h.range.clone()], h.term);
        assert_eq!(h.term, "Shower");
    }
}
