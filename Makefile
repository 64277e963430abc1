# The two set-up commands of the README. Both install what they need.
.PHONY: run test

# Run the gateway on the embedded default config (HTTP + media UDP on port 7777).
run:
	cargo run --release -p gatehouse -- serve

# Run every test: installs the real test clients (Chromium, aiortc, playwright-core) first.
# --show-output prints the measured figures (first-frame times, frame counts) of passing tests.
test:
	bash tests/setup.sh
	cargo test --workspace -j2 --no-fail-fast -- --show-output
