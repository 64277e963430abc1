//! The VideoRoom's error codes and errors, and the request fields every request reads.

use serde_json::{Value, json};

use crate::gate::GateError;
use crate::media::MediaError;

/// VideoRoom error codes (`janus_videoroom.c`).
pub mod code {
    pub const UNKNOWN_ERROR: u16 = 499;
    pub const NO_MESSAGE: u16 = 421;
    pub const INVALID_REQUEST: u16 = 423;
    pub const JOIN_FIRST: u16 = 424;
    pub const ALREADY_JOINED: u16 = 425;
    pub const NO_SUCH_ROOM: u16 = 426;
    pub const ROOM_EXISTS: u16 = 427;
    pub const NO_SUCH_FEED: u16 = 428;
    pub const MISSING_ELEMENT: u16 = 429;
    pub const INVALID_ELEMENT: u16 = 430;
    pub const INVALID_SDP_TYPE: u16 = 431;
    pub const PUBLISHERS_FULL: u16 = 432;
    pub const UNAUTHORIZED: u16 = 433;
    pub const ALREADY_PUBLISHED: u16 = 434;
    pub const NOT_PUBLISHED: u16 = 435;
    pub const ID_EXISTS: u16 = 436;
    pub const INVALID_SDP: u16 = 437;
    pub const INVALID_FEED: u16 = 438;
}

/// A VideoRoom error, shown as `{"videoroom":"event","error_code","error"}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}")]
pub struct PluginError {
    pub code: u16,
    pub reason: String,
}

impl PluginError {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    pub fn missing(element: &str) -> Self {
        Self::new(
            code::MISSING_ELEMENT,
            format!("Missing mandatory element ({element})"),
        )
    }

    pub fn invalid(element: &str, expected: &str) -> Self {
        Self::new(
            code::INVALID_ELEMENT,
            format!("Invalid element type ({element} should be {expected})"),
        )
    }

    pub fn no_such_room(room: u64) -> Self {
        Self::new(code::NO_SUCH_ROOM, format!("No such room ({room})"))
    }

    /// The plugin data of this error.
    pub fn data(&self) -> Value {
        json!({"videoroom": "event", "error_code": self.code, "error": self.reason})
    }

    /// A policy's refusal of a publish for the room's limit (409) is Janus's 432.
    pub fn publishers_full(self, max: u32) -> Self {
        match self.code {
            code::PUBLISHERS_FULL => Self::new(
                code::PUBLISHERS_FULL,
                format!("Maximum number of publishers ({max}) reached"),
            ),
            _ => self,
        }
    }

    /// The gateway's refusal of a media or policy step, in VideoRoom terms.
    pub fn from_gate(e: GateError) -> Self {
        match e {
            GateError::Denied(denial) if denial.status == 409 => {
                Self::new(code::PUBLISHERS_FULL, denial.reason)
            }
            GateError::Denied(denial) => Self::new(
                code::UNAUTHORIZED,
                format!("Unauthorized ({})", denial.reason),
            ),
            GateError::StreamNotFound(room) => {
                Self::new(code::NO_SUCH_ROOM, format!("No such room ({room})"))
            }
            GateError::Media(m) => match m {
                MediaError::MalformedOffer(_) | MediaError::UnusableOffer(_) => {
                    Self::new(code::INVALID_SDP, m.to_string())
                }
                MediaError::PublisherExists(_) => {
                    Self::new(code::ALREADY_PUBLISHED, "Already published")
                }
                MediaError::FeedNotFound { feed, .. } => {
                    Self::new(code::NO_SUCH_FEED, format!("No such feed ({feed})"))
                }
                MediaError::RoomNotFound(room) => {
                    Self::new(code::NO_SUCH_ROOM, format!("No such room ({room})"))
                }
                other => Self::new(code::UNKNOWN_ERROR, other.to_string()),
            },
            GateError::Remote(r) => Self::new(code::UNKNOWN_ERROR, r.to_string()),
        }
    }
}

/// A number field (room, feed and participant ids are integers without `string_ids`).
pub(crate) fn id_field(body: &Value, name: &str) -> Result<Option<u64>, PluginError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| PluginError::invalid(name, "a positive integer")),
    }
}

pub(crate) fn required_id(body: &Value, name: &str) -> Result<u64, PluginError> {
    id_field(body, name)?.ok_or_else(|| PluginError::missing(name))
}

pub(crate) fn string_field(body: &Value, name: &str) -> Result<Option<String>, PluginError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PluginError::invalid(name, "a string")),
    }
}

/// An optional boolean field: `None` when absent or null, 429-style invalid otherwise.
pub(crate) fn bool_field(body: &Value, name: &str) -> Result<Option<bool>, PluginError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(on)) => Ok(Some(*on)),
        Some(_) => Err(PluginError::invalid(name, "a boolean")),
    }
}
