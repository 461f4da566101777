# lwvhost build.  `make` builds everything into build/; `make test` runs the
# suite; `make asan` builds and tests with AddressSanitizer+UBSan in build-asan/.
CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
CFLAGS  ?= -O2 -g
# Always added, even when CFLAGS is given on the command line (which
# overrides any assignment to CFLAGS in this file).
LWV_CFLAGS := -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -pthread -MMD -MP
CPPFLAGS += -Isrc/common -Isrc/daemon -Isrc/frontend -Isrc/bench
LDLIBS  += -pthread

DAEMON_SRC := $(filter-out src/daemon/main.c,$(wildcard src/daemon/*.c))
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
FRONT_SRC  := $(wildcard src/frontend/*.c)
FRONT_OBJ  := $(FRONT_SRC:%.c=$(BUILD)/%.o)
TEST_SRC   := $(wildcard tests/unit/test_*.c)
TEST_BIN   := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_HELPER_SRC := $(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c))
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(BUILD)/%.o)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BIN   := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

BENCH_SRC  := $(wildcard src/bench/*.c)
BENCH_OBJ  := $(BENCH_SRC:%.c=$(BUILD)/%.o)

PROGS := $(BUILD)/lwvhostd $(BUILD)/lwvhostctl $(if $(BENCH_SRC),$(BUILD)/lwvhost-bench)

.PHONY: all test check asan install clean demo
# Keep the objects of test and tool binaries (pattern-rule intermediates).
.SECONDARY:
all: $(PROGS) $(TEST_BIN) $(TOOL_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LWV_CFLAGS) -c $< -o $@

$(BUILD)/libdaemon.a: $(DAEMON_OBJ)
	rm -f $@; ar rcs $@ $^
$(BUILD)/libvuf.a: $(FRONT_OBJ)
	rm -f $@; ar rcs $@ $^

$(BUILD)/lwvhostd: $(BUILD)/src/daemon/main.o $(BUILD)/libdaemon.a
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/lwvhostctl: $(BUILD)/src/ctl/lwvhostctl.o
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/lwvhost-bench: $(BENCH_OBJ) $(BUILD)/libvuf.a
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lm
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TEST_HELPER_OBJ) $(BUILD)/libvuf.a $(BUILD)/libdaemon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(BUILD)/libvuf.a $(BUILD)/libdaemon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

test: all
	BUILD=$(BUILD) tests/run.sh

check: test

asan:
	$(MAKE) BUILD=build-asan CC=clang CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" test

demo: all
	BUILD=$(BUILD) scripts/demo.sh

install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build build-asan build-tsan build-clang

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- libFuzzer targets (clang): docs/fuzzing.md ---------------------------
# `make fuzz` builds fuzz/fuzz_*.c against the daemon objects (all of
# src/daemon but main.c, with -fsanitize=fuzzer-no-link) into build-fuzz/;
# `make fuzz-run FUZZ_SECONDS=60` runs each target in turn on a scratch copy
# of its corpus in fuzz/corpus/ and fails on any crash.
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_RSS_MB  ?= 2048
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -std=gnu11 -Wall -Wextra -Wshadow \
                -Wno-unused-parameter -pthread -MMD -MP
FUZZ_SRC     := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ := $(DAEMON_SRC:%.c=$(FUZZ_BUILD)/%.o)

.PHONY: fuzz fuzz-run fuzz-clean
fuzz: $(FUZZ_BIN)

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -MF $@.d -MT $@ -fsanitize=fuzzer $< $(FUZZ_LIB_OBJ) \
		-o $@ -pthread

fuzz-run: fuzz
	FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RSS_MB=$(FUZZ_RSS_MB) fuzz/run.sh

fuzz-clean:
	rm -rf $(FUZZ_BUILD)

-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
