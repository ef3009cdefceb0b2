/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <stdio.h>

#include "log.h"

/* the only mutable global of the tool: number of -v given */
static int log_verbosity;

void log_set_level(int verbosity)
{
	log_verbosity = verbosity < 0 ? 0 : verbosity;
}

int log_get_level(void)
{
	return log_verbosity;
}

static int level_min_verbosity(enum kms_log_level level)
{
	switch (level) {
	case KMS_LOG_ERROR:
	case KMS_LOG_WARN:
		return 0;
	case KMS_LOG_INFO:
		return 1;
	case KMS_LOG_DEBUG:
	default:
		return 2;
	}
}

bool log_enabled(enum kms_log_level level)
{
	return log_verbosity >= level_min_verbosity(level);
}

void kms_vlog(enum kms_log_level level, const char *fmt, va_list ap)
{
	if (!log_enabled(level))
		return;
	/* one locked burst so lines from several threads do not interleave */
	flockfile(stderr);
	if (level == KMS_LOG_ERROR)
		fputs("kmemscope: ", stderr);
	else if (level == KMS_LOG_WARN)
		fputs("kmemscope: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	funlockfile(stderr);
}

void kms_log(enum kms_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kms_vlog(level, fmt, ap);
	va_end(ap);
}

/* libbpf's first complaint since log_libbpf_reset(), for error messages */
static char libbpf_first[256];

void log_libbpf_reset(void)
{
	libbpf_first[0] = 0;
}

const char *log_libbpf_first(void)
{
	return libbpf_first;
}

int kms_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	int need = level == LIBBPF_DEBUG ? 2 : 1;

	/* the first line says what went wrong; later ones repeat it or give the log */
	if (level != LIBBPF_DEBUG && !libbpf_first[0]) {
		va_list aq;
		int n;

		va_copy(aq, ap);
		n = vsnprintf(libbpf_first, sizeof(libbpf_first), fmt, aq);
		va_end(aq);
		if (n >= (int)sizeof(libbpf_first))
			n = sizeof(libbpf_first) - 1;
		while (n > 0 && libbpf_first[n - 1] == '\n')
			libbpf_first[--n] = 0;
	}
	if (log_verbosity < need)
		return 0;
	/* libbpf prefixes its own lines with "libbpf: " */
	return vfprintf(stderr, fmt, ap);
}
