# raftty: `make run` to start, `make test` to prove it works.

CARGO ?= cargo

.PHONY: run test bench torture lint build etcdctl test-deps screenshot

# Seeds and minutes per seed of `make torture`.
TORTURE_SEEDS ?= 1 2 3 4 5 6 7 8 9 10
TORTURE_DURATION ?= 5m

## Build in release mode and start raftty.
run:
	$(CARGO) build --release
	./target/release/raftty

## Run every test (unit, integration with real member processes, etcdctl, short torture).
test: test-deps
	$(CARGO) test --all-targets

## Release-mode benchmark: raftty side by side with etcd when `etcd` is on PATH.
bench:
	$(CARGO) build --release
	./target/release/raftty bench --explain --rounds 5

## Long torture runs: many seeds, minutes each, every fault. Stops at the first failure,
## leaving its history and account in ./raftty-torture-<seed>/.
torture:
	$(CARGO) build --release
	@for seed in $(TORTURE_SEEDS); do \
		echo "== seed $$seed"; \
		./target/release/raftty torture --seed $$seed --duration $(TORTURE_DURATION) --clients 16 || exit 1; \
	done

## fmt and clippy, warnings are errors.
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

build:
	$(CARGO) build --release

## The README's screenshot, captured again from a real run (tmux, and Pillow to draw it).
screenshot:
	$(CARGO) build --release
	@python3 -c "import PIL" 2>/dev/null || pip install --quiet pillow
	python3 assets/screenshot.py

## The integration tests drive the real etcdctl and etcd (3.4, Debian packages etcd-client
## and etcd-server) and run the app in a real terminal (tmux). Installs whichever is
## missing, or says what to install.
test-deps:
	@missing=; \
	command -v etcdctl >/dev/null 2>&1 || missing="$$missing etcd-client"; \
	command -v etcd >/dev/null 2>&1 || missing="$$missing etcd-server"; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "installing the Debian packages the tests need:$$missing"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi; \
	if [ "$$SUDO" != none ] && command -v apt-get >/dev/null 2>&1 && \
	   $$SUDO apt-get update && $$SUDO apt-get install -y $$missing && \
	   command -v etcdctl >/dev/null 2>&1 && command -v etcd >/dev/null 2>&1 && command -v tmux >/dev/null 2>&1; then exit 0; fi; \
	echo "error: the tests need etcdctl and etcd 3.4, and tmux. Install them (Debian/Ubuntu: apt-get install$$missing) and run make test again." >&2; \
	exit 1

etcdctl: test-deps
