//! go-live's environment variables (specs/dialects.md §5.5) as overrides of the config file,
//! so a go-live deployment's environment configures the gateway unchanged. Empty values count
//! as unset, as go-live's `getEnv` has it.
//!
//! | variable | sets |
//! |---|---|
//! | `HTTP_ADDR` | `[http] listen` (`:8080` = every interface) |
//! | `TLS_CERT_FILE`, `TLS_KEY_FILE` | `[http] tls_cert`, `tls_key` (HTTPS when both are set) |
//! | `STUN_URLS`, `TURN_URLS` (CSV), `TURN_USERNAME`, `TURN_PASSWORD` | `[webrtc] ice_servers` (replaced when either URL list is set) |
//! | `ALLOWED_ORIGIN`, `RATE_LIMIT_RPS`, `RATE_LIMIT_BURST` | `[rooms]` |
//! | `RECORD_ENABLED` (`1`), `RECORD_DIR` | `[record]` |
//! | `AUTH_TOKEN`, `ROOM_TOKENS`, `JWT_SECRET`, `JWT_AUDIENCE`, `ADMIN_TOKEN` | `[policies.config.token-auth]` |
//! | `MAX_SUBS_PER_ROOM` | `[policies.config.room-admission] max_subscribers` |
//!
//! Not supported, refused at start rather than ignored: `UPLOAD_RECORDINGS=1` (S3 upload).
//! Ignored: `PPROF` and `OTEL_*` (Go runtime and tracing specifics; `/metrics` and the log
//! serve instead).

use std::net::{SocketAddr, ToSocketAddrs};

use super::{Config, ConfigError, IceServerConfig, PolicyConfig, RecordConfig, RoomsConfig};

impl Config {
    /// Applies every go-live variable `var` yields (see the module doc).
    pub fn apply_go_live_env(
        &mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(addr) = set("HTTP_ADDR") {
            self.http.listen = listen_addr(&addr)?;
        }
        match (set("TLS_CERT_FILE"), set("TLS_KEY_FILE")) {
            (Some(cert), Some(key)) => {
                self.http.tls_cert = Some(cert.into());
                self.http.tls_key = Some(key.into());
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError::Invalid {
                    key: "TLS_CERT_FILE",
                    reason: "TLS_CERT_FILE and TLS_KEY_FILE go together".into(),
                });
            }
        }
        let stun = set("STUN_URLS").map(|v| csv(&v)).unwrap_or_default();
        let turn = set("TURN_URLS").map(|v| csv(&v)).unwrap_or_default();
        if !stun.is_empty() || !turn.is_empty() {
            self.webrtc.ice_servers.clear();
            if !stun.is_empty() {
                self.webrtc.ice_servers.push(IceServerConfig {
                    urls: stun,
                    username: None,
                    credential: None,
                });
            }
            if !turn.is_empty() {
                self.webrtc.ice_servers.push(IceServerConfig {
                    urls: turn,
                    username: set("TURN_USERNAME"),
                    credential: set("TURN_PASSWORD"),
                });
            }
        }
        if set("UPLOAD_RECORDINGS").as_deref() == Some("1") {
            return Err(ConfigError::Invalid {
                key: "UPLOAD_RECORDINGS",
                reason: "uploading recordings to S3 is not supported; recordings stay in \
                         RECORD_DIR (served under /records/)"
                    .into(),
            });
        }
        self.record.apply_env(&var);
        self.rooms.apply_env(&var)?;
        self.policies.apply_env(&var)
    }
}

/// go-live's `HTTP_ADDR`: Go's `host:port`, where an empty host means every interface.
fn listen_addr(text: &str) -> Result<SocketAddr, ConfigError> {
    let text = text.trim();
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| ConfigError::Invalid {
            key: "HTTP_ADDR",
            reason: format!("{text:?} is not a host:port address"),
        })
}

fn csv(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// go-live's environment variables and the shipped module key each one sets.
const ENV_OVERRIDES: [(&str, &str, &str); 6] = [
    ("AUTH_TOKEN", "token-auth", "auth_token"),
    ("ROOM_TOKENS", "token-auth", "room_tokens"),
    ("JWT_SECRET", "token-auth", "jwt_secret"),
    ("JWT_AUDIENCE", "token-auth", "jwt_audience"),
    ("ADMIN_TOKEN", "token-auth", "admin_token"),
    ("MAX_SUBS_PER_ROOM", "room-admission", "max_subscribers"),
];

impl PolicyConfig {
    /// Applies go-live's environment variables (`AUTH_TOKEN`, `ROOM_TOKENS`, `JWT_SECRET`,
    /// `JWT_AUDIENCE`, `ADMIN_TOKEN`, `MAX_SUBS_PER_ROOM`) to the shipped modules' config, so
    /// go-live deployments move over unchanged. Empty values count as unset, as in go-live.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (name, module, key) in ENV_OVERRIDES {
            let Some(value) = var(name).filter(|v| !v.is_empty()) else {
                continue;
            };
            let value = if key == "max_subscribers" {
                let n: i64 = value.trim().parse().map_err(|_| ConfigError::Invalid {
                    key: "MAX_SUBS_PER_ROOM",
                    reason: format!("{value:?} is not a whole number"),
                })?;
                toml::Value::Integer(n.max(0))
            } else {
                toml::Value::String(value)
            };
            self.config
                .entry(module.to_owned())
                .or_default()
                .insert(key.to_owned(), value);
        }
        Ok(())
    }
}

