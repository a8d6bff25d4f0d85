//! The console's charts, from the store: the headcount day by day (R21)
//! and the checks per day by method and result, with refusals by rule.
//! Days are Asia/Shanghai calendar days.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use facegate_policy as policy;

use crate::{Core, CoreError, CoreResult};

/// The longest series the console may ask for.
pub const MAX_DAYS: u32 = 1095;

/// The headcount at the end of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadcountDay {
    pub date: NaiveDate,
    pub headcount: i64,
}

/// How many checks of one method had one result on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksDay {
    pub date: NaiveDate,
    pub method: String,
    pub result: String,
    pub count: u64,
}

/// Checks per day, and refusals by rule over the same days.
#[derive(Debug, Clone, Default)]
pub struct CheckStats {
    pub days: Vec<ChecksDay>,
    pub refusals: Vec<(String, u64)>,
}

fn days_arg(days: u32) -> CoreResult<u32> {
    if days == 0 || days > MAX_DAYS {
        return Err(CoreError::bad(
            format!("天数应为 1 到 {MAX_DAYS}。"),
            format!("days is 1 to {MAX_DAYS}"),
        ));
    }
    Ok(days)
}

impl Core {
    /// The first day of a `days`-long series ending today, and the instant
    /// it starts (00:00 Asia/Shanghai).
    fn series_start(&self, days: u32) -> (NaiveDate, chrono::DateTime<Utc>) {
        let today = policy::shanghai_date(self.now());
        let first = today - Duration::days(i64::from(days) - 1);
        let tz = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
        let start = tz
            .from_local_datetime(&first.and_hms_opt(0, 0, 0).expect("midnight"))
            .single()
            .expect("fixed offset")
            .with_timezone(&Utc);
        (first, start)
    }

    /// The headcount at the end of each of the last `days` days (today
    /// included, as it stands now).
    pub async fn headcount_series(&self, days: u32) -> CoreResult<Vec<HeadcountDay>> {
        let days = days_arg(days)?;
        let (first, start) = self.series_start(days);
        let mut count = self.store.headcount_before(start).await?;
        let end = Utc::now().max(self.now()) + Duration::days(1);
        let history = self.store.headcount_history(start, end).await?;
        let mut by_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        for h in history {
            by_day.insert(policy::shanghai_date(h.at), h.count);
        }
        let mut out = Vec::with_capacity(days as usize);
        for i in 0..days {
            let date = first + Duration::days(i64::from(i));
            if let Some(c) = by_day.get(&date) {
                count = *c;
            }
            out.push(HeadcountDay {
                date,
                headcount: count,
            });
        }
        Ok(out)
    }

    /// Checks per day by method and result over the last `days` days, and
    /// the refusals among them by rule.
    pub async fn check_stats(&self, days: u32) -> CoreResult<CheckStats> {
        let days = days_arg(days)?;
        let (_, start) = self.series_start(days);
        let mut per: BTreeMap<(NaiveDate, String, String), u64> = BTreeMap::new();
        let mut rules: BTreeMap<String, u64> = BTreeMap::new();
        for c in self.store.check_counts(start).await? {
            *per.entry((policy::shanghai_date(c.hour), c.method, c.result))
                .or_default() += c.count;
            if let Some(r) = c.refusal_rule {
                *rules.entry(r).or_default() += c.count;
            }
        }
        let mut refusals: Vec<(String, u64)> = rules.into_iter().collect();
        refusals.sort_by_key(|(r, _)| r.trim_start_matches('R').parse::<u32>().unwrap_or(u32::MAX));
        Ok(CheckStats {
            days: per
                .into_iter()
                .map(|((date, method, result), count)| ChecksDay {
                    date,
                    method,
                    result,
                    count,
                })
                .collect(),
            refusals,
        })
    }
}
