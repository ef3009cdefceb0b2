/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Small jansson helpers shared by the reports: building a document records a
 * failure in *fail instead of checking every call, and numbers that may pass
 * 2^53 (kernel addresses) are written as hex strings.
 */
#ifndef KMS_JSONW_H
#define KMS_JSONW_H

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include <linux/types.h>

static inline void jset(json_t *o, const char *key, json_t *v, bool *fail)
{
	if (!v || json_object_set_new(o, key, v))
		*fail = true;
}

static inline void jpush(json_t *arr, json_t *v, bool *fail)
{
	if (!v || json_array_append_new(arr, v))
		*fail = true;
}

static inline json_t *j_u64(__u64 v)
{
	return json_integer((json_int_t)v);
}

static inline json_t *j_hex(__u64 v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)v);
	return json_string(buf);
}

static inline json_t *j_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

#endif
