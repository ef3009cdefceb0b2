// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* --user's processes (see user_proc.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "kmemscope.h"
#include "kmemscope.skel.h"
#include "log.h"
#include "user_lookup.h"
#include "user_proc.h"

/*
 * The allocation functions and their entry programs (bpf/user.bpf.h), and
 * glibc's __call_tls_dtors, whose program marks a thread's end (no return
 * probe for it nor for free, which is recorded at its entry). Each is
 * attached where the process finds it: glibc, jemalloc or tcmalloc,
 * whichever comes first in its symbol lookup order.
 */
static const struct {
	const char *func;
	const char *prog;
	bool ret;
} user_funcs[] = {
	{ "malloc", "u_malloc", true },
	{ "calloc", "u_calloc", true },
	{ "realloc", "u_realloc", true },
	{ "reallocarray", "u_reallocarray", true },
	{ "posix_memalign", "u_posix_memalign", true },
	{ "aligned_alloc", "u_aligned_alloc", true },
	{ "memalign", "u_memalign", true },
	{ "valloc", "u_valloc", true },
	{ "pvalloc", "u_pvalloc", true },
	{ "free", "u_free", false },
	{ "__call_tls_dtors", "u_thread_end", false },
};

#define NR_FUNCS (sizeof(user_funcs) / sizeof(user_funcs[0]))
#define F_FREE (NR_FUNCS - 2)
#define NR_ALLOC_FUNCS (NR_FUNCS - 1)	/* the ones the report's allocator names */
/* probe points per process: every exec may bring another allocator */
#define MAX_PROBED (4 * NR_FUNCS)

const char *user_procs__func(size_t i, bool *ret)
{
	if (i >= NR_FUNCS)
		return NULL;
	*ret = user_funcs[i].ret;
	return user_funcs[i].func;
}

/* a function probed in one process: the same object and address is not probed twice */
struct probed {
	dev_t dev;
	ino_t ino;
	__u64 vaddr;
};

struct user_proc {
	pid_t pid;
	struct bpf_link *loader;	/* u_loader on its loader, for its execs */
	struct bpf_link *links[2 * MAX_PROBED];
	struct probed probed[MAX_PROBED];
	int nr_links, nr_probed;
};

struct user_procs {
	struct kmemscope_bpf *skel;
	struct user_proc **v;
	size_t nr, cap;
	char allocator[1024];
};

struct user_procs *user_procs__new(struct kmemscope_bpf *skel)
{
	struct user_procs *ps = calloc(1, sizeof(*ps));

	if (ps)
		ps->skel = skel;
	return ps;
}

static struct user_proc *find(const struct user_procs *ps, pid_t pid)
{
	for (size_t i = 0; i < ps->nr; i++)
		if (ps->v[i]->pid == pid)
			return ps->v[i];
	return NULL;
}

bool user_procs__has(const struct user_procs *ps, pid_t pid)
{
	return ps && find(ps, pid);
}

pid_t user_procs__pid(const struct user_procs *ps, size_t i)
{
	return ps && i < ps->nr ? ps->v[i]->pid : 0;
}

static struct user_proc *add(struct user_procs *ps, pid_t pid)
{
	struct user_proc *p;

