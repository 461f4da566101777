# lwvhost build.  `make` builds everything into build/; `make test` runs the
# suite; `make asan` builds and tests with AddressSanitizer+UBSan in build-asan/.
CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -pthread -MMD -MP
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
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libdaemon.a: $(DAEMON_OBJ)
	rm -f $@; ar rcs $@ $^
$(BUILD)/libvuf.a: $(FRONT_OBJ)
	rm -f $@; ar rcs $@ $^

$(BUILD)/lwvhostd: $(BUILD)/src/daemon/main.o $(BUILD)/libdaemon.a
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/lwvhostctl: $(BUILD)/src/ctl/lwvhostctl.o
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/lwvhost-bench: $(BENCH_OBJ) $(BUILD)/libvuf.a
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lm
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(TEST_HELPER_OBJ) $(BUILD)/libvuf.a $(BUILD)/libdaemon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(BUILD)/libvuf.a $(BUILD)/libdaemon.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

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
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
