# Parley's front door. `make run` and `make test` work on a fresh Debian 12 machine: both install
# whatever is missing first (scripts/install-deps.sh, apt-get), then build with CMake + Ninja.
#
#   make run     build and start parleyd on the embedded defaults (ARGS="--listen ..." to change)
#   make test    every test: unit (GoogleTest) and end-to-end, in the release and sanitizer builds
#   make build   build everything into build/
#   make asan    build with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/, test it
#   make tsan    the chat module's tests (writer threads, limiter) with ThreadSanitizer, build-tsan/
#   make format  apply clang-format to every C++ file
#   make fuzz-build  build the libFuzzer targets (clang-14, ASan + UBSan) into build-fuzz/
#   make fuzz        run each fuzz target for FUZZ_SECONDS (default 600); a crash fails it
#   make fuzz-smoke  the same for FUZZ_SMOKE_SECONDS each (default 45); part of `make test`
#   make browser-test  the web client in Debian's Chromium (tests/browser: playwright-core,
#                      node --test); part of `make test`
#   make sigv4-test  blob/s3's SigV4 signer against the AWS SDK's (@smithy/signature-v4) on
#                    3000 random requests (tests/sigv4)

SHELL := /bin/bash
JOBS ?= $(shell nproc)
ARGS ?=
PYTEST := /usr/bin/python3 -m pytest
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 45
FUZZ_TARGETS := request http ws

.PHONY: all deps build run test unit e2e asan asan-build tsan check-layers format clean
.PHONY: fuzz-build fuzz fuzz-smoke
.PHONY: browser-test
.PHONY: sigv4-test e2e-media-s3

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@[ -f build/build.ninja ] || cmake --preset release >/dev/null
	cmake --build build -j $(JOBS)

run: build
	./build/parleyd $(ARGS)

unit: build
	ctest --test-dir build --output-on-failure -j $(JOBS)

e2e: build
	PARLEYD=$(CURDIR)/build/parleyd $(PYTEST) tests/e2e -q -p no:cacheprovider

# The media tests again with the S3 blob store (s3rver on loopback).
e2e-media-s3: build
	bash scripts/e2e-media-s3.sh $(CURDIR)/build/parleyd

check-layers:
	@bash scripts/check-layers.sh

asan-build: deps
	@[ -f build-asan/build.ninja ] || cmake --preset asan >/dev/null
	cmake --build build-asan -j $(JOBS)

# Sanitizer findings abort the process, so any finding fails the test that caused it.
asan: asan-build
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  PARLEYD=$(CURDIR)/build-asan/parleyd $(PYTEST) tests/e2e -q -p no:cacheprovider

# The tests of the code that runs on several threads; a data race fails the test that ran it.
TSAN_TESTS := chat_batch_writer_test chat_owner_test chat_service_test chat_login_limiter_test
tsan: deps
	@[ -f build-tsan/build.ninja ] || cmake --preset tsan >/dev/null
	cmake --build build-tsan -j $(JOBS) --target $(TSAN_TESTS)
	@for t in $(TSAN_TESTS); do TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ./build-tsan/tests/$$t --gtest_brief=1 || exit 1; done

test: check-layers unit e2e e2e-media-s3 asan tsan fuzz-smoke browser-test sigv4-test

# The web client (web/, embedded in parleyd) in real Chromium. Node >= 20 is required (not
# installed here: Debian 12's nodejs is 18); `npm ci` runs only when node_modules is missing.
browser-test: build
	@v=$$(node --version 2>/dev/null | sed 's/^v//; s/\..*//'); \
	  [ -n "$$v" ] && [ "$$v" -ge 20 ] || { echo "browser-test: Node.js >= 20 is required (found: $$(node --version 2>&1))" >&2; exit 1; }
	@[ -d tests/browser/node_modules ] || (cd tests/browser && npm ci --no-audit --no-fund)
	cd tests/browser && PARLEYD=$(CURDIR)/build/parleyd node --test --test-concurrency=1 tests/

# libFuzzer targets (fuzz/): a separate clang build with -DPARLEY_FUZZ=ON. Only the fuzz targets
# and what they link are built. fuzz/run.sh exits non-zero on any crash, leak or timeout; every
# target runs, and the make target fails if any of them failed.
fuzz-build: deps
	@[ -f build-fuzz/build.ninja ] || CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja \
	  -DPARLEY_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))

fuzz: fuzz-build
	@status=0; for t in $(FUZZ_TARGETS); do bash fuzz/run.sh $$t $(FUZZ_SECONDS) || status=1; done; exit $$status

fuzz-smoke: fuzz-build
	@status=0; for t in $(FUZZ_TARGETS); do bash fuzz/run.sh $$t $(FUZZ_SMOKE_SECONDS) || status=1; done; exit $$status

format:
	find src tools -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

clean:
	rm -rf build build-asan build-tsan build-debug build-fuzz

# The standard benchmark set (a few minutes): see scripts/bench.sh and docs/benchmarks.md.
.PHONY: bench
bench: build
	bash scripts/bench.sh

# Differential test of blob/s3's SigV4 signer: build/sigv4-sign and the AWS SDK's signer sign the
# same 3000 seeded random requests (odd keys, queries, headers, session tokens, pre-signed URLs);
# any difference fails. `npm ci` runs only when node_modules is missing.
sigv4-test: deps
	@[ -f build/build.ninja ] || cmake --preset release >/dev/null
	cmake --build build -j $(JOBS) --target sigv4-sign
	@[ -d tests/sigv4/node_modules ] || (cd tests/sigv4 && npm ci --no-audit --no-fund)
	cd tests/sigv4 && SIGV4_SIGN=$(CURDIR)/build/sigv4-sign node differential.mjs 3000
