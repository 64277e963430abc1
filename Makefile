# The two set-up commands of the README. Both install what they need.
.PHONY: run test bench bench-reports wasm-target

# The shipped policies (and test fixtures) are WebAssembly components built by host/build.rs.
wasm-target:
	rustup target add wasm32-wasip2

# Run the gateway on the embedded default config (HTTP + media UDP on port 7777).
run: wasm-target
	cargo run --release -p gatehouse -- serve

# Run every test: installs the real test clients (Chromium, aiortc, playwright-core) first.
# --show-output prints the measured figures (first-frame times, frame counts) of passing tests.
test: wasm-target
	bash tests/setup.sh
	cargo test --workspace -j2 --no-fail-fast -- --show-output
	cargo test -j2 --manifest-path policies/Cargo.toml
	cargo test -j2 --manifest-path examples/policies/Cargo.toml

# The fan-out benchmark (not a set-up command): floor baseline, then the gateway pinned to CPU 0
# and the load generator to CPU 1, N = 10 … 800 until saturation; writes target/bench/report.md
# and report.json. Needs 2 CPUs and an otherwise idle machine; about 4 minutes.
bench: wasm-target
	cargo build --release -j2 -p gatehouse -p gatehouse-bench
	./target/release/gatehouse-bench run --keyframe-cache --out target/bench

# LEB quality-report burst (not a set-up command): the gateway pinned to CPU 0, 2000 LEB pulls,
# then reportquality at 10 000/s for 5 s while a probe keeps opening pulls; writes
# target/bench/reports.json (rate, accepted, latencies, gateway CPU, reports in the log).
bench-reports: wasm-target
	cargo build --release -j2 -p gatehouse -p gatehouse-bench
	./target/release/gatehouse-bench reports --out target/bench
