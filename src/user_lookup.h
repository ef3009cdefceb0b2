/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which object gives a process each allocation function (--user): the
 * first definition in the dynamic loader's symbol lookup order, read from
 * the loader's own list of the objects it loaded (its link map, r_debug), so
 * that jemalloc or tcmalloc, linked, preloaded or linked statically into the
 * executable, is found where the process really calls it.
 */
#ifndef KMS_USER_LOOKUP_H
#define KMS_USER_LOOKUP_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

/* where one function is defined for the process */
struct user_def {
	char path[PATH_MAX];	/* the object, as a path kmemscope can open (/proc/PID/...) */
	char name[NAME_MAX + 1];	/* its file name, for messages and the report */
	__u64 vaddr;		/* the symbol's value in that object (aliases share it) */
};

/*
 * Resolve funcs[0..nr) for pid, stopped or running, whose loader has
 * finished loading (see user_lookup__state()): defs[i].path is "" for a
 * function no object defines. 0 or -errno.
 */
int user_lookup__resolve(pid_t pid, const char *const *funcs, int nr, struct user_def *defs);

/*
 * pid's loader: *state is its r_debug.r_state (0: consistent, the objects
 * loaded), or -1 for an executable with no loader (static). 0 or -errno.
 */
int user_lookup__state(pid_t pid, int *state);

/* the same for a static executable not started yet: its own symbols */
int user_lookup__static(const char *exe, const char *const *funcs, int nr, struct user_def *defs);

/*
 * The loader a command will run under, to watch before it starts: the
 * PT_INTERP of the executable argv0 names (found on PATH as execvp does),
 * or of kmemscope's own for a script. "" in loader when the executable is
 * static: exe then holds its path, whose own symbols are all there is.
 */
int user_lookup__cmd_loader(const char *argv0, char *loader, size_t len, char *exe,
			    size_t exe_len);

#endif
