# POS household resolver: pos-central, pos-agent, pos-store, pos-hwsim and their tests.
# Everything builds into $(BUILD); sources are found by directory, so adding a
# module is adding a .c/.h pair.

BUILD       ?= build
PREFIX      ?= /usr/local
DESTDIR     ?=
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
SOAK_SECONDS ?= 300
BENCH_SECONDS ?= 10

# libevent_openssl: the agent's unit tests serve TLS with it (tls_testkit.h).
PKGS := openssl libcurl libserialport sqlite3 libevent libevent_openssl \
        libevent_pthreads jansson libpq

# Debian packages the build, the tests and the demo need.
DEB_PKGS := build-essential pkg-config clang libclang-rt-14-dev libssl-dev \
        libcurl4-openssl-dev libserialport-dev libsqlite3-dev libevent-dev \
        libjansson-dev libcmocka-dev libpq-dev openssl curl sqlite3 python3 \
        python3-cryptography \
        procps chromium chromium-driver python3-selenium udev
# The PostgreSQL server the tests start (tests/pg/pgctl). Where it cannot be
# installed, make test says so and skips the PostgreSQL half.
PG_DEB_PKGS := postgresql-15 postgresql-client

WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
        -Wformat=2 -Wvla -Werror
CFLAGS ?= -O2 -g
SAN ?=
ifeq ($(SAN),1)
CFLAGS += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
        $(WARN) $(CFLAGS) -Icommon -Icentral -Iterminal $(PKG_CFLAGS) -MMD -MP
LIBS = $(PKG_LIBS) -lpthread -lm

# --version: the product's version and the revision built. Only version.o
# sees them, and it rebuilds when the stamp's content changes.
POS_VERSION := 1.0
GIT_REV := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
VERSION_STAMP := $(BUILD)/version.stamp
VERSION_LINE := $(POS_VERSION) $(GIT_REV)
$(shell mkdir -p $(BUILD) && (echo '$(VERSION_LINE)' | cmp -s - $(VERSION_STAMP) || echo '$(VERSION_LINE)' > $(VERSION_STAMP)))

COMMON_SRC  := $(wildcard common/*.c)
CENTRAL_SRC := $(filter-out central/main.c,$(wildcard central/*.c))
AGENT_SRC   := $(filter-out terminal/main.c terminal/store_main.c,$(wildcard terminal/*.c))
HWSIM_SRC   := $(wildcard hw/sim/*.c)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC   := $(wildcard tests/bench/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON  := $(BUILD)/lib/libposcommon.a
LIBCENTRAL := $(BUILD)/lib/libcentral.a
LIBAGENT   := $(BUILD)/lib/libagent.a
BINS := $(BUILD)/bin/pos-central $(BUILD)/bin/pos-agent $(BUILD)/bin/pos-store \
        $(BUILD)/bin/pos-hwsim
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all deps test unit asan fuzz fuzz-build clean demo bench soak screenshots install check-deps
.DEFAULT_GOAL := all

all: $(LIBCOMMON) $(BINS)

# Installs only what is missing; silent when everything is present.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@missing=""; for p in $(PG_DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  { $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } || \
	  echo "make deps: WARNING: PostgreSQL could not be installed ($$missing): make test will skip the PostgreSQL half"; \
	fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/common/version.o: $(VERSION_STAMP)
$(BUILD)/obj/common/version.o: ALL_CFLAGS += -DPOS_VERSION='"$(POS_VERSION)"' -DPOS_GIT_REV='"$(GIT_REV)"'

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(LIBCENTRAL): $(call obj,$(CENTRAL_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(LIBAGENT): $(call obj,$(AGENT_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/bin/pos-central: $(call obj,central/main.c) $(LIBCENTRAL) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/pos-agent: $(call obj,terminal/main.c) $(LIBAGENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The store's controller shares the agent's objects (uplink, spool, http).
$(BUILD)/bin/pos-store: $(call obj,terminal/store_main.c) $(LIBAGENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/pos-hwsim: $(call obj,$(HWSIM_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Unit tests link every library; the archive linker takes only what a test uses.
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIBCENTRAL) $(LIBAGENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(TEST_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

# Fault injection: the store's SQLite calls and allocations fail on demand.
FAULT_WRAP := sqlite3_open_v2 sqlite3_prepare_v2 sqlite3_prepare_v3 sqlite3_step \
        sqlite3_exec sqlite3_backup_step malloc calloc realloc
$(BUILD)/tests/test_store_fault: TEST_LDFLAGS = $(patsubst %,-Wl$(comma)--wrap=%,$(FAULT_WRAP))
comma := ,
$(BUILD)/tests/test_httpd_fault: TEST_LDFLAGS = $(patsubst %,-Wl$(comma)--wrap=%,malloc calloc realloc event_new)

# libFuzzer harnesses: clang, AddressSanitizer and UBSan, own object tree.
FUZZ_CC ?= clang
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
        -Icommon -Icentral -Iterminal $(PKG_CFLAGS)
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
FUZZ_LIBS := $(BUILD)/fuzzlib/libcentral.a $(BUILD)/fuzzlib/libagent.a $(BUILD)/fuzzlib/libposcommon.a
$(BUILD)/fuzzlib/libposcommon.a: $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(COMMON_SRC))
$(BUILD)/fuzzlib/libcentral.a: $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(CENTRAL_SRC))
$(BUILD)/fuzzlib/libagent.a: $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(AGENT_SRC))
$(FUZZ_LIBS):
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^
$(BUILD)/fuzz/%: $(BUILD)/fuzzobj/tests/fuzz/%.o $(FUZZ_LIBS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)
fuzz-build: $(FUZZ_BINS)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIBCENTRAL) $(LIBAGENT) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

unit: all $(UNIT_BINS)

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS) $(FUZZ_BINS)
	@BUILD=$(BUILD) FUZZ_SMOKE_SECONDS=$(FUZZ_SMOKE_SECONDS) tests/run.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 test

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) ./demo.sh

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@BUILD=$(BUILD) BENCH_SECONDS=$(BENCH_SECONDS) tests/bench/run.sh

# The docs' screenshots: the browser tests, writing into docs/img.
screenshots: deps
	@$(MAKE) --no-print-directory all
	@for t in test_receipts test_vendor_page test_analyst; do \
	  BUILD=$(BUILD) POS_SCREENSHOTS=$(CURDIR)/docs/img tests/integration/$$t || exit 1; done

soak: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) python3 tests/soak/soak.py

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/pos/profiles \
	  $(DESTDIR)$(PREFIX)/share/pos/www \
	  $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/lib/udev/rules.d \
	  $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 hw/profiles/* $(DESTDIR)$(PREFIX)/share/pos/profiles/
	install -m 0644 www/* $(DESTDIR)$(PREFIX)/share/pos/www/
	for u in hw/systemd/*.service; do \
	  sed 's#/usr/local/bin/#$(PREFIX)/bin/#' $$u > $(DESTDIR)$(PREFIX)/lib/systemd/system/$$(basename $$u); \
	  chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$$(basename $$u); \
	done
	install -m 0644 hw/udev/*.rules $(DESTDIR)$(PREFIX)/lib/udev/rules.d/
	install -m 0644 hw/systemd/pos.sysusers.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/pos.conf
	install -m 0644 hw/systemd/pos.tmpfiles.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/pos.conf
	install -m 0644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj $(BUILD)/fuzzobj -name '*.d' 2>/dev/null)
