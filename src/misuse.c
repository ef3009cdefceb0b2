/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope misuse: blocking allocations in atomic context. The run and the
 * options are shared with kmemscope leaks (leaks.c); this one keeps no live
 * objects, only the context checks.
 */
#include "cli.h"
#include "detect_report.h"

int cmd_misuse(int argc, char **argv)
{
	return detect_cmd(argc, argv, false);
}
