//! Typed access to the module's config table.
//!
//! The gateway passes `[policies.config.<module>]` to the module as flat `key → text` pairs:
//! nested tables are flattened with dots (`room.demo.pin`), strings arrive as they are, other
//! TOML values in TOML syntax (`5`, `true`, `["a", "b"]`). Environment overrides arrive as
//! plain text. The free functions read the gateway's table; the [`Source`] trait does the same
//! parsing over any lookup, so a policy's decision logic can be unit-tested with a literal
//! table:
//!
//! ```
//! use gatehouse_sdk::config::Source;
//!
//! let table = [("max_subscribers", "3"), ("room.demo.allowed", r#"["a", "b"]"#)];
//! assert_eq!(table.u64("max_subscribers"), Some(3));
//! assert_eq!(table.list("room.demo.allowed"), vec!["a", "b"]);
//! assert_eq!(table.string("missing"), None);
//! ```

use std::collections::{BTreeMap, HashMap};

/// Where config values come from: the gateway ([`Host`]) or, in tests, a literal table.
///
/// Implementors provide [`raw`](Source::raw); the typed getters parse its text.
pub trait Source {
    /// The value of `key` exactly as the gateway passes it, `None` when unset.
    fn raw(&self, key: &str) -> Option<String>;

    /// A string value, trimmed; `None` when unset, empty or blank (like go-live's `getEnv`, an
    /// empty setting counts as unset). A TOML value that is not a string comes back as its
    /// TOML text.
    fn string(&self, key: &str) -> Option<String> {
        let value = self.raw(key)?;
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }

    /// A boolean: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case). `None` when unset
    /// or not one of those.
    fn bool(&self, key: &str) -> Option<bool> {
        parse_bool(&self.string(key)?)
    }

    /// A non-negative integer (TOML `5`, `5_000`, or the text `"5"`). `None` when unset or not
    /// a non-negative integer.
    fn u64(&self, key: &str) -> Option<u64> {
        parse_u64(&self.string(key)?)
    }

    /// A finite number (TOML `2.5`, `5`, `1_000`, or the text `"2.5"`). `None` when unset or not
    /// a finite number.
    fn f64(&self, key: &str) -> Option<f64> {
        parse_f64(&self.string(key)?)
    }

    /// A list of strings: a TOML array (`["a", 'b', 3]`, items as text) or a plain
    /// comma-separated string (`a, b`). Items are trimmed and empty ones dropped; an unset key
    /// is an empty list.
    fn list(&self, key: &str) -> Vec<String> {
        self.string(key).map(|v| parse_list(&v)).unwrap_or_default()
    }
}

/// The gateway's config table of this module (reads [`crate::host::config`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Host;

impl Source for Host {
    fn raw(&self, key: &str) -> Option<String> {
        crate::host::config(key)
    }
}

