#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Regenerate vmlinux.h from a kernel's BTF. The build itself never does this:
# it uses the checked-in header so it does not depend on the build machine.
#   scripts/gen-vmlinux.sh DIR [BTF_FILE]   (default: /sys/kernel/btf/vmlinux)
set -e
dir=${1:?usage: gen-vmlinux.sh DIR [BTF_FILE]}
btf=${2:-/sys/kernel/btf/vmlinux}
mkdir -p "$dir"
bpftool btf dump file "$btf" format c > "$dir/vmlinux.h.tmp"
mv "$dir/vmlinux.h.tmp" "$dir/vmlinux.h"
echo "wrote $dir/vmlinux.h from $btf"
