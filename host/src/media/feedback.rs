//! Keyframe requests: getting viewers' PLI/FIR to the application, and pacing them upstream.
//!
//! rtc's interceptor chain ends in a `NoopInterceptor` that drops inbound RTCP unless an
//! interceptor marked it `DeliverToApplication` (specs/webrtc-rs.md §4); [`KeyframeRequestsToApp`]
//! marks PLI and FIR so the engine can relay them to the publisher.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;

/// Chain position: after every built-in interceptor (the last is JitterBuffer at 13000).
pub const KEYFRAME_REQUESTS_SLOT: usize = 14_000;

/// Passes every packet through; inbound RTCP compounds that contain PLI or FIR are reduced to
/// those packets and marked for delivery to the application.
#[derive(Default)]
pub struct KeyframeRequestsToApp {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestsToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| is_keyframe_request(p.as_ref()))
        {
            let requests = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
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
/// the publisher one keyframe, not one each.
#[derive(Debug, Clone)]
pub(crate) struct KeyframeRequestPacer {
    interval: Duration,
    last_sent: Option<Instant>,
}

impl KeyframeRequestPacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sent: None,
        }
    }

    /// Whether a request at `now` should be sent upstream (and records it if so).
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now.saturating_duration_since(last) < self.interval => false,
            _ => {
                self.last_sent = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_requests_within_the_interval_are_coalesced() {
        let start = Instant::now();
        let mut pacer = KeyframeRequestPacer::new(Duration::from_millis(500));
        assert!(pacer.allow(start));
        assert!(!pacer.allow(start + Duration::from_millis(10)));
        assert!(!pacer.allow(start + Duration::from_millis(499)));
        assert!(pacer.allow(start + Duration::from_millis(500)));
        assert!(!pacer.allow(start + Duration::from_millis(600)));
    }

    #[test]
    fn first_keyframe_request_passes_immediately() {
        let mut pacer = KeyframeRequestPacer::new(Duration::from_secs(10));
        assert!(pacer.allow(Instant::now()));
    }
}
