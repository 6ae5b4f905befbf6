# Entry points. Everything else is meson: `make` only sets up, builds and runs.
#   make deps    install the Debian packages listed in deps/debian.txt that are missing
#   make demo    deps, build, and nodes started and driven end to end on this machine (a call, a conference);
#                it prints the link to alice's phone in a browser, and with WEB=1 keeps the nodes running
#                (until Ctrl-C) so that a person can open it
#   make check   deps, build, every test (and the unit tests again under ASan+UBSan)
#   make fuzz    run each libFuzzer target (tests/fuzz/meson.build) for FUZZ_RUNS inputs (default 10 M),
#                at most FUZZ_SECONDS each (default 0: no limit)
#   make bench   run the benchmarks and write docs/benchmarks.md
BUILD ?= build
SANBUILD ?= build-san
FUZZ_RUNS ?= 10000000
FUZZ_SECONDS ?= 0
FUZZ_TARGETS ?= wire stun rtp srtp opus-decoder loginsrv certificate command ctlline webauth tunnel statefile loginanswer gi record envelope held-envelope call-signal turn turn-server

.PHONY: all deps build demo check fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh deps/debian.txt

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	@WEB=$(WEB) scripts/demo.sh $(BUILD)

check: deps
	@scripts/check.sh $(BUILD) $(SANBUILD)

fuzz: deps
	@scripts/sanitizer-build.sh $(SANBUILD)
	@for target in $(FUZZ_TARGETS); do \
	  tests/fuzz/run-fuzz.sh $(SANBUILD)/tests/fuzz/fuzz-$$target $(FUZZ_RUNS) $(FUZZ_SECONDS) || exit 1; \
	done

bench: build
	@scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(SANBUILD)
