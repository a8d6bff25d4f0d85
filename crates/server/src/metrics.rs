//! Prometheus text-format counters, kept by hand (no global registry).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Labelled counters: `name{labels}` → value.
pub struct Metrics {
    started: Instant,
    counters: Mutex<BTreeMap<(String, String), u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            counters: Mutex::new(BTreeMap::new()),
        }
    }

    /// Add one to `name` with `labels` (pairs of label name and value).
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        let l = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace(['"', '\\', '\n'], "_")))
            .collect::<Vec<_>>()
            .join(",");
        *self
            .counters
            .lock()
            .unwrap()
            .entry((name.to_string(), l))
            .or_default() += 1;
    }

    /// Sum of `name` over rows whose labels contain `needle` (e.g. `method="pin"`).
    pub fn sum(&self, name: &str, needle: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .iter()
            .filter(|((n, l), _)| n == name && l.contains(needle))
            .map(|(_, v)| *v)
            .sum()
    }

    /// Render all counters, plus uptime and the given gauges.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let mut last = String::new();
        for ((name, labels), v) in self.counters.lock().unwrap().iter() {
            if *name != last {
                out.push_str(&format!("# TYPE {name} counter\n"));
                last = name.clone();
            }
            if labels.is_empty() {
                out.push_str(&format!("{name} {v}\n"));
            } else {
                out.push_str(&format!("{name}{{{labels}}} {v}\n"));
            }
        }
        out.push_str("# TYPE facegate_uptime_seconds gauge\n");
        out.push_str(&format!(
            "facegate_uptime_seconds {}\n",
            self.started.elapsed().as_secs()
        ));
        for (name, help, v) in gauges {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
            ));
        }
        out
    }
}

impl facegate_core::Observer for Metrics {
    fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        Metrics::inc(self, name, labels)
    }
}
