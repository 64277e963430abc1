//! The Janus core protocol's messages (specs/janus.md §1): request parsing, the core error
//! codes of `apierror.h`, and the reply shapes. Plugin errors are not core errors: they travel
//! inside `plugindata` (see `videoroom`).

use serde_json::{Map, Value, json};

/// The plugin package name clients attach to.
pub const VIDEOROOM: &str = "janus.plugin.videoroom";

/// Core error codes (`src/apierror.h`).
pub mod code {
    pub const TRANSPORT_SPECIFIC: u16 = 450;
    pub const INVALID_JSON: u16 = 454;
    pub const INVALID_JSON_OBJECT: u16 = 455;
    pub const MISSING_MANDATORY_ELEMENT: u16 = 456;
    pub const INVALID_REQUEST_PATH: u16 = 457;
    pub const SESSION_NOT_FOUND: u16 = 458;
    pub const HANDLE_NOT_FOUND: u16 = 459;
    pub const PLUGIN_NOT_FOUND: u16 = 460;
    pub const JSEP_UNKNOWN_TYPE: u16 = 464;
    pub const JSEP_INVALID_SDP: u16 = 465;
    pub const INVALID_ELEMENT_TYPE: u16 = 467;
    pub const SESSION_CONFLICT: u16 = 468;
    pub const UNEXPECTED_ANSWER: u16 = 469;
}

/// A core error: `{"janus":"error","error":{"code","reason"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}")]
pub struct CoreError {
    pub code: u16,
    pub reason: String,
}

impl CoreError {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    pub fn missing(element: &str) -> Self {
        Self::new(
            code::MISSING_MANDATORY_ELEMENT,
            format!("Missing mandatory element ({element})"),
        )
    }

    pub fn wrong_type(element: &str, expected: &str) -> Self {
        Self::new(
            code::INVALID_ELEMENT_TYPE,
            format!("Invalid element type ({element} should be {expected})"),
        )
    }
}

/// The `jsep` of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsep {
    pub kind: JsepKind,
    pub sdp: String,
    /// janus.js's `e2ee` (insertable streams): the media is end-to-end encrypted.
    pub e2ee: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsepKind {
    Offer,
    Answer,
}

/// One parsed request: the verb, its transaction and the ids the payload carries (WebSocket
/// clients put them in the JSON; over HTTP the path gives them).
#[derive(Debug, Clone)]
pub struct CoreRequest {
    pub janus: String,
    pub transaction: String,
    pub session_id: Option<u64>,
    pub handle_id: Option<u64>,
    pub body: Value,
}

fn id_field(object: &Map<String, Value>, name: &str) -> Result<Option<u64>, CoreError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| CoreError::wrong_type(name, "a positive integer")),
    }
}

impl CoreRequest {
    /// Reads a request's envelope. The transaction is echoed even on errors when present.
    pub fn parse(text: &str) -> Result<CoreRequest, (Option<String>, CoreError)> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            (
                None,
                CoreError::new(code::INVALID_JSON, format!("JSON error: {e}")),
            )
        })?;
        let Value::Object(object) = value else {
            return Err((
                None,
                CoreError::new(code::INVALID_JSON_OBJECT, "Not a JSON object"),
            ));
        };
        let transaction = object
            .get("transaction")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let fail = |e: CoreError| (transaction.clone(), e);
        let janus = match object.get("janus") {
            None => return Err(fail(CoreError::missing("janus"))),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(fail(CoreError::wrong_type("janus", "a string"))),
        };
        let Some(transaction_text) = transaction.clone() else {
            return Err(fail(CoreError::missing("transaction")));
        };
        Ok(CoreRequest {
            janus,
            transaction: transaction_text,
            session_id: id_field(&object, "session_id").map_err(fail)?,
            handle_id: id_field(&object, "handle_id").map_err(fail)?,
            body: Value::Object(object),
        })
    }

    /// A string field of the request.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    /// The `jsep` of a `message`, if any.
    pub fn jsep(&self) -> Result<Option<Jsep>, CoreError> {
        let Some(jsep) = self.body.get("jsep").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let kind = match jsep.get("type").and_then(Value::as_str) {
            None => return Err(CoreError::missing("JSEP type")),
            Some("offer") => JsepKind::Offer,
            Some("answer") => JsepKind::Answer,
            Some(other) => {
                return Err(CoreError::new(
                    code::JSEP_UNKNOWN_TYPE,
                    format!("JSEP error: unknown message type '{other}'"),
                ));
            }
        };
        let sdp = jsep
            .get("sdp")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                CoreError::new(
                    code::MISSING_MANDATORY_ELEMENT,
                    "JSEP error: missing mandatory element (sdp)",
                )
            })?
            .to_owned();
        let e2ee = jsep.get("e2ee") == Some(&Value::Bool(true));
        Ok(Some(Jsep { kind, sdp, e2ee }))
    }
}

/// `{"janus":"success",…}` (with `data` when given).
pub fn success(session: Option<u64>, transaction: &str, data: Option<Value>) -> Value {
    let mut reply = json!({"janus": "success", "transaction": transaction});
    if let Some(session) = session {
        reply["session_id"] = json!(session);
    }
    if let Some(data) = data {
        reply["data"] = data;
    }
    reply
}

