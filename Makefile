# Parley's front door. `make run` and `make test` work on a fresh Debian 12 machine: both install
# whatever is missing first (scripts/install-deps.sh, apt-get), then build with CMake + Ninja.
#
#   make run     build and start parleyd on the embedded defaults (ARGS="--listen ..." to change)
#   make test    every test: unit (GoogleTest) and end-to-end, in the release and sanitizer builds
#   make build   build everything into build/
#   make asan    build with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/, test it
#   make format  apply clang-format to every C++ file

SHELL := /bin/bash
JOBS ?= $(shell nproc)
ARGS ?=
PYTEST := /usr/bin/python3 -m pytest

.PHONY: all deps build run test unit e2e asan asan-build check-layers format clean

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

test: check-layers unit e2e asan

format:
	find src tools -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

clean:
	rm -rf build build-asan build-debug
