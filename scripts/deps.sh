#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Install every Debian package kmemscope's build, tests and benchmark need.
# Idempotent: does nothing when all are present.
set -e
# libclang-rt-dev: the sanitizer and libFuzzer runtimes, only recommended by clang;
# zstd: the tests read trace payloads with it; pandoc: the man pages; man-db: their test;
# dwarves (pahole): the QEMU tests' module gets BTF when built against 6.12's headers,
# whose kbuild requires it; libxml2-utils (xmllint) and chromium: the flame graph tests
# check the SVG and render it headless; protobuf-c: pprof output; golang-go: the tests
# read the pprof output with `go tool pprof`; libmicrohttpd: serve's HTTP server;
# prometheus: serve's test scrapes with it; binutils: the --user test strips a copy of
# its program; heaptrack, bpfcc-tools: the peers of --user in the benchmark; libdw-dev:
# file:line of user frames from DWARF (libbz2-dev: its static link, make static);
# libjemalloc-dev, libgoogle-perftools-dev (tcmalloc): the --user test links and
# preloads its program against each allocator
PKGS="make gcc clang llvm libclang-rt-dev libbpf-dev bpftool libelf-dev zlib1g-dev
libzstd-dev zstd libjansson-dev libcmocka-dev libncurses-dev pkg-config linux-perf
qemu-system-x86 busybox-static cpio kmod python3 bc time pandoc man-db dwarves
libxml2-utils chromium libprotobuf-c-dev protobuf-c-compiler golang-go libmicrohttpd-dev
prometheus binutils heaptrack bpfcc-tools libdw-dev libbz2-dev libjemalloc-dev
libgoogle-perftools-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# the QEMU tests resolve and download Debian's kernel by name: they need package lists
lists=$(ls /var/lib/apt/lists/ 2>/dev/null | grep -c '_Packages' || true)
if [ -z "$missing" ] && [ "$lists" -gt 0 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "kmemscope: missing packages:${missing:- (none), but no package lists} (run 'make deps' as root)" >&2
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive
# several builds may install at once (worktrees, CI jobs): wait for the lock, do not fail
apt-get -o DPkg::Lock::Timeout=600 update -qq
[ -z "$missing" ] && exit 0
echo "  DEPS    installing:$missing"
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
