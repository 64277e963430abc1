//! Gateway configuration: one TOML file, every key optional.
//!
//! Running with no file at all yields [`Config::default`], the embedded default: HTTP and media
//! UDP on port 7777 of all interfaces, streams auto-created, open access. Unknown keys and bad
//! values are startup errors that name the key (serde's `deny_unknown_fields` + toml's spans).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

mod go_live_env;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrongly typed value; toml's message names key and line.
    #[error("invalid config {origin}: {message}")]
    Parse { origin: String, message: String },
    /// A well-formed value that cannot work.
    #[error("invalid config value `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// The whole gateway configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The file this configuration was read from (`--config`), where Janus `permanent` rooms
    /// are written back; `None` for the embedded default.
    #[serde(skip)]
    pub source: Option<std::path::PathBuf>,
    pub http: HttpConfig,
    pub webrtc: WebrtcConfig,
    pub strategy: StrategyConfig,
    pub policies: PolicyConfig,
    pub record: RecordConfig,
    pub rooms: RoomsConfig,
    pub leb: LebConfig,
    pub janus: JanusConfig,
    pub log: LogConfig,
}

/// `[janus]`: the Janus API (`/janus`, HTTP and WebSocket).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JanusConfig {
    /// Janus's own ports, e.g. `["0.0.0.0:8088", "0.0.0.0:8188"]`: each serves only the Janus
    /// API, the way Janus's transports do (HTTP under `/janus`, the WebSocket on `/` as well),
    /// so clients configured for a Janus server need no change. `/janus` on `[http] listen`
    /// always serves it too.
    pub listen: Vec<std::net::SocketAddr>,
    /// Seconds without a request, poll or keepalive after which a session is destroyed.
    pub session_timeout_secs: u64,
    /// Lost packets per second (of one kind, in one direction) from which a handle gets a
    /// `slowlink` event, as Janus's `slowlink_threshold`; 0 (the default) sends none.
    pub slowlink_threshold: u32,
    /// Janus's `admin_key`: when set, VideoRoom `create` requests must carry it.
    pub admin_key: Option<String>,
    /// Janus's `lock_rtp_forward`: with an `admin_key`, `rtp_forward` and `stop_rtp_forward`
    /// must carry it too (they make the gateway send media anywhere).
    pub lock_rtp_forward: bool,
    /// Where `permanent` rooms (create/edit/destroy with `permanent: true`) are kept: a TOML
    /// file of `[[rooms]]` the gateway rewrites, loaded at start after `rooms`. Unset: they
    /// are written back into the `[[janus.rooms]]` of the `--config` file (its other lines
    /// kept), as Janus rewrites its jcfg; with the embedded default config they are refused.
    pub rooms_file: Option<std::path::PathBuf>,
    /// VideoRoom rooms that exist from start-up (`[[janus.rooms]]`, the keys of Janus's
    /// `janus.plugin.videoroom.jcfg`: room, description, secret, pin, publishers, …).
    pub rooms: Vec<crate::dialect::janus::RoomConfig>,
}

impl Default for JanusConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            rooms_file: None,
            session_timeout_secs: 60,
            slowlink_threshold: 0,
            admin_key: None,
            lock_rtp_forward: false,
            rooms: Vec::new(),
        }
    }
}

/// Which part of a LEB `streamurl` names the room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LebRoomFrom {
    /// `webrtc://domain/app/stream` → `stream` (DESIGN.md §1's default).
    #[default]
    Stream,
    /// → `app_stream` (the app and the stream joined by `_`, for deployments that reuse
    /// stream names across apps).
    AppStream,
}

/// `[leb]`: Tencent LEB pull signaling (`/webrtc/v1/*`) and its quality reports.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LebConfig {
    pub room_from: LebRoomFrom,
    /// Every report taken (with the policy's verdict) is appended to this JSON-lines file when
    /// set.
    pub report_log: Option<std::path::PathBuf>,
    /// The report log is rotated (to `<file>.1`, older ones shifting to `.2` …) beyond this size.
    pub report_log_max_bytes: u64,
    /// Rotated report logs kept (`<file>.1` … `<file>.N`); the oldest beyond is deleted.
    pub report_log_keep: usize,
    /// Reports waiting for the quality policy; beyond it a report is refused (errcode).
    pub report_queue: usize,
}

impl Default for LebConfig {
    fn default() -> Self {
        Self {
            room_from: LebRoomFrom::Stream,
            report_log: None,
            report_log_max_bytes: 64 * 1024 * 1024,
            report_log_keep: 5,
            report_queue: 65_536,
        }
    }
}

