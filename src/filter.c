/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The filter stage (see filter.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "agg.h"
#include "filter.h"
#include "htab.h"

/* what the comm filter knows of one process: its name matched or not */
struct task_slot {
	__u64 tgid;
	bool match;
	__u8 pad[6];
	__u8 meta;		/* htab.h's */
};
HTAB_SLOT(struct task_slot);

#define FILTER_MAX_PIDS 64

struct filter {
	char comm[KMS_COMM_LEN];
	__u32 pids[FILTER_MAX_PIDS];
	int nr_pids;
	bool by_comm;
	unsigned int families;
	struct htab tasks;
	__u32 last_tgid;	/* records come in runs of one process */
	int last_match;		/* -1: no cached answer */
	struct filter_stats st;
};

struct filter *filter__new(const struct filter_opts *o)
{
	struct filter *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->families = o ? o->families : 0;
	f->last_match = -1;
	if (o && o->nr_pids) {
		f->nr_pids = o->nr_pids < FILTER_MAX_PIDS ? o->nr_pids : FILTER_MAX_PIDS;
		for (int i = 0; i < f->nr_pids; i++)
			f->pids[i] = o->pids[i];
	}
	if (o && o->comm) {
		f->by_comm = true;
		strncpy(f->comm, o->comm, KMS_COMM_LEN - 1);
		if (htab__init(&f->tasks, sizeof(struct task_slot), 256, HTAB_FAST, htab__hash_u64)) {
			free(f);
			errno = ENOMEM;
			return NULL;
		}
	}
	return f;
}

void filter__free(struct filter *f)
{
	if (!f)
		return;
	htab__fini(&f->tasks);
	free(f);
}

void filter__meta(struct filter *f, const struct kms_meta *m)
{
	struct task_slot *s;
	__u64 key = (__u32)m->key;
	bool created;

	if (!f->by_comm || m->type != KMS_EV_META_TASK)
		return;
	s = htab__get(&f->tasks, kms_hash64(key), &key, sizeof(key), sizeof(*s), &created);
	if (!s)
		return;	/* no memory: the process stays unknown, so outside */
	/* a comm changes at exec, and the BPF side names the process again */
	s->match = !strncmp(m->name, f->comm, KMS_COMM_LEN - 1);
	if (f->last_tgid == key)
		f->last_match = -1;
}

/*
 * A process is inside once a task record named it with the comm; records
 * always follow their process's first task record, so an unnamed one is
 * outside.
 */
static bool comm_match(struct filter *f, __u32 tgid)
{
	const struct task_slot *s;
	__u64 key = tgid;

	if (f->last_match >= 0 && f->last_tgid == tgid)
		return f->last_match;
	s = htab__lookup(&f->tasks, kms_hash64(key), &key, sizeof(key), sizeof(*s));
	f->last_tgid = tgid;
	f->last_match = s && s->match;
	return f->last_match;
}

static bool pid_match(const struct filter *f, __u32 tgid)
{
	for (int i = 0; i < f->nr_pids; i++)
		if (f->pids[i] == tgid)
			return true;
	return false;
}

static bool family_wanted(const struct filter *f, int fam)
{
	return !f->families || (f->families & (1U << fam));
}

bool filter__event(struct filter *f, struct kms_event *e)
{
	int fam = e->type == KMS_EV_ALLOC_FAIL ? e->order : kms_ev_family(e->type);
	bool is_free = kms_ev_is_free(e->type);

	if (fam < 0 || fam >= KMS_FAM_MAX)
		return true;	/* the consumers count what they cannot read */
	if (!family_wanted(f, fam)) {
		/* kfree frees kmem_cache objects too, and kmem_cache_free kmalloc ones */
		int other = fam == KMS_FAM_KMALLOC ? KMS_FAM_CACHE :
			    fam == KMS_FAM_CACHE ? KMS_FAM_KMALLOC : -1;

		if (!is_free || other < 0 || !family_wanted(f, other)) {
			f->st.skipped++;
			return false;
		}
		e->ctx |= KMS_CTX_OUTSIDE;
	}
	if ((f->by_comm && !comm_match(f, e->pid)) || (f->nr_pids && !pid_match(f, e->pid))) {
		if (!is_free) {
			f->st.filtered++;
			return false;
		}
		e->ctx |= KMS_CTX_OUTSIDE;
	}
	return true;
}

const struct filter_stats *filter__stats(const struct filter *f)
{
	return &f->st;
}