/// `{"janus":"ack",…}`.
pub fn ack(session: u64, transaction: &str) -> Value {
    json!({"janus": "ack", "session_id": session, "transaction": transaction})
}

/// `{"janus":"error",…}`.
pub fn error(session: Option<u64>, transaction: Option<&str>, e: &CoreError) -> Value {
    let mut reply = json!({"janus": "error", "error": {"code": e.code, "reason": e.reason}});
    if let Some(session) = session {
        reply["session_id"] = json!(session);
    }
    if let Some(transaction) = transaction {
        reply["transaction"] = json!(transaction);
    }
    reply
}

/// A plugin reply or event: `success` (sync) or `event` (async) carrying `plugindata`.
pub fn plugin_message(
    janus: &str,
    session: u64,
    handle: u64,
    transaction: Option<&str>,
    data: Value,
    jsep: Option<Value>,
) -> Value {
    let mut reply = json!({
        "janus": janus,
        "session_id": session,
        "sender": handle,
        "plugindata": {"plugin": VIDEOROOM, "data": data},
    });
    if let Some(transaction) = transaction {
        reply["transaction"] = json!(transaction);
    }
    if let Some(jsep) = jsep {
        reply["jsep"] = jsep;
    }
    reply
}

/// A `jsep` object of ours.
pub fn jsep(kind: JsepKind, sdp: &str) -> Value {
    let kind = match kind {
        JsepKind::Offer => "offer",
        JsepKind::Answer => "answer",
    };
    json!({"type": kind, "sdp": sdp})
}

/// The `server_info` reply of `info` (shape of Janus 1.1.2).
pub fn server_info(transaction: Option<&str>, session_timeout_secs: u64) -> Value {
    let mut info = json!({
        "janus": "server_info",
        "name": "Janus WebRTC Server",
        "version": 1102,
        "version_string": "1.1.2",
        "author": "Gatehouse (Janus-compatible API)",
        "data_channels": false,
        "ipv6": false,
        "ice-lite": true,
        "ice-tcp": false,
        "full-trickle": false,
        "session-timeout": session_timeout_secs,
        "reclaim-session-timeout": 0,
        "api_secret": false,
        "auth_token": false,
        "event_handlers": false,
        "opaqueid_in_api": false,
        "transports": {
            "janus.transport.http": {"name": "JANUS REST (HTTP/HTTPS) transport plugin", "version": 1102, "version_string": "1.1.2"},
            "janus.transport.websockets": {"name": "JANUS WebSockets transport plugin", "version": 1102, "version_string": "1.1.2"},
        },
        "plugins": {
            VIDEOROOM: {"name": "JANUS VideoRoom plugin", "version": 1102, "version_string": "1.1.2", "author": "Gatehouse"},
        },
    });
    if let Some(transaction) = transaction {
        info["transaction"] = json!(transaction);
    }
    info
}

/// A random id below 2^53, safe as a JavaScript number (as `janus_random_uint64`).
pub fn random_id() -> u64 {
    loop {
        let id = rand::random::<u64>() & 0x1F_FFFF_FFFF_FFFF;
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_without_transaction_is_456_and_bad_json_454() {
        let (_, e) = CoreRequest::parse(r#"{"janus":"create"}"#).unwrap_err();
        assert_eq!(e.code, code::MISSING_MANDATORY_ELEMENT);
        assert_eq!(e.reason, "Missing mandatory element (transaction)");
        let (_, e) = CoreRequest::parse("{nope").unwrap_err();
        assert_eq!(e.code, code::INVALID_JSON);
        let (_, e) = CoreRequest::parse("[1]").unwrap_err();
        assert_eq!(e.code, code::INVALID_JSON_OBJECT);
        let (t, e) = CoreRequest::parse(r#"{"janus":5,"transaction":"t"}"#).unwrap_err();
        assert_eq!(
            (t.as_deref(), e.code),
            (Some("t"), code::INVALID_ELEMENT_TYPE)
        );
    }

    #[test]
    fn ids_and_jsep_are_read_from_the_payload() {
        let r = CoreRequest::parse(
            r#"{"janus":"message","transaction":"t","session_id":5,"handle_id":7,
                "body":{},"jsep":{"type":"offer","sdp":"v=0"}}"#,
        )
        .unwrap();
        assert_eq!((r.session_id, r.handle_id), (Some(5), Some(7)));
        let jsep = r.jsep().unwrap().unwrap();
        assert_eq!((jsep.kind, jsep.sdp.as_str()), (JsepKind::Offer, "v=0"));
        let bad = CoreRequest::parse(
            r#"{"janus":"message","transaction":"t","jsep":{"type":"pranswer","sdp":"x"}}"#,
        )
        .unwrap();
        assert_eq!(bad.jsep().unwrap_err().code, code::JSEP_UNKNOWN_TYPE);
        let no_sdp =
            CoreRequest::parse(r#"{"janus":"message","transaction":"t","jsep":{"type":"offer"}}"#)
                .unwrap();
        assert_eq!(
            no_sdp.jsep().unwrap_err().code,
            code::MISSING_MANDATORY_ELEMENT
        );
    }

    #[test]
    fn random_ids_are_javascript_safe() {
        for _ in 0..1000 {
            let id = random_id();
            assert!(id > 0 && id < (1 << 53));
        }
    }
}
