// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* User space (see user.h). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "kmemscope.skel.h"
#include "log.h"
#include "srcline.h"
#include "user.h"
#include "user_proc.h"

/* the tracepoints of bpf/user.bpf.h */
#define NR_LINKS 16

/* one executable mapping of the traced process */
struct user_map {
	char *path;
	__u64 start, end, pgoff;
};

struct user_tracer {
	struct kmemscope_bpf *skel;
	struct user_procs *procs;
	struct bpf_link *links[NR_LINKS];
	int nr_links;
	int map_fd;		/* perf event array of the mmap record buffers */
	struct perf_buffer *pb;
	struct user_map *maps;
	size_t nr_maps, cap_maps;
	__u64 maps_lost;	/* mapping announcements the kernel dropped (buffer full) */
	bool reread;		/* ... since the traced processes' maps were last read */
	bool warned_lost;
	bool warned_clash;	/* ... and of mappings that share addresses (user__symbols()) */
};

static int add_map(struct user_tracer *u, const char *path, __u64 start, __u64 end, __u64 pgoff)
{
	struct user_map *m;

	/* the pseudo files ([vdso], [stack]) and deleted files have no ELF to read */
	if (path[0] != '/')
		return 0;
	for (size_t i = 0; i < u->nr_maps; i++)
		if (u->maps[i].start == start && !strcmp(u->maps[i].path, path))
			return 0;
	if (u->nr_maps == u->cap_maps) {
		size_t cap = u->cap_maps ? 2 * u->cap_maps : 16;

		m = realloc(u->maps, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		u->maps = m;
		u->cap_maps = cap;
	}
	m = &u->maps[u->nr_maps];
	m->path = strdup(path);
	if (!m->path)
		return -ENOMEM;
	m->start = start;
	m->end = end;
	m->pgoff = pgoff;
	u->nr_maps++;
	return 0;
}

/* the executable mappings in /proc/PID/maps */
static int read_maps(struct user_tracer *u, pid_t pid)
{
	char path[64], line[PATH_MAX + 128], perms[8], file[PATH_MAX];
	unsigned long long start, end, off;
	FILE *f;
	int err = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!err && fgets(line, sizeof(line), f)) {
		file[0] = '\0';
		if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %4095[^\n]", &start, &end, perms, &off,
			   file) < 4 || perms[2] != 'x')
			continue;
		err = add_map(u, file, start, end, off);
	}
	fclose(f);
	return err;
}

static void on_mmap(struct user_tracer *u, struct perf_event_header *h)
{
	struct {
		struct perf_event_header h;
		__u32 pid, tid;
		__u64 addr, len, pgoff;
		__u8 id[24];	/* device and inode, or the build id */
		__u32 prot, flags;
		char filename[];
	} *r = (void *)h;
	char path[PATH_MAX];
	size_t n;

	if (h->size <= sizeof(*r) || !user_procs__has(u->procs, r->pid))
		return;
	/* the ring is read-only: the name is copied out to be terminated */
	n = strnlen(r->filename, h->size - sizeof(*r));
	if (n >= sizeof(path))
		return;
	memcpy(path, r->filename, n);
	path[n] = '\0';
	if (add_map(u, path, r->addr, r->addr + r->len, r->pgoff))
		kms_warn("out of memory: the mapping of %s stays unsymbolized\n", path);
}

static enum bpf_perf_event_ret on_record(void *ctx, int cpu, struct perf_event_header *h)
{
	struct user_tracer *u = ctx;
	/* PERF_RECORD_EXIT */
	const struct {
		struct perf_event_header h;
		__u32 pid, ppid, tid, ptid;
	} *t = (const void *)h;

	if (h->type == PERF_RECORD_MMAP2)
		on_mmap(u, h);
	/* { header, id, lost }: which mappings went is unknown */
	else if (h->type == PERF_RECORD_LOST && h->size >= sizeof(*h) + 16) {
		u->maps_lost += ((const __u64 *)(h + 1))[1];
		u->reread = true;
	}
	/* a process's end, its last thread's: a lost record only keeps its probes longer */
	else if (h->type == PERF_RECORD_EXIT && h->size >= sizeof(*t) && t->pid == t->tid)
		user_procs__exit(u->procs, t->pid);
	return LIBBPF_PERF_EVENT_CONT;
}

