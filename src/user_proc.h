/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --user's processes (used by user.c): the traced process and the ones it
 * forks, each with uprobes on the allocation functions it finds
 * (user_lookup.h), and each stopped where a new image or a new process
 * could call malloc before its probes are on:
 *   - a command, and every exec of a traced process, at its loader's
 *     announcement that its objects are loaded (u_loader);
 *   - a forked child, at its return from fork (u_fork_ret): it is a copy
 *     of its parent, but uprobes bound to the parent do not follow it.
 * The BPF side records each stop (the ustopped map); user_procs__poll()
 * resumes each stopped process once its probes are on.
 */
#ifndef KMS_USER_PROC_H
#define KMS_USER_PROC_H

#include <stdbool.h>
#include <sys/types.h>

struct kmemscope_bpf;
struct user_procs;

struct user_procs *user_procs__new(struct kmemscope_bpf *skel);
/* a process already running (-p PID): probed now. 0 or -errno, logged */
int user_procs__add(struct user_procs *ps, pid_t pid);
/* a command forked as pid, not started yet (it execs argv0). 0 or -errno, logged */
int user_procs__add_cmd(struct user_procs *ps, pid_t pid, const char *argv0);
bool user_procs__has(const struct user_procs *ps, pid_t pid);
/* the i-th process traced now, 0 past the last */
pid_t user_procs__pid(const struct user_procs *ps, size_t i);
/* the kernel's record of a process's end: its probes go */
void user_procs__exit(struct user_procs *ps, pid_t pid);
/* probe and resume the processes stopped for it. 0 or -errno, logged */
int user_procs__poll(struct user_procs *ps);
/* what gives pid its allocation functions, without attaching (probe). 0 or -errno, logged */
int user_procs__describe(pid_t pid, char *buf, size_t len);
/* what gives the allocation functions, per distinct answer; NULL before any */
const char *user_procs__allocator(const struct user_procs *ps);
void user_procs__free(struct user_procs *ps);
/*
 * The i-th function --user probes, NULL past the last; *ret: it gets a
 * return probe too (bench/floor -u probes the same).
 */
const char *user_procs__func(size_t i, bool *ret);

#endif
