/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "softirqs.h"

#define MAX_COLS 4096

int softirqs__read(const char *path, __u32 *sum, int nr_cpus)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *p, *end;
	size_t cap = 0;
	int *cpu_of = NULL, cols = 0, err = 0;

	if (!f)
		return -errno;
	cpu_of = calloc(MAX_COLS, sizeof(*cpu_of));
	if (!cpu_of) {
		err = -ENOMEM;
		goto out;
	}
	memset(sum, 0, nr_cpus * sizeof(*sum));
	/* the header names each column's CPU: "CPU0 CPU1 ..." (possible CPUs) */
	if (getline(&line, &cap, f) < 0) {
		err = -EINVAL;
		goto out;
	}
	for (p = strtok(line, " \t\n"); p && cols < MAX_COLS; p = strtok(NULL, " \t\n")) {
		long cpu = strncmp(p, "CPU", 3) ? -1 : strtol(p + 3, &end, 10);

		if (cpu < 0 || end == p + 3 || *end) {
			err = -EINVAL;
			goto out;
		}
		cpu_of[cols++] = cpu;
	}
	if (!cols) {
		err = -EINVAL;
		goto out;
	}
	/* then one line per vector: "NAME: n0 n1 ..." */
	while (getline(&line, &cap, f) >= 0) {
		p = strchr(line, ':');
		if (!p) {
			err = -EINVAL;
			goto out;
		}
		p++;
		for (int c = 0; c < cols; c++) {
			unsigned long long n;

			errno = 0;
			n = strtoull(p, &end, 10);
			if (errno || end == p) {
				err = -EINVAL;
				goto out;
			}
			p = end;
			if (cpu_of[c] < nr_cpus)
				sum[cpu_of[c]] += (__u32)n;
		}
	}
	err = cols < nr_cpus ? cols : nr_cpus;
out:
	free(line);
	free(cpu_of);
	fclose(f);
	return err;
}

__u64 softirqs__unseen(const __u32 *kernel, const __u32 *seen, int nr_cpus)
{
	__u64 n = 0;

	for (int i = 0; i < nr_cpus; i++) {
		__s32 ahead = (__s32)(kernel[i] - seen[i]);

		if (seen[i] && ahead > 0)
			n += ahead;
	}
	return n;
}
