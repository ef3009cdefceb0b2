/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef KMS_TRACEFS_H
#define KMS_TRACEFS_H

#include <stddef.h>

/* the tracefs mount point, mounting it at /sys/kernel/tracing if needed; NULL if impossible */
const char *tracefs_root(void);
/* tracefs_root() + "/" + the formatted path; -ENOENT without tracefs */
int tracefs_path(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
