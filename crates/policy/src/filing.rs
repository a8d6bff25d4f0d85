//! Filing (R21–R23, R28): headcount threshold, alert levels, the Chinese
//! working-day calendar and the 30-working-day deadlines for initial,
//! change and deregistration filings, and change detection against what was
//! filed.

use crate::manifest::Scenario;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

/// The State Council holiday / adjusted-workday calendar (2025–2026),
/// embedded from `data/cn-workday-calendar.csv`.
pub const CALENDAR_CSV: &str = include_str!("../data/cn-workday-calendar.csv");

/// Number of distinct persons with stored face information at which filing
/// is due (R21).
pub const FILING_THRESHOLD: u64 = 100_000;

/// Working days allowed for every filing kind.
pub const FILING_WORKING_DAYS: u32 = 30;

/// The day the Measures came into force (R28).
pub fn in_force_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).expect("valid date")
}

/// Kind of an official calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A day off inside a holiday block.
    Holiday,
    /// A weekend day that is a working day (调休上班).
    Workday,
}

/// A working-day calendar: weekdays are working days except listed
/// holidays; listed weekend make-up days are working days.
#[derive(Debug, Clone)]
pub struct WorkCalendar {
    days: BTreeMap<NaiveDate, (DayKind, String)>,
    years: HashSet<i32>,
}

/// An error in calendar CSV data.
#[derive(Debug, thiserror::Error)]
#[error("calendar line {line}: {message}")]
pub struct CalendarError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl WorkCalendar {
    /// Parses `date,kind,name` CSV (header line first). The years covered
    /// are those with at least one row.
    pub fn from_csv(csv: &str) -> Result<WorkCalendar, CalendarError> {
        let mut days = BTreeMap::new();
        let mut years = HashSet::new();
        for (i, line) in csv.lines().enumerate().skip(1) {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let err = |m: &str| CalendarError {
                line: i + 1,
                message: m.to_string(),
            };
            let mut parts = line.splitn(3, ',');
            let date: NaiveDate = parts
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|_| err("bad date"))?;
            let kind = match parts.next() {
                Some("holiday") => DayKind::Holiday,
                Some("workday") => {
                    if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                        return Err(err("a workday row must be a Saturday or Sunday"));
                    }
                    DayKind::Workday
                }
                _ => return Err(err("kind must be holiday or workday")),
            };
            let name = parts.next().unwrap_or_default().to_string();
            years.insert(date.year());
            days.insert(date, (kind, name));
        }
        Ok(WorkCalendar { days, years })
    }

    /// The embedded official calendar.
    pub fn official() -> &'static WorkCalendar {
        static CAL: OnceLock<WorkCalendar> = OnceLock::new();
        CAL.get_or_init(|| WorkCalendar::from_csv(CALENDAR_CSV).expect("embedded calendar parses"))
    }

    /// True when the official schedule for `year` is known.
    pub fn knows_year(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// Years covered, ascending.
    pub fn years(&self) -> Vec<i32> {
        let mut y: Vec<i32> = self.years.iter().copied().collect();
        y.sort_unstable();
        y
    }

    /// True for a working day. Outside the known years, Monday–Friday.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        match self.days.get(&d) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => !matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The official name of `d` if it is listed.
    pub fn day_name(&self, d: NaiveDate) -> Option<&str> {
        self.days.get(&d).map(|(_, n)| n.as_str())
    }

    /// The `n`-th working day after `from` (not counting `from`), and
    /// whether any day counted lies in a year whose schedule is unknown.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> (NaiveDate, bool) {
        let mut d = from;
        let mut left = n;
        let mut provisional = false;
        while left > 0 {
            d += Duration::days(1);
            if !self.knows_year(d.year()) {
                provisional = true;
            }
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        (d, provisional)
    }
}

/// Kind of filing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilingKind {
    /// First filing after reaching 100,000 persons (R21).
    Initial,
    /// Change filing after a substantive change (R22).
    Change,
    /// Deregistration after stopping face recognition (R23).
    Deregistration,
}

impl FilingKind {
    /// The rule.
    pub fn rule(self) -> crate::RuleId {
        match self {
            FilingKind::Initial => crate::RuleId::R21,
            FilingKind::Change => crate::RuleId::R22,
            FilingKind::Deregistration => crate::RuleId::R23,
        }
    }
}

/// A filing deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// Kind of filing.
    pub kind: FilingKind,
    /// The trigger date given (threshold reached, change made, use stopped).
    pub trigger: NaiveDate,
    /// The day counting starts from (the trigger, or 2025-06-01 for a
    /// threshold reached before the Measures were in force, R28).
    pub counted_from: NaiveDate,
    /// Last day to file (Asia/Shanghai calendar date).
    pub last_day: NaiveDate,
    /// True when the count runs through a year whose holiday schedule is not
    /// in the embedded calendar (only weekends are skipped there).
    pub provisional: bool,
}

/// The last day to file: the 30th working day after the trigger date (the
/// trigger day itself not counted), on the embedded calendar. A trigger
/// before 2025-06-01 counts from 2025-06-01 (so pre-existing processors
/// file by 2025-07-14, R28).
pub fn filing_deadline(trigger: NaiveDate, kind: FilingKind) -> Deadline {
    filing_deadline_on(WorkCalendar::official(), trigger, kind)
}

