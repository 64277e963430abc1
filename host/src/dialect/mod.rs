//! Signaling dialects: each module translates one system's HTTP API into calls on the
//! [`crate::gate::Gate`] and the gate's errors into that system's statuses and bodies.

pub mod layer;
pub mod leb;
pub mod live777_info;
pub mod rooms;
pub mod runner365;
pub mod sdpfrag;
pub mod srs;
pub mod streams;
pub mod whip;
