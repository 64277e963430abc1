//! Host bindings of the WIT contract (`guest-sdk/wit/policy.wit`), one module per world. The
//! `host` and `types` interfaces are generated once (in `authorize`) and shared by the others,
//! so there is one set of record types and one `Host` implementation.

/// World `authorize`; also owns the shared `host` and `types` interfaces.
pub mod authorize {
    wasmtime::component::bindgen!({
        world: "authorize",
        path: "../guest-sdk/wit",
    });
}

/// World `admit`.
pub mod admit {
    wasmtime::component::bindgen!({
        world: "admit",
        path: "../guest-sdk/wit",
        with: {
            "gatehouse:policy/types": super::authorize::gatehouse::policy::types,
            "gatehouse:policy/host": super::authorize::gatehouse::policy::host,
        },
    });
}

/// World `svrsig`.
pub mod svrsig {
    wasmtime::component::bindgen!({
        world: "svrsig",
        path: "../guest-sdk/wit",
        with: {
            "gatehouse:policy/types": super::authorize::gatehouse::policy::types,
            "gatehouse:policy/host": super::authorize::gatehouse::policy::host,
        },
    });
}

/// World `quality`.
pub mod quality {
    wasmtime::component::bindgen!({
        world: "quality",
        path: "../guest-sdk/wit",
        with: {
            "gatehouse:policy/types": super::authorize::gatehouse::policy::types,
            "gatehouse:policy/host": super::authorize::gatehouse::policy::host,
        },
    });
}

pub use authorize::gatehouse::policy::host;
pub use authorize::gatehouse::policy::types;