	if (ps->nr == ps->cap) {
		size_t cap = ps->cap ? 2 * ps->cap : 8;
		struct user_proc **v = realloc(ps->v, cap * sizeof(*v));

		if (!v)
			return NULL;
		ps->v = v;
		ps->cap = cap;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->pid = pid;
	ps->v[ps->nr++] = p;
	return p;
}

static void proc_free(struct user_proc *p)
{
	for (int i = 0; i < p->nr_links; i++)
		bpf_link__destroy(p->links[i]);
	bpf_link__destroy(p->loader);
	free(p);
}

/* probed already in this process: a function met again after an exec, or an alias */
static bool probed(struct user_proc *p, const struct user_def *d)
{
	struct stat st;

	if (stat(d->path, &st))
		return false;
	for (int i = 0; i < p->nr_probed; i++)
		if (p->probed[i].dev == st.st_dev && p->probed[i].ino == st.st_ino &&
		    p->probed[i].vaddr == d->vaddr)
			return true;
	if (p->nr_probed < (int)MAX_PROBED)
		p->probed[p->nr_probed++] = (struct probed){ st.st_dev, st.st_ino, d->vaddr };
	return false;
}

/*
 * For the report: the objects that give the allocation functions, each
 * with the functions it gives unless one gives them all.
 */
static void describe(const struct user_def *defs, char *desc, size_t size)
{
	FILE *f = fmemopen(desc, size, "w");
	size_t i, k, all = 0;

	desc[0] = '\0';
	if (!f)
		return;
	for (i = 0; i < NR_ALLOC_FUNCS; i++)
		all += !!defs[i].path[0];
	for (i = 0; i < NR_ALLOC_FUNCS; i++) {
		size_t mine = 0;

		for (k = 0; k < i && strcmp(defs[k].path, defs[i].path); k++)
			;
		if (k < i || !defs[i].path[0])
			continue;
		for (k = 0; k < NR_ALLOC_FUNCS; k++)
			mine += !strcmp(defs[k].path, defs[i].path);
		fprintf(f, "%s%s", ftell(f) ? ", " : "", defs[i].name);
		for (k = 0; mine < all && k < NR_ALLOC_FUNCS; k++)
			if (!strcmp(defs[k].path, defs[i].path))
				fprintf(f, "%s%s", k == i ? " (" : " ", user_funcs[k].func);
		if (mine < all)
			fprintf(f, ")");
	}
	if (fclose(f))
		desc[0] = '\0';
}

/* a new answer joins those of the other processes */
static void add_answer(struct user_procs *ps, const char *desc)
{
	size_t len = strlen(ps->allocator);

	if (desc[0] && !strstr(ps->allocator, desc))
		snprintf(ps->allocator + len, sizeof(ps->allocator) - len, "%s%s",
			 len ? "; " : "", desc);
}

/* the probes on each function where defs say process p finds it */
static int attach_defs(struct user_procs *ps, struct user_proc *p, const struct user_def *defs)
{
	struct bpf_program *ret = bpf_object__find_program_by_name(ps->skel->obj, "u_alloc_ret");
	char desc[sizeof(ps->allocator)];

	for (size_t i = 0; i < NR_FUNCS; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = user_funcs[i].func);
		struct bpf_program *prog = bpf_object__find_program_by_name(ps->skel->obj,
									    user_funcs[i].prog);

		if (!defs[i].path[0] || probed(p, &defs[i]))
			continue;
		for (int r = 0; r < 1 + user_funcs[i].ret; r++) {
			opts.retprobe = r;
			p->links[p->nr_links] = bpf_program__attach_uprobe_opts(r ? ret : prog,
										p->pid,
										defs[i].path, 0,
										&opts);
			if (!p->links[p->nr_links]) {
				kms_error("Failed to attach a uprobe to %s in %s: %s\n",
					  user_funcs[i].func, defs[i].name, strerror(errno));
				return -errno;
			}
			p->nr_links++;
		}
	}
	if (!defs[NR_ALLOC_FUNCS].path[0])
		kms_info("--user: no __call_tls_dtors in process %d: frees at thread exit are "
			 "not told apart\n", p->pid);
	describe(defs, desc, sizeof(desc));
	add_answer(ps, desc);
	kms_info("--user: process %d: allocation functions from %s\n", p->pid, desc);
	return 0;
}

/* where pid (or, not started yet, the static executable exe) finds each function */
static struct user_def *resolve(pid_t pid, const char *exe)
{
	const char *names[NR_FUNCS];
	struct user_def *defs = calloc(NR_FUNCS, sizeof(*defs));
	int err;

	if (!defs)
		return NULL;
	for (size_t i = 0; i < NR_FUNCS; i++)
		names[i] = user_funcs[i].func;
	err = exe ? user_lookup__static(exe, names, NR_FUNCS, defs) :
		    user_lookup__resolve(pid, names, NR_FUNCS, defs);
	if (err)
		kms_error("Failed to read which objects process %d loaded: %s\n", pid,
			  strerror(-err));
	/* malloc and free at least: without them nothing could be matched */
	else if (!defs[0].path[0] || !defs[F_FREE].path[0])
		kms_error("Failed to find malloc and free in process %d\n", pid);
	if (err || !defs[0].path[0] || !defs[F_FREE].path[0]) {
		free(defs);
		errno = err ? -err : ENOENT;
		return NULL;
	}
	return defs;
}

static int attach_proc(struct user_procs *ps, struct user_proc *p, const char *exe)
{
	struct user_def *defs = resolve(p->pid, exe);
	int err;

	if (!defs)
		return -errno;
	err = attach_defs(ps, p, defs);
	free(defs);
	return err;
}

int user_procs__describe(pid_t pid, char *buf, size_t len)
{
	struct user_def *defs = resolve(pid, NULL);

	if (!defs)
		return -errno;
	describe(defs, buf, len);
	free(defs);
	return 0;
}

/*
 * u_loader on the loader the process runs under (argv0: a command not
 * started yet, else its executable), for its execs; a static executable has
 * none, and its own symbols are probed when exe is given.
 */
static int watch_loader(struct user_procs *ps, struct user_proc *p, const char *argv0,
			bool probe_static)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = "_dl_debug_state");
	char loader[PATH_MAX], exe[PATH_MAX], self[64];
	struct bpf_program *prog = bpf_object__find_program_by_name(ps->skel->obj, "u_loader");
	int err;

	snprintf(self, sizeof(self), "/proc/%d/exe", p->pid);
	err = user_lookup__cmd_loader(argv0 ? argv0 : self, loader, sizeof(loader), exe,
				      sizeof(exe));
	if (err) {
		/* a command that cannot be found fails its exec, and the session says so */
		if (!argv0)
			kms_error("Failed to read the executable of process %d: %s\n", p->pid,
				  strerror(-err));
		return err;
	}
	if (!loader[0])
		return probe_static ? attach_proc(ps, p, exe) : 0;
	p->loader = prog ? bpf_program__attach_uprobe_opts(prog, p->pid, loader, 0, &opts) :
			   NULL;
	if (!p->loader) {
		err = prog ? -errno : -ENOENT;
		kms_error("Failed to watch the loader %s of process %d: %s\n", loader, p->pid,
			  strerror(-err));
	}
	return err;
}

