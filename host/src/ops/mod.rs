//! Operational pieces: logging setup, health, the embedded browser pages.

pub mod logging;
pub mod pages;
