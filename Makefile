# Starling build.
#   make            release binaries in build/ (-O2 -g)
#   make run        build, then run the broker on 127.0.0.1:1883 in the foreground
#   make test       ASan+UBSan build, CUnit unit tests, integration tests with real clients
#                   (on 1 worker and on 4 workers, side by side)
#   make test-epoll the integration suite again on the epoll back-end (event_backend epoll)
#   make tsan       ThreadSanitizer build; the threaded unit tests and the integration suite
#                   on 4 workers
#   make bench      Google Benchmark micro-benchmarks
#   make probes     kernel-feature probes (bench/probe_*.c)
#   make bench-compare  Starling against FlashMQ and Mosquitto (bench/compare.sh; about 90 min
#                       with every pass: COMPARE_ARGS="--scenarios fanout50 --no-rates" for a
#                       short one)
#   make deps       install the Debian packages the project needs (run by the targets above)
#   make format / format-check

CC      ?= gcc
CXX     ?= g++
PYTHON  ?= /usr/bin/python3
B       := build

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wvla -Wimplicit-fallthrough
CFLAGS_BASE := -std=gnu11 $(WARN) -Iinclude -Isrc -D_GNU_SOURCE -MMD -MP
REL_CFLAGS  := $(CFLAGS_BASE) -O2 -g -DST_JEMALLOC=1
# The sanitizers need their own allocator, so the ASan build does not link jemalloc.
ASAN_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_CFLAGS := $(CFLAGS_BASE) -O1 -g $(ASAN_SAN)
TSAN_CFLAGS := $(CFLAGS_BASE) -O1 -g -fsanitize=thread -fno-omit-frame-pointer

