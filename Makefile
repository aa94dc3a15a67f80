# kinko build. `make` builds build/kinko; `make SAN=1` builds an
# ASan+UBSan tree in build-san/; `make TSAN=1` a ThreadSanitizer tree in
# build-tsan/; `make CC=clang` builds with clang.
# BUILD=dir picks another output folder (parallel work trees).

CC ?= cc
SAN ?= 0
TSAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
else ifeq ($(TSAN),1)
BUILD ?= build-tsan
else
BUILD ?= build
endif

PKGS := libmicrohttpd gnutls jansson sqlite3 libcrypto libcurl libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS))
# PKCS#11 headers only: a token's module is loaded with dlopen at run time.
PKG_CFLAGS += $(shell pkg-config --cflags p11-kit-1)

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wconversion -Wstrict-prototypes \
	-Wmissing-prototypes -Wvla -Wimplicit-fallthrough -Wno-unused-parameter
HARDEN := -fstack-protector-strong -fPIE -fno-strict-overflow -fno-delete-null-pointer-checks
ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
	-DKINKO_DEBUG
LDSAN := -fsanitize=address,undefined
else ifeq ($(TSAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=thread -DKINKO_DEBUG
LDSAN := -fsanitize=thread
else
OPT := -O2 -g -D_FORTIFY_SOURCE=3
LDSAN :=
endif

CFLAGS_ALL := -std=c17 -D_GNU_SOURCE -include src/core/banned.h $(WARN) $(HARDEN) $(OPT) -Isrc $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_ALL := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack $(LDSAN) $(EXTRA_LDFLAGS)
LIBS := $(PKG_LIBS) -lpthread -lm

LIB_SRCS := $(filter-out src/cli/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(shell find tests/unit -name '*_test.c' | sort)
TEST_BINS := $(patsubst tests/unit/%_test.c,$(BUILD)/tests/%_test,$(TEST_SRCS))
TESTLIB := tests/unit/testlib.c

.PHONY: all clean unit-tests test
all: $(BUILD)/kinko $(TEST_BINS) $(BUILD)/tests/result_mix.ok

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libkinko.a: $(LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/kinko: $(BUILD)/obj/src/cli/main.o $(BUILD)/libkinko.a
	@echo "  LD $@"
	@$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS)

$(BUILD)/tests/%_test: tests/unit/%_test.c $(TESTLIB) $(BUILD)/libkinko.a
	@mkdir -p $(dir $@)
	@echo "  TEST $@"
	@$(CC) $(CFLAGS_ALL) -Itests/unit $(LDFLAGS_ALL) $(TEST_LDFLAGS) -o $@ $(filter %.c,$^) \
		$(BUILD)/libkinko.a $(LIBS)

# This test counts the library's calls of crypto_memeq: the linker sends
# them to its __wrap_crypto_memeq.
$(BUILD)/tests/xks/cdiv_compare_test: TEST_LDFLAGS := -Wl,--wrap=crypto_memeq

# Both storage backends run the one contract of storage.h.
STORAGE_CONTRACT := tests/unit/storage/contract.c tests/unit/storage/contract.h
$(BUILD)/tests/storage/sqlite_test $(BUILD)/tests/storage/pg_test: $(STORAGE_CONTRACT)

unit-tests: $(TEST_BINS) $(BUILD)/tests/result_mix.ok

# k_status does not mix with int: case 0 of result_mix.c must compile, every
# other case must not.
MIX_SRC := tests/unit/core/result_mix.c
MIX_CASES := $(shell sed -n 's/^\#elif MIX_CASE == //p' $(MIX_SRC))
$(BUILD)/tests/result_mix.ok: $(MIX_SRC) src/core/result.h src/core/errors.def
	@mkdir -p $(dir $@)
	@echo "  MIX $<"
	@$(CC) $(CFLAGS_ALL) -DMIX_CASE=0 -c -o /dev/null $<
	@for c in $(MIX_CASES); do \
		if $(CC) $(CFLAGS_ALL) -DMIX_CASE=$$c -c -o /dev/null $< 2>/dev/null; then \
			echo "$<: case $$c compiles: k_status mixes with int" >&2; exit 1; \
		fi; \
	done
	@touch $@

# Every test: unit, integration (real clients), and the same under sanitizers.
test:
	./tests/run-all.sh

clean:
	rm -rf build build-san build-*

# Fuzzing (docs/SECURITY.md): `make fuzz` builds each fuzz/*_fuzz.c
# libFuzzer harness with clang under ASan+UBSan into build-fuzz/.
# `make fuzz-run FUZZ_SECONDS=25` runs each over its seed corpus.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 25
FUZZ_SRCS := $(sort $(wildcard fuzz/*_fuzz.c))
FUZZ_NAMES := $(patsubst fuzz/%_fuzz.c,%,$(FUZZ_SRCS))
.PHONY: fuzz fuzz-bins fuzz-run
fuzz:
	@$(MAKE) --no-print-directory CC=clang SAN=1 BUILD=$(FUZZ_BUILD) \
		EXTRA_CFLAGS=-fsanitize=fuzzer-no-link fuzz-bins

fuzz-bins: $(patsubst %,$(BUILD)/fuzz/%_fuzz,$(FUZZ_NAMES))

$(BUILD)/fuzz/%_fuzz: fuzz/%_fuzz.c fuzz/support.c fuzz/support.h $(BUILD)/libkinko.a
	@mkdir -p $(dir $@)
	@echo "  FUZZ $@"
	@$(CC) $(CFLAGS_ALL) -Ifuzz -fsanitize=fuzzer $(LDFLAGS_ALL) -o $@ $< fuzz/support.c \
		$(BUILD)/libkinko.a $(LIBS)

fuzz-run: fuzz
	./fuzz/run.sh $(FUZZ_SECONDS)

-include $(LIB_OBJS:.o=.d) $(BUILD)/obj/src/cli/main.d

# `make install`: the binary, the rotation functions, the man page, the
# systemd unit and the bash completion, under PREFIX (default /usr/local),
# staged under DESTDIR when set.
PREFIX ?= /usr/local
INSTALL_BIN ?= $(BUILD)/kinko
.PHONY: install
install: $(INSTALL_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/kinko/rotation \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/kinko
	install -m 0755 rotation/postgresql.py $(DESTDIR)$(PREFIX)/lib/kinko/rotation/postgresql.py
	install -m 0644 dist/kinko.1 $(DESTDIR)$(PREFIX)/share/man/man1/kinko.1
	sed 's|/usr/local/bin/kinko|$(PREFIX)/bin/kinko|' dist/kinko.service \
		> $(DESTDIR)$(PREFIX)/lib/systemd/system/kinko.service
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/kinko.service
	install -m 0644 dist/kinko.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/kinko
