/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kernel's own count of softirq runs per CPU (/proc/softirqs): the end
 * of a run checks it against the softirq witness (see_softirq() in bpf/),
 * which sees runs only as they happen.
 */
#ifndef KMS_SOFTIRQS_H
#define KMS_SOFTIRQS_H

#include <linux/types.h>

#define SOFTIRQS_PROC "/proc/softirqs"

/*
 * Sum each CPU's column of PATH (/proc/softirqs format) into sum[cpu],
 * modulo 2^32 as the kernel's counters wrap; CPUs the file does not list
 * stay 0. Returns the number of CPUs read or -errno (-EINVAL: not that format).
 */
int softirqs__read(const char *path, __u32 *sum, int nr_cpus);

/*
 * Softirq runs the kernel counted and the witness did not see: for each CPU
 * the witness has run on (seen[cpu] != 0), how far the kernel's sum is ahead
 * of the witness's last one. The kernel's sums must be read first: a run the
 * witness sees after that read puts it ahead, which counts as none.
 */
__u64 softirqs__unseen(const __u32 *kernel, const __u32 *seen, int nr_cpus);

#endif
