// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Which object provides each allocation function (see user_lookup.h).
 *
 * The order: glibc's loader resolves a symbol in its global scope, which is
 * its link map in load order: the executable, then LD_PRELOAD objects, then
 * the DT_NEEDED libraries breadth first (what dlopen() adds comes after, so
 * it cannot take malloc from them). /proc/PID/maps gives the objects but not
 * that order (addresses say where, not when), so the link map is read from
 * the process's memory: the r_debug whose address the loader writes into the
 * executable's DT_DEBUG entry for debuggers; its r_map is the list's head.
 * Only dynamic symbols take part in that lookup (.dynsym); an executable
 * that links an allocator statically exports its malloc there once a
 * library it needs refers to malloc. A static executable has no
 * loader: its own symbol table is all there is.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "user_lookup.h"

/* glibc's struct r_debug and struct link_map on 64-bit targets: the fields read */
#define RD_MAP		8
#define RD_STATE	24
#define LM_NAME		8
#define LM_NEXT		24
/* a loader's list is short; a longer one is a loop in damaged memory */
#define MAX_OBJS	4096

struct elf_file {
	int fd;
	Elf *e;
};

static int elf_open(const char *path, struct elf_file *f)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return -errno;
	f->e = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
	if (!f->e || elf_kind(f->e) != ELF_K_ELF) {
		elf_end(f->e);
		close(f->fd);
		return -ENOEXEC;
	}
	return 0;
}

static void elf_close(struct elf_file *f)
{
	elf_end(f->e);
	close(f->fd);
}

/* the PT_INTERP path, -ENOENT when the object has none */
static int elf_interp(Elf *e, char *buf, size_t len)
{
	size_t n, size;
	const char *raw = elf_rawfile(e, &size);
	GElf_Phdr ph;

	if (!raw || elf_getphdrnum(e, &n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_INTERP)
			continue;
		if (ph.p_offset + ph.p_filesz > size || !ph.p_filesz || ph.p_filesz > len)
			return -EINVAL;
		memcpy(buf, raw + ph.p_offset, ph.p_filesz);
		buf[ph.p_filesz - 1] = '\0';
		return 0;
	}
	return -ENOENT;
}

/*
 * Defined functions of one table named in names[], the first of each name:
 * vals[i] set and found[i] true. A hidden version (name@VER, not the
 * default name@@VER) is not what a plain name binds to.
 */
static void table_find(Elf *e, Elf_Scn *scn, Elf_Scn *versym, const char *const *names, int nr,
		       __u64 *vals, bool *found)
{
	Elf_Data *d = elf_getdata(scn, NULL), *vd = versym ? elf_getdata(versym, NULL) : NULL;
	GElf_Shdr sh;

	if (!gelf_getshdr(scn, &sh) || !d || !sh.sh_entsize)
		return;
	for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
		GElf_Versym v;
		GElf_Sym s;
		const char *name;

		/* an IFUNC's value is its resolver, not the function a call reaches */
		if (!gelf_getsym(d, i, &s) || s.st_shndx == SHN_UNDEF ||
		    GELF_ST_TYPE(s.st_info) != STT_FUNC || GELF_ST_BIND(s.st_info) == STB_LOCAL)
			continue;
		if (vd && gelf_getversym(vd, i, &v) && (v & 0x8000))
			continue;
		name = elf_strptr(e, sh.sh_link, s.st_name);
		for (int k = 0; name && k < nr; k++)
			if (!found[k] && !strcmp(name, names[k])) {
				vals[k] = s.st_value;
				found[k] = true;
			}
	}
}

/* the dynamic symbols, and with all the static table too (a static executable) */
static void elf_find(Elf *e, bool all, const char *const *names, int nr, __u64 *vals,
		     bool *found)
{
	Elf_Scn *scn = NULL, *dynsym = NULL, *symtab = NULL, *versym = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(e, scn))) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_DYNSYM)
			dynsym = scn;
		else if (sh.sh_type == SHT_SYMTAB)
			symtab = scn;
		else if (sh.sh_type == SHT_GNU_versym)
			versym = scn;
	}
	if (dynsym)
		table_find(e, dynsym, versym, names, nr, vals, found);
	if (all && symtab)
		table_find(e, symtab, NULL, names, nr, vals, found);
}

