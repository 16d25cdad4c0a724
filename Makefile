# labelbin — top-level commands. CMake does the work underneath.
#   make        build the library (shared + static), build/labelbin, the
#               Python module and the tests
#   make test   build, run every test through CTest, then run the C tests and
#               the fuzz-corpus replay again under AddressSanitizer +
#               UndefinedBehaviorSanitizer, and the parallel writer under
#               ThreadSanitizer (separate build directories)
#   make demo   run the main job on a built-in sample
#   make bench  run the benchmarks and print the results table
#   make fuzz   run the libFuzzer targets (FUZZ_SECONDS each, default 60)
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

# Tests worth repeating under the sanitizers: the C unit tests (the Python
# tests exercise the same library code through the CLI and cost minutes).
SAN_TESTS = ^(test_|fuzz_replay_)
TSAN_TESTS = ^test_(materialize|dataset|arrays|kernels|store|http)$$

.PHONY: all deps configure test test-fast test-asan test-tsan demo bench fuzz clean install

all: configure
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

test: test-fast test-asan test-tsan

test-fast: all
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	@test -f build-asan/CMakeCache.txt || cmake -S . -B build-asan \
	    -DLB_SANITIZE=address,undefined -DLB_BUILD_PYTHON=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS) -R '$(SAN_TESTS)'

test-tsan: deps
	@test -f build-tsan/CMakeCache.txt || cmake -S . -B build-tsan \
	    -DLB_SANITIZE=thread -DLB_BUILD_PYTHON=OFF >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	    ctest --output-on-failure -j $(JOBS) -R '$(TSAN_TESTS)'

demo: all
	@scripts/demo

bench: all
	@scripts/bench

fuzz: deps
	@scripts/fuzz

install: all
	@cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-*
