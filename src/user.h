/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * User space (--user): attaches bpf/user.bpf.h's programs to one process
 * (uprobes on its C library's allocation functions, syscall tracepoints for
 * its mappings), follows the executable mappings it makes, and turns the ELF
 * symbols of those objects into kallsyms-format lines. User addresses lie
 * below every kernel address, so those lines join the kernel's symbols in
 * one table (ksyms.h) and in the trace file's SYMS blocks: every report,
 * and a replay, symbolizes user frames as it does kernel ones.
 */
#ifndef KMS_USER_H
#define KMS_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

struct kmemscope_bpf;
struct user_tracer;

/*
 * Attach to pid: a running process (cmd NULL), whose allocation functions
 * are found in the objects its loader has loaded, or the command cmd (its
 * argv[0]), forked as pid and not started yet, which is stopped once its
 * loader has loaded its objects until user__poll() has attached there.
 * 0 or -errno, with one error line logged.
 */
int user__attach(struct user_tracer **out, struct kmemscope_bpf *skel, pid_t pid,
		 const char *cmd);
/*
 * Read the executable mappings announced since the last call; attach to a
 * command stopped at its loader. 0 or -errno (logged): tracing cannot go on.
 */
int user__poll(struct user_tracer *u);
/* the objects that give the process its allocation functions, NULL if none yet */
const char *user__allocator(const struct user_tracer *u);
/*
 * The symbols of every object the process mapped executable, as kallsyms
 * lines ("addr t name\t[object]"), with a "build-id:HEX" symbol at each
 * object's load base so that a stripped object's frames still give the
 * object, its build id and the offset. A malloc'ed buffer, or NULL.
 */
char *user__symbols(struct user_tracer *u, size_t *len);
/*
 * The source lines (srcline.h) of the user frames at addrs (sorted), from
 * the DWARF of the objects that hold them: text to append to the symbols'.
 * A malloc'ed buffer, or NULL.
 */
char *user__lines(struct user_tracer *u, const __u64 *addrs, size_t n, size_t *len);
void user__free(struct user_tracer *u);
#endif
