//! `rtp_forward`, `stop_rtp_forward` and `listforwarders`: plain RTP copies of a publisher's
//! streams to a UDP address. Starting and stopping one needs the room's secret and the
//! policies' admin right (the shipped token-auth: `admin_token` or an admin JWT, passed as the
//! request's `token`), since it makes the gateway send to any address.

use std::net::{IpAddr, SocketAddr};

use serde_json::{Value, json};

use super::bridge::foreign_id;
use super::{Caller, PluginError, VideoRoom, code, id_field, required_id, string_field};
use crate::media::RtpForwarderInfo;

/// One stream to forward, as the request names it.
struct Wanted {
    kind: &'static str,
    port: u16,
    ssrc: Option<u32>,
    payload_type: Option<u8>,
}

fn port(body: &Value, name: &str) -> Result<Option<u16>, PluginError> {
    id_field(body, name)?
        .map(|p| u16::try_from(p).ok().filter(|p| *p > 0))
        .map(|p| p.ok_or_else(|| PluginError::invalid(name, "a port number")))
        .transpose()
}

fn small<T: TryFrom<u64>>(body: &Value, name: &str) -> Result<Option<T>, PluginError> {
    id_field(body, name)?
        .map(|v| T::try_from(v).map_err(|_| PluginError::invalid(name, "in range")))
        .transpose()
}

fn entry(info: &RtpForwarderInfo) -> Value {
    let mut entry = json!({"stream_id": info.id, "type": info.kind,
        "host": info.destination.ip().to_string(), "port": info.destination.port(),
        "ssrc": info.ssrc});
    if let Some(pt) = info.payload_type {
        entry["pt"] = json!(pt);
    }
    entry
}

impl VideoRoom {
    /// `[janus] lock_rtp_forward`: forwarders need the admin key (429 without, 433 wrong).
    fn check_rtp_forward_lock(&self, body: &Value) -> Result<(), PluginError> {
        match self.lock_rtp_forward {
            true => self.check_admin_key(body),
            false => Ok(()),
        }
    }

    pub(super) async fn rtp_forward(
        &self,
        caller: &Caller,
        body: &Value,
    ) -> Result<Value, PluginError> {
        self.check_rtp_forward_lock(body)?;
        let room = required_id(body, "room")?;
        let publisher = required_id(body, "publisher_id")?;
        self.with_room(room, |r| r.config.check_secret(body))?;
        let host = string_field(body, "host")?.ok_or_else(|| PluginError::missing("host"))?;
        let ip: IpAddr = host
            .parse()
            .map_err(|_| PluginError::invalid("host", "an IP address"))?;
        let (feed, _, streams) = self.feed(room, publisher).await?;
        let mut wanted = Vec::new();
        for stream in body["streams"].as_array().into_iter().flatten() {
            let mid = string_field(stream, "mid")?.ok_or_else(|| PluginError::missing("mid"))?;
            let kind = match super::participants::scope_of_mid(&streams, &mid)? {
                crate::media::PauseScope::Audio => "audio",
                _ => "video",
            };
            wanted.push(Wanted {
                kind,
                port: port(stream, "port")?.ok_or_else(|| PluginError::missing("port"))?,
                ssrc: small(stream, "ssrc")?,
                payload_type: small(stream, "pt")?,
            });
        }
        // The 0.x form: audio_port / video_port with their pt and ssrc.
        for kind in ["audio", "video"] {
            if let Some(port) = port(body, &format!("{kind}_port"))? {
                wanted.push(Wanted {
                    kind,
                    port,
                    ssrc: small(body, &format!("{kind}_ssrc"))?,
                    payload_type: small(body, &format!("{kind}_pt"))?,
                });
            }
        }
        if wanted.is_empty() {
            return Err(PluginError::missing("streams"));
        }
        let room_name = room.to_string();
        let mut forwarders = Vec::new();
        for w in wanted {
            let destination = SocketAddr::new(ip, w.port);
            let info = self
                .gate
                .add_rtp_forwarder(
                    &caller.facts,
                    &room_name,
                    &feed,
                    w.kind,
                    destination,
                    w.ssrc,
                    w.payload_type,
                )
                .await
                .map_err(PluginError::from_gate)?;
            forwarders.push(entry(&info));
        }
        Ok(
            json!({"videoroom": "rtp_forward", "room": room, "publisher_id": publisher,
            "forwarders": forwarders}),
        )
    }

    pub(super) async fn stop_rtp_forward(
        &self,
        caller: &Caller,
        body: &Value,
    ) -> Result<Value, PluginError> {
        self.check_rtp_forward_lock(body)?;
        let room = required_id(body, "room")?;
        let publisher = required_id(body, "publisher_id")?;
        let stream: u32 =
            small(body, "stream_id")?.ok_or_else(|| PluginError::missing("stream_id"))?;
        self.with_room(room, |r| r.config.check_secret(body))?;
        let (feed, ..) = self.feed(room, publisher).await?;
        let stopped = self
            .gate
            .remove_rtp_forwarder(&caller.facts, &room.to_string(), &feed, stream)
            .await
            .map_err(PluginError::from_gate)?;
        if !stopped {
            return Err(PluginError::new(
                code::NO_SUCH_FEED,
                format!("No such stream ({stream})"),
            ));
        }
        Ok(
            json!({"videoroom": "stop_rtp_forward", "room": room, "publisher_id": publisher,
            "stream_id": stream}),
        )
    }

    pub(super) async fn list_forwarders(&self, body: &Value) -> Result<Value, PluginError> {
        let room = required_id(body, "room")?;
        self.with_room(room, |r| r.config.check_secret(body))?;
        let all = self
            .gate
            .rtp_forwarders(&room.to_string())
            .await
            .map_err(PluginError::from_gate)?;
        let mut publishers: Vec<(String, Vec<Value>)> = Vec::new();
        for info in &all {
            match publishers.iter_mut().find(|(feed, _)| *feed == info.feed) {
                Some((_, list)) => list.push(entry(info)),
                None => publishers.push((info.feed.clone(), vec![entry(info)])),
            }
        }
        let publishers: Vec<Value> = publishers
            .into_iter()
            .map(|(feed, forwarders)| {
                let id = feed.parse::<u64>().unwrap_or_else(|_| foreign_id(&feed));
                json!({"publisher_id": id, "forwarders": forwarders})
            })
            .collect();
        Ok(json!({"videoroom": "forwarders", "room": room, "publishers": publishers}))
    }
}
