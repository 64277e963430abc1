//! Counters of the policy plane: decisions per hook and result, faults, reloads, and what
//! guests count through the `count` import. Kept as Prometheus-style series so `/metrics`
//! (issue 5) can render them as they are.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Most distinct series a guest may create, so a misbehaving module cannot grow memory
/// without bound.
const MAX_GUEST_SERIES: usize = 1024;

/// Counter series keyed by `name{label="value",…}`.
#[derive(Debug, Default)]
pub struct PolicyMetrics {
    series: Mutex<BTreeMap<String, f64>>,
}

fn series_key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut key = String::from(name);
    if !labels.is_empty() {
        key.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                key.push(',');
            }
            let clean: String = v.chars().filter(|c| *c != '"' && *c != '\\').collect();
            key.push_str(&format!("{k}=\"{clean}\""));
        }
        key.push('}');
    }
    key
}

/// A guest's label key as a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
fn label_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

impl PolicyMetrics {
    /// Adds `value` to the series `name{labels}`.
    pub fn add(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let key = series_key(name, labels);
        if let Ok(mut series) = self.series.lock() {
            *series.entry(key).or_insert(0.0) += value;
        }
    }

    /// A guest's `count` call: `gatehouse_policy_<name>{module, labels…}`, bounded in series.
    pub fn guest_count(&self, module: &str, name: &str, labels: &[(String, String)], value: f64) {
        if !value.is_finite() {
            return;
        }
        let name: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let label_names: Vec<String> = labels.iter().map(|(k, _)| label_name(k)).collect();
        let mut all: Vec<(&str, &str)> = vec![("module", module)];
        all.extend(
            label_names
                .iter()
                .zip(labels)
                .map(|(k, (_, v))| (k.as_str(), v.as_str())),
        );
        let key = series_key(&format!("gatehouse_policy_{name}"), &all);
        if let Ok(mut series) = self.series.lock()
            && (series.contains_key(&key) || series.len() < MAX_GUEST_SERIES)
        {
            *series.entry(key).or_insert(0.0) += value;
        }
    }

    /// Every series and its value.
    pub fn snapshot(&self) -> BTreeMap<String, f64> {
        self.series.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The value of one series (0 when absent).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = series_key(name, labels);
        self.series
            .lock()
            .ok()
            .and_then(|s| s.get(&key).copied())
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_accumulate_per_label_set() {
        let m = PolicyMetrics::default();
        m.add(
            "decisions",
            &[("hook", "authorize"), ("result", "allow")],
            1.0,
        );
        m.add(
            "decisions",
            &[("hook", "authorize"), ("result", "allow")],
            1.0,
        );
        m.add(
            "decisions",
            &[("hook", "authorize"), ("result", "deny")],
            1.0,
        );
        assert_eq!(
            m.get("decisions", &[("hook", "authorize"), ("result", "allow")]),
            2.0
        );
        assert_eq!(m.snapshot().len(), 2);
    }

    #[test]
    fn guest_series_are_prefixed_sanitised_and_bounded() {
        let m = PolicyMetrics::default();
        m.guest_count("tok", "calls total!", &[], 1.0);
        assert_eq!(
            m.get("gatehouse_policy_calls_total_", &[("module", "tok")]),
            1.0
        );
        for i in 0..2 * MAX_GUEST_SERIES {
            m.guest_count("tok", "x", &[("i".into(), i.to_string())], 1.0);
        }
        assert!(m.snapshot().len() <= MAX_GUEST_SERIES);
        m.guest_count("tok", "nan", &[], f64::NAN);
        assert_eq!(m.get("gatehouse_policy_nan", &[("module", "tok")]), 0.0);
    }
}
