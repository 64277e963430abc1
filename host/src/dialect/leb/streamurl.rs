//! LEB play URLs: `webrtc://domain/app/stream[?txSecret=…&txTime=…]` (specs/dialects.md §4.2).

use crate::config::LebRoomFrom;
use crate::policy::StreamUrl;

/// Why a `streamurl` is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamUrlError {
    #[error("streamurl must start with webrtc://")]
    Scheme,
    #[error("streamurl has no domain")]
    NoDomain,
    #[error("streamurl has no stream name")]
    NoStream,
    #[error("stream name must be 1-128 characters of A-Z a-z 0-9 _ - . ~")]
    BadName,
}

/// Splits a play URL; the stream name is the last path segment, the app what precedes it.
pub fn parse(url: &str) -> Result<StreamUrl, StreamUrlError> {
    let rest = url
        .get(..9)
        .filter(|scheme| scheme.eq_ignore_ascii_case("webrtc://"))
        .map(|_| &url[9..])
        .ok_or(StreamUrlError::Scheme)?;
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (domain, path) = location.split_once('/').unwrap_or((location, ""));
    if domain.is_empty() {
        return Err(StreamUrlError::NoDomain);
    }
    let path = path.trim_start_matches('/');
    let (app, stream) = path.rsplit_once('/').unwrap_or(("", path));
    if stream.is_empty() {
        return Err(StreamUrlError::NoStream);
    }
    let mut tx_secret = None;
    let mut tx_time = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "txSecret" => tx_secret = Some(value.into_owned()),
            "txTime" => tx_time = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(StreamUrl {
        domain: domain.to_owned(),
        app: app.to_owned(),
        stream: stream.to_owned(),
        tx_secret,
        tx_time,
    })
}

/// The room a play URL addresses (DESIGN.md §1).
pub fn room_of(url: &StreamUrl, from: LebRoomFrom) -> Result<String, StreamUrlError> {
    let room = match from {
        LebRoomFrom::Stream => url.stream.clone(),
        LebRoomFrom::AppStream if url.app.is_empty() => url.stream.clone(),
        LebRoomFrom::AppStream => format!("{}_{}", url.app.replace('/', "_"), url.stream),
    };
    let ok = room.len() <= 128
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'~'));
    ok.then_some(room).ok_or(StreamUrlError::BadName)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn play_url_splits_into_domain_app_stream_and_anti_leech_query() {
        let url =
            parse("webrtc://play.example.com/live/cam1?txSecret=ab12&txTime=5DDE5CBC").unwrap();
        assert_eq!(url.domain, "play.example.com");
        assert_eq!(url.app, "live");
        assert_eq!(url.stream, "cam1");
        assert_eq!(url.tx_secret.as_deref(), Some("ab12"));
        assert_eq!(url.tx_time.as_deref(), Some("5DDE5CBC"));
        assert_eq!(room_of(&url, LebRoomFrom::Stream).unwrap(), "cam1");
        assert_eq!(room_of(&url, LebRoomFrom::AppStream).unwrap(), "live_cam1");
    }

    #[test]
    fn nested_app_path_keeps_the_last_segment_as_stream() {
        let url = parse("WEBRTC://d/a/b/s").unwrap();
        assert_eq!((url.app.as_str(), url.stream.as_str()), ("a/b", "s"));
        assert_eq!(room_of(&url, LebRoomFrom::AppStream).unwrap(), "a_b_s");
    }

    #[test]
    fn other_schemes_and_missing_parts_are_refused() {
        assert_eq!(parse("rtmp://d/live/s").err(), Some(StreamUrlError::Scheme));
        assert_eq!(
            parse("webrtc:///live/s").err(),
            Some(StreamUrlError::NoDomain)
        );
        assert_eq!(
            parse("webrtc://d/live/").err(),
            Some(StreamUrlError::NoStream)
        );
        let spaced = parse("webrtc://d/live/a%20b").unwrap();
        assert_eq!(
            room_of(&spaced, LebRoomFrom::Stream),
            Err(StreamUrlError::BadName)
        );
    }
}
