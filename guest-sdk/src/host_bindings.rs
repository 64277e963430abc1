//! Generated bindings of `wit/policy.wit`, shared by every world.
//!
//! The `host-only` world (imports only) is generated once here; every exporting world
//! ([`crate::authorize`], [`crate::admit`], …) maps its `host` and `types` imports onto these
//! modules, so one [`Request`](crate::types::Request) type and one set of host functions serve
//! them all. Policy code normally uses [`crate::types`] and [`crate::host`] instead.

wit_bindgen::generate!({
    world: "host-only",
    path: "wit",
    generate_unused_types: true,
    additional_derives: [PartialEq],
});
