# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# kmemscope build. `make V=1` shows full commands; OUTPUT= moves the build tree.

OUTPUT ?= build
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VMLINUX_DIR ?= vmlinux/$(ARCH)
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc

CFLAGS ?= -g -O2
CFLAGS += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	  -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc -I$(OUTPUT) -MMD -MP
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(VMLINUX_DIR) -Iinclude \
	      -Wall -Wno-unused-function -Wno-compare-distinct-pointer-types
LIBS := -lbpf -lelf -lz -lzstd -ljansson -lncursesw -ltinfo -lm
STATIC_LIBS := -lbpf -lelf -lz -ljansson -lncursesw -ltinfo -lm -lzstd

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
OBJS := $(patsubst src/%.c,$(OUTPUT)/obj/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(OUTPUT)/obj/main.o,$(OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))
TEST_TOOLS := $(OUTPUT)/tests/trigger $(OUTPUT)/tests/kernel $(OUTPUT)/tests/order \
	      $(OUTPUT)/bench/gen $(OUTPUT)/tests/ledger
# the trace reader and writer alone, built again with sanitizers: their unit
# test (run by make unit next to the plain one) and the reader's fuzzer
TRACE_SRCS := src/trace_read.c src/trace_write.c src/ksyms.c src/kvec.c
TRACE_HDRS := src/trace.h src/trace_codec.h src/ksyms.h src/kvec.h include/kmemscope.h
SAN_CFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	      -fno-sanitize-recover=all -std=gnu11 -D_GNU_SOURCE -Iinclude -Isrc -Wall
SAN_TEST := $(OUTPUT)/san/test_trace
FUZZ_BIN := $(OUTPUT)/san/fuzz_trace
FUZZ_SECONDS ?= 60
BENCH_TOOLS := $(OUTPUT)/bench/gen $(OUTPUT)/bench/floor $(OUTPUT)/bench/store \
	       $(OUTPUT)/bench/mloop \
	       $(OUTPUT)/bench/trace \
	       $(OUTPUT)/tests/trigger

.PHONY: all deps run test unit fuzz gate live qemu bench static clean help vmlinux
.DELETE_ON_ERROR:
# keep the BPF objects the skeletons are made from
.SECONDARY:

all: $(OUTPUT)/kmemscope

help:
	@echo "make            build $(OUTPUT)/kmemscope"
	@echo "make deps       install the Debian packages the build and tests need"
	@echo "make run        deps + build + kmemscope stat -d 10 on this system"
	@echo "make test       deps + build + unit, fuzz, gate, live and QEMU tests"
	@echo "make fuzz       fuzz the trace reader for FUZZ_SECONDS (60)"
	@echo "make bench      overhead benchmark (bench/README.md)"
	@echo "make static     statically linked binary (for the QEMU guest)"
	@echo "make vmlinux    regenerate $(VMLINUX_DIR)/vmlinux.h from a kernel's BTF"

deps:
	$(Q)scripts/deps.sh

$(OUTPUT) $(OUTPUT)/obj $(OUTPUT)/tests $(OUTPUT)/bench $(OUTPUT)/san:
	$(Q)mkdir -p $@

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c include/kmemscope.h $(wildcard bpf/*.h) | $(OUTPUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o | $(OUTPUT)
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OBJS): $(SKELS)

$(OUTPUT)/obj/%.o: src/%.c | $(OUTPUT)/obj
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUTPUT)/kmemscope: $(OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LIBS) -o $@

static: $(OUTPUT)/kmemscope-static
$(OUTPUT)/kmemscope-static: $(OBJS)
	$(call msg,STATIC,$@)
	$(Q)$(CC) $(CFLAGS) -static $^ $(STATIC_LIBS) -o $@

$(OUTPUT)/tests/test_%: tests/unit/test_%.c $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LIBS) -lcmocka -o $@

$(SAN_TEST): tests/unit/test_trace.c tests/unit/rnd.h $(TRACE_SRCS) $(TRACE_HDRS) | $(OUTPUT)/san
	$(call msg,TEST-SAN,$@)
	$(Q)$(CLANG) $(SAN_CFLAGS) $(filter %.c,$^) -lz -lzstd -ljansson -lcmocka -o $@

$(FUZZ_BIN): tests/fuzz/fuzz_trace.c src/trace_read.c src/ksyms.c src/kvec.c $(TRACE_HDRS) \
	     | $(OUTPUT)/san
	$(call msg,FUZZER,$@)
	$(Q)$(CLANG) $(SAN_CFLAGS) -fsanitize=fuzzer $(filter %.c,$^) -lz -lzstd -ljansson -o $@

$(OUTPUT)/tests/trigger: tests/live/trigger.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

# --user's ground truth: frame pointers for its user stacks, calls kept apart (-O1)
$(OUTPUT)/tests/ledger: tests/user/ledger.c | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) -g -O1 -fno-omit-frame-pointer -Wall $< -lpthread -o $@

# checks of the pure modules against the running kernel's files (live tier)
$(OUTPUT)/tests/kernel: tests/live/kernel.c $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LIBS) -o $@

# drives the real BPF handlers into the real collector (BPF_PROG_TEST_RUN)
$(OUTPUT)/tests/order: tests/live/order.c $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LIBS) -o $@

$(OUTPUT)/bench/gen: bench/gen.c | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

# the malloc/free loop of bench/user.sh
$(OUTPUT)/bench/mloop: bench/mloop.c | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -o $@

# the record pipeline alone, on a synthetic stream (bench/store.c)
$(OUTPUT)/bench/store: bench/store.c $(LIB_OBJS) | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LIBS) -o $@

# reading, writing and compressing a recorded trace file (bench/trace.c)
$(OUTPUT)/bench/trace: bench/trace.c $(LIB_OBJS) | $(OUTPUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LIBS) -o $@

# count-only BPF floor for the benchmark (not part of kmemscope itself)
$(OUTPUT)/bench/%.bpf.o: bench/%.bpf.c $(wildcard bench/*.h) | $(OUTPUT)/bench
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/bench/%.skel.h: $(OUTPUT)/bench/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OUTPUT)/bench/floor: bench/floor.c $(OUTPUT)/bench/floor.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -I$(OUTPUT)/bench $< $(LIBS) -o $@

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

# the harness reports a missing static binary per scenario, loudly
qemu: all
	$(Q)$(MAKE) --no-print-directory static || echo "qemu: static build failed"
	$(Q)tests/qemu/run.sh $(OUTPUT)

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
