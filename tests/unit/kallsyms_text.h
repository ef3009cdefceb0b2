/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Unit tests' little kernels: symbols from a kallsyms text, through the real loader. */
#ifndef KMS_TEST_KALLSYMS_TEXT_H
#define KMS_TEST_KALLSYMS_TEXT_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ksyms.h"

/* NULL when the text could not be written or loaded */
static inline struct ksyms *ksyms_from_text(const char *text)
{
	char path[] = "/tmp/kms-test-kallsyms.XXXXXX";
	size_t len = strlen(text);
	struct ksyms *k = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		return NULL;
	if (write(fd, text, len) == (ssize_t)len)
		k = ksyms__load(path);
	close(fd);
	unlink(path);
	return k;
}

#endif
