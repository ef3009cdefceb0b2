# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# kmemscope build. `make V=1` shows full commands; OUTPUT= moves the build tree.

OUTPUT ?= build
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VMLINUX_DIR ?= vmlinux/$(ARCH)
CLANG ?= clang
BPFTOOL ?= bpftool
PROTOC_C ?= protoc-c
CC ?= cc

# CFLAGS, CPPFLAGS and LDFLAGS are the packager's (make CFLAGS="-O2 -g"
# LDFLAGS=-Wl,-z,relro): they add to the build's own flags, kept apart in
# KMS_*, as bpftool and perf keep theirs, and come last so they can override.
CFLAGS ?= -g -O2
# Link-time optimization: the record path crosses files (pipeline, store,
# aggregator, detectors) once per record, and inlined across them a replay's
# pipeline thread runs ~10 % fewer instructions (bench/README.md, issue 8).
# `make KMS_LTO=` builds without it.
KMS_LTO := -flto=auto
KMS_CFLAGS := -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	      -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc -I$(OUTPUT) -MMD -MP $(KMS_LTO) \
	      $(CPPFLAGS) $(CFLAGS)
KMS_LDFLAGS := $(KMS_LTO) $(CFLAGS) $(LDFLAGS)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(VMLINUX_DIR) -Iinclude \
	      -Wall -Wno-unused-function -Wno-compare-distinct-pointer-types
