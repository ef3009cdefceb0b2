#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# QEMU tests: boot each of Debian's kernels with the kmemscope_test module and
# kmemscope-static in a busybox initramfs, run every scenario of scenarios.txt
# under `kmemscope stat`, and compare the reports with the module's ledger.
# Usage: tests/qemu/run.sh OUTPUT_DIR [KERNEL...]   (make qemu KERNELS="...")
# KERNEL is one of the names kernel_spec() knows (default: all of them). Results
# go to OUTPUT_DIR/qemu/KERNEL/; KMS_QEMU_JOBS guests run at a time (default 2).
# KMS_QEMU_SELFTEST=1 checks the module's ledger against the kernel's own ftrace
# events instead (no kmemscope involved): run it after changing the module.
set -eu

OUT=${1:?usage: tests/qemu/run.sh OUTPUT_DIR [KERNEL...]}
shift
KERNELS=${*:-6.1 6.12 6.1-rt}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${KMS_QEMU_CACHE:-$HERE/cache}
TIMEOUT=${KMS_QEMU_TIMEOUT:-1200}
JOBS=${KMS_QEMU_JOBS:-2}
# one kmemscope run in the guest (guest-init.sh)
STEP_TIMEOUT=${KMS_QEMU_STEP_TIMEOUT:-30}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RES=$OUT/qemu
rm -rf "$RES"
mkdir -p "$RES" "$CACHE"

die() {
	echo "qemu: FAIL: $*" >&2
	echo "qemu: 0 passed, 1 failed"
	exit 1
}

for t in qemu-system-x86_64 cpio gzip python3 apt-cache apt-get dpkg-deb; do
	command -v "$t" >/dev/null || die "missing tool $t (make deps)"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] && "$BUSYBOX" --list 2>/dev/null | grep -qx insmod ||
	die "no static busybox at $BUSYBOX (apt-get install busybox-static)"

# Each kernel: the metapackages that name it, and the suite they live in. A suite
# the machine's apt does not list (backports) is reached through a private sources
# list and package lists under the cache: the machine's apt configuration is never
# touched.
kernel_spec() {
	case "$1" in
	6.1)	SUITE=; IMG_META=linux-image-amd64; HDR_META=linux-headers-amd64 ;;
	6.12)	SUITE=bookworm-backports; IMG_META=linux-image-amd64; HDR_META=linux-headers-amd64 ;;
	6.1-rt)	SUITE=; IMG_META=linux-image-rt-amd64; HDR_META=linux-headers-rt-amd64 ;;
	*)	return 1 ;;
	esac
}
for k in $KERNELS; do
	kernel_spec "$k" || die "unknown kernel '$k' (known: 6.1 6.12 6.1-rt)"
done

