/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The RCU handoff set: addresses handed to RCU whose real free is still due. */
#include <stdlib.h>
#include "htab.h"
#include "agg.h"
#include "deferred.h"

struct pend_slot {
	__u64 ptr;
	__u8 pad[7];
	__u8 meta;		/* htab.h's */
};
HTAB_SLOT(struct pend_slot);

struct deferred {
	struct htab pending;
	struct deferred_stats st;
};

struct deferred *deferred__new(void)
{
	struct deferred *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	if (htab__init(&d->pending, sizeof(struct pend_slot), 1024, HTAB_FAST, htab__hash_u64)) {
		free(d);
		return NULL;
	}
	return d;
}

void deferred__free(struct deferred *d)
{
	if (!d)
		return;
	htab__fini(&d->pending);
	free(d);
}

void deferred__event(struct deferred *d, struct kms_event *e)
{
	int cls = kms_ev_class(e->type);
	struct pend_slot *s;
	bool created;

	/* pages are keyed by frame, not address: never an RCU-freed object */
	if (!e->ptr || (cls != KMS_OC_SLAB && cls != KMS_OC_VMALLOC))
		return;
	if (e->type == KMS_EV_RCU_FREE) {
		/* a second handoff of the same object stays a free: a double free */
		s = htab__get(&d->pending, kms_hash64(e->ptr), &e->ptr, sizeof(e->ptr),
			      sizeof(*s), &created);
		if (!s) {
			d->st.nomem++;
			return;
		}
		if (created) {
			d->st.handoffs++;
			d->st.pending++;
		}
		return;
	}
	/* the common case on kernels where no handoff is traced: one compare */
	if (!d->pending.count)
		return;
	s = htab__lookup(&d->pending, kms_hash64(e->ptr), &e->ptr, sizeof(e->ptr), sizeof(*s));
	if (!s)
		return;
	htab__delete(&d->pending, s, sizeof(*s));
	d->st.pending--;
	if (kms_ev_is_free(e->type)) {
		e->ctx |= KMS_CTX_RCU_DONE;
		d->st.completed++;
	} else {
		/* allocated again: the real free happened where nothing traced it */
		d->st.reused++;
	}
}

const struct deferred_stats *deferred__stats(const struct deferred *d)
{
	return &d->st;
}
