//! Builds the test fixtures (`tests/fixtures/`: hostile and trivial policy modules, their own
//! cargo workspace) and the example policies (`examples/policies/`) for wasm32-wasip2; tests
//! find them under `env!("FIXTURES_DIR")`.

use std::path::PathBuf;

include!("../host/wasm_workspace.rs");

fn main() {
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=../host/wasm_workspace.rs");
    let wit = [here.join("../guest-sdk/wit")];
    let target = out.join("fixtures-target");
    build_wasm_workspace(&here.join("fixtures"), &target, &wit);
    // The example policies of examples/custom-policy.md, so the walkthrough stays true.
    let sdk = [here.join("../guest-sdk/src"), here.join("../guest-sdk/wit")];
    build_wasm_workspace(&here.join("../examples/policies"), &target, &sdk);
    println!(
        "cargo:rustc-env=FIXTURES_DIR={}",
        target.join("wasm32-wasip2/release").display()
    );
}
