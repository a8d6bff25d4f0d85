//! Requirement IDs (R1–R28 of `MEASURES.md`) and the [`Refusal`] value every
//! rule-based "no" is expressed as.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A requirement of the Face Recognition Measures, numbered as in the
/// requirements matrix (`shared/regulation/MEASURES.md` §2).
///
/// Serialises as `"R15"` etc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RuleId {
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    R16,
    R17,
    R18,
    R19,
    R20,
    R21,
    R22,
    R23,
    R24,
    R25,
    R26,
    R27,
    R28,
}

impl RuleId {
    /// Every rule, in order.
    pub const ALL: [RuleId; 28] = [
        RuleId::R1,
        RuleId::R2,
        RuleId::R3,
        RuleId::R4,
        RuleId::R5,
        RuleId::R6,
        RuleId::R7,
        RuleId::R8,
        RuleId::R9,
        RuleId::R10,
        RuleId::R11,
        RuleId::R12,
        RuleId::R13,
        RuleId::R14,
        RuleId::R15,
        RuleId::R16,
        RuleId::R17,
        RuleId::R18,
        RuleId::R19,
        RuleId::R20,
        RuleId::R21,
        RuleId::R22,
        RuleId::R23,
        RuleId::R24,
        RuleId::R25,
        RuleId::R26,
        RuleId::R27,
        RuleId::R28,
    ];

    /// The article (and paragraph where the matrix names one) this rule comes
    /// from, e.g. `"Art. 10"` for R15.
    pub fn article(self) -> &'static str {
        use RuleId::*;
        match self {
            R1 => "Art. 2",
            R2 => "Art. 3",
            R3 => "Art. 4",
            R4 | R5 | R6 => "Art. 5",
            R7 | R8 | R9 => "Art. 6",
            R10 => "Art. 7",
            R11 | R12 => "Art. 8",
            R13 | R14 => "Art. 9",
            R15 => "Art. 10",
            R16 => "Art. 11",
            R17 => "Art. 12",
            R18 | R19 => "Art. 13",
            R20 => "Art. 14",
            R21 | R22 | R23 => "Art. 15",
            R24 => "Art. 16",
            R25 => "Art. 17",
            R26 => "Art. 18",
            R27 => "Art. 19",
            R28 => "Art. 20",
        }
    }

    /// The article in Chinese, e.g. `"第十条"`.
    pub fn article_zh(self) -> &'static str {
        const N: [&str; 21] = [
            "",
            "第一条",
            "第二条",
            "第三条",
            "第四条",
            "第五条",
            "第六条",
            "第七条",
            "第八条",
            "第九条",
            "第十条",
            "第十一条",
            "第十二条",
            "第十三条",
            "第十四条",
            "第十五条",
            "第十六条",
            "第十七条",
            "第十八条",
            "第十九条",
            "第二十条",
        ];
        let n: usize = self.article()[5..].parse().unwrap_or(0);
        N[n]
    }

    /// A short English title of the obligation.
    pub fn title_en(self) -> &'static str {
        use RuleId::*;
        match self {
            R1 => "R&D and training are out of scope; keep them apart",
            R2 => "general duties; deny by default",
            R3 => "specific purpose, sufficient necessity, least impact",
            R4 => "notice before processing",
            R5 => "notify the changed part",
            R6 => "accessibility for disabled and elderly people",
            R7 => "separate consent",
            R8 => "convenient withdrawal",
            R9 => "fresh consent on change of purpose or method",
            R10 => "guardian consent under 14; dedicated rules for minors",
            R11 => "store on the device; no Internet transmission without separate consent",
            R12 => "shortest necessary retention",
            R13 => "personal information protection impact assessment",
            R14 => "processing records kept at least 3 years",
            R15 => "face must not be the only method",
            R16 => "prefer national identity services",
            R17 => "no misleading, fraud or coercion",
            R18 => "public places: necessity, capture zone, signage",
            R19 => "no devices in private spaces",
            R20 => "security measures",
            R21 => "filing at 100,000 persons within 30 working days",
            R22 => "change filing within 30 working days",
            R23 => "deregistration within 30 working days",
            R24 => "regulatory information sharing",
            R25 => "complaints and reports",
            R26 => "liability",
            R27 => "definitions",
            R28 => "in force 2025-06-01",
        }
    }

    /// A short Chinese title of the obligation.
    pub fn title_zh(self) -> &'static str {
        use RuleId::*;
        match self {
            R1 => "研发、算法训练不适用本办法，须与生产隔离",
            R2 => "一般义务：默认拒绝",
            R3 => "特定目的、充分必要、影响最小",
            R4 => "处理前告知",
            R5 => "变更部分告知",
            R6 => "无障碍环境建设",
            R7 => "单独同意",
            R8 => "便捷撤回同意",
            R9 => "目的或方式变更须重新取得同意",
            R10 => "不满十四周岁须监护人同意；专门处理规则",
            R11 => "存储于人脸识别设备内，不得通过互联网对外传输",
            R12 => "保存期限为最短必要时间",
            R13 => "个人信息保护影响评估",
            R14 => "处理情况记录至少保存3年",
            R15 => "人脸识别不得作为唯一验证方式",
            R16 => "优先使用国家网络身份认证公共服务",
            R17 => "不得误导、欺诈、胁迫",
            R18 => "公共场所：维护公共安全所必需、合理划定区域、显著提示标识",
            R19 => "私密空间内不得安装人脸识别设备",
            R20 => "安全保护措施",
            R21 => "存储达10万人须于30个工作日内备案",
            R22 => "实质性变更30个工作日内变更备案",
            R23 => "停止使用30个工作日内注销备案",
            R24 => "信息共享和通报工作机制",
            R25 => "投诉举报",
            R26 => "法律责任",
            R27 => "术语定义",
            R28 => "2025年6月1日起施行",
        }
    }

    /// Parses `"R15"` (case-insensitive).
    pub fn parse(s: &str) -> Option<RuleId> {
        let n: usize = s.strip_prefix(['R', 'r'])?.parse().ok()?;
        RuleId::ALL.get(n.checked_sub(1)?).copied()
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{}", *self as u8 + 1)
    }
}

