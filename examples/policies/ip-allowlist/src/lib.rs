//! An example policy: only clients from listed networks may publish or play.
//!
//! Config (`[policies.config.ip-allowlist]`): `allow = ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]`.
//! No list means nobody is allowed (a policy should fail closed on missing configuration).

use std::net::IpAddr;

use gatehouse_sdk::types::{Denial, Principal, Request};

/// An address range written `address/prefix-length`.
struct Network {
    base: IpAddr,
    prefix: u32,
}

impl Network {
    fn parse(text: &str) -> Option<Network> {
        let (base, prefix) = text.trim().split_once('/')?;
        let base: IpAddr = base.parse().ok()?;
        let prefix: u32 = prefix.parse().ok()?;
        let bits = if base.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Network { base, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (base, ip, bits) = match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => (u32::from(b) as u128, u32::from(a) as u128, 32),
            (IpAddr::V6(b), IpAddr::V6(a)) => (u128::from(b), u128::from(a), 128),
            _ => return false,
        };
        let shift = bits - self.prefix;
        shift >= bits || base >> shift == ip >> shift
    }
}

/// The decision, separate from the Wasm export so it can be unit-tested natively.
fn decide(allow: &[String], client_ip: &str) -> Result<Principal, Denial> {
    let ip: IpAddr = client_ip
        .parse()
        .map_err(|_| Denial::forbidden("address not allowed"))?;
    if allow
        .iter()
        .filter_map(|n| Network::parse(n))
        .any(|n| n.contains(ip))
    {
        Ok(Principal::new(format!("ip:{ip}")))
    } else {
        Err(Denial::forbidden("address not allowed"))
    }
}

struct IpAllowList;

impl gatehouse_sdk::authorize::Guest for IpAllowList {
    fn authorize(request: Request) -> Result<Principal, Denial> {
        let allow = gatehouse_sdk::config::list("allow");
        decide(&allow, &request.client_ip)
    }
}

gatehouse_sdk::export_authorize!(IpAllowList);

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listed_networks_are_allowed_and_others_refused() {
        let allow = list(&["10.0.0.0/8", "::1/128"]);
        assert!(decide(&allow, "10.1.2.3").is_ok());
        assert!(decide(&allow, "::1").is_ok());
        assert_eq!(decide(&allow, "192.168.0.1").unwrap_err().status, 403);
    }

    #[test]
    fn an_empty_list_allows_nobody() {
        assert!(decide(&[], "127.0.0.1").is_err());
    }
}
