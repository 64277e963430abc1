//! A VideoRoom room's configuration: the keys of `janus.plugin.videoroom.jcfg`, read from the
//! gateway's TOML (`[[janus.rooms]]`) or a `create` request, and its entry in `list`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::streams::OfferRules;
use super::{PluginError, bool_field, code, id_field, string_field};

/// One room's configuration: `[[janus.rooms]]` in the gateway's TOML, or a `create` request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomConfig {
    pub room: u64,
    pub description: String,
    pub is_private: bool,
    /// Needed to edit, destroy, kick and change the allowed list.
    pub secret: Option<String>,
    /// Needed to join.
    pub pin: Option<String>,
    pub require_pvtid: bool,
    /// Most concurrent publishers.
    pub publishers: u32,
    pub bitrate: u64,
    /// The room's `bitrate` also bounds publishers' own `configure {bitrate}`.
    pub bitrate_cap: bool,
    pub fir_freq: u32,
    pub audiocodec: String,
    pub videocodec: String,
    /// The only H.264 `profile-level-id` publishers may send (e.g. `42e01f`).
    pub h264_profile: Option<String>,
    /// The only VP9 `profile-id` publishers may send (e.g. `2`).
    pub vp9_profile: Option<String>,
    pub record: bool,
    pub rec_dir: Option<String>,
    /// Recording is switched only with the room's secret (`enable_recording` always asks
    /// for it here; kept and listed as Janus does).
    pub lock_record: bool,
    pub notify_joining: bool,
    /// Send `talking` / `stopped-talking` events (publishers' audio-level extension).
    pub audiolevel_event: bool,
    /// The average level (dBov, 0 loud … 127 silent) at or below which a publisher talks.
    pub audio_level_average: u32,
    /// Audio packets averaged per decision on who talks (100 ≈ 2 s of Opus).
    pub audio_active_packets: u32,
    /// Negotiate the audio-level extension with publishers (no `talking` without it).
    pub audiolevel_ext: bool,
    /// Negotiate transport-wide congestion control with publishers.
    pub transport_wide_cc_ext: bool,
    /// Subscribers' `min_delay`/`max_delay` reach their players (playout-delay extension).
    pub playoutdelay_ext: bool,
    /// Publishers must say their media is end-to-end encrypted (janus.js `e2ee` in the jsep),
    /// and subscriptions cannot mix such feeds with others.
    pub require_e2ee: bool,
    /// jcfg switches this gateway does not implement: `false` is accepted, `true` refused
    /// with the key named (video orientation is not negotiated, VP9 SVC layers not
    /// selected, no dummy publisher).
    #[serde(deserialize_with = "off_only", skip_serializing)]
    pub videoorient_ext: bool,
    #[serde(deserialize_with = "off_only", skip_serializing)]
    pub video_svc: bool,
    #[serde(deserialize_with = "off_only", skip_serializing)]
    pub dummy_publisher: bool,
    /// Publishers' Opus encoders asked for in-band FEC (`useinbandfec=1` in the answer).
    pub opus_fec: bool,
    /// … and for DTX (`usedtx=1`).
    pub opus_dtx: bool,
    /// Tokens allowed to join; `None`: anyone.
    pub allowed: Option<Vec<String>>,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            room: 0,
            description: String::new(),
            is_private: false,
            secret: None,
            pin: None,
            require_pvtid: false,
            publishers: 3,
            bitrate: 0,
            bitrate_cap: false,
            fir_freq: 0,
            audiocodec: "opus".into(),
            videocodec: "vp8".into(),
            h264_profile: None,
            vp9_profile: None,
            record: false,
            rec_dir: None,
            lock_record: false,
            notify_joining: false,
            audiolevel_event: false,
            audio_level_average: 25,
            audio_active_packets: 100,
            audiolevel_ext: true,
            transport_wide_cc_ext: true,
            videoorient_ext: false,
            playoutdelay_ext: true,
            video_svc: false,
            require_e2ee: false,
            dummy_publisher: false,
            opus_fec: true,
            opus_dtx: false,
            allowed: None,
        }
    }
}

