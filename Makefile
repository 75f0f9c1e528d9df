# SPDX-License-Identifier: BSD-3-Clause
# slabkit: thin wrapper over the CMake presets (release, debug, asan, tsan).
#   make demo      build the demo (and only what it needs), run it
#   make test      install test dependencies (as root), build, run every test
#   make test-aarch64  the same cross-built for arm64, tests under qemu-user
#   make bench     the benchmark suite against glibc, jemalloc, mimalloc, tcmalloc
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make deb       Debian packages from a clean copy of the tree, in build/deb
PRESET  ?= release
PREFIX  ?= /usr/local
BUILD    = build/$(PRESET)
JOBS    ?= $(shell nproc)
# -Werror only in CI (CI=1 or CI=true, as .ci/run and most CI services set).
WERROR   = $(if $(filter 1 true yes,$(CI)),ON,OFF)
export DESTDIR

.PHONY: all build configure demo test test-hardened test-asan test-tsan test-all deps \
	test-aarch64 \
	install bench valgrind format clean deb

all: build

configure:
	@[ -f $(BUILD)/build.ninja ] || \
		cmake --preset $(PRESET) -DSLABKIT_WERROR=$(WERROR) >/dev/null

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo:
	@[ -f build/release/build.ninja ] || \
		cmake --preset release -DSLABKIT_WERROR=$(WERROR) >/dev/null
	cmake --build build/release -j $(JOBS) --target example-demo
	./build/release/demo

deps:
	./tools/install-deps.sh test

test: deps build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The whole suite again with SLABKIT_OPTIONS=hardened.  Tests that check
# the default mode's own behaviour say "runs in default mode" and leave
# hardened mode themselves; misuse tests set their own options
# (run_misuse.sh).  Excluded: install (cmake --install and consumers: no
# allocator behaviour to harden) and man (documentation checks).
test-hardened: build
	SLABKIT_OPTIONS=hardened ctest --test-dir $(BUILD) --output-on-failure \
		-j $(JOBS) -LE 'install|man'

test-asan:
	$(MAKE) PRESET=asan build
	ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build/asan --output-on-failure \
		-j $(JOBS) -LE programs

test-tsan:
	$(MAKE) PRESET=tsan build
	TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build/tsan --output-on-failure \
		-j $(JOBS) -LE 'programs|misuse|man|install'

# The release build cross-compiled for aarch64 (cmake/toolchain-aarch64.cmake)
# with its tests under qemu-user, where shards are per thread (restartable
# sequences are x86-64 only).  tools/aarch64-run.sh lets the tests exec
# aarch64 programs; what the preset leaves out, and why: tests/README.md.
test-aarch64:
	./tools/install-deps.sh aarch64
	@[ -f build/aarch64/build.ninja ] || \
		cmake --preset aarch64 -DSLABKIT_WERROR=$(WERROR) >/dev/null
	cmake --build build/aarch64 -j $(JOBS)
	./tools/aarch64-run.sh ctest --preset aarch64 -j $(JOBS) \
		--repeat until-pass:2

valgrind: build
	./tools/valgrind-unit.sh $(BUILD)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

deb:
	./tools/install-deps.sh deb
	./tools/deb-build.sh

bench:
	./tools/install-deps.sh bench
	$(MAKE) PRESET=release build
	./bench/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
