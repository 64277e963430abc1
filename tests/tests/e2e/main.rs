//! End-to-end tests, one binary: each of these links the whole gateway (wasmtime, rtc), so one
//! binary instead of one per file saves minutes of linking and gigabytes of disk.
mod browser_pages;
mod cascade;
mod client_mistakes;
mod cross_dialect;
mod janus_api;
mod janus_cross_dialect;
mod janus_real_clients;
mod leb_api;
mod leb_contract;
mod live777_streams;
mod media_aiortc;
mod media_feedback;
mod media_lifecycle;
mod media_loss;
mod metrics;
mod operator_contract;
mod overload;
mod policy_containment;
mod policy_leb_hooks;
mod policy_reload;
mod policy_shipped;
mod recording;
mod rooms_api;
mod runner365_api;
mod whip_contract;
