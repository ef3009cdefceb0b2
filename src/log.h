/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One logging family for the whole tool. Everything goes to stderr.
 *
 *   verbosity 0 (default)  kms_error, kms_warn
 *   verbosity 1 (-v)       + kms_info, libbpf warnings and info
 *   verbosity 2 (-vv)      + kms_debug, libbpf debug output
 *
 * kms_error/kms_warn lines start with "kmemscope: " (warnings with
 * "kmemscope: warning: "). Messages are printf-like and carry their own
 * trailing '\n', as libbpf's do.
 *
 * libbpf warnings are held back to -v because start-up probing of attach
 * points fails on purpose on some kernels; the code that knows the context
 * reports real failures with kms_error.
 */
#ifndef KMS_LOG_H
#define KMS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <bpf/libbpf.h>

enum kms_log_level {
	KMS_LOG_ERROR = 0,
	KMS_LOG_WARN,
	KMS_LOG_INFO,
	KMS_LOG_DEBUG,
};

/* verbosity: number of -v given; negative is clamped to 0 */
void log_set_level(int verbosity);
int log_get_level(void);
bool log_enabled(enum kms_log_level level);

void kms_vlog(enum kms_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void kms_log(enum kms_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define kms_error(...)	kms_log(KMS_LOG_ERROR, __VA_ARGS__)
#define kms_warn(...)	kms_log(KMS_LOG_WARN, __VA_ARGS__)
#define kms_info(...)	kms_log(KMS_LOG_INFO, __VA_ARGS__)
#define kms_debug(...)	kms_log(KMS_LOG_DEBUG, __VA_ARGS__)

/* for libbpf_set_print(kms_libbpf_print) */
int kms_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap);
/*
 * The first line libbpf printed (warning or info) since log_libbpf_reset(),
 * "" when none: what a failed load or attach reports at verbosity 0.
 */
void log_libbpf_reset(void);
const char *log_libbpf_first(void);

#endif /* KMS_LOG_H */