/// `[rooms]`: go-live's rooms API (`/api/whip/publish/{room}`, `/api/whep/play/{room}`, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// `ALLOWED_ORIGIN`: `*`, or the one origin whose requests get CORS headers.
    pub allowed_origin: String,
    /// `RATE_LIMIT_RPS`: requests per second per client IP; 0 = no limit.
    pub rate_limit_rps: f64,
    /// `RATE_LIMIT_BURST`: bucket size (≤ 0 → 1).
    pub rate_limit_burst: i64,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            allowed_origin: "*".into(),
            rate_limit_rps: 0.0,
            rate_limit_burst: 0,
        }
    }
}

/// `[record]`: publishers' tracks to files (VP8/VP9/AV1 → IVF, Opus → Ogg).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    pub enabled: bool,
    /// Where recordings are written (created if missing).
    pub dir: std::path::PathBuf,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            dir: "records".into(),
        }
    }
}

/// `[http]`: the signaling listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the HTTP listener (all dialects share it).
    pub listen: SocketAddr,
    /// `Access-Control-Allow-Origin` for the WHIP/WHEP endpoints; empty disables CORS headers.
    pub cors_origin: String,
    /// Largest accepted request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// PEM certificate chain and private key: with both, the listener speaks HTTPS only.
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 7777)),
            cors_origin: "*".into(),
            max_body_bytes: 1024 * 1024,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[webrtc]`: the media plane.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebrtcConfig {
    /// The one UDP address every WebRTC session shares. An unspecified IP (0.0.0.0) binds one
    /// socket per local IPv4 interface address, all on this port.
    pub udp_listen: SocketAddr,
    /// The address to advertise instead of the bound ones (NAT 1:1; at most one); the port is
    /// `udp_listen`'s.
    pub public_ips: Vec<IpAddr>,
    /// ICE servers announced to clients in `Link: rel="ice-server"` headers.
    pub ice_servers: Vec<IceServerConfig>,
    /// Seconds without any datagram from a connected peer before its session is ended
    /// (ICE consent freshness, RFC 7675, uses 30 s).
    pub consent_timeout_secs: u64,
    /// Seconds a session may take from its answer to Connected before it is ended.
    pub connect_timeout_secs: u64,
    /// Minimum milliseconds between keyframe requests relayed to one publisher track; a
    /// request inside the interval is sent when it ends, not dropped.
    pub keyframe_request_interval_ms: u64,
    /// RTP packets each subscriber video leg keeps to answer NACKs (a power of two, 64–32768):
    /// 256 is ≈ 1.1 s of a 2 Mb/s stream, far more than a retransmission round trip needs,
    /// and ≈ 100 KB less per subscriber than rtc's default 1024.
    pub nack_buffer_packets: u16,
    /// Replay each room's last keyframe to a joining subscriber at once, instead of waiting
    /// for the publisher to answer the join's keyframe request.
    pub keyframe_cache: bool,
    /// Busy fraction of the media thread (over the last second) above which new subscriber
    /// offers are refused (WHEP 503 with Retry-After, each dialect its own error), so the
    /// sessions already served keep their latency. 1.0 never refuses.
    pub max_loop_load: f64,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        Self {
            udp_listen: SocketAddr::from(([0, 0, 0, 0], 7777)),
            public_ips: Vec::new(),
            ice_servers: Vec::new(),
            consent_timeout_secs: 30,
            connect_timeout_secs: 30,
            keyframe_request_interval_ms: 500,
            nack_buffer_packets: 256,
            keyframe_cache: false,
            max_loop_load: 0.9,
        }
    }
}

/// One STUN/TURN server announced to clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServerConfig {
    pub urls: Vec<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub credential: Option<String>,
}

/// `[strategy]`: stream lifecycle rules (Live777's names).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrategyConfig {
    /// A WHIP POST on an unknown stream creates it; off → 404.
    pub auto_create_whip: bool,
    /// A WHEP POST on an unknown stream creates it (the subscriber waits for a publisher); off → 404.
    pub auto_create_whep: bool,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        Self {
            auto_create_whip: true,
            auto_create_whep: true,
        }
    }
}

/// `[policies]`: which Wasm module serves which hook, limits, and each module's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Directory watched for `<module>.wasm` files; a file there replaces the shipped module of
    /// the same name and is hot-reloaded when it changes. Unset: shipped modules only.
    pub dir: Option<std::path::PathBuf>,
    /// Module serving the `authorize` hook; "" = none (every request is anonymous and allowed).
    pub authorize: String,
    /// Module serving the `admit` hook; "" = none (everything admitted that its room's own
    /// rules, such as a Janus room's PIN, let in).
    pub admit: String,
    /// Module serving the LEB `svrsig` hook.
    pub svrsig: String,
    /// Module serving the LEB `quality` hook.
    pub quality: String,
    /// Wall-clock budget of one call, in milliseconds (epoch deadline).
    pub deadline_ms: u64,
    /// Linear memory limit of one instance, in MiB.
    pub memory_mib: u64,
    /// Consecutive faults (traps, timeouts) of a new module version before the previous one is
    /// restored.
    pub breaker_faults: u32,
    /// Each module's own configuration table, by module name (`[policies.config.token-auth]`).
    pub config: std::collections::BTreeMap<String, toml::Table>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            dir: None,
            authorize: "token-auth".into(),
            admit: "room-admission".into(),
            svrsig: "leb-svrsig".into(),
            quality: "quality-report".into(),
            deadline_ms: 10,
            memory_mib: 32,
            breaker_faults: 5,
            config: Default::default(),
        }
    }
}

impl PolicyConfig {
    /// LEB sessions need a `svrsig` signing key; without a configured
    /// `[policies.config.leb-svrsig] svrsig_key` each process makes a random one (its svrsigs
    /// then end with it, as its sessions do). `svrsig_key = ""` switches signing off (every
    /// pull is refused: fail closed).
    pub fn ensure_svrsig_key(&mut self) {
        let table = self.config.entry("leb-svrsig".to_owned()).or_default();
        if !table.contains_key("svrsig_key") {
            let key: String = (0..32)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect();
            table.insert("svrsig_key".to_owned(), toml::Value::String(key));
            tracing::info!("LEB svrsig_key not configured: using a random key for this process");
        }
    }

    /// Whether anyone may publish and play: no authorize module, or the shipped token-auth
    /// without any token or JWT secret.
    pub fn access_is_open(&self) -> bool {
        let token_keys = ["auth_token", "room_tokens", "jwt_secret"];
        let has_tokens = self
            .config
            .get("token-auth")
            .is_some_and(|c| token_keys.iter().any(|k| c.contains_key(*k)));
        self.authorize.is_empty() || (self.authorize == "token-auth" && !has_tokens)
    }
}

/// `[log]`: tracing output.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `human` or `json`.
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `gatehouse=debug`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info,rtc_dtls::config=error".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

impl Config {
    /// Parses TOML text; `origin` names the source in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::from_toml(&text, &path.display().to_string())?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// A configuration for tests: everything on 127.0.0.1 with ephemeral ports, and a 1 s
    /// policy deadline (debug builds on a loaded CI machine; tests of the deadline set theirs).
    pub fn for_tests() -> Self {
        let mut config = Config::default();
        config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.webrtc.udp_listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.policies.deadline_ms = 1000;
        // Debug builds on a shared 2-core box pass 90 % busy in handshake bursts; functional
        // tests must not depend on machine speed (the overload test sets its own limit).
        config.webrtc.max_loop_load = 1.0;
        config
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.http.tls_cert.is_some() != self.http.tls_key.is_some() {
            return Err(ConfigError::Invalid {
                key: "http.tls_cert",
                reason: "tls_cert and tls_key go together".into(),
            });
        }
        if self.http.max_body_bytes == 0 {
            return Err(ConfigError::Invalid {
                key: "http.max_body_bytes",
                reason: "must be greater than 0".into(),
            });
        }
        if self.webrtc.consent_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "webrtc.consent_timeout_secs",
                reason: "must be greater than 0".into(),
            });
        }
        if !(self.webrtc.max_loop_load > 0.0 && self.webrtc.max_loop_load <= 1.0) {
            return Err(ConfigError::Invalid {
                key: "webrtc.max_loop_load",
                reason: "must be more than 0 and at most 1.0".into(),
            });
        }
        if self.janus.session_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "janus.session_timeout_secs",
                reason: "must be greater than 0".into(),
            });
        }
        if self.webrtc.connect_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "webrtc.connect_timeout_secs",
                reason: "must be greater than 0".into(),
            });
        }
        let nack = self.webrtc.nack_buffer_packets;
        if !nack.is_power_of_two() || !(64..=32768).contains(&nack) {
            return Err(ConfigError::Invalid {
                key: "webrtc.nack_buffer_packets",
                reason: format!("{nack} is not a power of two between 64 and 32768"),
            });
        }
        if self.webrtc.public_ips.len() > 1 {
            return Err(ConfigError::Invalid {
                key: "webrtc.public_ips",
                reason: "at most one public address is supported per UDP port".into(),
            });
        }
        if let Some(ip) = self.webrtc.public_ips.iter().find(|ip| ip.is_unspecified()) {
            return Err(ConfigError::Invalid {
                key: "webrtc.public_ips",
                reason: format!("{ip} is not an address a client can reach"),
            });
        }
        if self.policies.deadline_ms == 0 {
            return Err(ConfigError::Invalid {
                key: "policies.deadline_ms",
                reason: "must be greater than 0".into(),
            });
        }
        if self.policies.memory_mib == 0 {
            return Err(ConfigError::Invalid {
                key: "policies.memory_mib",
                reason: "must be greater than 0".into(),
            });
        }
        for server in &self.webrtc.ice_servers {
            if server.urls.is_empty() {
                return Err(ConfigError::Invalid {
                    key: "webrtc.ice_servers.urls",
                    reason: "each ICE server needs at least one URL".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let config = Config::from_toml("", "test").unwrap();
        assert_eq!(config.http.listen.port(), 7777);
        assert_eq!(config.webrtc.udp_listen.port(), 7777);
        assert!(config.strategy.auto_create_whip && config.strategy.auto_create_whep);
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = Config::from_toml("[http]\nlisten_port = 1\n", "test").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("listen_port"), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn bad_value_is_an_error_naming_the_key() {
        let err = Config::from_toml("[strategy]\nauto_create_whip = \"yes\"\n", "t").unwrap_err();
        assert!(err.to_string().contains("auto_create_whip"), "{err}");
    }

    #[test]
    fn nack_buffer_that_is_not_a_power_of_two_is_refused() {
        let err = Config::from_toml("[webrtc]\nnack_buffer_packets = 300\n", "t").unwrap_err();
        assert!(err.to_string().contains("nack_buffer_packets"), "{err}");
        assert!(Config::from_toml("[webrtc]\nnack_buffer_packets = 512\n", "t").is_ok());
    }

    #[test]
    fn the_example_config_parses_and_janus_rooms_take_jcfg_keys() {
        let example = include_str!("../../../examples/gatehouse.toml");
        Config::from_toml(example, "examples/gatehouse.toml").unwrap();
        let rooms = "[[janus.rooms]]\nroom = 1234\ndescription = \"Demo\"\npin = \"42\"\n\
                     publishers = 6\nis_private = true\n";
        let config = Config::from_toml(rooms, "t").unwrap();
        let room = &config.janus.rooms[0];
        assert_eq!(
            (room.room, room.publishers, room.is_private),
            (1234, 6, true)
        );
        assert_eq!(room.pin.as_deref(), Some("42"));
        let err = Config::from_toml("[[janus.rooms]]\nroom = 1\nbogus = 1\n", "t").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn a_loop_load_limit_outside_zero_to_one_is_refused() {
        for bad in ["0", "1.5", "-0.2", "nan"] {
            let toml = format!("[webrtc]\nmax_loop_load = {bad}\n");
            let err = Config::from_toml(&toml, "t").unwrap_err();
            assert!(err.to_string().contains("max_loop_load"), "{bad}: {err}");
        }
        assert!(Config::from_toml("[webrtc]\nmax_loop_load = 1.0\n", "t").is_ok());
    }

    #[test]
    fn policy_module_config_tables_parse() {
        let config = Config::from_toml(
            "[policies]\nauthorize = \"my-auth\"\n[policies.config.my-auth]\nkey = \"v\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(config.policies.authorize, "my-auth");
        assert_eq!(config.policies.config["my-auth"]["key"].as_str(), Some("v"));
    }

    #[test]
    fn unspecified_public_ip_is_rejected() {
        let err = Config::from_toml("[webrtc]\npublic_ips = [\"0.0.0.0\"]\n", "t").unwrap_err();
        assert!(err.to_string().contains("webrtc.public_ips"), "{err}");
    }

    #[test]
    fn overrides_apply_to_named_keys_only() {
        let config = Config::from_toml(
            "[strategy]\nauto_create_whep = false\n[log]\nformat = \"json\"",
            "t",
        )
        .unwrap();
        assert!(config.strategy.auto_create_whip);
        assert!(!config.strategy.auto_create_whep);
        assert_eq!(config.log.format, LogFormat::Json);
    }
}
