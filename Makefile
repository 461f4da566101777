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
CPPFLAGS += -Isrc/common -Isrc/daemon -Isrc/frontend -Isrc/bench -Itests/lib
LDLIBS  += -pthread
# Hardening, as Debian builds daemons (dpkg-buildflags, hardening=+all):
# fortified libc calls, a stack protector, position-independent executables,
# full RELRO and immediate binding (scripts/check-hardening.sh checks the
# binaries).  The sanitizer builds leave _FORTIFY_SOURCE out: it hides
# accesses from ASan.
HARDEN_CFLAGS  ?= -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
HARDEN_LDFLAGS ?= -fPIE -pie -Wl,-z,relro -Wl,-z,now
NOFORTIFY := HARDEN_CFLAGS="-fstack-protector-strong -fPIE"

DAEMON_SRC := $(filter-out src/daemon/main.c,$(wildcard src/daemon/*.c))
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
FRONT_SRC  := $(wildcard src/frontend/*.c)
FRONT_OBJ  := $(FRONT_SRC:%.c=$(BUILD)/%.o)
# Tests by kind: tests/unit runs in-process, tests/system starts the
# daemon, tests/integration (scripts) drives QEMU, DPDK and libvirt; all
# share the compiled helpers of tests/lib.
TESTLIB_SRC := $(wildcard tests/lib/*.c)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
SYSTEM_SRC := $(wildcard tests/system/test_*.c)
TEST_BIN   := $(UNIT_SRC:%.c=$(BUILD)/%) $(SYSTEM_SRC:%.c=$(BUILD)/%)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BIN   := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

BENCH_SRC  := $(wildcard src/bench/*.c)
BENCH_OBJ  := $(BENCH_SRC:%.c=$(BUILD)/%.o)

PROGS := $(BUILD)/lwvhostd $(BUILD)/lwvhostctl $(if $(BENCH_SRC),$(BUILD)/lwvhost-bench)

.PHONY: all test check asan install clean demo analyze check-hardening
# Keep the objects of test and tool binaries (pattern-rule intermediates).
.SECONDARY:
all: $(PROGS) $(TEST_BIN) $(TOOL_BIN)

# Objects are rebuilt when the flags change, not only the sources.
FLAGS_LINE := $(CC) $(CPPFLAGS) $(CFLAGS) $(LWV_CFLAGS) $(HARDEN_CFLAGS) $(HARDEN_LDFLAGS)
FLAGS_STAMP := $(BUILD)/.flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(FLAGS_LINE)' | cmp -s - $@ || echo '$(FLAGS_LINE)' > $@
.PHONY: FORCE

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LWV_CFLAGS) $(HARDEN_CFLAGS) -c $< -o $@

$(BUILD)/libdaemon.a: $(DAEMON_OBJ)
	rm -f $@; ar rcs $@ $^
$(BUILD)/libvuf.a: $(FRONT_OBJ)
	rm -f $@; ar rcs $@ $^
$(BUILD)/libtest.a: $(TESTLIB_OBJ)
	rm -f $@; ar rcs $@ $^

$(BUILD)/lwvhostd: $(BUILD)/src/daemon/main.o $(BUILD)/libdaemon.a
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/lwvhostctl: $(BUILD)/src/ctl/lwvhostctl.o
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/lwvhost-bench: $(BENCH_OBJ) $(BUILD)/libvuf.a
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lm
TEST_LIBS := $(BUILD)/libtest.a $(BUILD)/libvuf.a $(BUILD)/libdaemon.a
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(TEST_LIBS)
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/tests/system/%: $(BUILD)/tests/system/%.o $(TEST_LIBS)
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(TEST_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LWV_CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# Installs what the QEMU, DPDK and libvirt tests need first, when that can
# be done without asking (root on Debian); tests/run.sh says what it could
# not run and why.
test: all
	scripts/install-deps.sh --if-possible
	BUILD=$(BUILD) tests/run.sh

check: test

asan:
	$(MAKE) BUILD=build-asan CC=clang $(NOFORTIFY) CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" test

# Static analysis: gcc's -fanalyzer (path-sensitive, across functions of a
# file: leaks, use after free, double free, NULL dereferences, and the
# file-descriptor checks that matter to a daemon handed fds by frontends).
# Chosen over cppcheck (shallower: no path-sensitive analysis across calls)
# and clang-tidy's analyzer (the same class of checks, five times slower
# here, and its "insecure API" checks flag every snprintf).  Any finding
# fails.
ANALYZE_SRC := $(wildcard src/*/*.c)
analyze:
	@set -e; for f in $(ANALYZE_SRC); do \
	    $(CC) $(CPPFLAGS) -std=gnu11 -O1 -pthread -fanalyzer -Werror -c $$f -o /dev/null; \
	done; echo "analyze: $(words $(ANALYZE_SRC)) files, no findings"

check-hardening: $(PROGS)
	scripts/check-hardening.sh $(PROGS)

demo: all
	BUILD=$(BUILD) scripts/demo.sh

# `make install`: the daemon to sbin, the tools to bin, the man pages there
# are, the systemd unit (its paths rewritten for PREFIX and SYSCONFDIR), the
# example configuration unless one is there already (a user's is never
# overwritten), and the libvirt hook when the tree has one.  The Debian
# package (debian/rules) installs with PREFIX=/usr SYSCONFDIR=/etc
# UNITDIR=/lib/systemd/system.
SYSCONFDIR ?= $(PREFIX)/etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MANPAGES   := $(wildcard man/*.1 man/*.5 man/*.8)
LIBVIRT_HOOK := $(wildcard tools/libvirt/qemu-hook)
install: $(PROGS)
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/lwvhost
	install -m 0755 $(BUILD)/lwvhostd $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 $(filter-out $(BUILD)/lwvhostd,$(PROGS)) $(DESTDIR)$(PREFIX)/bin/
	@set -e; for m in $(MANPAGES); do \
	    d=$(DESTDIR)$(PREFIX)/share/man/man$${m##*.}; \
	    echo "install -m 0644 $$m $$d/"; install -d $$d; install -m 0644 $$m $$d/; \
	done
	sed -e 's|/usr/sbin/lwvhostd|$(PREFIX)/sbin/lwvhostd|g' -e 's|/etc/lwvhost|$(SYSCONFDIR)/lwvhost|g' \
		packaging/lwvhostd.service > $(BUILD)/lwvhostd.service
	install -m 0644 $(BUILD)/lwvhostd.service $(DESTDIR)$(UNITDIR)/lwvhostd.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/lwvhost/lwvhostd.conf ]; then \
	    echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/lwvhost/lwvhostd.conf"; \
	else \
	    echo "install -m 0644 packaging/lwvhostd.conf $(DESTDIR)$(SYSCONFDIR)/lwvhost/"; \
	    install -m 0644 packaging/lwvhostd.conf $(DESTDIR)$(SYSCONFDIR)/lwvhost/; \
	fi
	$(if $(LIBVIRT_HOOK),install -D -m 0755 $(LIBVIRT_HOOK) \
		$(DESTDIR)$(PREFIX)/share/lwvhost/libvirt/qemu-hook)

# `make deb`: the Debian package (debian/), built by dpkg-buildpackage in
# debian/_build (never in BUILD), then the .deb files, .buildinfo and
# .changes moved from the parent directory, where dpkg-buildpackage
# writes them, to $(BUILD)/deb/.  Needs debhelper (scripts/install-deps.sh).
# The variables a calling make passes on (make asan's CC=clang, CFLAGS=,
# HARDEN_CFLAGS=, BUILD=, -j) are dropped: the package is built as
# debian/rules says.
DEB_ENV_DROP := MAKEFLAGS MFLAGS MAKELEVEL BUILD CC CFLAGS CPPFLAGS LDFLAGS LDLIBS \
	HARDEN_CFLAGS HARDEN_LDFLAGS
.PHONY: deb
deb:
	@set -e; rc=0; \
	env $(DEB_ENV_DROP:%=-u %) dpkg-buildpackage -b -us -uc -Jauto || rc=$$?; \
	v=$$(dpkg-parsechangelog -S Version); a=$$(dpkg-architecture -qDEB_HOST_ARCH); \
	mkdir -p $(BUILD)/deb; \
	for f in $$(test ! -f debian/files || cut -d' ' -f1 debian/files) lwvhost_$${v}_$$a.changes; do \
	    if [ -f ../$$f ]; then mv -f ../$$f $(BUILD)/deb/; echo "deb: $(BUILD)/deb/$$f"; fi; \
	done; \
	exit $$rc

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
# The daemon, and the test helpers the fuzzers share with the tests (the fd
# counter and the SCM_RIGHTS sender).
FUZZ_LIB_OBJ := $(DAEMON_SRC:%.c=$(FUZZ_BUILD)/%.o) $(FUZZ_BUILD)/tests/lib/procfd.o

.PHONY: fuzz fuzz-run fuzz-clean
fuzz: $(FUZZ_BIN)

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ_BUILD)/tests/lib/%.o: tests/lib/%.c
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
