//! The tracks a subscriber leg sends: one per kind of each feed it receives, in a media
//! stream (`msid`) per room or per feed.

use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters};

use super::feed::CodecIntent;
use super::feed::FeedKey;
use super::sessions::{rtc_codec, rtc_kind};

/// The track a subscriber leg sends a feed's `intent` codec on, with SSRC `ssrc`, in the
/// media stream `stream` (see [`stream_id`]); its track id is unique in the session.
pub(super) fn send_track(stream: &str, intent: &CodecIntent, ssrc: u32) -> MediaStreamTrack {
    let kind = intent.kind.as_str();
    MediaStreamTrack::new(
        stream.to_owned(),
        format!("{kind}-{ssrc:08x}"),
        format!("gatehouse-{kind}"),
        rtc_kind(intent.kind),
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: rtc_codec(intent),
            ..Default::default()
        }],
    )
}

/// The `msid` stream a subscriber receives feed `feed` in: one per feed when `per_feed` (its
/// audio and video then play in sync as one stream; Janus `use_msid`), else one per room. Only
/// `msid` token characters, at most 64.
pub(super) fn stream_id(feed: &FeedKey, per_feed: bool) -> String {
    let name = match per_feed {
        true => format!("{}-{}", feed.room, feed.feed),
        false => feed.room.clone(),
    };
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' | '+' | '~' => c,
            _ => '-',
        })
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_msid_tokens_per_room_or_per_feed() {
        let feed = FeedKey::new("live/cam 1", "alice@home");
        assert_eq!(stream_id(&feed, false), "live-cam-1");
        assert_eq!(stream_id(&feed, true), "live-cam-1-alice-home");
        let long = FeedKey::new("r".repeat(100), "f");
        assert_eq!(stream_id(&long, true).len(), 64);
    }
}