/*
 * The kernel announces every executable mapping a process makes (perf's
 * PERF_RECORD_MMAP2, the same announcements perf record keeps): the objects
 * are known even when the process has exited before its records are read,
 * which /proc/PID/maps cannot give. A process's end comes the same way
 * (PERF_RECORD_EXIT).
 */
static int watch_mmaps(struct user_tracer *u)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_DUMMY,
		.size = sizeof(attr),
		.mmap = 1,
		.mmap2 = 1,
		.task = 1,
	};
	int ncpu = libbpf_num_possible_cpus();

	if (ncpu < 0)
		return ncpu;
	u->map_fd = bpf_map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, "user_mmaps", sizeof(int),
				   sizeof(int), ncpu, NULL);
	if (u->map_fd < 0)
		return -errno;
	/*
	 * Every process's mappings come here, not only the traced ones': a busy
	 * system can fill a small buffer between two polls (a 1-page one did,
	 * under a storm of short processes).
	 */
	u->pb = perf_buffer__new_raw(u->map_fd, 64, &attr, on_record, u, NULL);
	return u->pb ? 0 : -errno;
}

/* the tracepoints: named in their section; the syscalls checked against the pid filter */
static int attach_tracepoints(struct user_tracer *u)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, u->skel->obj) {
		if (strncmp(bpf_program__name(prog), "u_", 2) ||
		    bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE)
			continue;
		if (u->nr_links == NR_LINKS)
			return -E2BIG;
		u->links[u->nr_links] = bpf_program__attach(prog);
		if (!u->links[u->nr_links])
			return -errno;
		u->nr_links++;
	}
	return 0;
}

int user__attach(struct user_tracer **out, struct kmemscope_bpf *skel, pid_t pid,
		 const char *cmd)
{
	struct user_tracer *u = calloc(1, sizeof(*u));
	int err;

	if (!u)
		return -ENOMEM;
	u->skel = skel;
	u->map_fd = -1;
	u->procs = user_procs__new(skel);
	if (!u->procs) {
		err = -ENOMEM;
		goto fail;
	}
	/* a command not started yet still has our mappings: the kernel announces its own */
	err = cmd ? 0 : read_maps(u, pid);
	if (err) {
		kms_error("Failed to read the mappings of process %d: %s\n", pid, strerror(-err));
		goto fail;
	}
	err = watch_mmaps(u);
	if (err) {
		kms_error("Failed to watch the mappings of process %d: %s\n", pid, strerror(-err));
		goto fail;
	}
	err = cmd ? user_procs__add_cmd(u->procs, pid, cmd) : user_procs__add(u->procs, pid);
	if (!err)
		err = attach_tracepoints(u);
	if (err)
		goto fail;
	*out = u;
	return 0;
fail:
	user__free(u);
	return err;
}

int user__poll(struct user_tracer *u)
{
	if (!u)
		return 0;
	if (u->pb)
		perf_buffer__consume(u->pb);
	/*
	 * Announcements were lost: read the live traced processes' maps again
	 * (add_map() keeps each once). A process already gone may keep frames
	 * without a name: said once.
	 */
	if (u->reread) {
		pid_t pid;

		if (!u->warned_lost)
			kms_warn("%llu mapping announcements lost (buffer full): the traced "
				 "processes' maps are read again; frames of a process already "
				 "gone may stay unnamed\n", (unsigned long long)u->maps_lost);
		u->warned_lost = true;
		u->reread = false;
		for (size_t i = 0; (pid = user_procs__pid(u->procs, i)); i++)
			read_maps(u, pid);
	}
	return user_procs__poll(u->procs);
}

const char *user__allocator(const struct user_tracer *u)
{
	return u ? user_procs__allocator(u->procs) : NULL;
}

/* file offset of a symbol's address, from the program header that loads it */
static int sym_offset(Elf *e, __u64 vaddr, __u64 *off)
{
	size_t n;
	GElf_Phdr ph;

	if (elf_getphdrnum(e, &n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
			*off = vaddr - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

/* the GNU build id as hex, "" when the object has none */
static void build_id(Elf *e, char *hex, size_t len)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	hex[0] = '\0';
	while ((scn = elf_nextscn(e, scn))) {
		Elf_Data *d;
		GElf_Nhdr nh;
		size_t off = 0, noff, doff;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE || !(d = elf_getdata(scn, NULL)))
			continue;
		while ((off = gelf_getnote(d, off, &nh, &noff, &doff)) > 0) {
			const unsigned char *id = (const unsigned char *)d->d_buf + doff;

			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((char *)d->d_buf + noff, "GNU", 4))
				continue;
			for (size_t i = 0; i < nh.n_descsz && 2 * i + 2 < len; i++)
				snprintf(hex + 2 * i, 3, "%02x", id[i]);
			return;
		}
	}
}

