//! The media thread's command dispatch: each request from signaling runs here, between
//! two polls, and answers on its oneshot channel.

use std::time::Instant;

use super::engine::{Engine, contained};
use super::{Command, MediaError, VideoTuning};

impl Engine {
    /// Runs queued commands; false once shutdown was requested.
    pub(super) fn run_commands(&mut self) -> bool {
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Open(request, reply) => {
                    let result = contained(|| self.open(request)).unwrap_or_else(|panic| {
                        tracing::error!(%panic, "offer processing panicked");
                        Err(MediaError::UnusableOffer(
                            "the offer could not be processed".into(),
                        ))
                    });
                    let _ = reply.send(result);
                }
                Command::Trickle {
                    room,
                    session,
                    candidates,
                    reply,
                } => {
                    let result = contained(|| self.trickle(&room, &session, candidates))
                        .unwrap_or_else(|panic| {
                            if let Ok(key) = self.find(&room, &session) {
                                self.doom(key, format!("trickle panicked: {panic}"));
                            }
                            Ok(())
                        });
                    let _ = reply.send(result);
                }
                Command::IceRestart {
                    room,
                    session,
                    ufrag,
                    pwd,
                    candidates,
                    reply,
                } => {
                    let result =
                        contained(|| self.ice_restart(&room, &session, &ufrag, &pwd, candidates))
                            .unwrap_or_else(|panic| {
                                if let Ok(key) = self.find(&room, &session) {
                                    self.doom(key, format!("ICE restart panicked: {panic}"));
                                }
                                Err(MediaError::IceRestart(
                                    "the restart could not be processed".into(),
                                ))
                            });
                    let _ = reply.send(result);
                }
                Command::Close {
                    room,
                    session,
                    on_publisher_leave,
                    reply,
                } => {
                    let _ = reply.send(self.close_by_id(&room, &session, on_publisher_leave));
                }
                Command::SessionIce {
                    room,
                    session,
                    reply,
                } => {
                    let _ = reply.send(self.session_ice(&room, &session));
                }
                Command::ReofferPublisher {
                    room,
                    session,
                    offer_sdp,
                    reply,
                } => {
                    let _ = reply.send(self.reoffer_publisher(&room, &session, offer_sdp));
                }
                Command::Dial(request, reply) => {
                    let result = contained(|| self.dial(request))
                        .unwrap_or_else(|panic| Err(MediaError::Internal(panic)));
                    let _ = reply.send(result);
                }
                Command::CompleteDial {
                    room,
                    session,
                    answer_sdp,
                    session_url,
                    reply,
                } => {
                    let result =
                        contained(|| self.complete_dial(&room, &session, answer_sdp, session_url))
                            .unwrap_or_else(|panic| Err(MediaError::Internal(panic)));
                    let _ = reply.send(result);
                }
                Command::Layers {
                    room,
                    session,
                    reply,
                } => {
                    let _ = reply.send(self.layers(&room, &session));
                }
                Command::SelectLayer {
                    room,
                    session,
                    choice,
                    reply,
                } => {
                    let _ = reply.send(self.select_layer(&room, &session, choice));
                }
                Command::TakeLinkReports(reply) => {
                    let _ = reply.send(self.take_link_reports());
                }
                Command::TuneVideo {
                    room,
                    session,
                    tuning,
                    reply,
                } => {
                    let result = match tuning {
                        VideoTuning::MaxTemporalLayer(layer) => {
                            self.select_temporal_layer(&room, &session, layer)
                        }
                        VideoTuning::PlayoutDelay { source, delay } => {
                            self.set_playout_delay(&room, &session, source.as_deref(), delay)
                        }
                    };
                    let _ = reply.send(result);
                }
                Command::Pause {
                    room,
                    session,
                    scope,
                    paused,
                    reply,
                } => {
                    let _ = reply.send(self.pause(&room, &session, scope, paused));
                }
                Command::SwitchFeed {
                    room,
                    session,
                    from,
                    feed,
                    reply,
                } => {
                    let _ = reply.send(self.switch_feed(&room, &session, from.as_deref(), &feed));
                }
                Command::MutePublisher {
                    room,
                    session,
                    scope,
                    muted,
                    reply,
                } => {
                    let _ = reply.send(self.mute_publisher(&room, &session, scope, muted));
                }
                Command::AddRtpForwarder {
                    room,
                    feed,
                    kind,
                    destination,
                    ssrc,
                    payload_type,
                    reply,
                } => {
                    let _ = reply.send(self.add_rtp_forwarder(
                        &room,
                        &feed,
                        &kind,
                        destination,
                        ssrc,
                        payload_type,
                    ));
                }
                Command::RemoveRtpForwarder {
                    room,
                    feed,
                    id,
                    reply,
                } => {
                    let _ = reply.send(self.remove_rtp_forwarder(&room, &feed, id));
                }
                Command::RtpForwarders(room, reply) => {
                    let _ = reply.send(self.rtp_forwarders(&room));
                }
                Command::Renegotiate {
                    room,
                    session,
                    add,
                    remove,
                    restart_ice,
                    reply,
                } => {
                    let result =
                        contained(|| self.renegotiate(&room, &session, &add, &remove, restart_ice))
                            .unwrap_or_else(|panic| Err(MediaError::Internal(panic)));
                    let _ = reply.send(result);
                }
                Command::Room(name, reply) => {
                    let _ = reply.send(self.room_snapshot(&name));
                }
                Command::RequestKeyframes(room, session, reply) => {
                    let publisher = match session.map(|id| self.find(&room, &id)).transpose() {
                        Ok(publisher) => publisher,
                        Err(e) => {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                    };
                    let feeds: Vec<_> = self
                        .feeds
                        .values()
                        .filter(|f| f.key.room == room && f.publisher.is_some())
                        .filter(|f| publisher.is_none() || f.publisher == publisher)
                        .map(|f| f.key.clone())
                        .collect();
                    let now = Instant::now();
                    for feed in &feeds {
                        self.request_feed_keyframe(feed, now);
                    }
                    let _ = reply.send(Ok(feeds.len()));
                }
                Command::RecordRoom(room, recording) => self.record_room(room, recording),
                Command::RecordPublisher(room, id, recording, reply) => {
                    let _ = reply.send(self.record_publisher(&room, &id, recording));
                }
                Command::CapBitrate(room, caps, reply) => {
                    let _ = reply.send(self.cap_room_bitrate(&room, &caps, Instant::now()));
                }
                Command::CreateRoom(name, reply) => {
                    let _ = reply.send(self.create_room(name));
                }
                Command::DeleteRoom(name, reply) => {
                    let _ = reply.send(self.delete_room(&name));
                }
                Command::Totals(reply) => {
                    let mut totals = self.removed_feeds_traffic;
                    self.feeds.values().for_each(|r| totals.add(&r.totals()));
                    let _ = reply.send(totals);
                }
                Command::Rooms(reply) => {
                    let _ = reply.send(self.room_snapshots());
                }
                Command::Shutdown => return false,
            }
            self.drain_dirty();
        }
        true
    }
}
