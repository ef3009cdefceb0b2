// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* File and line of user frames (see srcline.h). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <string.h>
#include <unistd.h>
#include <elfutils/libdwfl.h>
#include "srcline.h"

/* NULL: libdwfl's default path, ":.debug:/usr/lib/debug", build ids first */
static char *debuginfo_path;

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

/*
 * What to add to an ELF address to get the address in the process: the
 * loadable segment that holds file offset pgoff was mapped at start.
 */
static int load_bias(const char *path, __u64 start, __u64 pgoff, __u64 *bias)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = -ENOENT;
	size_t n = 0;
	GElf_Phdr ph;
	Elf *e;

	if (fd < 0)
		return -errno;
	e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_getphdrnum(e, &n))
		err = -EINVAL;
	for (size_t i = 0; e && i < n; i++) {
		if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_LOAD ||
		    pgoff < ph.p_offset || pgoff >= ph.p_offset + ph.p_filesz)
			continue;
		*bias = start - pgoff - (ph.p_vaddr - ph.p_offset);
		err = 0;
		break;
	}
	elf_end(e);
	close(fd);
	return err;
}

int srcline__write(const char *path, __u64 start, __u64 end, __u64 pgoff, const __u64 *addrs,
		   size_t n, FILE *f)
{
	Dwfl *dwfl = NULL;
	Dwfl_Module *mod;
	__u64 bias = 0;
	size_t i;
	int err, nr = 0;

	for (i = 0; i < n && addrs[i] < start; i++)
		;
	if (i == n || addrs[i] >= end)
		return 0;	/* none of ours: nothing to open */
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	err = load_bias(path, start, pgoff, &bias);
	if (err)
		return err;
	dwfl = dwfl_begin(&callbacks);
	if (!dwfl)
		return -ENOMEM;
	/* ET_DYN placed at its bias; libdwfl ignores it for a fixed-address ET_EXEC */
	mod = dwfl_report_elf(dwfl, path, path, -1, bias, false);
	dwfl_report_end(dwfl, NULL, NULL);
	for (; mod && i < n && addrs[i] < end; i++) {
		__u64 a = addrs[i];
		const char *here = dwfl_module_addrname(mod, a), *before;
		const char *file;
		Dwfl_Line *l;
		int line = 0;

		/* the call is the byte before the return address, in the same function */
		before = dwfl_module_addrname(mod, a - 1);
		if (!here || !before || strcmp(here, before))
			continue;
		l = dwfl_module_getsrc(mod, a - 1);
		file = l ? dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL) : NULL;
		if (!file || !*file || line <= 0 || strchr(file, '\n'))
			continue;
		fprintf(f, "L %016llx %d %s\n", (unsigned long long)a, line, file);
		nr++;
	}
	dwfl_end(dwfl);
	return nr;
}
