//! Gatehouse: a WebAssembly-extensible WebRTC edge gateway.
//!
//! Layers (see DESIGN.md §2): [`dialect`] modules translate HTTP signaling into calls on the
//! [`gate`], the one door that decides and then acts on the [`media`] core. [`ops`] holds the
//! operational endpoints; [`server`] assembles everything into a running [`Gateway`].

pub mod cascade;
pub mod config;
pub mod dialect;
pub mod gate;
pub mod media;
pub mod ops;
pub mod policy;
pub mod server;

pub use config::Config;
pub use server::Gateway;
