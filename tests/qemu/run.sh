#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# QEMU tests: boot Debian's pinned kernel with the kmemscope_test module and
# kmemscope-static in a busybox initramfs, run every scenario of scenarios.txt
# under `kmemscope stat`, and compare the reports with the module's ledger.
# Usage: tests/qemu/run.sh OUTPUT_DIR   (make qemu)
# KMS_QEMU_SELFTEST=1 checks the module's ledger against the kernel's own ftrace
# events instead (no kmemscope involved): run it after changing the module.
set -eu

OUT=${1:?usage: tests/qemu/run.sh OUTPUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${KMS_QEMU_CACHE:-$HERE/cache}
TIMEOUT=${KMS_QEMU_TIMEOUT:-900}
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

# the archive moves to a new ABI number with every kernel update: ask the metapackages
dep() { apt-cache depends "$1" 2>/dev/null | awk -v re="$2" '$1 == "Depends:" && $2 ~ re { print $2; exit }'; }
IMG=$(dep linux-image-amd64 '^linux-image-[0-9]')
HDR=$(dep linux-headers-amd64 '^linux-headers-[0-9]')
[ -n "$IMG" ] && [ -n "$HDR" ] || die "cannot resolve linux-image-amd64/linux-headers-amd64 (apt-get update?)"
KVER=${IMG#linux-image-}
COMMON=$(dep "$HDR" '^linux-headers-.*-common$')
KBUILD=$(dep "$HDR" '^linux-kbuild-')
[ -n "$COMMON" ] && [ -n "$KBUILD" ] || die "cannot resolve the dependencies of $HDR"
CCPKG=$(dep "$HDR" '^linux-compiler-')
KCC=$(echo "$CCPKG" | sed -n 's/^linux-compiler-\(gcc-[0-9]*\)-.*/\1/p')
[ -z "$KCC" ] || command -v "$KCC" >/dev/null || die "$HDR builds with $KCC: apt-get install $KCC"

# exact package names only: a wildcard would fetch dozens of kernels
DEBS=$CACHE/debs
mkdir -p "$DEBS"
for p in "$IMG" "$HDR" "$COMMON" "$KBUILD"; do
	ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 && continue
	echo "qemu: downloading $p"
	(cd "$DEBS" && apt-get download -q "$p" >/dev/null 2>"$RES/apt-$p.log") ||
		die "apt-get download $p failed (see $RES/apt-$p.log)"
done

ROOT=$CACHE/root-$KVER
if [ ! -f "$ROOT/.done" ]; then
	rm -rf "$ROOT"
	mkdir -p "$ROOT"
	for p in "$IMG" "$HDR" "$COMMON" "$KBUILD"; do
		dpkg-deb -x "$(ls "$DEBS/${p}_"*.deb | tail -n 1)" "$ROOT" ||
			die "cannot unpack $p"
	done
	# the headers' Makefile includes the -common tree by absolute /usr/src path
	sed -i "s#^include /usr/src/#include $ROOT/usr/src/#" "$ROOT/usr/src/$HDR/Makefile"
	touch "$ROOT/.done"
fi
VMLINUZ=$ROOT/boot/vmlinuz-$KVER
KDIR=$ROOT/usr/src/$HDR
[ -f "$VMLINUZ" ] || die "no $VMLINUZ in $IMG"

# build the module out of the source tree
KB=$CACHE/build-kmod
rm -rf "$KB"
mkdir -p "$KB"
cp "$TOP/tests/kmod/kmemscope_test.c" "$TOP/tests/kmod/Kbuild" "$TOP/tests/kmod/Makefile" "$KB/"
if ! make -C "$KB" KDIR="$KDIR" >"$RES/kmod-build.log" 2>&1; then
	tail -n 20 "$RES/kmod-build.log" >&2
	die "module build failed against $HDR (see $RES/kmod-build.log)"
fi

# initramfs
IR=$CACHE/initrd
rm -rf "$IR"
mkdir -p "$IR/bin"
cp "$BUSYBOX" "$IR/bin/busybox"
cp "$KB/kmemscope_test.ko" "$IR/"
cp "$HERE/guest-init.sh" "$IR/init"
chmod +x "$IR/init"
cp "$HERE/scenarios.txt" "$IR/scenarios.txt"
if [ -x "$OUT/kmemscope-static" ]; then
	cp "$OUT/kmemscope-static" "$IR/kmemscope"
else
	echo "qemu: $OUT/kmemscope-static does not exist: scenarios run without kmemscope and fail" >&2
fi
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1) >"$CACHE/initrd.gz"

echo "qemu: booting $IMG (timeout ${TIMEOUT}s)"
start=$(date +%s)
set +e
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 \
	-kernel "$VMLINUZ" -initrd "$CACHE/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1 softlockup_panic=1 softlockup_all_cpu_backtrace=1 KMS_SELFTEST=${KMS_QEMU_SELFTEST:-0}" \
	-nographic -no-reboot -net none -monitor none </dev/null >"$RES/serial.log" 2>&1
rc=$?
set -e
echo "qemu: guest ran $(( $(date +%s) - start ))s (serial log: $RES/serial.log)"

# what the guest was doing when it stopped, and the kernel's own report of why
guest_report() {
	grep -a '^KMS-' "$RES/serial.log" | tail -n 3 >&2
	awk '/soft lockup|rcu_.*stall|Kernel panic|BUG:|WARNING:/ { on = 1 } on && n++ < 120' \
		"$RES/serial.log" >&2
}
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	guest_report
	die "guest hang: no power-off within ${TIMEOUT}s"
fi
if grep -aq 'Kernel panic' "$RES/serial.log"; then
	guest_report
	die "guest kernel panic (qemu exit $rc)"
fi
grep -q 'KMS-BEGIN' "$RES/serial.log" || die "boot failure: the guest never reached /init (qemu exit $rc)"
grep -q '===KMS-DONE===' "$RES/serial.log" || die "guest died before printing its results (qemu exit $rc)"

python3 "$HERE/check.py" "$RES/serial.log" "$RES" "$OUT/kmemscope"