# apt's options for a suite: none for the machine's own, a private tree otherwise
apt_opts() {
	APT_OPTS=()
	[ -n "$1" ] || return 0
	local a=$CACHE/apt-$1
	APT_OPTS=(-o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=$a/none"
		  -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache")
}

# refresh a private suite's lists at most twice a day: the metapackage moves with
# every kernel update, the rest of the run must not depend on the network
apt_update() {
	local a=$CACHE/apt-$1 log=$RES/apt-update-$1.log
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/none"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $1 main" \
		>"$a/sources.list"
	# apt dates its lists by the server's clock: a stamp of our own says when
	[ -n "$(find "$a/updated" -mmin -720 2>/dev/null)" ] && return 0
	echo "qemu: apt-get update of $1 (private lists in $a)"
	apt-get "${APT_OPTS[@]}" -q update >"$log" 2>&1 ||
		die "apt-get update of $1 failed (see $log)"
	touch "$a/updated"
}

# the archive moves to a new ABI number with every kernel update: ask the metapackages
dep() { apt-cache "${APT_OPTS[@]}" depends "$1" 2>/dev/null |
	awk -v re="$2" '$1 == "Depends:" && $2 ~ re { print $2; exit }'; }

# Resolve, download and unpack kernel $1, build the module against its headers and
# pack the initramfs; sets VMLINUZ and INITRD. Runs in the foreground: downloads
# and builds are not parallel (apt's cache, two CPUs).
prepare() {
	local k=$1 res=$RES/$1
	mkdir -p "$res"
	kernel_spec "$k"
	apt_opts "$SUITE"
	[ -z "$SUITE" ] || apt_update "$SUITE"
	IMG=$(dep "$IMG_META" '^linux-image-[0-9]')
	HDR=$(dep "$HDR_META" '^linux-headers-[0-9]')
	[ -n "$IMG" ] && [ -n "$HDR" ] ||
		die "$k: cannot resolve $IMG_META/$HDR_META${SUITE:+ in $SUITE} (apt-get update?)"
	KVER=${IMG#linux-image-}
	# the RT flavour's common tree is linux-headers-*-common-rt
	COMMON=$(dep "$HDR" '^linux-headers-.*-common(-rt)?$')
	KBUILD=$(dep "$HDR" '^linux-kbuild-')
	[ -n "$COMMON" ] && [ -n "$KBUILD" ] || die "$k: cannot resolve the dependencies of $HDR"
	# 6.1's headers name their compiler through linux-compiler-gcc-N-x86, 6.12's
	# (backports) depend on gcc-N itself
	KCC=$(dep "$HDR" '^linux-compiler-gcc-[0-9]+-' | sed -n 's/^linux-compiler-\(gcc-[0-9]*\)-.*/\1/p')
	[ -n "$KCC" ] || KCC=$(dep "$HDR" '^gcc-[0-9]+$')
	[ -z "$KCC" ] || command -v "$KCC" >/dev/null || die "$HDR builds with $KCC: apt-get install $KCC"

	# exact package names only: a wildcard would fetch dozens of kernels
	local debs=$CACHE/debs p
	mkdir -p "$debs"
	for p in "$IMG" "$HDR" "$COMMON" "$KBUILD"; do
		ls "$debs/${p}_"*.deb >/dev/null 2>&1 && continue
		echo "qemu: downloading $p"
		(cd "$debs" && apt-get "${APT_OPTS[@]}" download -q "$p" >/dev/null 2>"$res/apt-$p.log") ||
			die "apt-get download $p failed (see $res/apt-$p.log)"
	done

	local root=$CACHE/root-$KVER
	if [ ! -f "$root/.done" ]; then
		rm -rf "$root"
		mkdir -p "$root"
		for p in "$IMG" "$HDR" "$COMMON" "$KBUILD"; do
			dpkg-deb -x "$(ls "$debs/${p}_"*.deb | tail -n 1)" "$root" ||
				die "cannot unpack $p"
		done
		# the headers' Makefile includes the -common tree by absolute /usr/src path
		sed -i "s#^include /usr/src/#include $root/usr/src/#" "$root/usr/src/$HDR/Makefile"
		touch "$root/.done"
	fi
	VMLINUZ=$root/boot/vmlinuz-$KVER
	[ -f "$VMLINUZ" ] || die "no $VMLINUZ in $IMG"

	# build the module out of the source tree
	local kb=$CACHE/build-kmod-$KVER
	rm -rf "$kb"
	mkdir -p "$kb"
	cp "$TOP/tests/kmod/kmemscope_test.c" "$TOP/tests/kmod/Kbuild" "$TOP/tests/kmod/Makefile" "$kb/"
	if ! make -C "$kb" KDIR="$root/usr/src/$HDR" >"$res/kmod-build.log" 2>&1; then
		tail -n 20 "$res/kmod-build.log" >&2
		die "$k: module build failed against $HDR (see $res/kmod-build.log)"
	fi

	local ir=$CACHE/initrd-$KVER
	rm -rf "$ir"
	mkdir -p "$ir/bin"
	cp "$BUSYBOX" "$ir/bin/busybox"
	cp "$kb/kmemscope_test.ko" "$ir/"
	cp "$HERE/guest-init.sh" "$ir/init"
	chmod +x "$ir/init"
	cp "$HERE/scenarios.txt" "$ir/scenarios.txt"
	if [ -x "$OUT/kmemscope-static" ]; then
		cp "$OUT/kmemscope-static" "$ir/kmemscope"
	else
		echo "qemu: $OUT/kmemscope-static does not exist: scenarios run without kmemscope and fail" >&2
	fi
	INITRD=$CACHE/initrd-$KVER.gz
	(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD"
	echo "$IMG" >"$res/image"
}

# the kernel's complaints: a line that starts one (the results' base64 can hold
# these words, so the pattern wants the words the kernel prints around them)
KERNEL_ERR='soft lockup|rcu_.*stall|Kernel panic|BUG: |WARNING: |Oops: |int3: '

# what the guest was doing when it stopped, and the kernel's own report of why
guest_report() {
	grep -a '^KMS-' "$1" | tail -n 3
	awk -v re="$KERNEL_ERR" '$0 ~ re { on = 1 } on && n++ < 120' "$1"
}

# the same in one line, for the FAIL line: CI keeps only the log's tail, where
# run-all.sh repeats the failed checks' lines
guest_why() {
	local step err
	step=$(grep -a '^KMS-' "$1" | tail -n 1 | tr -d '\r')
	err=$(grep -a -m 1 -E "$KERNEL_ERR" "$1" | tr -d '\r' | cut -c 1-160)
	echo "last step: ${step:-none}; kernel: ${err:-said nothing}"
}

# Boot kernel $2 with initramfs $3 once, the serial console to $4; qemu's exit
# status. The guest's CPU time (user + system of qemu, to RES/KERNEL/cpu) shows how
# many host CPUs a guest keeps busy, whatever else the machine runs: what decides
# KMS_QEMU_JOBS.
# no_timer_check: under TCG on a busy host the IO-APIC timer check can fail and
# panic the guest at boot (seen with 6.1-rt). noirqdebug: on 6.1-rt the serial
# port's threaded handler can fall behind its interrupts under TCG, and the
# kernel then disables IRQ 4 as "nobody cared": the serial line, which carries
# the results out, crawls and the guest misses its deadline (seen in CI).
# thread=single: with one host thread per vCPU, a vCPU now and then ran an int3
# the kernel had already patched away (attaching a program patches the
# tracepoint's jump label while the other vCPU runs that code: oopses in
# __schedule and kfree on 6.12, seen in CI). One thread runs both vCPUs in
# turn, so every patch is seen by the next instruction of either; a guest used
# less than one host CPU on average already (the tier got faster, not slower).
boot_guest() {
	/usr/bin/time -f '%U %S' -o "$RES/$1/cpu" \
	timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=single -cpu max -m 1024 -smp 2 \
		-kernel "$2" -initrd "$3" \
		-append "console=ttyS0 quiet no_timer_check noirqdebug panic=-1 softlockup_panic=1 softlockup_all_cpu_backtrace=1 KMS_SELFTEST=${KMS_QEMU_SELFTEST:-0} KMS_STEP_TIMEOUT=$STEP_TIMEOUT" \
		-nographic -no-reboot -net none -monitor none </dev/null >"$4" 2>&1
}

# Boot kernel $1 and check its results; every line it prints goes to
# RES/KERNEL/check.log, the last one "qemu: N passed, M failed".
boot_and_check() {
	local k=$1 res=$RES/$1 start rc again=
	start=$(date +%s)
	set +e
	boot_guest "$k" "$2" "$3" "$res/serial.log"
	rc=$?
	# A boot that stopped before /init ran nothing of the project's (/init loads
	# the module and runs kmemscope): the guest is booted once more, and the
	# first boot's end is reported with the results. A hang is not retried.
	if [ $rc -ne 124 ] && [ $rc -ne 137 ] && ! grep -aq 'KMS-BEGIN' "$res/serial.log"; then
		mv "$res/serial.log" "$res/serial-boot1.log"
		again="qemu: $k: the first boot stopped before /init (qemu exit $rc; $(guest_why "$res/serial-boot1.log"); serial log: $res/serial-boot1.log): booted again"
		boot_guest "$k" "$2" "$3" "$res/serial.log"
		rc=$?
	fi
	set -e
	echo $(( $(date +%s) - start )) >"$res/seconds"
	{
		[ -z "$again" ] || echo "$again"
		echo "qemu: $k: guest ran $(cat "$res/seconds")s, $(awk '{ printf "%.0f", $1 + $2 }' "$res/cpu" 2>/dev/null)s of host CPU (serial log: $res/serial.log)"
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			guest_report "$res/serial.log"
			echo "qemu: FAIL: guest hang: no power-off within ${TIMEOUT}s ($(guest_why "$res/serial.log"))"
		elif grep -aq 'Kernel panic' "$res/serial.log"; then
			guest_report "$res/serial.log"
			echo "qemu: FAIL: guest kernel panic (qemu exit $rc; $(guest_why "$res/serial.log"))"
		elif ! grep -q 'KMS-BEGIN' "$res/serial.log"; then
			echo "qemu: FAIL: boot failure: the guest never reached /init (qemu exit $rc; $(guest_why "$res/serial.log"))"
		elif ! grep -q '===KMS-DONE===' "$res/serial.log"; then
			guest_report "$res/serial.log"
			echo "qemu: FAIL: guest died before printing its results (qemu exit $rc; $(guest_why "$res/serial.log"))"
		else
			python3 "$HERE/check.py" --kernel "$k" "$res/serial.log" "$res" "$OUT/kmemscope"
			return 0
		fi
		echo "qemu: 0 passed, 1 failed"
	} >"$res/check.log" 2>&1
}

# prepare every kernel first (network, compiler), then boot up to JOBS guests at a time
declare -A VM IRD
for k in $KERNELS; do
	prepare "$k"
	VM[$k]=$VMLINUZ
	IRD[$k]=$INITRD
done
all_start=$(date +%s)
running=0
for k in $KERNELS; do
	echo "qemu: booting $k: $(cat "$RES/$k/image") (timeout ${TIMEOUT}s)"
	boot_and_check "$k" "${VM[$k]}" "${IRD[$k]}" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait -n || true
		running=$((running - 1))
	fi
done
wait

# each kernel's rows, prefixed with its name, then one total for run-all.sh
pass=0
fail=0
for k in $KERNELS; do
	line=$(grep -E '^qemu: [0-9]+ passed, [0-9]+ failed' "$RES/$k/check.log" | tail -n 1)
	again=
	[ ! -f "$RES/$k/serial-boot1.log" ] || again=1
	grep -v -E '^qemu: [0-9]+ passed, [0-9]+ failed' "$RES/$k/check.log" | sed "s/^/[$k] /"
	p=$(echo "${line:-qemu: 0 passed, 1 failed}" | sed -E 's/qemu: ([0-9]+) passed, ([0-9]+) failed/\1/')
	f=$(echo "${line:-qemu: 0 passed, 1 failed}" | sed -E 's/qemu: ([0-9]+) passed, ([0-9]+) failed/\2/')
	echo "qemu: $k: $p passed, $f failed; guest $(cat "$RES/$k/seconds" 2>/dev/null || echo '?')s, $(awk '{ printf "%.0f", $1 + $2 }' "$RES/$k/cpu" 2>/dev/null)s of host CPU${again:+ (booted twice: the first boot stopped before /init)}"
	pass=$((pass + p))
	fail=$((fail + f))
done
echo "qemu: all guests done in $(( $(date +%s) - all_start ))s wall time, $JOBS at a time"
# README's support matrix is rendered from the plans the guests recorded (each guest's
# probe.recorded row compares its plan with tests/qemu/probes/)
if python3 "$HERE/matrix.py" check "$TOP/README.md"; then
	pass=$((pass + 1))
else
	fail=$((fail + 1))
fi
echo "qemu: $pass passed, $fail failed"
[ "$fail" = 0 ]