int user_procs__add(struct user_procs *ps, pid_t pid)
{
	struct user_proc *p = add(ps, pid);
	int err;

	if (!p)
		return -ENOMEM;
	err = attach_proc(ps, p, NULL);
	return err ? err : watch_loader(ps, p, NULL, false);
}

int user_procs__add_cmd(struct user_procs *ps, pid_t pid, const char *argv0)
{
	struct user_proc *p = add(ps, pid);

	return p ? watch_loader(ps, p, argv0, true) : -ENOMEM;
}

void user_procs__exit(struct user_procs *ps, pid_t pid)
{
	for (size_t i = 0; i < ps->nr; i++)
		if (ps->v[i]->pid == pid) {
			proc_free(ps->v[i]);
			ps->v[i] = ps->v[--ps->nr];
			return;
		}
}

/* 'T': stopped by a signal (u_stop()'s) */
static bool stopped(pid_t pid)
{
	char path[64], buf[512], *s;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	/* the state follows the comm, which may hold spaces and parentheses */
	s = strrchr(buf, ')');
	return s && s[1] == ' ' && s[2] == 'T';
}

static int resume(pid_t pid)
{
	return kill(pid, SIGCONT) && errno != ESRCH ? -errno : 0;
}

/*
 * A new process stopped at its return from fork: a copy of its parent, the
 * same objects, probes of its own. A process of that pid kmemscope knew is
 * gone (pids are reused).
 */
static int fork_stop(struct user_procs *ps, pid_t pid)
{
	struct user_proc *p;
	int err;

	user_procs__exit(ps, pid);
	p = add(ps, pid);
	if (!p)
		return -ENOMEM;
	err = attach_proc(ps, p, NULL);
	if (!err)
		err = watch_loader(ps, p, NULL, false);
	return resume(pid) ?: err;
}

/*
 * Stopped at its loader's announcement. Adding (r_state 1): resume it, the
 * next announcement stops it again. Consistent: its objects are loaded;
 * resolve and attach, then take it off u_loader's list (ustop) before
 * resuming, so that no dlopen() stops it.
 */
static int loader_stop(struct user_procs *ps, pid_t pid)
{
	struct user_proc *p = find(ps, pid);
	__u32 tgid = pid;
	int state, err = user_lookup__state(pid, &state);

	if (!err && !state) {
		p = p ? p : add(ps, pid);
		err = p ? attach_proc(ps, p, NULL) : -ENOMEM;
		bpf_map__delete_elem(ps->skel->maps.ustop, &tgid, sizeof(tgid), 0);
	}
	return resume(pid) ?: err;
}

/*
 * The stops of the BPF side (ustopped), each seen once: its entry goes
 * before the process is resumed, and the next stop makes a new one. A
 * process not stopped yet (the signal is on its way) waits for the next
 * call; one that is gone leaves.
 */
int user_procs__poll(struct user_procs *ps)
{
	struct bpf_map *m = ps ? ps->skel->maps.ustopped : NULL;
	__u32 keys[64], why;
	int n = 0;

	while (m && n < 64 && !bpf_map__get_next_key(m, n ? &keys[n - 1] : NULL, &keys[n],
						     sizeof(keys[0])))
		n++;
	for (int i = 0; i < n; i++) {
		pid_t pid = keys[i];
		int err;

		if (!stopped(pid)) {
			if (kill(pid, 0) && errno == ESRCH)
				bpf_map__delete_elem(m, &keys[i], sizeof(keys[i]), 0);
			continue;
		}
		if (bpf_map__lookup_elem(m, &keys[i], sizeof(keys[i]), &why, sizeof(why), 0) ||
		    bpf_map__delete_elem(m, &keys[i], sizeof(keys[i]), 0))
			continue;
		err = why == U_STOP_FORK ? fork_stop(ps, pid) : loader_stop(ps, pid);
		if (err) {
			kms_error("Failed to trace the allocations of process %d: %s\n", pid,
				  strerror(-err));
			return err;
		}
	}
	return 0;
}

const char *user_procs__allocator(const struct user_procs *ps)
{
	return ps && ps->allocator[0] ? ps->allocator : NULL;
}

void user_procs__free(struct user_procs *ps)
{
	struct bpf_map *m = ps ? ps->skel->maps.ustopped : NULL;
	__u32 tgid;

	if (!ps)
		return;
	/* stopped for kmemscope: none stays stopped when tracing ends */
	while (!bpf_map__get_next_key(m, NULL, &tgid, sizeof(tgid))) {
		bpf_map__delete_elem(m, &tgid, sizeof(tgid), 0);
		kill(tgid, SIGCONT);
	}
	for (size_t i = 0; i < ps->nr; i++)
		proc_free(ps->v[i]);
	free(ps->v);
	free(ps);
}