impl RoomConfig {
    /// A `create` request's room; unknown keys are ignored, as Janus does.
    pub(super) fn from_create(body: &Value, room: u64) -> Result<Self, PluginError> {
        let mut config = RoomConfig {
            room,
            description: format!("Room {room}"),
            ..RoomConfig::default()
        };
        if let Some(d) = string_field(body, "description")? {
            config.description = d;
        }
        config.secret = string_field(body, "secret")?;
        config.pin = string_field(body, "pin")?;
        let flag = |name: &str, value: &mut bool| -> Result<(), PluginError> {
            if let Some(on) = bool_field(body, name)? {
                *value = on;
            }
            Ok(())
        };
        flag("is_private", &mut config.is_private)?;
        flag("require_pvtid", &mut config.require_pvtid)?;
        flag("record", &mut config.record)?;
        flag("lock_record", &mut config.lock_record)?;
        flag("notify_joining", &mut config.notify_joining)?;
        flag("audiolevel_event", &mut config.audiolevel_event)?;
        flag("opus_fec", &mut config.opus_fec)?;
        flag("opus_dtx", &mut config.opus_dtx)?;
        flag("bitrate_cap", &mut config.bitrate_cap)?;
        flag("audiolevel_ext", &mut config.audiolevel_ext)?;
        flag("transport_wide_cc_ext", &mut config.transport_wide_cc_ext)?;
        flag("require_e2ee", &mut config.require_e2ee)?;
        flag("playoutdelay_ext", &mut config.playoutdelay_ext)?;
        for key in UNSUPPORTED_SWITCHES {
            if bool_field(body, key)? == Some(true) {
                return Err(PluginError::new(
                    code::INVALID_ELEMENT,
                    format!("'{key}' is not supported by this gateway (only false)"),
                ));
            }
        }
        if let Some(n) = id_field(body, "audio_active_packets")? {
            config.audio_active_packets = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        }
        if let Some(n) = id_field(body, "audio_level_average")? {
            config.audio_level_average = u32::try_from(n.min(127)).unwrap_or(127);
        }
        if let Some(n) = id_field(body, "publishers")? {
            config.publishers = u32::try_from(n).unwrap_or(u32::MAX).max(1);
        }
        if let Some(n) = id_field(body, "bitrate")? {
            config.bitrate = n;
        }
        if let Some(n) = id_field(body, "fir_freq")? {
            config.fir_freq = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(c) = string_field(body, "audiocodec")? {
            config.audiocodec = c;
        }
        if let Some(c) = string_field(body, "videocodec")? {
            config.videocodec = c;
        }
        config.h264_profile = string_field(body, "h264_profile")?;
        config.vp9_profile = string_field(body, "vp9_profile")?;
        config.rec_dir = string_field(body, "rec_dir")?;
        super::recording::check_rec_dir(config.rec_dir.as_deref())?;
        if let Some(list) = body.get("allowed") {
            config.allowed = Some(string_list(list, "allowed")?);
        }
        Ok(config)
    }

    /// Its entry in `list` (the keys Janus 1.1.2 sends; the extension flags say what the
    /// gateway negotiates: the audio level and transport-wide CC, not video orientation or
    /// playout delay; Opus FEC and DTX are asked in the publishers' Opus fmtp).
    pub(super) fn list_entry(&self, participants: usize) -> Value {
        let mut entry = json!({
            "room": self.room,
            "description": self.description,
            "pin_required": self.pin.is_some(),
            "is_private": self.is_private,
            "max_publishers": self.publishers,
            "bitrate": self.bitrate,
            "fir_freq": self.fir_freq,
            "require_pvtid": self.require_pvtid,
            "require_e2ee": self.require_e2ee,
            "dummy_publisher": false,
            "bitrate_cap": self.bitrate_cap,
            "notify_joining": self.notify_joining,
            "audiocodec": self.audiocodec,
            "videocodec": self.videocodec,
            "opus_fec": self.opus_fec,
            "record": self.record,
            "lock_record": self.lock_record,
            "num_participants": participants,
            "audiolevel_ext": self.audiolevel_ext,
            "audio_active_packets": self.audio_active_packets,
            "audio_level_average": self.audio_level_average,
            "audiolevel_event": self.audiolevel_event,
            "videoorient_ext": false,
            "playoutdelay_ext": self.playoutdelay_ext,
            "transport_wide_cc_ext": self.transport_wide_cc_ext,
        });
        if self.opus_dtx {
            entry["opus_dtx"] = json!(true);
        }
        if let Some(profile) = &self.h264_profile {
            entry["h264_profile"] = json!(profile);
        }
        if let Some(profile) = &self.vp9_profile {
            entry["vp9_profile"] = json!(profile);
        }
        entry
    }

    /// Checks the room's secret for a management request.
    pub(super) fn check_secret(&self, body: &Value) -> Result<(), PluginError> {
        match &self.secret {
            Some(secret)
                if !body
                    .get("secret")
                    .and_then(Value::as_str)
                    .is_some_and(|given| crate::policy::same_secret(given, secret)) =>
            {
                Err(PluginError::new(
                    code::UNAUTHORIZED,
                    "Unauthorized (wrong secret)",
                ))
            }
            _ => Ok(()),
        }
    }
}

impl RoomConfig {
    /// What publishers' offers are cut to besides the codec names: the extensions turned off
    /// (`audiolevel_ext`, `transport_wide_cc_ext`) and the H.264/VP9 profiles.
    pub(super) fn offer_rules(&self) -> OfferRules {
        use super::super::streams::{AUDIO_LEVEL_URI, TRANSPORT_CC_URI};
        OfferRules {
            extensions_off: [
                (!self.audiolevel_ext).then_some(AUDIO_LEVEL_URI),
                (!self.transport_wide_cc_ext).then_some(TRANSPORT_CC_URI),
            ]
            .into_iter()
            .flatten()
            .collect(),
            h264_profile: self.h264_profile.clone(),
            vp9_profile: self.vp9_profile.clone(),
        }
    }
}

/// The jcfg switches only `false` is accepted for (see [`RoomConfig::videoorient_ext`]).
const UNSUPPORTED_SWITCHES: [&str; 3] = ["videoorient_ext", "video_svc", "dummy_publisher"];

/// Reads a switch that may only be `false` (see [`RoomConfig::videoorient_ext`]).
fn off_only<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    if bool::deserialize(deserializer)? {
        return Err(serde::de::Error::custom(
            "this gateway does not implement it: only false is accepted",
        ));
    }
    Ok(false)
}

pub(super) fn string_list(value: &Value, name: &str) -> Result<Vec<String>, PluginError> {
    value
        .as_array()
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| PluginError::invalid(name, "an array of strings"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jcfg_switches_the_gateway_lacks_are_accepted_off_and_refused_on_by_name() {
        let off: RoomConfig = toml::from_str(
            "room = 1\nvideoorient_ext = false\nvideo_svc = false\naudio_active_packets = 50\n\
             h264_profile = \"42e01f\"",
        )
        .unwrap();
        assert_eq!(off.audio_active_packets, 50);
        assert_eq!(off.offer_rules().h264_profile.as_deref(), Some("42e01f"));
        assert!(off.audiolevel_ext && off.transport_wide_cc_ext);
        let on = toml::from_str::<RoomConfig>("room = 1\nvideoorient_ext = true")
            .unwrap_err()
            .to_string();
        assert!(
            on.contains("videoorient_ext") && on.contains("only false"),
            "{on}"
        );
        // Saved rooms do not carry them.
        let saved = toml::to_string(&off).unwrap();
        assert!(!saved.contains("video_svc") && saved.contains("audio_active_packets = 50"));
    }
}