# libdw: source lines of user frames (src/srcline.c); its static archive needs the
# decompressors it reads compressed debug files with (lzma, bz2) spelled out
LIBS := -lbpf -ldw -lelf -lz -lzstd -ljansson -lprotobuf-c -lncursesw -ltinfo -lm -lmicrohttpd
STATIC_LIBS := -lbpf -ldw -lelf -lz -ljansson -lprotobuf-c -lncursesw -ltinfo -lm -lzstd -llzma -lbz2

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
SRCS := $(wildcard src/*.c)
# pprof's profile.proto, compiled by protoc-c into the build tree (src/pprof.c)
PROTO_GEN := $(OUTPUT)/profile.pb-c.c $(OUTPUT)/profile.pb-c.h
OBJS := $(patsubst src/%.c,$(OUTPUT)/obj/%.o,$(SRCS)) $(OUTPUT)/obj/profile.pb-c.o
LIB_OBJS := $(filter-out $(OUTPUT)/obj/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
TEST_TOOLS := $(OUTPUT)/tests/trigger $(OUTPUT)/tests/kernel $(OUTPUT)/tests/order \
	      $(OUTPUT)/bench/gen $(OUTPUT)/tests/ledger $(OUTPUT)/tests/ledger-jemalloc \
	      $(OUTPUT)/tests/ledger-jemalloc-static
# the trace reader and writer alone, built again with sanitizers: their unit
# test (run by make unit next to the plain one) and the reader's fuzzer
TRACE_SRCS := src/trace_read.c src/trace_write.c src/ksyms.c src/kvec.c
TRACE_HDRS := src/trace.h src/trace_codec.h src/ksyms.h src/kvec.h include/kmemscope.h
SAN_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	      -fno-sanitize-recover=all -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc -Wall
SAN_TEST := $(OUTPUT)/san/test_trace
FUZZ_BIN := $(OUTPUT)/san/fuzz_trace
FUZZ_SECONDS ?= 60
# man pages (section 1) from the Markdown reference: docs/man/README.md
MAN_DOCS := docs/kmemscope.md $(wildcard docs/man/kmemscope-*.md)
MAN_PAGES := $(OUTPUT)/man/kmemscope.1 \
	     $(patsubst docs/man/%.md,$(OUTPUT)/man/%.1,$(wildcard docs/man/kmemscope-*.md))
MAN_INCLUDES := $(wildcard docs/man/options-*.md docs/man/exit-*.md)
PANDOC ?= pandoc
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
INSTALL ?= install
BENCH_TOOLS := $(OUTPUT)/bench/gen $(OUTPUT)/bench/floor $(OUTPUT)/bench/store \
	       $(OUTPUT)/bench/mloop \
	       $(OUTPUT)/bench/trace \
	       $(OUTPUT)/tests/trigger

.PHONY: FORCE all deps run test unit fuzz gate live qemu bench static clean help vmlinux \
	man install uninstall packaging
.DELETE_ON_ERROR:
# keep the BPF objects the skeletons are made from
.SECONDARY:

all: $(OUTPUT)/kmemscope man

help:
	@echo "make            build $(OUTPUT)/kmemscope"
	@echo "make deps       install the Debian packages the build and tests need"
	@echo "make run        deps + build + kmemscope stat -d 10 on this system"
	@echo "make test       deps + build + unit, fuzz, gate, live and QEMU tests"
	@echo "make fuzz       fuzz the trace reader for FUZZ_SECONDS (60)"
	@echo "make bench      overhead benchmark (bench/README.md)"
	@echo "make static     statically linked binary (for the QEMU guest)"
	@echo "make vmlinux    regenerate $(VMLINUX_DIR)/vmlinux.h from a kernel's BTF"
	@echo "make install    binary, man pages, bash completion (PREFIX=$(PREFIX), DESTDIR=)"
	@echo "make uninstall  remove what make install installed"

deps:
	$(Q)scripts/deps.sh

$(OUTPUT) $(OUTPUT)/obj $(OUTPUT)/tests $(OUTPUT)/bench $(OUTPUT)/san $(OUTPUT)/man:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c include/kmemscope.h $(wildcard bpf/*.h) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o | $(OUTPUT)
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OBJS): $(SKELS) $(PROTO_GEN)

$(PROTO_GEN) &: third_party/pprof/profile.proto | $(OUTPUT)
	$(call msg,PROTOC-C,$@)
	$(Q)$(PROTOC_C) --proto_path=third_party/pprof --c_out=$(OUTPUT) $<

$(OUTPUT)/obj/profile.pb-c.o: $(OUTPUT)/profile.pb-c.c | $(OUTPUT)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The version: the release in VERSION, which trace files and baselines name
# (the gate compares runs of one release), and the build's git describe when
# this tree is a git checkout (not in a tarball, nor one unpacked inside
# another repository). Rewritten only when it changes: only main.o is rebuilt.
KMS_GIT = $(if $(filter $(CURDIR),$(shell git rev-parse --show-toplevel 2>/dev/null)),$\
	  $(shell git describe --always --dirty 2>/dev/null))

$(OUTPUT)/version.h: FORCE | $(OUTPUT)
	$(Q)printf '#define KMS_RELEASE "%s"\n#define KMS_GIT "%s"\n' "$$(cat VERSION)" \
		"$(KMS_GIT)" > $@.tmp
	$(Q)cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@

$(OUTPUT)/obj/main.o: $(OUTPUT)/version.h

$(OUTPUT)/obj/%.o: src/%.c | $(OUTPUT)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(KMS_CFLAGS) -c $< -o $@

$(OUTPUT)/kmemscope: $(OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(KMS_LDFLAGS) $^ $(LIBS) -o $@

# without serve: Debian has no static libraries of libmicrohttpd's TLS dependencies
# (p11-kit, libunistring), and the QEMU guest that runs this binary serves nothing
static: $(OUTPUT)/kmemscope-static
$(OUTPUT)/kmemscope-static: $(filter-out $(OUTPUT)/obj/serve.o,$(OBJS))
	$(call msg,STATIC,$@)
	$(Q)$(CC) $(KMS_LDFLAGS) -static $^ $(STATIC_LIBS) -o $@

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(KMS_CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) $(LIBS) -lcmocka -o $@

# srcline's test reads its own line table, whatever CFLAGS a packager gives
$(OUTPUT)/tests/test_srcline: KMS_CFLAGS += -g

$(SAN_TEST): tests/unit/test_trace.c tests/unit/rnd.h $(TRACE_SRCS) $(TRACE_HDRS) | $(OUTPUT)/san
	$(call msg,TEST-SAN,$@)
	$(Q)$(CLANG) $(SAN_CFLAGS) $(filter %.c,$^) -lz -lzstd -ljansson -lcmocka -o $@

$(FUZZ_BIN): tests/fuzz/fuzz_trace.c src/trace_read.c src/ksyms.c src/kvec.c $(TRACE_HDRS) \
	     | $(OUTPUT)/san
	$(call msg,FUZZER,$@)
	$(Q)$(CLANG) $(SAN_CFLAGS) -fsanitize=fuzzer $(filter %.c,$^) -lz -lzstd -ljansson -o $@

$(OUTPUT)/tests/trigger: tests/live/trigger.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(KMS_CFLAGS) $(LDFLAGS) $< -o $@

# --user's ground truth: frame pointers for its user stacks, calls kept apart (-O1)
$(OUTPUT)/tests/ledger: tests/user/ledger.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) -g -O1 -fno-omit-frame-pointer -Wall $< -lpthread -o $@

# the same against jemalloc: linked, and linked into the executable itself (its C++ parts
# need libstdc++); tcmalloc is preloaded by the test
$(OUTPUT)/tests/ledger-jemalloc: tests/user/ledger.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) -g -O1 -fno-omit-frame-pointer -Wall $< -ljemalloc -lpthread -o $@

$(OUTPUT)/tests/ledger-jemalloc-static: tests/user/ledger.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) -g -O1 -fno-omit-frame-pointer -Wall $< -Wl,-Bstatic -ljemalloc_pic -Wl,-Bdynamic \
		-lpthread -lm -lstdc++ -o $@

# checks of the pure modules against the running kernel's files (live tier)
$(OUTPUT)/tests/kernel: tests/live/kernel.c $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(KMS_CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) $(LIBS) -o $@

# drives the real BPF handlers into the real collector (BPF_PROG_TEST_RUN)
$(OUTPUT)/tests/order: tests/live/order.c $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(KMS_CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) $(LIBS) -o $@

$(OUTPUT)/bench/gen: bench/gen.c | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(KMS_CFLAGS) $(LDFLAGS) $< -o $@

# the malloc/free loop of bench/user.sh
$(OUTPUT)/bench/mloop: bench/mloop.c | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

# the record pipeline alone, on a synthetic stream (bench/store.c)
$(OUTPUT)/bench/store: bench/store.c $(LIB_OBJS) | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(KMS_CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) $(LIBS) -o $@

# reading, writing and compressing a recorded trace file (bench/trace.c)
$(OUTPUT)/bench/trace: bench/trace.c $(LIB_OBJS) | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(KMS_CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) $(LIBS) -o $@

# count-only BPF floor for the benchmark (not part of kmemscope itself)
$(OUTPUT)/bench/%.bpf.o: bench/%.bpf.c $(wildcard bench/*.h) | $(OUTPUT)/bench
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/bench/%.skel.h: $(OUTPUT)/bench/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# -u probes the functions kmemscope --user does: it takes their list from src/user.c
$(OUTPUT)/bench/floor: bench/floor.c $(OUTPUT)/bench/floor.skel.h $(LIB_OBJS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(KMS_CFLAGS) $(LDFLAGS) -I$(OUTPUT)/bench $(filter %.c %.o,$^) $(LIBS) -o $@

man: $(MAN_PAGES)

MAN_DEPS := docs/man/man.lua $(MAN_INCLUDES) VERSION
define man-page
	$(call msg,MAN,$@)
	$(Q)$(PANDOC) -s -f markdown -t man --lua-filter docs/man/man.lua \
		-M version="$$(cat VERSION)" $< -o $@
endef
$(OUTPUT)/man/kmemscope.1: docs/kmemscope.md $(MAN_DEPS) | $(OUTPUT)/man
	$(man-page)
$(OUTPUT)/man/%.1: docs/man/%.md $(MAN_DEPS) | $(OUTPUT)/man
	$(man-page)

install: all
	$(Q)$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR)
	$(Q)$(INSTALL) -m 0755 $(OUTPUT)/kmemscope $(DESTDIR)$(BINDIR)/kmemscope
	$(Q)$(INSTALL) -m 0644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man1/
	$(Q)$(INSTALL) -m 0644 scripts/kmemscope.bash $(DESTDIR)$(BASHCOMPDIR)/kmemscope

uninstall:
	$(Q)rm -f $(DESTDIR)$(BINDIR)/kmemscope $(DESTDIR)$(BASHCOMPDIR)/kmemscope \
		$(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN_PAGES)))

# man pages, install, completion, a packager's build (no root)
packaging: all
	$(Q)tests/packaging/run.py $(OUTPUT)

unit: $(UNIT_BINS) $(SAN_TEST)
	$(Q)tests/unit/run.sh $(UNIT_BINS) $(SAN_TEST)

# a crash, a leak or a hang fails it, leaving the input in $(OUTPUT)/fuzz
fuzz: $(FUZZ_BIN)
	$(Q)tests/fuzz/run.sh $(FUZZ_BIN) $(FUZZ_SECONDS) $(OUTPUT)/fuzz

# kmemscope diff/baseline/check on JSON reports the test writes (no root)
gate: all
	$(Q)tests/gate/run.py $(OUTPUT)

live: all $(TEST_TOOLS)
	$(Q)tests/live/run.sh $(OUTPUT)

# the harness reports a missing static binary per scenario, loudly;
# KERNELS="6.1 6.12 6.1-rt" (the default) picks the guests (tests/qemu/README.md)
qemu: all
	$(Q)$(MAKE) --no-print-directory static || echo "qemu: static build failed"
	$(Q)tests/qemu/run.sh $(OUTPUT) $(KERNELS)

# The one command that installs, builds and runs every test (README, .ci/run).
test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/run-all.sh $(OUTPUT)

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(OUTPUT)/kmemscope stat -d 10

bench: deps
	$(Q)$(MAKE) --no-print-directory all $(BENCH_TOOLS)
	$(Q)bench/run.sh $(OUTPUT)
	$(Q)BENCH_MODE=mmap BENCH_ITERS=30000 bench/run.sh $(OUTPUT)
	$(Q)bench/memory.sh $(OUTPUT)
	$(Q)bench/peak.py $(OUTPUT)
	$(Q)bench/user.py $(OUTPUT)
	@echo "bench/store: the leaks pipeline"
	$(Q)$(OUTPUT)/bench/store
	@echo "bench/store -s: the stat pipeline"
	$(Q)$(OUTPUT)/bench/store -s

vmlinux:
	$(Q)scripts/gen-vmlinux.sh $(VMLINUX_DIR)

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUTPUT)

-include $(OBJS:.o=.d) $(UNIT_BINS:=.d) $(OUTPUT)/tests/kernel.d