static const char *base(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

static int peek(int mem, __u64 addr, void *buf, size_t len)
{
	ssize_t n = pread(mem, buf, len, (off_t)addr);

	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

/*
 * Where the object at path is loaded in pid: its mapping of file offset 0,
 * found by device and inode (paths in maps are the kernel's, not the
 * loader's), less the first segment's address.
 */
static int load_bias(pid_t pid, const char *path, Elf *e, __u64 *bias)
{
	char line[PATH_MAX + 128];
	unsigned long long start, off, ino;
	unsigned int maj, min;
	GElf_Phdr ph;
	struct stat st;
	size_t n;
	FILE *f;
	int err = -ENOENT;

	if (stat(path, &st) || elf_getphdrnum(e, &n))
		return -errno ? -errno : -EINVAL;
	snprintf(line, sizeof(line), "/proc/%d/maps", pid);
	f = fopen(line, "re");
	if (!f)
		return -errno;
	while (err && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx-%*x %*s %llx %x:%x %llu", &start, &off, &maj, &min, &ino) == 5 &&
		    !off && ino == st.st_ino && maj == major(st.st_dev) && min == minor(st.st_dev))
			err = 0;
	fclose(f);
	for (size_t i = 0; !err && i < n; i++)
		if (gelf_getphdr(e, i, &ph) && ph.p_type == PT_LOAD) {
			*bias = start - (ph.p_vaddr & ~(ph.p_align ? ph.p_align - 1 : 0));
			return 0;
		}
	return err ? err : -ENOEXEC;
}

/* where the executable's dynamic section is loaded; -ENOENT: static (no loader) */
static int dynamic_addr(pid_t pid, const char *exe, __u64 *addr)
{
	char interp[PATH_MAX] = "";
	struct elf_file f;
	GElf_Phdr ph;
	__u64 bias = 0;
	size_t n = 0;
	int err = elf_open(exe, &f);

	/* -ENOENT is kept for "no loader" */
	if (err)
		return err == -ENOENT ? -ESRCH : err;
	err = elf_interp(f.e, interp, sizeof(interp));
	if (!err)
		err = elf_getphdrnum(f.e, &n) ? -EINVAL : -ENOEXEC;
	for (size_t i = 0; err == -ENOEXEC && i < n; i++)
		if (gelf_getphdr(f.e, i, &ph) && ph.p_type == PT_DYNAMIC) {
			err = load_bias(pid, exe, f.e, &bias);
			*addr = bias + ph.p_vaddr;
		}
	elf_close(&f);
	/* a loader but no mapping of the executable found: not "static" */
	return err == -ENOENT && interp[0] ? -ESRCH : err;
}

/*
 * pid's r_debug and its memory, open in *mem; -ENOENT for a static
 * executable (no loader, no list). The loader writes the address of the
 * r_debug it keeps into the executable's DT_DEBUG entry (the debuggers'
 * protocol) before it first announces anything.
 */
static int open_rdebug(pid_t pid, __u64 *rd, int *mem)
{
	char path[64];
	GElf_Dyn d = { .d_tag = DT_NULL };
	__u64 dyn = 0;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	err = dynamic_addr(pid, path, &dyn);
	if (err)
		return err;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	*mem = open(path, O_RDONLY | O_CLOEXEC);
	if (*mem < 0)
		return -errno;
	/* a dynamic section is short; a longer one is damaged memory */
	for (int i = 0; !err && i < 1024; i++) {
		err = peek(*mem, dyn + i * sizeof(d), &d, sizeof(d));
		if (err || d.d_tag == DT_NULL || d.d_tag == DT_DEBUG)
			break;
	}
	if (!err && (d.d_tag != DT_DEBUG || !d.d_un.d_ptr))
		err = -EAGAIN;	/* not set yet: the loader has not started */
	if (err) {
		close(*mem);
		return err;
	}
	*rd = d.d_un.d_ptr;
	return 0;
}

int user_lookup__state(pid_t pid, int *state)
{
	__u64 rd;
	__s32 st;
	int mem, err = open_rdebug(pid, &rd, &mem);

	if (err == -ENOENT) {
		*state = -1;
		return 0;
	}
	if (err)
		return err;
	err = peek(mem, rd + RD_STATE, &st, sizeof(st));
	close(mem);
	*state = st;
	return err;
}

/*
 * A string of the process's memory, read in aligned pieces: a name may end
 * just before an unmapped page, and a read across it comes back short.
 */
static int peek_str(int mem, __u64 addr, char *buf, size_t len)
{
	for (size_t got = 0; got + 1 < len;) {
		size_t n = 64 - (addr + got) % 64;

		if (n > len - 1 - got)
			n = len - 1 - got;
		if (peek(mem, addr + got, buf + got, n))
			return -EIO;
		buf[got + n] = '\0';
		if (memchr(buf + got, '\0', n))
			return 0;
		got += n;
	}
	return -ENAMETOOLONG;
}

/* look funcs up in one object; true when none is left to find */
static bool search(const char *path, const char *name, bool all, const char *const *funcs,
		   int nr, struct user_def *defs)
{
	struct elf_file f;
	__u64 vals[nr];
	bool found[nr], done = true;

	if (elf_open(path, &f))
		return false;
	for (int i = 0; i < nr; i++)
		found[i] = defs[i].path[0] != '\0';
	elf_find(f.e, all, funcs, nr, vals, found);
	elf_close(&f);
	for (int i = 0; i < nr; i++) {
		if (found[i] && !defs[i].path[0]) {
			snprintf(defs[i].path, sizeof(defs[i].path), "%s", path);
			snprintf(defs[i].name, sizeof(defs[i].name), "%s", name);
			defs[i].vaddr = vals[i];
		}
		done &= found[i];
	}
	return done;
}

int user_lookup__resolve(pid_t pid, const char *const *funcs, int nr, struct user_def *defs)
{
	char exe[64], exe_path[PATH_MAX] = "", name[PATH_MAX], path[2 * PATH_MAX];
	__u64 rd, lm = 0;
	int err, mem, n = 0;
	ssize_t len;

	memset(defs, 0, nr * sizeof(*defs));
	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	len = readlink(exe, exe_path, sizeof(exe_path) - 1);
	exe_path[len > 0 ? len : 0] = '\0';
	err = open_rdebug(pid, &rd, &mem);
	if (err == -ENOENT) {
		search(exe, base(exe_path), true, funcs, nr, defs);
		return 0;
	}
	if (err)
		return err;
	err = peek(mem, rd + RD_MAP, &lm, sizeof(lm));
	for (; !err && lm && n < MAX_OBJS; n++) {
		__u64 name_addr;

		err = peek(mem, lm + LM_NAME, &name_addr, sizeof(name_addr));
		if (!err)
			err = peek_str(mem, name_addr, name, sizeof(name));
		if (err)
			break;
		/* the executable's entry has no name; the vDSO's is no path */
		if (!name[0] && !n)
			snprintf(path, sizeof(path), "%s", exe);
		else if (name[0] == '/')
			snprintf(path, sizeof(path), "/proc/%d/root%s", pid, name);
		else
			path[0] = '\0';
		if (path[0] && search(path, base(name[0] ? name : exe_path), false, funcs, nr, defs))
			break;
		err = peek(mem, lm + LM_NEXT, &lm, sizeof(lm));
	}
	close(mem);
	return err;
}

/* argv0 as execvp finds it: a path with a slash as it is, else the first on PATH */
static int find_cmd(const char *argv0, char *out, size_t len)
{
	const char *p = getenv("PATH");
	char *dirs, *save = NULL;

	if (strchr(argv0, '/')) {
		snprintf(out, len, "%s", argv0);
		return 0;
	}
	dirs = strdup(p && *p ? p : "/usr/local/bin:/usr/bin:/bin");
	if (!dirs)
		return -ENOMEM;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/%s", *d ? d : ".", argv0);
		if (!access(out, X_OK)) {
			free(dirs);
			return 0;
		}
	}
	free(dirs);
	return -ENOENT;
}

int user_lookup__static(const char *exe, const char *const *funcs, int nr, struct user_def *defs)
{
	memset(defs, 0, nr * sizeof(*defs));
	search(exe, base(exe), true, funcs, nr, defs);
	return 0;
}

int user_lookup__cmd_loader(const char *argv0, char *loader, size_t len, char *exe,
			    size_t exe_len)
{
	struct elf_file f;
	int err = find_cmd(argv0, exe, exe_len);

	if (err)
		return err;
	err = elf_open(exe, &f);
	/* not ELF: a script, whose interpreter is taken to run under kmemscope's loader */
	if (err == -ENOEXEC)
		err = elf_open("/proc/self/exe", &f);
	if (err)
		return err;
	err = elf_interp(f.e, loader, len);
	elf_close(&f);
	if (err == -ENOENT) {
		loader[0] = '\0';
		return 0;
	}
	return err;
}
