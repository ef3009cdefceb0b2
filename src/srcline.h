/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * File and line of user frames from DWARF (libdw's libdwfl): the object's
 * own line table, or that of a separate debug file found by its build id
 * (/usr/lib/debug/.build-id/xx/yyyy.debug, what Debian's *-dbgsym packages
 * install). The result is text the symbol table reads (ksyms.h, struct
 * ksrc), so that a trace file carries it and a replay needs no binary.
 */
#ifndef KMS_SRCLINE_H
#define KMS_SRCLINE_H

#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>

/*
 * For every address in addrs (sorted, any range) that falls in the mapping
 * [start, end) of path at file offset pgoff, the source line of the call
 * that returns there, as "L ADDR LINE FILE" lines into f. Addresses are
 * return addresses: the line is that of the byte before, and an address
 * that starts a function (an entry probe's own frame, not a return) gets
 * none. Returns how many lines were written, or -errno when the object
 * cannot be read; an object without line information gives 0.
 */
int srcline__write(const char *path, __u64 start, __u64 end, __u64 pgoff, const __u64 *addrs,
		   size_t n, FILE *f);

#endif