impl Source for [(&str, &str)] {
    fn raw(&self, key: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn raw(&self, key: &str) -> Option<String> {
        self.as_slice().raw(key)
    }
}

impl Source for BTreeMap<String, String> {
    fn raw(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl<S: std::hash::BuildHasher> Source for HashMap<String, String, S> {
    fn raw(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl<T: Source + ?Sized> Source for &T {
    fn raw(&self, key: &str) -> Option<String> {
        (**self).raw(key)
    }
}

/// [`Source::string`] of the gateway's table.
pub fn string(key: &str) -> Option<String> {
    Host.string(key)
}

/// [`Source::bool`] of the gateway's table.
pub fn bool(key: &str) -> Option<bool> {
    Host.bool(key)
}

/// [`Source::u64`] of the gateway's table.
pub fn u64(key: &str) -> Option<u64> {
    Host.u64(key)
}

/// [`Source::f64`] of the gateway's table.
pub fn f64(key: &str) -> Option<f64> {
    Host.f64(key)
}

/// [`Source::list`] of the gateway's table.
pub fn list(key: &str) -> Vec<String> {
    Host.list(key)
}

/// Parses a boolean setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses a non-negative integer setting, allowing TOML's `_` digit separators and a `+` sign.
pub fn parse_u64(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    digits.replace('_', "").parse().ok()
}

/// Parses a finite number setting, allowing TOML's `_` digit separators.
pub fn parse_f64(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('_') || text.ends_with('_') {
        return None;
    }
    text.replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
}

/// Parses a list setting: a TOML array of strings (basic or literal) or other scalars, or a
/// plain comma-separated string. Items are trimmed; empty items are dropped.
pub fn parse_list(text: &str) -> Vec<String> {
    let text = text.trim();
    let items = match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => split_toml_array(inner),
        None => text.split(',').map(str::to_owned).collect(),
    };
    items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// Splits the inside of a TOML array into its items, unquoting strings.
fn split_toml_array(inner: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => current.push_str(&basic_string(&mut chars)),
            '\'' => current.extend(chars.by_ref().take_while(|&c| c != '\'')),
            ',' => items.push(std::mem::take(&mut current)),
            '#' => {
                // A comment runs to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {}
            c => current.push(c),
        }
    }
    items.push(current);
    items
}

/// Reads a TOML basic string after its opening quote, resolving the common escapes.
fn basic_string(chars: &mut std::str::Chars<'_>) -> String {
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(c @ ('u' | 'U')) => {
                    let len = if c == 'u' { 4 } else { 8 };
                    let code: String = chars.by_ref().take(len).collect();
                    let decoded = u32::from_str_radix(&code, 16).ok().and_then(char::from_u32);
                    out.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_blank_strings_count_as_unset() {
        let table = [("a", ""), ("b", "   "), ("c", " x ")];
        assert_eq!(table.string("a"), None);
        assert_eq!(table.string("b"), None);
        assert_eq!(table.string("c").as_deref(), Some("x"));
        assert_eq!(table.string("d"), None);
    }

    #[test]
    fn booleans_accept_toml_and_environment_spellings() {
        for yes in ["true", "TRUE", "1", "yes", "On"] {
            assert_eq!(parse_bool(yes), Some(true), "{yes}");
        }
        for no in ["false", "0", "No", "off"] {
            assert_eq!(parse_bool(no), Some(false), "{no}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn integers_accept_separators_and_reject_negatives_and_garbage() {
        assert_eq!(parse_u64("5"), Some(5));
        assert_eq!(parse_u64(" 86_400 "), Some(86_400));
        assert_eq!(parse_u64("+7"), Some(7));
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1.5"), None);
        assert_eq!(parse_u64("_1"), None);
        assert_eq!(parse_u64(""), None);
    }

    #[test]
    fn numbers_accept_fractions_and_reject_non_finite_values() {
        assert_eq!(parse_f64("2.5"), Some(2.5));
        assert_eq!(parse_f64("1_000"), Some(1000.0));
        assert_eq!(parse_f64("inf"), None);
        assert_eq!(parse_f64("nan"), None);
        assert_eq!(parse_f64("five"), None);
    }

    #[test]
    fn lists_parse_toml_arrays_with_quotes_escapes_and_comments() {
        assert_eq!(parse_list(r#"["a", "b"]"#), vec!["a", "b"]);
        assert_eq!(
            parse_list(r#"[ 'lit,eral', "q\"uote", 3, ]"#),
            vec!["lit,eral", "q\"uote", "3"]
        );
        assert_eq!(
            parse_list("[\n  \"x\", # first\n  \"y\"\n]"),
            vec!["x", "y"]
        );
        assert_eq!(parse_list(r#"["\u00e9"]"#), vec!["é"]);
        assert_eq!(parse_list("[]"), Vec::<String>::new());
    }

    #[test]
    fn lists_also_accept_plain_comma_separated_text() {
        assert_eq!(parse_list("a, b,,c "), vec!["a", "b", "c"]);
        assert_eq!(parse_list("single"), vec!["single"]);
    }

    #[test]
    fn an_unset_list_is_empty() {
        let table: [(&str, &str); 0] = [];
        assert!(table.list("nothing").is_empty());
    }

    #[test]
    fn maps_are_sources_too() {
        let mut map = BTreeMap::new();
        map.insert("n".to_owned(), "12".to_owned());
        assert_eq!(map.u64("n"), Some(12));
        let hash: HashMap<String, String> = map.into_iter().collect();
        assert_eq!(hash.u64("n"), Some(12));
        // A reference to a source is a source (e.g. `&dyn Source`).
        let by_ref: &dyn Source = &hash;
        assert_eq!(by_ref.u64("n"), Some(12));
    }
}
