/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Checks of the pure modules against the running kernel's own files
 * (/proc/kallsyms, the kmalloc tracepoint format, the kernel BTF, sysfs). They need
 * this kernel, so they belong to the live tier, not to the unit tests; no
 * timing is asserted here (speed is make bench's business). One PASS or FAIL
 * line per check; tests/live/run.sh counts them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <bpf/libbpf.h>
#include "cpu_nodes.h"
#include "gfp.h"
#include "ksyms.h"

static int failed;

static void out(int ok, const char *name, const char *why)
{
	printf("%s kernel: %s%s%s\n", ok ? "PASS" : "FAIL", name, ok ? "" : ": ", ok ? "" : why);
	if (!ok)
		failed++;
}

/* the running kernel's symbols load, and names resolve back to themselves */
static void check_kallsyms(void)
{
	static const char *const names[] = {
		"__kmalloc_noprof", "__kmalloc", "kmem_cache_alloc_noprof", "kmem_cache_alloc",
	};
	struct ksyms *k = ksyms__load(NULL);
	char why[256] = "";
	int found = 0;

	if (!k) {
		snprintf(why, sizeof(why), "cannot load /proc/kallsyms: %s", strerror(errno));
		out(0, "/proc/kallsyms loads", why);
		out(0, "allocator symbols round-trip", "no symbols");
		return;
	}
	snprintf(why, sizeof(why), "%zu text symbols (want > 1000)", ksyms__count(k));
	out(ksyms__count(k) > 1000, "/proc/kallsyms loads", why);
	why[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct ksym *s = ksyms__find(k, names[i]), *r;

		if (!s)
			continue;
		found++;
		r = ksyms__resolve(k, s->addr + 1);
		if (!r || r->addr != s->addr)
			snprintf(why, sizeof(why), "%s+1 resolves to %s", names[i],
				 r ? r->name : "nothing");
	}
	if (!found)
		snprintf(why, sizeof(why), "none of __kmalloc(_noprof), kmem_cache_alloc(_noprof)");
	out(!why[0], "allocator symbols round-trip", why);
	ksyms__free(k);
}

/* tracefs and BTF give the same GFP table where the kernel has both */
static void check_gfp(void)
{
	struct gfp_table *tr = NULL, *bt = NULL;
	char why[256] = "";
	int err;

	err = gfp_table__load(&tr, NULL);
	if (err) {
		snprintf(why, sizeof(why), "no GFP table: %s", strerror(-err));
		out(0, "GFP names of this kernel", why);
		return;
	}
	if ((gfp_table__value(tr, "GFP_KERNEL") & 0xc0) != 0xc0)
		snprintf(why, sizeof(why), "GFP_KERNEL = %#lx lacks the reclaim bits",
			 gfp_table__value(tr, "GFP_KERNEL"));
	if (!why[0] && gfp_table__source(tr) == GFP_SRC_TRACEFS && !gfp_table__load_btf(&bt, NULL)) {
		size_t n = gfp_table__count(tr);

		if (gfp_table__count(bt) != n)
			snprintf(why, sizeof(why), "tracefs has %zu names, BTF %zu", n,
				 gfp_table__count(bt));
		for (size_t i = 0; !why[0] && i < n; i++) {
			const char *na, *nb;
			unsigned long va, vb;

			if (gfp_table__entry(tr, i, &na, &va) || gfp_table__entry(bt, i, &nb, &vb) ||
			    strcmp(na, nb) || va != vb)
				snprintf(why, sizeof(why), "entry %zu differs between tracefs and BTF",
					 i);
		}
		gfp_table__free(bt);
	}
	out(!why[0], "GFP names of this kernel (tracefs and BTF agree)", why);
	gfp_table__free(tr);
}

/* the node lists agree with the other sysfs view: the cpuN/nodeM links */
static void check_cpu_nodes(void)
{
	int nr = libbpf_num_possible_cpus(), nodes[4096], n;
	char why[256] = "";

	if (nr <= 0 || nr > 4096) {
		snprintf(why, sizeof(why), "%d possible CPUs", nr);
		out(0, "CPU nodes from sysfs", why);
		return;
	}
	n = cpu_nodes__read(NULL, nodes, nr);
	if (n < 0)
		snprintf(why, sizeof(why), "cannot read %s/node: %s", CPU_NODES_SYSFS,
			 strerror(-n));
	for (int cpu = 0; n > 0 && !why[0] && cpu < nr; cpu++) {
		char path[128];
		struct stat st;

		snprintf(path, sizeof(path), "%s/cpu/cpu%d", CPU_NODES_SYSFS, cpu);
		if (stat(path, &st))
			continue;	/* possible, not present */
		snprintf(path, sizeof(path), "%s/cpu/cpu%d/node%d", CPU_NODES_SYSFS, cpu,
			 nodes[cpu]);
		if (stat(path, &st))
			snprintf(why, sizeof(why), "cpu%d: no %s link", cpu, path);
	}
	out(!why[0], "CPU nodes from sysfs (node cpulists match the cpuN/nodeM links)", why);
}

int main(void)
{
	libbpf_set_print(NULL);
	check_kallsyms();
	check_gfp();
	check_cpu_nodes();
	return failed ? 1 : 0;
}
