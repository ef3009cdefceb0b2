/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <stdbool.h>
#include "tracefs.h"

#ifndef TRACEFS_MAGIC
#define TRACEFS_MAGIC 0x74726163
#endif

static bool is_tracefs(const char *dir)
{
	struct statfs st;

	return statfs(dir, &st) == 0 && st.f_type == TRACEFS_MAGIC;
}

const char *tracefs_root(void)
{
	static const char *root;
	static bool tried;

	if (tried)
		return root;
	tried = true;
	if (is_tracefs("/sys/kernel/tracing"))
		root = "/sys/kernel/tracing";
	else if (is_tracefs("/sys/kernel/debug/tracing"))
		root = "/sys/kernel/debug/tracing";
	/* an unmounted tracefs is common on minimal systems: mount it like perf does */
	else if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		root = "/sys/kernel/tracing";
	return root;
}

int tracefs_path(char *buf, size_t len, const char *fmt, ...)
{
	const char *root = tracefs_root();
	va_list ap;
	int n;

	if (!root)
		return -ENOENT;
	n = snprintf(buf, len, "%s/", root);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
	return 0;
}
