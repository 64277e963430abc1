//! Keyframe requests: getting viewers' PLI/FIR to the application, and pacing them upstream;
//! counting viewers' NACKs.
//!
//! rtc's interceptor chain ends in a `NoopInterceptor` that drops inbound RTCP unless an
//! interceptor marked it `DeliverToApplication` (specs/webrtc-rs.md §4); [`KeyframeRequestsToApp`]
//! marks PLI and FIR so the engine can relay them to the publisher, and NACKs, which the engine
//! answers from its own send history (forwarded RTP bypasses rtc's NACK responder).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;

/// Chain position: after every built-in interceptor (the last is JitterBuffer at 13000).
pub const KEYFRAME_REQUESTS_SLOT: usize = 14_000;

/// Passes every packet through; inbound RTCP compounds that contain PLI, FIR or NACK are
/// reduced to those packets and marked for delivery to the application.
#[derive(Default)]
pub struct KeyframeRequestsToApp {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

/// Counts the sequence numbers subscribers ask to be retransmitted (their NACKs), into a
/// counter the engine reads for metrics; the NACKs themselves go on to the responder.
pub(crate) struct NacksCounted {
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    read_queue: std::collections::VecDeque<TaggedPacket>,
    write_queue: std::collections::VecDeque<TaggedPacket>,
}

impl NacksCounted {
    pub fn new(count: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        Self {
            count,
            read_queue: Default::default(),
            write_queue: Default::default(),
        }
    }
}

/// Chain position: after the built-ins (every inbound packet passes every slot).
pub(crate) const NACKS_COUNTED_SLOT: usize = 14_500;

impl Protocol<TaggedPacket, TaggedPacket, ()> for NacksCounted {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let requested: usize = packets
                .iter()
                .filter_map(|p| p.as_any().downcast_ref::<TransportLayerNack>())
                .flat_map(|nack| &nack.nacks)
                .map(|pair| pair.packet_list().len())
                .sum();
            if requested > 0 {
                self.count
                    .fetch_add(requested as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for NacksCounted {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// PLI or FIR.
pub(super) fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

fn is_for_application(packet: &dyn rtc::rtcp::Packet) -> bool {
    is_keyframe_request(packet) || packet.as_any().is::<TransportLayerNack>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestsToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| is_for_application(p.as_ref()))
        {
            let requests = packets
                .iter()
                .filter(|p| is_for_application(p.as_ref()))
                .cloned()
                .collect();
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for KeyframeRequestsToApp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// Lets at most one keyframe request through per interval, so many viewers asking at once cost
/// the publisher one keyframe, not one each; a request inside the interval is deferred to its
/// end rather than dropped, so no joiner waits for the publisher's periodic keyframe.
#[derive(Debug, Clone)]
pub(crate) struct KeyframeRequestPacer {
    interval: Duration,
    last_sent: Option<Instant>,
    deferred: bool,
}

/// What to do with one keyframe request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacerDecision {
    /// Send it now.
    Send,
    /// Send one at this instant (the first request inside the interval).
    DeferUntil(Instant),
    /// A deferred request is already pending; this one is covered by it.
    Coalesced,
}

impl KeyframeRequestPacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sent: None,
            deferred: false,
        }
    }

    /// The publisher sent a keyframe: a deferred request is no longer needed.
    pub fn keyframe_arrived(&mut self) {
        self.deferred = false;
    }

    /// Whether the deferred request is still wanted at `now` (recording the send if so).
    pub fn take_deferred(&mut self, now: Instant) -> bool {
        let due = self
            .last_sent
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if self.deferred && due {
            self.deferred = false;
            self.last_sent = Some(now);
            return true;
        }
        false
    }

    /// Decides a request at `now` (recording a send).
    pub fn allow(&mut self, now: Instant) -> PacerDecision {
        match self.last_sent {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                if std::mem::replace(&mut self.deferred, true) {
                    PacerDecision::Coalesced
                } else {
                    PacerDecision::DeferUntil(last + self.interval)
                }
            }
            _ => {
                self.last_sent = Some(now);
                self.deferred = false;
                PacerDecision::Send
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_requests_within_the_interval_are_deferred_once_then_coalesced() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut pacer = KeyframeRequestPacer::new(ms(500));
        assert_eq!(pacer.allow(start), PacerDecision::Send);
        assert_eq!(
            pacer.allow(start + ms(10)),
            PacerDecision::DeferUntil(start + ms(500))
        );
        assert_eq!(pacer.allow(start + ms(499)), PacerDecision::Coalesced);
        assert_eq!(pacer.allow(start + ms(500)), PacerDecision::Send);
        assert_eq!(
            pacer.allow(start + ms(600)),
            PacerDecision::DeferUntil(start + ms(1000))
        );
    }

    #[test]
    fn a_keyframe_arriving_cancels_the_deferred_request() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut pacer = KeyframeRequestPacer::new(ms(500));
        assert_eq!(pacer.allow(start), PacerDecision::Send);
        assert!(matches!(
            pacer.allow(start + ms(10)),
            PacerDecision::DeferUntil(_)
        ));
        pacer.keyframe_arrived();
        assert!(!pacer.take_deferred(start + ms(500)));
        assert!(matches!(pacer.allow(start + ms(520)), PacerDecision::Send));
    }

    #[test]
    fn a_deferred_request_is_sent_once_the_interval_has_passed() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut pacer = KeyframeRequestPacer::new(ms(500));
        pacer.allow(start);
        pacer.allow(start + ms(100));
        assert!(!pacer.take_deferred(start + ms(499)));
        assert!(pacer.take_deferred(start + ms(500)));
        assert!(!pacer.take_deferred(start + ms(501)), "sent twice");
    }

    #[test]
    fn first_keyframe_request_passes_immediately() {
        let mut pacer = KeyframeRequestPacer::new(Duration::from_secs(10));
        assert_eq!(pacer.allow(Instant::now()), PacerDecision::Send);
    }
}
