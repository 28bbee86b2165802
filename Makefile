# The two commands a newcomer needs (see README.md):
#   make run    the gateway on the simulated board, API on 127.0.0.1:8080
#   make test   every test in the workspace, plus the vendored sled's stall tests
# Both install missing Debian packages first when run as root, and print the
# exact apt line otherwise.

CARGO ?= cargo
ARGS ?=

.PHONY: run test deps-run deps-test deps-bench bench lint fuzz-build

run: deps-run
	$(CARGO) run --release --locked -p flowgate -- run $(ARGS)

# The vendored sled is not a workspace member (it is applied with [patch.crates-io]): its
# stall tests and the max-key sentinel test run from its own manifest, only those
# (vendor/sled/PATCHES.md, "Tests").
SLED_TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
test: deps-test
	$(CARGO) test --workspace --locked
	$(CARGO) test --locked --manifest-path vendor/sled/Cargo.toml --target-dir $(SLED_TARGET_DIR) \
		--lib -- threadpool::tests truncation_cycle high_key_sentinel

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
