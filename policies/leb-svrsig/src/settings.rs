//! The policy's config table, parsed.

use gatehouse_sdk::config::Source;

/// Default lifetime of a `svrsig`: one day.
pub const DEFAULT_TTL_SECS: u64 = 86_400;

/// `svrsig_key` and `svrsig_ttl_secs` of `[policies.config.leb-svrsig]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SvrsigSettings {
    /// The HMAC key; unset = signing and verifying fail with 503.
    pub key: Option<String>,
    /// How long a signature stays valid, in seconds.
    pub ttl_secs: u64,
}

impl SvrsigSettings {
    /// Reads `svrsig_key` and `svrsig_ttl_secs` (default [`DEFAULT_TTL_SECS`]).
    pub fn load(source: &impl Source) -> Self {
        SvrsigSettings {
            key: source.string("svrsig_key"),
            ttl_secs: source.u64("svrsig_ttl_secs").unwrap_or(DEFAULT_TTL_SECS),
        }
    }
}

/// The anti-leech key of `domain` (its host: a `:port` is not part of it): `tx_key.<host>` (as
/// written, then lowercased), then `tx_key.*`, then a plain `tx_key` for every domain. `None`
/// = URLs of the domain are not checked.
///
/// A stream is the same room whatever domain names it, so a domain without a key plays every
/// room unchecked: to protect all of them, set `tx_key."*"` (or a plain `tx_key`). TOML cannot
/// make `tx_key` both a string and a table, so with per-domain keys the default is written
/// `tx_key."*"`.
pub fn tx_key(source: &impl Source, domain: &str) -> Option<String> {
    let domain = host_of(domain);
    source
        .string(&format!("tx_key.{domain}"))
        .or_else(|| source.string(&format!("tx_key.{}", domain.to_ascii_lowercase())))
        .or_else(|| source.string("tx_key.*"))
        .or_else(|| source.string("tx_key"))
}

/// `host` of `host[:port]` and `[v6]` of `[v6][:port]`.
fn host_of(domain: &str) -> &str {
    match domain.strip_prefix('[') {
        Some(rest) => rest.find(']').map_or(domain, |end| &domain[..end + 2]),
        None => domain.rsplit_once(':').map_or(domain, |(host, _)| host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ttl_defaults_to_a_day() {
        let s = SvrsigSettings::load(&[("svrsig_key", "k")]);
        assert_eq!((s.key.as_deref(), s.ttl_secs), (Some("k"), 86_400));
        assert_eq!(
            SvrsigSettings::load(&[("svrsig_ttl_secs", "60")]).ttl_secs,
            60
        );
    }

    #[test]
    fn a_domain_key_wins_over_the_defaults() {
        let cfg = [("tx_key.play.example.com", "domain"), ("tx_key.*", "star")];
        assert_eq!(tx_key(&cfg, "play.example.com").as_deref(), Some("domain"));
        assert_eq!(tx_key(&cfg, "PLAY.example.com").as_deref(), Some("domain"));
        assert_eq!(tx_key(&cfg, "other.example.com").as_deref(), Some("star"));
        assert_eq!(tx_key(&[("tx_key", "all")], "x").as_deref(), Some("all"));
        assert_eq!(tx_key(&[("tx_key", "")], "x"), None);
    }

    #[test]
    fn a_port_in_the_url_does_not_escape_its_domains_key() {
        let cfg = [
            ("tx_key.play.example.com", "domain"),
            ("tx_key.[::1]", "v6"),
        ];
        assert_eq!(
            tx_key(&cfg, "play.example.com:1985").as_deref(),
            Some("domain")
        );
        assert_eq!(tx_key(&cfg, "[::1]:1985").as_deref(), Some("v6"));
        assert_eq!(tx_key(&cfg, "[::1]").as_deref(), Some("v6"));
    }
}