struct usym {
	__u64 addr, end;
	char type;
	const char *name;
};

static int cmp_usym(const void *a, const void *b)
{
	const struct usym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* the function symbols of one table that fall in mapping m */
static int table_syms(Elf *e, Elf_Scn *scn, const struct user_map *m, struct usym **out,
		      size_t *nr)
{
	GElf_Shdr sh;
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t count;
	struct usym *v;

	if (!gelf_getshdr(scn, &sh) || !d || !sh.sh_entsize)
		return 0;
	count = sh.sh_size / sh.sh_entsize;
	v = realloc(*out, (*nr + count) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	*out = v;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym s;
		__u64 off;
		int t;

		if (!gelf_getsym(d, i, &s) || !s.st_value || !s.st_size ||
		    s.st_shndx == SHN_UNDEF)
			continue;
		t = GELF_ST_TYPE(s.st_info);
		if ((t != STT_FUNC && t != STT_GNU_IFUNC) || sym_offset(e, s.st_value, &off) ||
		    off < m->pgoff || off - m->pgoff >= m->end - m->start)
			continue;
		v[*nr].addr = m->start + off - m->pgoff;
		v[*nr].end = v[*nr].addr + s.st_size;
		v[*nr].name = elf_strptr(e, sh.sh_link, s.st_name);
		/* kallsyms letters: global before weak before local when aliases share an address */
		v[*nr].type = GELF_ST_BIND(s.st_info) == STB_GLOBAL ? 'T' :
			      GELF_ST_BIND(s.st_info) == STB_WEAK ? 'W' : 't';
		if (v[*nr].name && *v[*nr].name)
			(*nr)++;
	}
	return 0;
}

/*
 * Addresses two mappings of different objects share. The symbol table is one
 * for all traced processes, so the two processes' frames there cannot be told
 * apart: no name is right for both (with address-space randomization off,
 * every program's executable loads at the same address).
 */
struct user_clash {
	__u64 lo, hi;
	const struct user_map *a, *b;
};

static bool clashes(const struct user_clash *c, size_t n, __u64 addr)
{
	for (size_t i = 0; i < n; i++)
		if (addr >= c[i].lo && addr < c[i].hi)
			return true;
	return false;
}

/* one kallsyms line, unless its address is in a clash */
static void sym_line(FILE *f, const struct user_clash *c, size_t nc, __u64 addr, char type,
		     const char *name, const char *obj)
{
	if (!clashes(c, nc, addr))
		fprintf(f, "%016llx %c %s\t[%s]\n", (unsigned long long)addr, type, name, obj);
}

/*
 * One mapping's lines: the build-id symbol at the object's load base, every
 * function, and a boundary ('b') after each function that a gap follows, so
 * that an address between functions does not resolve to the one before it.
 * Nothing in a clash (c, nc): user__symbols() names those ranges.
 */
static int map_syms(const struct user_map *m, const struct user_clash *c, size_t nc, FILE *f)
{
	const char *obj = strrchr(m->path, '/') + 1;
	Elf_Scn *scn = NULL, *symtab = NULL, *dynsym = NULL;
	struct usym *v = NULL;
	size_t nr = 0;
	char id[80], bid[96];
	GElf_Shdr sh;
	Elf *e;
	int fd, err = 0;

	fd = open(m->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e) {
		close(fd);
		return -EINVAL;
	}
	while ((scn = elf_nextscn(e, scn)))
		if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB)
			symtab = scn;
		else if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_DYNSYM)
			dynsym = scn;
	build_id(e, id, sizeof(id));
	snprintf(bid, sizeof(bid), "build-id:%s", *id ? id : "none");
	sym_line(f, c, nc, m->start - m->pgoff, 't', bid, obj);
	/* a stripped object still exports its dynamic symbols */
	if (symtab || dynsym)
		err = table_syms(e, symtab ? symtab : dynsym, m, &v, &nr);
	qsort(v, nr, sizeof(*v), cmp_usym);
	for (size_t i = 0; i < nr; i++) {
		sym_line(f, c, nc, v[i].addr, v[i].type, v[i].name, obj);
		if (i + 1 == nr || v[i + 1].addr > v[i].end)
			sym_line(f, c, nc, v[i].end, 'b', ".end", obj);
	}
	/* where the mapping ends, the next object's addresses must not resolve here */
	sym_line(f, c, nc, m->end, 'b', ".end", obj);
	free(v);
	elf_end(e);
	close(fd);
	return err;
}

