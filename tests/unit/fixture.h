/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The path of a file under tests/unit/data (KMS_UNIT_DATA when the tests run elsewhere). */
#ifndef KMS_TEST_FIXTURE_H
#define KMS_TEST_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

/* the returned path lives until the next call */
static inline const char *fixture(const char *name)
{
	static char path[4096];
	const char *dir = getenv("KMS_UNIT_DATA");

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/unit/data", name);
	return path;
}

#endif
