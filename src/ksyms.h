/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel symbolization from /proc/kallsyms, modules included. Loaded once,
 * sorted once, resolved by binary search. Only text symbols (t T w W)
 * resolve; other symbols are kept as boundaries, so a data address never
 * resolves to the function in front of it.
 *
 * kallsyms has no symbol sizes. A symbol extends to the next symbol. The
 * last symbol before a different region (vmlinux, another module, [bpf])
 * extends at most to the page that holds the next region's first symbol
 * (module memory is page aligned) and at most KSYMS_TAIL_MAX bytes past its
 * start; beyond that an address resolves to nothing rather than to the
 * previous module's last function.
 */
#ifndef KMS_KSYMS_H
#define KMS_KSYMS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define KSYMS_TAIL_MAX	0x2000UL

struct ksym {
	const char *name;
	unsigned long addr;
	const char *module;	/* NULL for vmlinux, "bpf" for BPF programs */
};

/*
 * Where the code at an address came from (user frames with DWARF, user.h):
 * kept in the same text as the symbols, as "L ADDR LINE FILE" lines, which
 * parsers that predate them skip (a line not led by an address is no symbol).
 */
struct ksrc {
	unsigned long addr;	/* the frame's address, exactly */
	unsigned int line;
	const char *file;	/* as the line table names it: relative to the compile directory if given so */
};

struct ksyms;

/*
 * path NULL: /proc/kallsyms. Returns NULL with errno set: EPERM when every
 * address reads as zero (kptr_restrict, or no CAP_SYSLOG), ENODATA when the
 * file holds no symbol, else the open/read/allocation error.
 */
struct ksyms *ksyms__load(const char *path);
/* the same, with more kallsyms lines after the file's (user symbols: user.h) */
struct ksyms *ksyms__load_more(const char *path, const char *more, size_t more_len);
/* from kallsyms text in a malloc'ed buffer, which the symbols take (freed on failure too) */
struct ksyms *ksyms__from_text(char *text, size_t len);
void ksyms__free(struct ksyms *k);

/*
 * Reading /proc/kallsyms costs ~0.1 s of kernel time (6.18, 122 k symbols),
 * as long as loading the BPF programs: a loader reads it on a thread of its
 * own from start-up on, and whoever needs the symbols first waits for them.
 * A zeroed loader that was never started reads them in place when asked.
 */
struct ksyms_loader {
	const char *path;	/* NULL: /proc/kallsyms */
	pthread_t thread;
	bool started;		/* the thread runs or ran */
	bool done;		/* k and err are final */
	struct ksyms *k;
	int err;		/* errno of ksyms__load() when k is NULL */
};

/* start reading path (NULL: /proc/kallsyms) in the background (in place later if no thread starts) */
void ksyms__load_start(struct ksyms_loader *l, const char *path);
/*
 * The symbols, as ksyms__load(l->path) gives them (NULL with errno set), once
 * read; every call returns the same. The loader keeps them.
 */
struct ksyms *ksyms__wait(struct ksyms_loader *l);
/* wait for a started reader, free the symbols */
void ksyms__loader_fini(struct ksyms_loader *l);

/* the source line recorded for addr itself (not a range), NULL when none was */
const struct ksrc *ksyms__source(const struct ksyms *k, unsigned long addr);
/* the text symbol that contains addr, NULL when none does */
const struct ksym *ksyms__resolve(const struct ksyms *k, unsigned long addr);
/*
 * "func+0x1f", "func+0x1f [module]", or "0xffffffffc0a01234" when addr does
 * not resolve. snprintf semantics; returns the full length.
 */
int ksyms__format(const struct ksyms *k, unsigned long addr, char *buf, size_t len);
/*
 * A text symbol by name (linear scan). With duplicates: vmlinux before
 * modules, global before weak before local, then the lowest address.
 */
const struct ksym *ksyms__find(const struct ksyms *k, const char *name);
/*
 * The kallsyms lines that make ksyms__resolve() of addr in a table built from
 * them alone (ksyms__from_text) give what it gives in k: the symbol addr
 * falls in and the one after it, as a boundary. A trace file keeps these for
 * every address it refers to. snprintf semantics (0: addr is below every
 * symbol, nothing to keep); *key is the address of the symbol found, the
 * same for every addr in one symbol.
 */
int ksyms__export(const struct ksyms *k, unsigned long addr, unsigned long *key, char *buf,
		  size_t len);
/*
 * The address ranges [lo[i], hi[i]) of the vmlinux functions whose names
 * match, in address order, neighbours merged. Returns how many, max + 1
 * when there were more than max (the first max are filled).
 */
size_t ksyms__ranges(const struct ksyms *k, bool (*match)(const char *name), unsigned long *lo,
		     unsigned long *hi, size_t max);
/* number of text symbols loaded */
size_t ksyms__count(const struct ksyms *k);

#endif /* KMS_KSYMS_H */