/// A decision of "no" that comes from the Measures: names the requirement
/// ([`RuleId`]), its article, and says why in Chinese and in English.
///
/// `Display` shows both languages, e.g.
/// `R15 / Art. 10: face is the only method … / 人脸识别是唯一方式 …`.
/// Serialises (for the HTTP layer) as
/// `{"rule":"R15","article":"Art. 10","message_zh":…,"message_en":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct Refusal {
    /// The requirement that refuses.
    pub rule: RuleId,
    /// Its article, e.g. `"Art. 10"`.
    pub article: String,
    /// Why, in plain Chinese (zh-CN).
    pub message_zh: String,
    /// Why, in plain English.
    pub message_en: String,
}

impl Refusal {
    /// Builds a refusal for `rule` with both messages.
    pub fn new(rule: RuleId, message_en: impl Into<String>, message_zh: impl Into<String>) -> Self {
        Refusal {
            rule,
            article: rule.article().to_string(),
            message_zh: message_zh.into(),
            message_en: message_en.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / {}: {} / {}（{} {}）",
            self.rule,
            self.article,
            self.message_en,
            self.message_zh,
            self.rule,
            self.rule.article_zh()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_round_trip_and_name_articles() {
        for r in RuleId::ALL {
            assert_eq!(RuleId::parse(&r.to_string()), Some(r));
            assert!(r.article().starts_with("Art. "));
            assert!(r.article_zh().starts_with('第'));
        }
        assert_eq!(RuleId::R15.article(), "Art. 10");
        assert_eq!(RuleId::R15.article_zh(), "第十条");
        assert_eq!(RuleId::parse("R29"), None);
        assert_eq!(RuleId::parse("R0"), None);
        let r = Refusal::new(RuleId::R15, "face only", "仅人脸");
        let s = r.to_string();
        assert!(s.starts_with("R15 / Art. 10: face only / 仅人脸"), "{s}");
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["rule"], "R15");
        assert_eq!(j["article"], "Art. 10");
    }
}
