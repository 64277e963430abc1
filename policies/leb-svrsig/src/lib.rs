//! `leb-svrsig` (world `svrsig`): Tencent LEB session signatures and anti-leech play URLs.
//!
//! Config (`[policies.config.leb-svrsig]`):
//!
//! | key | meaning |
//! |---|---|
//! | `svrsig_key` | HMAC-SHA256 key of `svrsig` (required: without it sign/verify fail with 503) |
//! | `svrsig_ttl_secs` | how long a `svrsig` stays valid (default 86400) |
//! | `tx_key.<domain>` | anti-leech key of one play domain |
//! | `tx_key` (or `tx_key."*"` next to per-domain keys) | key of every other domain |
//!
//! A `svrsig` is `base64url(JSON{sessionId,stream,timeTs}) . base64url(HMAC-SHA256)`; forged,
//! malformed or expired ones are 403. A play URL of a domain with a key needs
//! `txSecret = md5(key + stream + txTime)` and an unexpired hex `txTime` (else 403); domains
//! without a key are not checked.

mod settings;
mod svrsig;
mod txsecret;

pub use settings::{DEFAULT_TTL_SECS, SvrsigSettings, tx_key};
pub use svrsig::{sign, verify};
pub use txsecret::check_url;

use gatehouse_sdk::config::Host;
use gatehouse_sdk::types::{Denial, SessionFacts, StreamUrl};

/// The exported policy.
pub struct LebSvrsig;

impl gatehouse_sdk::svrsig::Guest for LebSvrsig {
    fn sign(facts: SessionFacts) -> Result<String, Denial> {
        sign(&SvrsigSettings::load(&Host), &facts)
    }

    fn verify(svrsig: String) -> Result<SessionFacts, Denial> {
        verify(
            &SvrsigSettings::load(&Host),
            &svrsig,
            gatehouse_sdk::host::now_ms(),
        )
    }

    fn check_url(url: StreamUrl) -> Result<(), Denial> {
        let key = tx_key(&Host, &url.domain);
        check_url(key.as_deref(), &url, gatehouse_sdk::host::now_secs())
    }
}

gatehouse_sdk::export_svrsig!(LebSvrsig);
