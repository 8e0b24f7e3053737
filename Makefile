# ARPG build and test harness (GNU make, bash).
#
#   make run    install what is missing, build the static file server and the wasm runtime's CPU
#               build, then serve www/ and pkg/ on http://127.0.0.1:$PORT/ (PORT defaults to 8080)
#               while the WebGPU build finishes in the background
#   make test   everything CI checks: fmt, clippy (native + wasm32), cargo test, the wasm build,
#               a fuzz smoke run, and the browser tests when tests/e2e/package.json exists
#   make help   the other targets
#
# Builds are release-only and share one target directory outside the clone, so a fresh clone
# (CI runs in one) reuses what earlier builds compiled. Override with CARGO_TARGET_DIR=...

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
# Steps run in the order given, even under `make -j`: they share one cargo lock anyway.
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules --no-print-directory

CARGO_TARGET_DIR ?= $(HOME)/.cache/arpg/target
export CARGO_TARGET_DIR
# Tools the harness installs for itself (npm packages).
TOOLS_DIR ?= $(HOME)/.cache/arpg/tools
CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export PATH := $(CARGO_BIN):$(PATH)

CARGO ?= cargo
TOOLCHAIN := $(shell sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
WASM_TARGET := wasm32-unknown-unknown
# pkg/cpu is built with the release profile; pkg/gpu with `wasm-gpu` (Cargo.toml: built for size).
WASM_DIR := $(CARGO_TARGET_DIR)/$(WASM_TARGET)
ARPG := $(CARGO_TARGET_DIR)/release/arpg
ARPG_SERVE := $(CARGO_TARGET_DIR)/release/arpg-serve
# wasm-bindgen's library as a small tool of ours (crates/bindgen), built once into the shared target.
ARPG_BINDGEN := $(CARGO_TARGET_DIR)/release/arpg-bindgen
# Optional size/speed pass over pkg/*/arpg_bg.wasm with wasm-opt from the npm package `binaryen`:
# `make wasm WASM_OPT=1`.
WASM_OPT ?= 0
BINARYEN_VERSION ?= 132.0.0
WASM_OPT_BIN := $(TOOLS_DIR)/npm/node_modules/.bin/wasm-opt
# Features rustc enables by default for wasm32-unknown-unknown; wasm-opt must accept them all.
WASM_OPT_FLAGS ?= -O2 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
	--enable-mutable-globals --enable-reference-types --enable-multivalue
# Clippy as the compiler of this workspace's crates in a real build (cargo clippy's own mechanism:
# cargo runs the wrapper for workspace members only). `cargo clippy` checks every dependency a
# second time, in check mode, where a lint build reuses the dependencies that the tests and the
# wasm builds compile anyway (6.3 + 8.1 min of a cold `make test` before; docs/performance.md,
# "Build and test times"). clippy-driver compiles our crates without rustc's MIR optimisations
# (LLVM's remain); the tests run on that build. The linted artifacts get their own hashes beside
# rustc's, and what is shipped (pkg/, `make cli`) is rustc's alone.
LINT := RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# Browser tests: Debian's Chromium and ChromeDriver, never a browser a tool downloads itself.
APT_BROWSER_PKGS := chromium chromium-driver
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
E2E_DIR := tests/e2e
# Fuzzing (fuzz/): cargo-fuzz on the nightly toolchain. The instrumented build shares nothing with
# the normal one, so it has its own target directory, also outside the clone. The smoke run gives
# each target FUZZ_SECONDS over the committed corpus.
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TARGET_DIR ?= $(HOME)/.cache/arpg/fuzz-target
FUZZ_TARGETS := checkpoint image
FUZZ_SECONDS ?= 5
# The emoji colour dataset (crates/tools/src/emoji.rs): the npm packages that
# crates/tools/data/emoji-classes.json pins (name, version, tarball sha256), each unpacked into
# $(EMOJI_DIR)/<package>/ (the tarball's `package/`), with `.tarball-sha256` written last.
EMOJI_DIR ?= $(HOME)/.cache/arpg/emoji
EMOJI_CLASSES := crates/tools/data/emoji-classes.json

# The library (root package), crates/tools and crates/cli: one cargo call, one feature set.
RUST_PKGS := -p arpg -p arpg-tools -p arpg-cli

section = @printf '\n==== %s ====\n' "$(1)"

.PHONY: help run serve server test toolchain bindgen wasm wasm-gpu wasm-cpu wasm-opt cli test-cli fmt fmt-check clippy \
	clippy-wasm check-gpu bench test-rust fuzz-deps fuzz-smoke e2e e2e-deps browser-deps dataset emoji-data clean-pkg \
	manifest manifest-check

help:
	@echo 'make run           build the server and pkg/cpu, serve on http://127.0.0.1:$${PORT:-8080}/, build pkg/gpu beside it'
	@echo 'make test          fmt-check, clippy, cargo test, wasm build, clippy-wasm, fuzz-smoke, e2e (if tests/e2e exists)'
	@echo 'make wasm          both wasm builds: pkg/gpu (WebGPU + CPU), pkg/cpu (CPU only); WASM_OPT=1: wasm-opt'
	@echo 'make cli           cargo build --release -p arpg-cli  ->  $(ARPG)'
	@echo 'make test-cli      the same CLI from make clippy'"'"'s linted build (what the browser tests call)'
	@echo 'make server        cargo build --release -p arpg-serve  ->  $(ARPG_SERVE) (no burn: quick)'
	@echo 'make fmt           cargo fmt (rewrite)'
	@echo 'make clippy        clippy -D warnings as the compiler of the native test build (+ fuzz/, check)'
	@echo 'make clippy-wasm   the same for the library in the two wasm builds'"'"' profiles'
	@echo 'make test-rust     cargo test --release, for arpg and for arpg-serve'
	@echo 'make fuzz-smoke    each fuzz target ($(FUZZ_TARGETS)) for $(FUZZ_SECONDS) s over fuzz/corpus (nightly, cargo-fuzz)'
	@echo 'make e2e           browser tests in $(E2E_DIR) (Debian chromium, playwright-core)'
	@echo 'make browser-deps  apt: $(APT_BROWSER_PKGS); npm: playwright-core'
	@echo 'make emoji-data    npm: the emoji dataset packages (pinned, sha256-checked) -> $(EMOJI_DIR)'
	@echo 'make bench         the browser bench: transfer sizes, wasm CPU vs native (docs/performance.md)'
	@echo 'make check-gpu     clippy of the vulkan feature (GPU training; not in make test)'
	@echo 'make screenshots   refresh docs/screenshot-*.png (the browser tests that take them)'
	@echo 'make manifest      write each www/models checkpoint'"'"'s bytes and sha256 into www/models/manifest.json'
	@echo 'make clean-pkg     remove pkg/'
	@echo 'CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)'

# ---------------------------------------------------------------- tools

# The pinned toolchain (rust-toolchain.toml) with rustfmt, clippy and the wasm32 target.
toolchain:
	@command -v rustup >/dev/null || { echo 'error: rustup is required (see README.md, Prerequisites)' >&2; exit 1; }
	@[[ -n "$(TOOLCHAIN)" ]] || { echo 'error: no channel in rust-toolchain.toml' >&2; exit 1; }
	@if ! rustup toolchain list | grep "^$(TOOLCHAIN)-" >/dev/null; then \
		echo "installing Rust $(TOOLCHAIN)"; \
		rustup toolchain install "$(TOOLCHAIN)" --profile minimal \
			--component rustfmt,clippy --target $(WASM_TARGET); \
	fi
	@installed="$$(rustup component list --installed --toolchain "$(TOOLCHAIN)")"; \
	for c in rustfmt clippy; do \
		grep "^$$c" <<<"$$installed" >/dev/null || rustup component add --toolchain "$(TOOLCHAIN)" "$$c"; \
	done
	@rustup target list --installed --toolchain "$(TOOLCHAIN)" | grep -x $(WASM_TARGET) >/dev/null \
		|| rustup target add --toolchain "$(TOOLCHAIN)" $(WASM_TARGET)

# The wasm's JS glue is written by wasm-bindgen's library at exactly the `wasm-bindgen` crate's
# version (both pinned in Cargo.toml): crates/bindgen, no `cargo install` of the CLI.
bindgen: toolchain
	$(call section,bindgen: cargo build --release -p arpg-bindgen)
	$(CARGO) build --release -p arpg-bindgen

$(WASM_OPT_BIN):
	$(call section,installing binaryen $(BINARYEN_VERSION) (npm) for wasm-opt)
	mkdir -p "$(TOOLS_DIR)/npm"
	npm install --prefix "$(TOOLS_DIR)/npm" --no-audit --no-fund "binaryen@$(BINARYEN_VERSION)"

# ---------------------------------------------------------------- builds

# The browser runtime, two builds of the same crate (pkg/ is not committed): pkg/gpu with WebGPU
# (feature `webgpu`) and pkg/cpu with the CPU backend only, each arpg.js + arpg_bg.wasm. The worker
# fetches pkg/gpu only when it will use WebGPU.
wasm: wasm-gpu wasm-cpu
	@ls -l pkg/*

wasm-gpu: toolchain bindgen
	$(call wasm-build,gpu,wasm-gpu,--features webgpu)

wasm-cpu: toolchain bindgen
	$(call wasm-build,cpu,release,)

# Each build is written beside pkg/$(1) and moved into place whole, so a server running meanwhile
# (make run) serves the old build or the new one, never half of one.
define wasm-build
	$(call section,wasm ($(1)): cargo rustc --profile $(2) --lib --target $(WASM_TARGET) $(3) --crate-type cdylib)
	$(CARGO) rustc --profile $(2) --lib --target $(WASM_TARGET) $(3) --crate-type cdylib
	rm -rf pkg/.$(1)-next pkg/arpg.js pkg/arpg_bg.wasm
	"$(ARPG_BINDGEN)" "$(WASM_DIR)/$(2)/arpg.wasm" pkg/.$(1)-next
	@if [[ "$(WASM_OPT)" == 1 ]]; then $(MAKE) wasm-opt PKG=pkg/.$(1)-next; fi
	gzip -9 -k -f pkg/.$(1)-next/arpg_bg.wasm pkg/.$(1)-next/arpg.js
	$(call brotli,pkg/.$(1)-next/arpg_bg.wasm pkg/.$(1)-next/arpg.js)
	rm -rf pkg/$(1) && mv pkg/.$(1)-next pkg/$(1)
endef

# Brotli (quality 11) copies FILE.br for `arpg-serve`, made with Node's zlib when node is installed
# (`make test` needs it anyway); without node the server sends the gzip copies.
BROTLI_JS := const fs = require("fs"), z = require("zlib"); \
	for (const f of process.argv.slice(1)) { const b = fs.readFileSync(f); \
	fs.writeFileSync(f + ".br", z.brotliCompressSync(b, { params: { \
	[z.constants.BROTLI_PARAM_QUALITY]: 11, [z.constants.BROTLI_PARAM_LGWIN]: 24, \
	[z.constants.BROTLI_PARAM_SIZE_HINT]: b.length } })); }
brotli = @if command -v node >/dev/null; then node -e '$(BROTLI_JS)' $(1); \
	else echo 'note: node not found: no .br copies of $(1) (arpg-serve sends the .gz ones)'; fi

# Optional: optimise a generated module in place (needs node + npm): PKG=pkg/gpu or pkg/cpu.
PKG ?= pkg/cpu
wasm-opt: $(WASM_OPT_BIN)
	$(call section,wasm-opt $(WASM_OPT_FLAGS) $(PKG)/arpg_bg.wasm)
	@[[ -f $(PKG)/arpg_bg.wasm ]] || { echo 'error: no $(PKG)/arpg_bg.wasm; run make wasm first' >&2; exit 1; }
	"$(WASM_OPT_BIN)" $(WASM_OPT_FLAGS) $(PKG)/arpg_bg.wasm -o $(PKG)/arpg_bg.opt.wasm
	mv $(PKG)/arpg_bg.opt.wasm $(PKG)/arpg_bg.wasm
	gzip -9 -k -f $(PKG)/arpg_bg.wasm
	$(call brotli,$(PKG)/arpg_bg.wasm)

cli: toolchain
	$(call section,cli: cargo build --release -p arpg-cli)
	$(CARGO) build --release -p arpg-cli

# The CLI the browser tests call (`arpg init` writes their checkpoints): the linted build of
# `make clippy`, which the Rust tests ran, so after it this compiles nothing (rustc's own build,
# `make cli`, compiled our three crates once more: 0.8 min of a cold `make test`).
test-cli: toolchain
	$(LINT) $(CARGO) build --release -p arpg-cli

# The static file server (crates/serve): hyper and tower-http, no burn. The library, the tools and
# the CLI are always built, checked and tested together (RUST_PKGS), so that they share one build
# of burn; the server (and crates/bindgen) on its own, never with --workspace: one cargo call over
# all of them would unify their dependencies' features and rebuild burn a second way.
server: toolchain
	$(call section,server: cargo build --release -p arpg-serve)
	$(CARGO) build --release -p arpg-serve

# ---------------------------------------------------------------- run

# The page is served as soon as the server and the CPU build exist (5.9 min from a fresh clone on
# a new machine: docs/performance.md); the WebGPU build (12 min more) goes on beside the server,
# its log in $(GPU_LOG), and the pages use it once it is in pkg/gpu (until then they run on the
# CPU and say why). A pkg/gpu older than a source is removed first, so no page gets a stale
# runtime. Stopping the server stops that build too; the next `make run` goes on from what cargo
# had compiled.
GPU_LOG := pkg/gpu-build.log
WASM_SOURCES := src vendor Cargo.toml Cargo.lock rust-toolchain.toml .cargo
run: toolchain bindgen server wasm-cpu
	@if [[ -f pkg/gpu/arpg_bg.wasm && -z "$$(find $(WASM_SOURCES) -newer pkg/gpu/arpg_bg.wasm -print -quit)" ]]; then \
		exec $(MAKE) serve; \
	fi; \
	rm -rf pkg/gpu; \
	printf '\n==== %s ====\n' "the WebGPU build (pkg/gpu) goes on in the background: tail -f $(GPU_LOG)"; \
	setsid bash -c '$(MAKE) wasm-gpu >"$$1" 2>&1 && echo "WebGPU build done: the pages use it from now on" \
		|| echo "WebGPU build failed: see $$1 (the pages keep to the CPU)"' _ $(GPU_LOG) & \
	builder=$$!; \
	trap 'kill -- -$$builder 2>/dev/null' EXIT INT TERM; \
	$(MAKE) serve

serve:
	@[[ -x "$(ARPG_SERVE)" ]] || { echo 'error: $(ARPG_SERVE) missing; run make server' >&2; exit 1; }
	$(call section,serving www/ at / and pkg/ at /pkg/ (Ctrl-C stops))
	exec "$(ARPG_SERVE)" --port "$${PORT:-8080}" --root .

# ---------------------------------------------------------------- checks

test: toolchain fmt-check clippy test-rust manifest-check wasm clippy-wasm fuzz-smoke e2e
	$(call section,make test: all steps passed)

# www/models/manifest.json: each checkpoint's bytes and sha256, from the file (models/manifest.mjs);
# run `make manifest` after replacing a checkpoint; `make test` checks that they match.
manifest:
	node models/manifest.mjs

manifest-check:
	$(call section,www/models/manifest.json matches its checkpoints)
	node models/manifest.mjs --check

fmt: toolchain
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml

fmt-check: toolchain
	$(call section,cargo fmt --check)
	$(CARGO) fmt --all --check
	$(CARGO) fmt --check --manifest-path fuzz/Cargo.toml

# Lints with -D warnings every target that `make test` builds: the library, tools, CLI (their
# tests included), the server and crates/bindgen, each in the build its tests use; then, in check
# mode, the library without burn and fuzz/ (their builds are nightly fuzz builds).
clippy: toolchain
	$(call section,clippy as the compiler: cargo test --release --no-run $(RUST_PKGS) (then the two tools))
	$(LINT) $(CARGO) test --release --no-run $(RUST_PKGS)
	$(LINT) $(CARGO) test --release --no-run -p arpg-serve
	$(LINT) $(CARGO) test --release --no-run -p arpg-bindgen
	$(call section,cargo clippy --release --lib --no-default-features -- -D warnings (what fuzz/ builds))
	$(CARGO) clippy --release --lib --no-default-features -- -D warnings
	$(call section,cargo clippy --release --manifest-path fuzz/Cargo.toml -- -D warnings)
	$(CARGO) clippy --release --manifest-path fuzz/Cargo.toml -- -D warnings

# GPU training's code (the `vulkan` feature: two lines of arpg-cli), linted. models/train-gpu.sh's
# preparation runs this first. Not part of `make test`: the feature compiles burn a third way (wgpu,
# Vulkan) for those two lines, 8.3 min of a cold CI run on 2 cores.
check-gpu: toolchain
	$(call section,cargo clippy --release $(RUST_PKGS) --lib --bins --features arpg-cli/vulkan -- -D warnings)
	$(CARGO) clippy --release $(RUST_PKGS) --lib --bins --features arpg-cli/vulkan -- -D warnings

# The library for wasm32, linted in the profiles and features of the two wasm builds (it shares
# their dependencies; an rlib, so it does not touch the cdylib that pkg/ is made from).
clippy-wasm: toolchain
	$(call section,clippy as the compiler: cargo build --lib --target $(WASM_TARGET) in pkg/gpu's and pkg/cpu's profiles)
	$(LINT) $(CARGO) build --profile wasm-gpu --lib --target $(WASM_TARGET) --features webgpu
	$(LINT) $(CARGO) build --release --lib --target $(WASM_TARGET)

# The tests run on the linted build (`make clippy`'s, so after it this compiles nothing).
test-rust: toolchain dataset emoji-data
	$(call section,cargo test --release $(RUST_PKGS) (then arpg-serve) on the linted build)
	$(LINT) $(CARGO) test --release $(RUST_PKGS)
	$(LINT) $(CARGO) test --release -p arpg-serve

# The nightly toolchain (any; only fuzzing uses it) and cargo-fuzz, each only when missing.
fuzz-deps: toolchain
	@rustup toolchain list | grep '^nightly-' >/dev/null \
		|| rustup toolchain install nightly --profile minimal
	@if [[ "$$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $(CARGO_FUZZ_VERSION)" ]]; then \
		printf '\n==== %s ====\n' "installing cargo-fuzz $(CARGO_FUZZ_VERSION)"; \
		CARGO_TARGET_DIR="$(TOOLS_DIR)/cargo-fuzz-target" \
			$(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked; \
	fi

# Each fuzz target for FUZZ_SECONDS over the committed corpus (fuzz/corpus/<target>, read only: new
# inputs go to a scratch directory). A crash, leak or failed check fails this step; libFuzzer leaves
# the input in fuzz/artifacts/<target>/. Longer runs: docs/reliability.md, "Fuzzing".
fuzz-smoke: fuzz-deps
	@for t in $(FUZZ_TARGETS); do \
		printf '\n==== %s ====\n' "fuzz smoke: $$t, $(FUZZ_SECONDS) s over fuzz/corpus/$$t"; \
		scratch="$(FUZZ_TARGET_DIR)/smoke-corpus/$$t"; \
		rm -rf "$$scratch" && mkdir -p "$$scratch"; \
		cargo +nightly fuzz run --target-dir "$(FUZZ_TARGET_DIR)" "$$t" "$$scratch" "fuzz/corpus/$$t" \
			-- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 || exit 1; \
	done

# Browser tests plug in here: they run when tests/e2e/package.json exists. They get the built
# CLI (`arpg init` makes test checkpoints), the server (`$ARPG_SERVE_BIN --port 0 --root DIR`),
# the repo root and Debian's browser.
e2e:
	@if [[ -f $(E2E_DIR)/package.json ]]; then \
		$(MAKE) browser-deps test-cli server && \
		{ [[ -f pkg/cpu/arpg.js ]] || $(MAKE) wasm; } && \
		$(MAKE) e2e-run; \
	else \
		printf '\n==== %s ====\n' "e2e: $(E2E_DIR)/package.json absent, skipped"; \
	fi

E2E_ENV := ARPG_BIN="$(ARPG)" ARPG_SERVE_BIN="$(ARPG_SERVE)" ARPG_ROOT="$(CURDIR)" CHROMIUM_PATH=/usr/bin/chromium \
	CHROMEDRIVER_PATH=/usr/bin/chromedriver

.PHONY: e2e-run screenshots
e2e-run:
	$(call section,e2e: npm test in $(E2E_DIR))
	cd $(E2E_DIR) && $(E2E_ENV) npm test

# The browser bench (tests/e2e/bench.test.mjs; docs/performance.md, "Browser"): transfer sizes, wasm
# CPU against native `arpg bench` per model, the first image after picking a model. It prints
# figures and asserts only that the work ran, so it is not part of `make test` (3.4 min there).
bench: browser-deps cli server
	@[[ -f pkg/cpu/arpg.js ]] || $(MAKE) wasm
	$(call section,bench: npm run bench in $(E2E_DIR))
	cd $(E2E_DIR) && $(E2E_ENV) npm run bench

# The docs' pictures (docs/screenshot-*.png): the browser tests that take them, writing into docs/
# (a plain test run writes its screenshots to a temporary directory and leaves the tree clean).
screenshots: browser-deps test-cli server
	@[[ -f pkg/cpu/arpg.js ]] || $(MAKE) wasm
	$(call section,screenshots -> docs/)
	cd $(E2E_DIR) && $(E2E_ENV) ARPG_SCREENSHOTS_DIR="$(CURDIR)/docs" \
		node --test --test-name-pattern screenshot app.test.mjs colour.test.mjs local.test.mjs

# Node modules of the e2e suite, reinstalled when its package files change.
$(E2E_DIR)/node_modules/.package-lock.json: $(E2E_DIR)/package.json $(wildcard $(E2E_DIR)/package-lock.json)
	$(call section,npm install in $(E2E_DIR))
	cd $(E2E_DIR) && if [[ -f package-lock.json ]]; then npm ci --no-audit --no-fund; \
		else npm install --no-audit --no-fund; fi
	cd $(E2E_DIR) && { [[ -d node_modules/playwright-core ]] || npm install --no-audit --no-fund --no-save playwright-core; }
	touch $@

# Install Debian packages that are missing (apt-get update only when something is).
define apt-install
missing=(); \
	for p in $(1); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep 'install ok installed' >/dev/null || missing+=("$$p"); \
	done; \
	if (( $${#missing[@]} )); then \
		printf '\n==== %s ====\n' "apt-get install $${missing[*]}"; \
		sudo=; [[ $$(id -u) == 0 ]] || sudo=sudo; \
		$$sudo apt-get update; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$${missing[@]}"; \
	fi
endef

# Fashion-MNIST (Debian's dataset-fashion-mnist): the training data, read by some Rust tests.
dataset:
	@$(call apt-install,dataset-fashion-mnist)

# The emoji dataset's packages, each only when its directory lacks the pinned sha256: `npm pack`
# fetches the registry tarball into a scratch directory, sha256sum checks it against the pin in
# $(EMOJI_CLASSES), and it is unpacked beside its final place and moved there whole. Nothing is
# downloaded when the data is read (arpg-tools' `emoji` module, `arpg emoji-sheet`).
EMOJI_PINS_JS := for (const s of require(process.argv[1]).sources) \
	console.log(s.package, s.version, s.tarball_sha256)
emoji-data:
	@$(call apt-install,$$(command -v npm >/dev/null || echo nodejs npm))
	@pins="$$(node -e '$(EMOJI_PINS_JS)' "$(CURDIR)/$(EMOJI_CLASSES)")"; \
	scratch="$$(mktemp -d)"; trap 'rm -rf "$$scratch"' EXIT; \
	while read -r pkg version sha; do \
		dest="$(EMOJI_DIR)/$$pkg"; \
		[[ "$$(cat "$$dest/.tarball-sha256" 2>/dev/null)" == "$$sha" ]] && continue; \
		printf '\n==== %s ====\n' "npm pack $$pkg@$$version -> $$dest"; \
		npm pack --silent --ignore-scripts --pack-destination "$$scratch" "$$pkg@$$version" >/dev/null; \
		tarball=("$$scratch"/*.tgz); \
		echo "$$sha  $${tarball[0]}" | sha256sum --check --quiet \
			|| { echo "error: $$pkg@$$version's tarball does not have the pinned sha256 $$sha" >&2; exit 1; }; \
		mkdir -p "$$scratch/x" "$$(dirname "$$dest")"; \
		tar -xzf "$${tarball[0]}" -C "$$scratch/x" --strip-components=1 --no-same-owner; \
		echo "$$sha" >"$$scratch/x/.tarball-sha256"; \
		rm -rf "$$dest" "$${tarball[0]}"; mv "$$scratch/x" "$$dest"; \
	done <<<"$$pins"
	@du -sh "$(EMOJI_DIR)"

# Debian chromium + chromedriver, and npm playwright-core: installed only when missing.
browser-deps:
	@$(call apt-install,$(APT_BROWSER_PKGS) $$(command -v npm >/dev/null || echo nodejs npm))
	@if [[ -f $(E2E_DIR)/package.json ]]; then \
		$(MAKE) $(E2E_DIR)/node_modules/.package-lock.json; \
	elif [[ ! -d "$(TOOLS_DIR)/npm/node_modules/playwright-core" ]]; then \
		printf '\n==== %s ====\n' "npm install playwright-core -> $(TOOLS_DIR)/npm"; \
		mkdir -p "$(TOOLS_DIR)/npm"; \
		npm install --prefix "$(TOOLS_DIR)/npm" --no-audit --no-fund playwright-core; \
	fi
	@chromium --version 2>/dev/null || true

clean-pkg:
	rm -rf pkg
