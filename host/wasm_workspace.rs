// Builds a cargo workspace of guest crates for wasm32-wasip2 from a build script and returns
// `(package name, component path)` per member. Included (`include!`) by host/build.rs (the
// shipped policies) and tests/build.rs (the test fixtures).

/// The `[package] name` of a manifest.
fn package_name(manifest: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(rest) = line.strip_prefix("name") {
            return Some(rest.trim_start_matches([' ', '=']).trim().trim_matches('"').to_owned());
        }
    }
    None
}

/// Builds every crate directory below `workspace` (release, wasm32-wasip2) into
/// `target_dir`, registering `rerun-if-changed` for their sources and `extra_watch`.
fn build_wasm_workspace(
    workspace: &std::path::Path,
    target_dir: &std::path::Path,
    extra_watch: &[std::path::PathBuf],
) -> Vec<(String, std::path::PathBuf)> {
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.toml").display());
    for path in extra_watch {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let mut crates: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(workspace)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter_map(|dir| Some((package_name(&dir.join("Cargo.toml"))?, dir)))
                .collect()
        })
        .unwrap_or_default();
    crates.sort();
    if crates.is_empty() {
        return Vec::new();
    }
    for (_, dir) in &crates {
        println!("cargo:rerun-if-changed={}", dir.join("src").display());
        println!("cargo:rerun-if-changed={}", dir.join("Cargo.toml").display());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .expect("running cargo for a wasm32-wasip2 workspace");
    assert!(
        status.success(),
        "building {} for wasm32-wasip2 failed. Is the target installed? \
         `rustup target add wasm32-wasip2` (`make run` and `make test` do it).",
        workspace.display()
    );
    crates
        .into_iter()
        .map(|(name, _)| {
            let file = target_dir
                .join("wasm32-wasip2/release")
                .join(format!("{}.wasm", name.replace('-', "_")));
            assert!(file.exists(), "{name} built no {}", file.display());
            (name, file)
        })
        .collect()
}
