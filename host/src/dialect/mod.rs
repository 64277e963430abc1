//! Signaling dialects: each module translates one system's HTTP API into calls on the
//! [`crate::gate::Gate`] and the gate's errors into that system's statuses and bodies.

pub mod janus;
pub mod layer;
pub mod leb;
pub mod live777_info;
pub mod rooms;
pub mod runner365;
pub mod sdpfrag;
pub mod srs;
pub mod streams;
pub mod whip;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// Sets fixed headers on a response (the CORS and type headers a dialect always sends).
pub(crate) fn with_headers(
    mut response: Response,
    headers: &[(HeaderName, &'static str)],
) -> Response {
    let h = response.headers_mut();
    for (name, value) in headers {
        h.insert(name.clone(), HeaderValue::from_static(value));
    }
    response
}
