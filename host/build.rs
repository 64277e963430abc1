//! Builds the shipped policies (`policies/`, their own cargo workspace) for wasm32-wasip2 and
//! embeds them, so `gatehouse serve` has them with no further step (the way wasmtime's
//! test-programs artifacts crate builds its guests).

use std::fmt::Write as _;
use std::path::PathBuf;

include!("wasm_workspace.rs");

fn main() {
    let host = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = host.parent().expect("workspace root").to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=wasm_workspace.rs");
    let sdk = ["guest-sdk/src", "guest-sdk/wit", "guest-sdk/Cargo.toml"].map(|p| root.join(p));
    let built = build_wasm_workspace(&root.join("policies"), &out.join("policies-target"), &sdk);
    let mut embedded =
        String::from("/// Shipped policy modules: (module name, component bytes).\n");
    embedded.push_str("pub const EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (name, file) in built {
        writeln!(
            embedded,
            "    ({name:?}, include_bytes!({:?})),",
            file.display().to_string()
        )
        .expect("write to String");
    }
    embedded.push_str("];\n");
    std::fs::write(out.join("embedded_policies.rs"), embedded)
        .expect("writing embedded_policies.rs");
}