impl RoomsConfig {
    /// go-live's `ALLOWED_ORIGIN`, `RATE_LIMIT_RPS`, `RATE_LIMIT_BURST` (empty = unset).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(origin) = var("ALLOWED_ORIGIN") {
            self.allowed_origin = origin;
        }
        if let Some(rps) = var("RATE_LIMIT_RPS") {
            self.rate_limit_rps = rps.trim().parse().map_err(|_| ConfigError::Invalid {
                key: "RATE_LIMIT_RPS",
                reason: format!("{rps:?} is not a number"),
            })?;
        }
        if let Some(burst) = var("RATE_LIMIT_BURST") {
            self.rate_limit_burst = burst.trim().parse().map_err(|_| ConfigError::Invalid {
                key: "RATE_LIMIT_BURST",
                reason: format!("{burst:?} is not a whole number"),
            })?;
        }
        Ok(())
    }
}

impl RecordConfig {
    /// go-live's `RECORD_ENABLED` (only `"1"` turns it on) and `RECORD_DIR`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if var("RECORD_ENABLED").as_deref() == Some("1") {
            self.enabled = true;
        }
        if let Some(dir) = var("RECORD_DIR").filter(|d| !d.is_empty()) {
            self.dir = dir.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_live_environment_configures_the_shipped_policies() {
        let mut config = Config::default();
        let env = |name: &str| match name {
            "AUTH_TOKEN" => Some("secret".to_owned()),
            "MAX_SUBS_PER_ROOM" => Some("3".to_owned()),
            "JWT_SECRET" => Some(String::new()),
            _ => None,
        };
        config.policies.apply_env(env).unwrap();
        let auth = &config.policies.config["token-auth"];
        assert_eq!(auth["auth_token"].as_str(), Some("secret"));
        assert!(!auth.contains_key("jwt_secret"), "empty means unset");
        let admission = &config.policies.config["room-admission"];
        assert_eq!(admission["max_subscribers"].as_integer(), Some(3));
    }

    #[test]
    fn go_live_listen_tls_and_ice_variables_override_the_file() {
        let mut config = Config::default();
        let env = |name: &str| {
            let value = match name {
                "HTTP_ADDR" => ":8080",
                "TLS_CERT_FILE" => "/etc/cert.pem",
                "TLS_KEY_FILE" => "/etc/key.pem",
                "STUN_URLS" => "stun:a:3478, stun:b:3478",
                "TURN_URLS" => "turn:t:3478",
                "TURN_USERNAME" => "u",
                "TURN_PASSWORD" => "p",
                "RECORD_ENABLED" => "1",
                _ => return None,
            };
            Some(value.to_owned())
        };
        config.apply_go_live_env(env).unwrap();
        assert_eq!(config.http.listen, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert_eq!(
            config.http.tls_key.as_deref(),
            Some("/etc/key.pem".as_ref())
        );
        assert_eq!(config.webrtc.ice_servers.len(), 2);
        assert_eq!(
            config.webrtc.ice_servers[0].urls,
            ["stun:a:3478", "stun:b:3478"]
        );
        assert_eq!(config.webrtc.ice_servers[1].username.as_deref(), Some("u"));
        assert_eq!(
            config.webrtc.ice_servers[1].credential.as_deref(),
            Some("p")
        );
        assert!(config.record.enabled);
    }

    #[test]
    fn a_lone_tls_file_a_bad_address_and_s3_upload_are_refused_by_name() {
        for (name, value, key) in [
            ("TLS_CERT_FILE", "/c.pem", "TLS_CERT_FILE"),
            ("HTTP_ADDR", "nowhere", "HTTP_ADDR"),
            ("UPLOAD_RECORDINGS", "1", "UPLOAD_RECORDINGS"),
            ("RATE_LIMIT_RPS", "fast", "RATE_LIMIT_RPS"),
        ] {
            let env = |n: &str| (n == name).then(|| value.to_owned());
            let err = Config::default().apply_go_live_env(env).unwrap_err();
            assert!(err.to_string().contains(key), "{name}: {err}");
        }
    }

    #[test]
    fn rooms_variables_set_origin_and_rate_limit() {
        let mut config = Config::default();
        let env = |n: &str| match n {
            "ALLOWED_ORIGIN" => Some("https://app.example".to_owned()),
            "RATE_LIMIT_RPS" => Some("2.5".to_owned()),
            "RATE_LIMIT_BURST" => Some("4".to_owned()),
            _ => None,
        };
        config.apply_go_live_env(env).unwrap();
        assert_eq!(config.rooms.allowed_origin, "https://app.example");
        assert_eq!(config.rooms.rate_limit_rps, 2.5);
        assert_eq!(config.rooms.rate_limit_burst, 4);
    }
}
