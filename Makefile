# labelbin — top-level commands. CMake does the work underneath.
#   make        build the library (shared + static), build/labelbin and tests
#   make test   build, then run every test through CTest
#   make demo   run the main job on a built-in sample
#   make bench  run the benchmarks and print the results table
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure test demo bench clean install

all: configure
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install-deps

configure: deps
	@test -f $(BUILD)/CMakeCache.txt || cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

test: all
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: all
	@scripts/demo

bench: all
	@scripts/bench

install: all
	@cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-*
