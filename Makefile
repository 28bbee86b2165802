# The two commands a newcomer needs (see README.md):
#   make run    the gateway on the simulated board, API on 127.0.0.1:8080
#   make test   every test in the workspace
# Both install missing Debian packages first when run as root, and print the
# exact apt line otherwise.

CARGO ?= cargo
ARGS ?=

.PHONY: run test deps-run deps-test deps-bench bench lint fuzz-build

run: deps-run
	$(CARGO) run --release --locked -p flowgate -- run $(ARGS)

test: deps-test
	$(CARGO) test --workspace --locked

bench: deps-bench
	$(CARGO) bench --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# The fuzz crate is its own workspace; building it into the main target directory reuses
# whatever the workspace build already compiled with the same versions and features.
FUZZ_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
fuzz-build:
	$(CARGO) build --locked --manifest-path fuzz/Cargo.toml --target-dir $(FUZZ_TARGET_DIR)

deps-run:
	@scripts/deps.sh run
deps-test:
	@scripts/deps.sh test
deps-bench:
	@scripts/deps.sh bench