/// [`filing_deadline`] on a given calendar.
pub fn filing_deadline_on(cal: &WorkCalendar, trigger: NaiveDate, kind: FilingKind) -> Deadline {
    let counted_from = trigger.max(in_force_date());
    let (last_day, provisional) = cal.add_working_days(counted_from, FILING_WORKING_DAYS);
    Deadline {
        kind,
        trigger,
        counted_from,
        last_day,
        provisional,
    }
}

/// Counts distinct persons across every scenario of the processor (R21):
/// pass every (pseudonymous) person id that has stored face information, in
/// any scenario; duplicates count once.
pub fn distinct_headcount<'a>(person_ids: impl IntoIterator<Item = &'a str>) -> u64 {
    person_ids.into_iter().collect::<HashSet<_>>().len() as u64
}

/// The first date the headcount reached 100,000, from a series of
/// (date, distinct headcount) observations in any order.
pub fn threshold_reached_on(series: &[(NaiveDate, u64)]) -> Option<NaiveDate> {
    series
        .iter()
        .filter(|(_, n)| *n >= FILING_THRESHOLD)
        .map(|(d, _)| *d)
        .min()
}

/// Alert level for a headcount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    /// Below the first level.
    None,
    /// At or above the first level (default 80 %).
    Watch,
    /// At or above the second level (default 95 %).
    Warning,
    /// Threshold reached: file within 30 working days.
    FilingDue,
}

/// Alert level of `headcount` with levels as fractions of 100,000 (e.g.
/// `[0.8, 0.95]`).
pub fn alert_level(headcount: u64, levels: [f64; 2]) -> AlertLevel {
    let pct = headcount as f64 / FILING_THRESHOLD as f64;
    if headcount >= FILING_THRESHOLD {
        AlertLevel::FilingDue
    } else if pct >= levels[1] {
        AlertLevel::Warning
    } else if pct >= levels[0] {
        AlertLevel::Watch
    } else {
        AlertLevel::None
    }
}

/// Default alert levels: 80 % and 95 %.
pub const DEFAULT_ALERT_LEVELS: [f64; 2] = [0.80, 0.95];

/// What was filed (R22): snapshot it at filing time and compare later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilingSnapshot {
    /// Processor name and credit code.
    pub processor: String,
    /// Purposes filed (scenario id → purpose text).
    pub purposes: BTreeMap<String, String>,
    /// Methods filed (scenario id → mode/methods/storage).
    pub methods: BTreeMap<String, String>,
    /// Security measures filed.
    pub security_measures: Vec<String>,
    /// Rules and procedures fingerprint (retention, minors, consent).
    pub rules: BTreeMap<String, String>,
    /// PIA report id/version filed.
    pub pia_version: String,
}

impl FilingSnapshot {
    /// Snapshot of the scenarios, measures and PIA in force.
    pub fn of(scenarios: &[Scenario], security_measures: &[String], pia_version: &str) -> Self {
        let processor = scenarios
            .first()
            .map(|s| format!("{} {}", s.processor.name.zh, s.processor.credit_code))
            .unwrap_or_default();
        let mut purposes = BTreeMap::new();
        let mut methods = BTreeMap::new();
        let mut rules = BTreeMap::new();
        for s in scenarios {
            purposes.insert(s.id.clone(), s.purpose.zh.clone());
            let mut m: Vec<&str> = s.methods.iter().map(|m| m.key()).collect();
            m.sort_unstable();
            methods.insert(
                s.id.clone(),
                format!(
                    "{:?};{};{:?};transmit={}",
                    s.mode,
                    m.join(","),
                    s.storage.location,
                    s.storage.transmit_templates
                ),
            );
            rules.insert(
                s.id.clone(),
                format!(
                    "template_days={:?};inactive={:?};images={};minors={:?}",
                    s.retention.template_days,
                    s.retention.inactive_days,
                    s.retention.keep_images,
                    s.minors
                ),
            );
        }
        let mut security_measures = security_measures.to_vec();
        security_measures.sort();
        FilingSnapshot {
            processor,
            purposes,
            methods,
            security_measures,
            rules,
            pia_version: pia_version.to_string(),
        }
    }

    /// The filed attributes that differ in `current`: non-empty means a
    /// change filing is due (R22).
    pub fn changes(&self, current: &FilingSnapshot) -> Vec<String> {
        let mut out = vec![];
        if self.processor != current.processor {
            out.push("processor".to_string());
        }
        if self.purposes != current.purposes {
            out.push("purpose".to_string());
        }
        if self.methods != current.methods {
            out.push("method".to_string());
        }
        if self.security_measures != current.security_measures {
            out.push("security_measures".to_string());
        }
        if self.rules != current.rules {
            out.push("rules_and_procedures".to_string());
        }
        if self.pia_version != current.pia_version {
            out.push("pia".to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_calendar_has_72_rows_and_two_years() {
        let c = WorkCalendar::official();
        assert_eq!(c.days.len(), 72);
        assert_eq!(c.years(), vec![2025, 2026]);
        assert!(c.is_working_day("2025-09-28".parse().unwrap()));
        assert!(!c.is_working_day("2025-10-01".parse().unwrap()));
    }

    #[test]
    fn bad_calendar_rows_are_errors() {
        assert!(WorkCalendar::from_csv("date,kind,name\n2025-01-02,workday,x\n").is_err());
        assert!(WorkCalendar::from_csv("date,kind,name\nnope,holiday,x\n").is_err());
    }
}
