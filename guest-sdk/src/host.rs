//! What the gateway offers a policy: logging, the clock, the module's config table and
//! counters. There is no filesystem and no network; secrets come from the config table.
//!
//! Off wasm (when a policy's unit tests run natively) these functions do not reach a gateway:
//! [`log`] writes to stderr, [`now_ms`] reads the system clock, [`config`] returns `None`, and
//! [`count`] does nothing, and [`hmac`] is computed in this process. Tests of decision logic should pass configuration explicitly (see
//! [`crate::config::Source`]).

pub use crate::host_bindings::gatehouse::policy::host::{Hash, Level};

/// Writes `message` to the gateway's log at `level`, tagged with the module's name.
pub fn log(level: Level, message: &str) {
    imp::log(level, message);
}

/// Logs `message` at [`Level::Debug`]. See also the [`debug!`](crate::debug) macro.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs `message` at [`Level::Info`]. See also the [`info!`](crate::info) macro.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs `message` at [`Level::Warn`]. See also the [`warn!`](crate::warn) macro.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs `message` at [`Level::Error`]. See also the [`error!`](crate::error) macro.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Wall-clock time, Unix milliseconds.
pub fn now_ms() -> u64 {
    imp::now_ms()
}

/// Wall-clock time, Unix seconds (rounded down).
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// The raw value of `key` in this module's config table (`[policies.config.<module>]`, nested
/// tables flattened with dots, e.g. `room.demo.pin`, plus environment overrides): strings as
/// they are, other TOML values in TOML syntax (`5`, `true`, `["a", "b"]`). `None` when unset.
///
/// [`crate::config`] parses these values into typed ones.
pub fn config(key: &str) -> Option<String> {
    imp::config(key)
}

/// Adds `value` to the counter `gatehouse_policy_<name>{module, labels…}`.
///
/// ```no_run
/// gatehouse_sdk::host::count("decisions", &[("result", "allow")], 1.0);
/// ```
pub fn count(name: &str, labels: &[(&str, &str)], value: f64) {
    imp::count(name, labels, value);
}

/// Longest message [`hmac`] signs (1 MiB), as the gateway's `hmac` import.
pub const MAX_HMAC_MESSAGE: usize = 1 << 20;

/// HMAC of `message` under `key`, computed by the gateway natively (with the CPU's SHA
/// instructions where it has them). [`crate::crypto::hmac_sha256`] and [`crate::jwt`] use it.
/// Messages over 1 MiB give an empty result, which matches no signature.
pub fn hmac(hash: Hash, key: &[u8], message: &[u8]) -> Vec<u8> {
    imp::hmac(hash, key, message)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Level;
    use crate::host_bindings::gatehouse::policy::host as wit;

    pub fn log(level: Level, message: &str) {
        wit::log(level, message);
    }

    pub fn now_ms() -> u64 {
        wit::now_ms()
    }

    pub fn config(key: &str) -> Option<String> {
        wit::config(key)
    }

    pub fn count(name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        wit::count(name, &labels, value);
    }

    pub fn hmac(hash: super::Hash, key: &[u8], message: &[u8]) -> Vec<u8> {
        wit::hmac(hash, key, message)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Level;

    pub fn log(level: Level, message: &str) {
        eprintln!("[policy {level:?}] {message}");
    }

    pub fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn config(_key: &str) -> Option<String> {
        None
    }

    pub fn count(_name: &str, _labels: &[(&str, &str)], _value: f64) {}

    pub fn hmac(hash: super::Hash, key: &[u8], message: &[u8]) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            // HMAC accepts keys of every length.
            let Ok(mut mac) = <M as Mac>::new_from_slice(key) else {
                unreachable!("HMAC takes keys of any length")
            };
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        if message.len() > super::MAX_HMAC_MESSAGE {
            return Vec::new();
        }
        match hash {
            super::Hash::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
            super::Hash::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
            super::Hash::Sha512 => run::<Hmac<sha2::Sha512>>(key, message),
        }
    }
}

/// Logs a formatted message at debug level: `gatehouse_sdk::debug!("room {room} full")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        $crate::host::log($crate::host::Level::Debug, &::std::format!($($arg)*))
    };
}

/// Logs a formatted message at info level: `gatehouse_sdk::info!("allowed {subject}")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::host::log($crate::host::Level::Info, &::std::format!($($arg)*))
    };
}

/// Logs a formatted message at warn level: `gatehouse_sdk::warn!("bad key {key}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::host::log($crate::host::Level::Warn, &::std::format!($($arg)*))
    };
}

/// Logs a formatted message at error level: `gatehouse_sdk::error!("no secret")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        $crate::host::log($crate::host::Level::Error, &::std::format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively_the_clock_is_the_system_clock() {
        // 2020-01-01 in ms: anything earlier means the fallback is broken.
        assert!(now_ms() > 1_577_836_800_000);
        assert_eq!(now_secs(), now_ms() / 1000);
    }

    #[test]
    fn natively_config_is_unset_and_logging_and_counting_do_not_abort() {
        assert_eq!(config("anything"), None);
        crate::info!("native {}", 1);
        count("decisions", &[("result", "allow")], 1.0);
    }
}
