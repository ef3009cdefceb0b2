/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which NUMA node each CPU belongs to, from sysfs: events the kernel reports
 * with node -1 (NUMA_NO_NODE) are counted on the node of the CPU they ran on.
 */
#ifndef KMS_CPU_NODES_H
#define KMS_CPU_NODES_H

#define CPU_NODES_SYSFS "/sys/devices/system"

/*
 * Fill node_of_cpu[0..nr_cpus) from ROOT/node/nodeN/cpulist (ROOT NULL:
 * CPU_NODES_SYSFS). CPUs no node lists stay on node 0. Returns the number of
 * nodes read, 0 when ROOT/node does not exist, or -errno.
 */
int cpu_nodes__read(const char *root, int *node_of_cpu, int nr_cpus);
/* "0-3,8,10-11" (sysfs cpulist format): mark cpus[i] = val for each listed i < nr */
int cpu_nodes__parse_list(const char *list, int *cpus, int nr, int val);

#endif