# src/ is one folder per layer (src/README.md; tools/check-layers.sh keeps includes pointing down).
# The codec layer is the library the tools share with the broker.
CODEC_SRC  := $(wildcard src/codec/*.c)
# Every other layer makes the broker's library (main.c, at the top, holds only main()).
BROKER_SRC := $(filter-out $(CODEC_SRC),$(wildcard src/*/*.c))
TOOL_COMMON_SRC := tools/client.c tools/client_io.c tools/client_tls.c tools/cli.c tools/cli_props.c
# starling-bench frames --ws traffic with the broker's own WebSocket framing (src/io/ws.c).
BENCH_TOOL_SRC  := $(wildcard tools/bench/*.c) src/io/ws.c
TOOLS      := starling-pub starling-sub starling-bench starling-passwd starling-store-gen \
              no-io-uring
# starling-passwd writes password files with the broker's own code (src/auth/).
PASSWD_SRC := tools/starling-passwd.c src/auth/passwd.c src/base/b64.c src/auth/file.c \
              src/base/readfile.c
# starling-store-gen writes persistence directories with the store layer's own encoder.
STOREGEN_SRC := tools/starling-store-gen.c src/store/record.c
UNIT_TESTS := $(patsubst test/%.c,%,$(wildcard test/test_*.c))

# libssl/libcrypto (OpenSSL): TLS listeners and clients (src/io/tls.c, tools/), password
# hashing (PBKDF2-HMAC-SHA512, SHA-512) in src/auth/. libisal (Intel ISA-L): CRC32C of the
# persistence log's records (src/store/).
REL_LIBS   := -luring -lxxhash -ljemalloc -lssl -lcrypto -lisal -lm
ASAN_LIBS  := -luring -lxxhash -lssl -lcrypto -lisal -lm
# libsystemd: sd_notify(3) for systemd's Type=notify (src/broker/service.c); libnats (the NATS
# C client): the cluster's connection (src/broker/cluster_link.c). The broker's library needs
# them, the tools do not.
NATS_LIBS := $(shell pkg-config --libs libnats 2>/dev/null || echo -lnats)
SD_LIBS    := -lsystemd $(NATS_LIBS)
# Unit tests whose threads meet (make tsan runs them).
TSAN_UNIT_TESTS := test_chan test_ring test_resolve

obj = $(patsubst %.c,$(B)/$(1)/obj/%.o,$(2))

.PHONY: test-deb install uninstall deb
.PHONY: all deps run test test-epoll test-persist unit integration bench bench-compare format format-check layer-check clean asan \
        tsan tsan-build probes
# Objects are intermediates of pattern chains; keep them so a rebuild relinks only what changed.
.SECONDARY:
all: $(B)/starlingd $(addprefix $(B)/,$(TOOLS))

deps:
	@tools/deps.sh

# A header included against the layering fails the build, not only the tests.
LAYERED_FILES := $(wildcard src/*.[ch] src/*/*.[ch] include/starling/*.h tools/*.[ch] tools/bench/*.[ch])
$(B)/layers.ok: $(LAYERED_FILES) tools/check-layers.sh
	@mkdir -p $(B)
	@tools/check-layers.sh >/dev/null || tools/check-layers.sh
	@touch $@

# --- release -------------------------------------------------------------------------
$(B)/release/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c $< -o $@

$(B)/release/libstcodec.a: $(call obj,release,$(CODEC_SRC))
	ar rcs $@ $^
$(B)/release/libstbroker.a: $(call obj,release,$(BROKER_SRC)) | $(B)/layers.ok
	ar rcs $@ $^

$(B)/starlingd: $(call obj,release,src/main.c) $(B)/release/libstbroker.a $(B)/release/libstcodec.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(REL_LIBS) $(SD_LIBS) -lpthread
$(B)/starling-pub $(B)/starling-sub: $(B)/starling-%: $(B)/release/obj/tools/starling-%.o \
		$(call obj,release,$(TOOL_COMMON_SRC)) $(B)/release/libstcodec.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(REL_LIBS)
$(B)/starling-bench: $(call obj,release,$(BENCH_TOOL_SRC)) $(B)/release/libstcodec.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(REL_LIBS)
$(B)/starling-passwd: $(call obj,release,$(PASSWD_SRC)) $(B)/release/libstcodec.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(REL_LIBS)
$(B)/starling-store-gen: $(call obj,release,$(STOREGEN_SRC)) $(B)/release/libstcodec.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(REL_LIBS)
# Runs a program with io_uring blocked by seccomp (the tests of event_backend's fallback).
$(B)/no-io-uring: $(B)/release/obj/tools/no-io-uring.o
	$(CC) $(REL_CFLAGS) -o $@ $^
# The trivial fake broker that proves starling-bench's own speed (bench/README.md).
$(B)/starling-sink: $(B)/release/obj/bench/sink.o $(B)/release/libstcodec.a
	$(CC) $(REL_CFLAGS) -o $@ $^ $(REL_LIBS)

# --- ASan + UBSan --------------------------------------------------------------------
$(B)/asan/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

$(B)/asan/libstcodec.a: $(call obj,asan,$(CODEC_SRC))
	ar rcs $@ $^
$(B)/asan/libstbroker.a: $(call obj,asan,$(BROKER_SRC)) | $(B)/layers.ok
	ar rcs $@ $^

$(B)/asan/starlingd: $(call obj,asan,src/main.c) $(B)/asan/libstbroker.a $(B)/asan/libstcodec.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(ASAN_LIBS) $(SD_LIBS) -lpthread
$(B)/asan/starling-pub $(B)/asan/starling-sub: $(B)/asan/starling-%: $(B)/asan/obj/tools/starling-%.o \
		$(call obj,asan,$(TOOL_COMMON_SRC)) $(B)/asan/libstcodec.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(ASAN_LIBS)
$(B)/asan/starling-bench: $(call obj,asan,$(BENCH_TOOL_SRC)) $(B)/asan/libstcodec.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(ASAN_LIBS)
$(B)/asan/starling-passwd: $(call obj,asan,$(PASSWD_SRC)) $(B)/asan/libstcodec.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(ASAN_LIBS)
$(B)/asan/starling-store-gen: $(call obj,asan,$(STOREGEN_SRC)) $(B)/asan/libstcodec.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(ASAN_LIBS)
$(B)/asan/no-io-uring: $(B)/asan/obj/tools/no-io-uring.o
	$(CC) $(ASAN_CFLAGS) -o $@ $^
$(B)/asan/test_%: $(call obj,asan,test/test_%.c test/testutil.c) $(B)/asan/libstbroker.a $(B)/asan/libstcodec.a
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(ASAN_LIBS) $(SD_LIBS) -lcunit -lpthread

asan: $(B)/asan/starlingd $(addprefix $(B)/asan/,$(TOOLS)) $(addprefix $(B)/asan/,$(UNIT_TESTS))

# --- ThreadSanitizer: what workers share ----------------------------------------------
$(B)/tsan/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_CFLAGS) -c $< -o $@

$(B)/tsan/libstcodec.a: $(call obj,tsan,$(CODEC_SRC))
	ar rcs $@ $^
$(B)/tsan/libstbroker.a: $(call obj,tsan,$(BROKER_SRC)) | $(B)/layers.ok
	ar rcs $@ $^

$(B)/tsan/starlingd: $(call obj,tsan,src/main.c) $(B)/tsan/libstbroker.a $(B)/tsan/libstcodec.a
	$(CC) $(TSAN_CFLAGS) -o $@ $^ $(ASAN_LIBS) $(SD_LIBS) -lpthread
$(B)/tsan/starling-pub $(B)/tsan/starling-sub: $(B)/tsan/starling-%: $(B)/tsan/obj/tools/starling-%.o \
		$(call obj,tsan,$(TOOL_COMMON_SRC)) $(B)/tsan/libstcodec.a
	$(CC) $(TSAN_CFLAGS) -o $@ $^ $(ASAN_LIBS)
$(B)/tsan/starling-bench: $(call obj,tsan,$(BENCH_TOOL_SRC)) $(B)/tsan/libstcodec.a
	$(CC) $(TSAN_CFLAGS) -o $@ $^ $(ASAN_LIBS) -lpthread
$(B)/tsan/no-io-uring: $(B)/tsan/obj/tools/no-io-uring.o
	$(CC) $(TSAN_CFLAGS) -o $@ $^
$(B)/tsan/starling-passwd: $(call obj,tsan,$(PASSWD_SRC)) $(B)/tsan/libstcodec.a
	$(CC) $(TSAN_CFLAGS) -o $@ $^ $(ASAN_LIBS)
$(B)/tsan/starling-store-gen: $(call obj,tsan,$(STOREGEN_SRC)) $(B)/tsan/libstcodec.a
	$(CC) $(TSAN_CFLAGS) -o $@ $^ $(ASAN_LIBS)
$(B)/tsan/test_%: $(call obj,tsan,test/test_%.c test/testutil.c) $(B)/tsan/libstbroker.a $(B)/tsan/libstcodec.a
	$(CC) $(TSAN_CFLAGS) -o $@ $^ $(ASAN_LIBS) $(SD_LIBS) -lcunit -lpthread

tsan-build: $(B)/tsan/starlingd $(addprefix $(B)/tsan/,$(TOOLS)) $(addprefix $(B)/tsan/,$(TSAN_UNIT_TESTS))

# A ThreadSanitizer report in a broker's log, or its exit status 66, fails the test that ran it.
tsan: tsan-build
	@status=0; \
	tools/run-unit.sh $(addprefix $(B)/tsan/,$(TSAN_UNIT_TESTS)) || status=1; \
	$(PYTHON) test/integration/run.py --bin $(B)/tsan --workers 4 || status=1; \
	if [ $$status -eq 0 ]; then echo "make tsan: all passed"; else echo "make tsan: FAILED"; fi; \
	exit $$status

# --- running and testing -------------------------------------------------------------
run: $(B)/starlingd
	$(B)/starlingd -v

unit: asan
	@tools/run-unit.sh $(addprefix $(B)/asan/,$(UNIT_TESTS))

integration: asan
	$(PYTHON) test/integration/run.py --bin $(B)/asan $(if $(WORKERS),--workers $(WORKERS))

# Port-slice groups (run.py --slices) of the two runs; checkouts testing side by side on one
# machine give each its own, e.g. make test SLICES_1=2/8 SLICES_4=3/8.
SLICES_1 ?= 0/2
SLICES_4 ?= 1/2
test: asan all
	@status=0; \
	if $(MAKE) --no-print-directory format-check >/dev/null; then echo "format-check: passed"; \
	else echo "format-check: FAILED (run make format)"; status=1; fi; \
	{ tools/check-layers.sh --self-test && tools/check-layers.sh; } || status=1; \
	tools/run-unit.sh $(addprefix $(B)/asan/,$(UNIT_TESTS)) || status=1; \
	$(PYTHON) test/integration/run.py --bin $(B)/asan --workers 1 --slices $(SLICES_1) \
		>$(B)/integration-1.log 2>&1 & one=$$!; \
	$(PYTHON) test/integration/run.py --bin $(B)/asan --workers 4 --slices $(SLICES_4) \
		>$(B)/integration-4.log 2>&1 & four=$$!; \
	wait $$one || status=1; cat $(B)/integration-1.log; \
	wait $$four || status=1; cat $(B)/integration-4.log; \
	if [ $$status -eq 0 ]; then echo "make test: all passed"; else echo "make test: FAILED"; fi; \
	exit $$status

# The whole integration suite again on the epoll back-end (event_backend epoll in every
# broker's configuration; tests about io_uring itself skip), on 1 and 4 workers side by side.
test-epoll: asan
	@status=0; \
	STARLING_TEST_BACKEND=epoll $(PYTHON) test/integration/run.py --bin $(B)/asan --workers 1 \
		--slices $(SLICES_1) >$(B)/integration-epoll-1.log 2>&1 & one=$$!; \
	STARLING_TEST_BACKEND=epoll $(PYTHON) test/integration/run.py --bin $(B)/asan --workers 4 \
		--slices $(SLICES_4) >$(B)/integration-epoll-4.log 2>&1 & four=$$!; \
	wait $$one || status=1; cat $(B)/integration-epoll-1.log; \
	wait $$four || status=1; cat $(B)/integration-epoll-4.log; \
	if [ $$status -eq 0 ]; then echo "make test-epoll: all passed"; else echo "make test-epoll: FAILED"; fi; \
	exit $$status

# The Debian package installed on this machine for real (apt-get install of `make deb`'s
# .deb, the service run as its unit says, a purge): it adds and removes a package and the
# `starling` user, so it is a target of its own, for a throwaway machine (CI runs it).
test-deb: asan all
	STARLING_TEST_DEB=1 $(PYTHON) test/integration/run.py --bin $(B)/asan test_deb_install

# The whole integration suite again with persistence on (every test's broker logs to its temp
# dir, persistence_sync always): every hook on every path the suite covers. Not in `make test`
# (it doubles its time); the persistence modules themselves are.
test-persist: asan
	@status=0; \
	STARLING_TEST_PERSIST=1 $(PYTHON) test/integration/run.py --bin $(B)/asan --workers 1 \
		--slices $(SLICES_1) >$(B)/integration-persist-1.log 2>&1 & one=$$!; \
	STARLING_TEST_PERSIST=1 $(PYTHON) test/integration/run.py --bin $(B)/asan --workers 4 \
		--slices $(SLICES_4) >$(B)/integration-persist-4.log 2>&1 & four=$$!; \
	wait $$one || status=1; cat $(B)/integration-persist-1.log; \
	wait $$four || status=1; cat $(B)/integration-persist-4.log; \
	exit $$status

# --- benchmarks ----------------------------------------------------------------------
BENCH_SRC := $(wildcard bench/bench_*.cc)
BENCHES   := $(patsubst bench/%.cc,$(B)/bench/%,$(BENCH_SRC))
# C shims (bench/*_shim.c) reach the broker's internals for benchmarks whose headers C++ cannot take.
BENCH_SHIMS := $(call obj,release,$(wildcard bench/*_shim.c))
$(B)/bench/%: bench/%.cc $(BENCH_SHIMS) $(B)/release/libstbroker.a $(B)/release/libstcodec.a | deps
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -Iinclude -Isrc -Ibench -o $@ $^ -lbenchmark -lpthread $(REL_LIBS) $(SD_LIBS)

# Kernel-feature probes (bench/probe_*.c): stand-alone programs, not part of the broker.
PROBES := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/probe_*.c))
$(B)/bench/probe_%: bench/probe_%.c | deps
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -g -D_GNU_SOURCE -o $@ $< -luring -lpthread
# libnats: the probe of its cost per message (kernel-notes/cluster.md).
$(B)/bench/probe_nats: bench/probe_nats.c | deps
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -O2 -g -D_GNU_SOURCE -o $@ $< $(NATS_LIBS) -lpthread
probes: $(PROBES)

# The start-up load of a large persistence directory: recovery, replay, compaction and
# resharding times of 1M retained messages and 100k sessions, printed (bench/store_load.c).
$(B)/bench/store_load: bench/store_load.c $(B)/release/libstbroker.a $(B)/release/libstcodec.a | deps
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -o $@ $^ $(REL_LIBS) $(SD_LIBS)

bench: $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; $$b --benchmark_min_time=0.2 || exit 1; done

bench-compare: all
	bench/compare.sh --bin $(B) $(COMPARE_ARGS)

# --- install and package -------------------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=...]: the broker in sbin, the tools in bin, man
# pages, the systemd unit, the default configuration (never over an existing one) and the
# persistence directory it names. The configuration lives in /etc whatever PREFIX is, as the
# unit and the man pages say.
PREFIX        ?= /usr/local
BINDIR        ?= $(PREFIX)/bin
SBINDIR       ?= $(PREFIX)/sbin
MANDIR        ?= $(PREFIX)/share/man
UNITDIR       ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR    ?= /etc
LOCALSTATEDIR ?= /var
# starling-store-gen is a test tool (persistence directories for the tests), not installed.
INSTALL_TOOLS := starling-pub starling-sub starling-passwd starling-bench
MAN_PAGES     := $(wildcard tools/man/*.[158])
VERSION       := $(shell sed -n 's/^\#define STARLING_VERSION "\([^"]*\)".*/\1/p' src/broker/sys.h)
CONF          := $(DESTDIR)$(SYSCONFDIR)/starling/starling.conf
STATEDIR      := $(LOCALSTATEDIR)/lib/starling

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/starling $(addprefix $(DESTDIR)$(MANDIR)/man,1 5 8)
	install -m 0755 $(B)/starlingd $(DESTDIR)$(SBINDIR)/starlingd
	install -m 0755 $(addprefix $(B)/,$(INSTALL_TOOLS)) $(DESTDIR)$(BINDIR)/
	@for p in $(MAN_PAGES); do \
		echo "install -m 0644 $$p $(DESTDIR)$(MANDIR)/man$${p##*.}/"; \
		install -m 0644 $$p $(DESTDIR)$(MANDIR)/man$${p##*.}/ || exit 1; \
	done
	sed -e 's|@SBINDIR@|$(SBINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g; s|@LOCALSTATEDIR@|$(LOCALSTATEDIR)|g' \
		tools/dist/starlingd.service.in >$(DESTDIR)$(UNITDIR)/starlingd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/starlingd.service
	@if [ -e $(CONF) ]; then echo "make install: keeping $(CONF) (the default is tools/dist/starling.conf)"; \
	else echo "install -m 0644 tools/dist/starling.conf $(CONF)"; \
		sed -e 's|^persistence_location /var/lib/starling$$|persistence_location $(STATEDIR)|' \
			tools/dist/starling.conf >$(CONF) && chmod 0644 $(CONF); fi
	install -d -m 0750 $(DESTDIR)$(STATEDIR)
	@# A root start becomes the user starling when it exists: the directory must be its.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && getent passwd starling >/dev/null; then \
		echo "chown starling:starling $(STATEDIR)"; chown starling:starling $(STATEDIR); fi

# Removes what install put in place, except the configuration once edited and the data.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/starlingd $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_TOOLS)) \
		$(DESTDIR)$(UNITDIR)/starlingd.service
	rm -f $(foreach p,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(p)))/$(notdir $(p)))
	@if [ -e $(CONF) ] && sed -e 's|^persistence_location /var/lib/starling$$|persistence_location $(STATEDIR)|' \
		tools/dist/starling.conf | cmp -s - $(CONF); then \
		echo "rm -f $(CONF)"; rm -f $(CONF); rmdir $(DESTDIR)$(SYSCONFDIR)/starling 2>/dev/null || true; \
	elif [ -e $(CONF) ]; then echo "make uninstall: keeping the edited $(CONF)"; fi
	@rmdir $(DESTDIR)$(STATEDIR) 2>/dev/null || echo "make uninstall: keeping $(DESTDIR)$(STATEDIR)"

# make deb: build/starling_VERSION_ARCH.deb (tools/dist/mkdeb.sh), from an install with
# PREFIX=/usr staged in DEB_STAGE. DEB_STAGE and DEB_OUT let the tests build their own.
DEB_STAGE ?= $(B)/deb
DEB_OUT   ?= $(B)
deb: all
	rm -rf $(DEB_STAGE)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(DEB_STAGE))/root PREFIX=/usr \
		SYSCONFDIR=/etc LOCALSTATEDIR=/var UNITDIR=/lib/systemd/system >/dev/null
	tools/dist/mkdeb.sh $(abspath $(DEB_STAGE)) $(VERSION) $(abspath $(DEB_OUT))

# --- housekeeping --------------------------------------------------------------------
FORMAT_FILES := $(wildcard src/*.[ch] src/*/*.[ch] include/starling/*.h tools/*.[ch] tools/bench/*.[ch] test/*.[ch] bench/*.[ch])
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)
layer-check:
	tools/check-layers.sh

clean:
	rm -rf $(B)

-include $(shell find $(B) -name '*.d' 2>/dev/null)
