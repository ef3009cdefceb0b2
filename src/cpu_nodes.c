/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu_nodes.h"

int cpu_nodes__parse_list(const char *list, int *cpus, int nr, int val)
{
	const char *p = list;

	while (*p && *p != '\n') {
		unsigned long a, b;
		char *end;

		errno = 0;
		a = strtoul(p, &end, 10);
		if (errno || end == p)
			return -EINVAL;
		b = a;
		p = end;
		if (*p == '-') {
			p++;
			b = strtoul(p, &end, 10);
			if (errno || end == p || b < a)
				return -EINVAL;
			p = end;
		}
		for (unsigned long c = a; c <= b && c < (unsigned long)nr; c++)
			cpus[c] = val;
		if (*p == ',')
			p++;
		else if (*p && *p != '\n')
			return -EINVAL;
	}
	return 0;
}

int cpu_nodes__read(const char *root, int *node_of_cpu, int nr_cpus)
{
	char path[4096], line[4096];
	struct dirent *de;
	int nodes = 0, err = 0;
	DIR *dir;

	for (int i = 0; i < nr_cpus; i++)
		node_of_cpu[i] = 0;
	snprintf(path, sizeof(path), "%s/node", root ? root : CPU_NODES_SYSFS);
	dir = opendir(path);
	/* a kernel built without CONFIG_NUMA has no node directory: all node 0 */
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while (!err && (de = readdir(dir))) {
		char *end;
		long node;
		FILE *f;

		if (strncmp(de->d_name, "node", 4))
			continue;
		node = strtol(de->d_name + 4, &end, 10);
		if (end == de->d_name + 4 || *end || node < 0)
			continue;	/* has_cpu, possible, ... */
		snprintf(path, sizeof(path), "%s/node/%s/cpulist", root ? root : CPU_NODES_SYSFS,
			 de->d_name);
		f = fopen(path, "r");
		if (!f) {
			err = -errno;
			break;
		}
		/* a memory-only node has an empty list */
		if (fgets(line, sizeof(line), f))
			err = cpu_nodes__parse_list(line, node_of_cpu, nr_cpus, node);
		fclose(f);
		nodes++;
	}
	closedir(dir);
	return err ? err : nodes;
}
