//! Operational pieces: logging setup, metrics, the embedded browser pages.

pub mod logging;
pub mod metrics;
pub mod pages;
pub mod quality;
pub mod rate_limit;