/* same object at the same load base: the same names */
static bool same_image(const struct user_map *a, const struct user_map *b)
{
	return a->start - a->pgoff == b->start - b->pgoff && !strcmp(a->path, b->path);
}

/* the clashes among u's mappings, in a malloc'ed *out, *nr of them: 0 or -ENOMEM */
static int find_clashes(const struct user_tracer *u, struct user_clash **out, size_t *nr)
{
	struct user_clash *c = NULL, *nv;
	size_t n = 0;

	for (size_t i = 0; i < u->nr_maps; i++)
		for (size_t j = i + 1; j < u->nr_maps; j++) {
			const struct user_map *a = &u->maps[i], *b = &u->maps[j];
			__u64 lo = a->start > b->start ? a->start : b->start;
			__u64 hi = a->end < b->end ? a->end : b->end;

			if (lo >= hi || same_image(a, b))
				continue;
			nv = realloc(c, (n + 1) * sizeof(*c));
			if (!nv) {
				free(c);
				return -ENOMEM;
			}
			c = nv;
			c[n++] = (struct user_clash){ .lo = lo, .hi = hi, .a = a, .b = b };
		}
	*out = c;
	*nr = n;
	return 0;
}

char *user__symbols(struct user_tracer *u, size_t *len)
{
	struct user_clash *c = NULL;
	char *text = NULL;
	size_t nc;
	FILE *f;

	user__poll(u);
	if (elf_version(EV_CURRENT) == EV_NONE)
		return NULL;
	if (find_clashes(u, &c, &nc))
		return NULL;
	f = open_memstream(&text, len);
	if (!f) {
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < u->nr_maps; i++) {
		int err = map_syms(&u->maps[i], c, nc, f);

		kms_debug("--user: %s at 0x%llx-0x%llx, offset 0x%llx\n", u->maps[i].path,
			  (unsigned long long)u->maps[i].start, (unsigned long long)u->maps[i].end,
			  (unsigned long long)u->maps[i].pgoff);
		if (err)
			kms_warn("no symbols from %s: %s\n", u->maps[i].path, strerror(-err));
	}
	for (size_t i = 0; i < nc; i++)
		fprintf(f, "%016llx t ambiguous\t[%s|%s]\n", (unsigned long long)c[i].lo,
			strrchr(c[i].a->path, '/') + 1, strrchr(c[i].b->path, '/') + 1);
	if (nc && !u->warned_clash) {
		kms_warn("--user: %zu address range(s) held different objects, in different "
			 "processes or one after another (address-space randomization off?): "
			 "frames there are named \"ambiguous\", with both objects\n", nc);
		u->warned_clash = true;
	}
	free(c);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

char *user__lines(struct user_tracer *u, const __u64 *addrs, size_t n, size_t *len)
{
	struct user_clash *c = NULL;
	/* at least one slot: malloc(0) may return NULL, which is no failure */
	__u64 *mine = calloc(n ? n : 1, sizeof(*mine));
	char *text = NULL;
	size_t nc, k = 0;
	FILE *f;

	/* an address in a clash has no one source line either */
	if (!mine || find_clashes(u, &c, &nc)) {
		free(mine);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (!clashes(c, nc, addrs[i]))
			mine[k++] = addrs[i];
	free(c);
	f = open_memstream(&text, len);
	if (!f) {
		free(mine);
		return NULL;
	}
	for (size_t i = 0; i < u->nr_maps; i++) {
		const struct user_map *m = &u->maps[i];
		int nr = srcline__write(m->path, m->start, m->end, m->pgoff, mine, k, f);

		if (nr < 0)
			kms_warn("no source lines from %s: %s\n", m->path, strerror(-nr));
		else if (nr)
			kms_debug("--user: %d source lines from %s\n", nr, m->path);
	}
	free(mine);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

void user__free(struct user_tracer *u)
{
	if (!u)
		return;
	user_procs__free(u->procs);
	for (int i = 0; i < u->nr_links; i++)
		bpf_link__destroy(u->links[i]);
	perf_buffer__free(u->pb);
	if (u->map_fd >= 0)
		close(u->map_fd);
	for (size_t i = 0; i < u->nr_maps; i++)
		free(u->maps[i].path);
	free(u->maps);
	free(u);
}
