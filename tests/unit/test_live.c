/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* live: the hash table of htab.h at high load and through growth, and the live-object store */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>
#include "htab.h"
#include "live.h"

struct kv_slot {
	__u64 key;
	__u32 val;
	__u8 pad[3];
	__u8 meta;
};
HTAB_SLOT(struct kv_slot);

#define KEY(i)	(0xffff888100000000ULL + (__u64)(i) * 64)

static struct kv_slot *kv_find(const struct htab *h, __u64 key)
{
	return htab__lookup(h, h->hash(&key), &key, sizeof(key), sizeof(struct kv_slot));
}

static struct kv_slot *kv_add(struct htab *h, __u64 key, __u32 val)
{
	struct kv_slot *s;
	bool created = false;	/* htab__get() leaves it when it fails (no memory) */

	s = htab__get(h, h->hash(&key), &key, sizeof(key), sizeof(*s), &created);
	assert_non_null(s);
	assert_true(created);
	s->val = val;
	return s;
}

/* every key of [0, n) with bit in keep is found with its value, every other one is not */
static void check_keys(const struct htab *h, unsigned int n, const bool *keep)
{
	unsigned int i, count = 0;

	for (i = 0; i < n; i++) {
		struct kv_slot *s = kv_find(h, KEY(i));

		if (keep[i]) {
			assert_non_null(s);
			assert_int_equal(s->key, KEY(i));
			assert_int_equal(s->val, i);
			count++;
		} else {
			assert_null(s);
		}
	}
	assert_int_equal(h->count, count);
}

static void shuffle(unsigned int *a, unsigned int n, unsigned int seed)
{
	for (unsigned int i = n - 1; i > 0; i--) {
		unsigned int j = rand_r(&seed) % (i + 1), t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

/* filled to the growth point (75 %) without growing, then half deleted in random order */
static void test_high_load(void **state)
{
	struct htab h;
	unsigned int i, n, cap, *order;
	bool *keep;

	assert_int_equal(htab__init(&h, sizeof(struct kv_slot), 100000, HTAB_DENSE, htab__hash_u64), 0);
	cap = h.cap;
	assert_true(cap >= 100000);
	n = h.grow_at;
	keep = calloc(n + 1000, sizeof(*keep));
	order = malloc(n * sizeof(*order));
	for (i = 0; i < n; i++) {
		kv_add(&h, KEY(i), i);
		keep[i] = true;
		order[i] = i;
	}
	assert_int_equal(h.cap, cap);
	assert_true((double)h.count / h.cap > 0.74);
	check_keys(&h, n + 1000, keep);
	/* backward-shift deletion keeps every other key reachable */
	shuffle(order, n, 7);
	for (i = 0; i < n / 2; i++) {
		struct kv_slot *s = kv_find(&h, KEY(order[i]));

		assert_non_null(s);
		htab__delete(&h, s, sizeof(*s));
		keep[order[i]] = false;
	}
	check_keys(&h, n + 1000, keep);
	/* and the freed slots are used again */
	for (i = 0; i < n / 2; i++) {
		kv_add(&h, KEY(order[i]), order[i]);
		keep[order[i]] = true;
	}
	assert_int_equal(h.cap, cap);
	check_keys(&h, n + 1000, keep);
	free(order);
	free(keep);
	htab__fini(&h);
}

/* growth by 5/4 past the load limit, every key kept; the load stays in 60-75 % (dense) */
static void test_growth(void **state)
{
	enum { N = 300000 };
	bool *keep = calloc(N, sizeof(*keep));
	struct htab h;
	unsigned int grows = 0;
	__u32 cap;

	assert_int_equal(htab__init(&h, sizeof(struct kv_slot), 16, HTAB_DENSE, htab__hash_u64), 0);
	cap = h.cap;
	for (unsigned int i = 0; i < N; i++) {
		kv_add(&h, KEY(i), i);
		keep[i] = true;
		if (h.cap != cap) {
			/* grown when the count reached 75 % of the old capacity */
			assert_true(h.cap >= cap + cap / 4);
			assert_true(h.cap <= cap + cap / 4 + 4096 / sizeof(struct kv_slot) + 1);
			assert_int_equal(h.count, cap / 4 * 3 + 1);
			cap = h.cap;
			grows++;
		}
		assert_true(h.count <= h.grow_at);
	}
	assert_true(grows > 10);
	assert_true((double)h.count / h.cap >= 0.59);
	check_keys(&h, N, keep);
	htab__fini(&h);

	/* the fast shape: doubled at half full */
	assert_int_equal(htab__init(&h, sizeof(struct kv_slot), 16, HTAB_FAST, htab__hash_u64), 0);
	cap = h.cap;
	for (unsigned int i = 0; i < N; i++) {
		kv_add(&h, KEY(i), i);
		if (h.cap != cap) {
			assert_int_equal(h.cap, cap * 2);
			assert_int_equal(h.count, cap / 2 + 1);
			cap = h.cap;
		}
	}
	check_keys(&h, N, keep);
	free(keep);
	htab__fini(&h);
}

/* every key has the same hash: one run longer than the meta byte counts (254) */
static __u64 same_hash(const void *slot)
{
	return 0x8000000000000000ULL;
}

static void test_saturated(void **state)
{
	enum { N = 600 };
	unsigned int order[N], i, saturated = 0;
	bool keep[N + 50] = {};
	struct htab h;

	assert_int_equal(htab__init(&h, sizeof(struct kv_slot), 256, HTAB_DENSE, same_hash), 0);
	for (i = 0; i < N; i++) {
		kv_add(&h, KEY(i), i);
		keep[i] = true;
		order[i] = i;
	}
	/* it grew on the way, placing every slot by the recomputed hash */
	assert_true(h.cap / 4 * 3 >= N);
	for (i = 0; i < h.cap; i++)
		if (*htab__meta(&h, i) == HTAB_DIST_MAX) {
			assert_true(htab__dist(&h, i) >= HTAB_DIST_MAX - 1);
			saturated++;
		}
	assert_int_equal(saturated, N - (HTAB_DIST_MAX - 1));
	check_keys(&h, N + 50, keep);
	shuffle(order, N, 3);
	for (i = 0; i < N / 3; i++) {
		htab__delete(&h, kv_find(&h, KEY(order[i])), sizeof(struct kv_slot));
		keep[order[i]] = false;
	}
	check_keys(&h, N + 50, keep);
	htab__fini(&h);
}

static int count_live(int cls, const struct live_obj *o, void *ctx)
{
	__u64 *n = ctx;

	n[cls]++;
	return 0;
}

/* add, set, find, get: every field comes back; objects share their origin */
static void test_store_fields(void **state)
{
	struct live_obj o, old, got;
	struct live_slot *s;
	struct live l;
	bool replaced;
	__u64 n[KMS_OC_NR] = {};

	assert_int_equal(live__init(&l), 0);
	for (int i = 0; i < 1000; i++) {
		s = live__add(&l, KMS_OC_SLAB, KEY(i), KMS_EV_KMALLOC, 5, &o, &old, &replaced);
		assert_non_null(s);
		assert_false(replaced);
		assert_int_equal(o.ptr, KEY(i));
		assert_int_equal(o.order, 0);	/* pages only */
		assert_int_equal(o.group, LIVE_NO_GROUP);
		o.site = i % 3;
		o.group = i % 2 ? LIVE_NO_GROUP : 7;
		o.ts = 0xfedcba9876543210ULL + i;
		o.bytes_alloc = 0xfffffff0U - i;
		o.pid = 4194304 + i;
		live__set(&l, s, &o);
	}
	/* (site, group) in 6 combinations: 6 origins for 1000 objects */
	assert_int_equal(l.origins.nr, 6);
	assert_int_equal(live__count(&l), 1000);
	for (int i = 0; i < 1000; i++) {
		s = live__find(&l, KMS_OC_SLAB, KEY(i));
		assert_non_null(s);
		live__get(&l, s, &got);
		assert_int_equal(got.ptr, KEY(i));
		assert_int_equal(got.site, i % 3);
		assert_int_equal(got.group, i % 2 ? LIVE_NO_GROUP : 7);
		assert_int_equal(got.ts, 0xfedcba9876543210ULL + i);
		assert_int_equal(got.bytes_alloc, 0xfffffff0U - i);
		assert_int_equal(got.pid, 4194304 + i);
		assert_int_equal(got.type, KMS_EV_KMALLOC);
		assert_null(live__find(&l, KMS_OC_VMALLOC, KEY(i)));
	}
	/* a live address handed out again: the old object comes back */
	s = live__add(&l, KMS_OC_SLAB, KEY(4), KMS_EV_CACHE_ALLOC, 0, &o, &old, &replaced);
	assert_true(replaced);
	assert_int_equal(old.ts, 0xfedcba9876543210ULL + 4);
	assert_int_equal(old.site, 1);
	assert_int_equal(o.type, KMS_EV_CACHE_ALLOC);
	o.site = 9;
	live__set(&l, s, &o);
	live__get(&l, live__find(&l, KMS_OC_SLAB, KEY(4)), &got);
	assert_int_equal(got.site, 9);
	assert_int_equal(got.ts, 0);
	assert_int_equal(live__count(&l), 1000);
	live__remove(&l, KMS_OC_SLAB, live__find(&l, KMS_OC_SLAB, KEY(4)));
	assert_null(live__find(&l, KMS_OC_SLAB, KEY(4)));
	assert_int_equal(live__foreach(&l, count_live, n), 0);
	assert_int_equal(n[KMS_OC_SLAB], 999);
	live__fini(&l);
}

static struct live_slot *add_page(struct live *l, __u64 pfn, __u8 order)
{
	struct live_obj o, old;
	struct live_slot *s;
	bool replaced;

	s = live__add(l, KMS_OC_PAGE, pfn, KMS_EV_PAGE_ALLOC, order, &o, &old, &replaced);
	assert_non_null(s);
	o.page_bytes = 4096;
	o.bytes_alloc = 4096U << order;
	live__set(l, s, &o);
	return s;
}

/* a frame inside a live block finds the block's head; one outside finds nothing */
static void test_page_split_lookup(void **state)
{
	struct live_obj got;
	struct live l;

	assert_int_equal(live__init(&l), 0);
	add_page(&l, 0x1000, 3);
	add_page(&l, 0x2000, 0);
	add_page(&l, 0x2002, 1);
	assert_int_equal(l.pages_by_order[3], 1);
	assert_int_equal(l.pages_by_order[1], 1);
	for (__u64 f = 0x1000; f < 0x1008; f++) {
		live__get(&l, live__page(&l, f), &got);
		assert_int_equal(got.ptr, 0x1000);
		assert_int_equal(got.order, 3);
		assert_int_equal(got.page_bytes, 4096);
	}
	assert_null(live__page(&l, 0x1008));
	assert_null(live__page(&l, 0x0fff));
	live__get(&l, live__page(&l, 0x2003), &got);
	assert_int_equal(got.ptr, 0x2002);
	assert_null(live__page(&l, 0x2001));
	live__remove(&l, KMS_OC_PAGE, live__page(&l, 0x1005));
	assert_int_equal(l.pages_by_order[3], 0);
	assert_null(live__page(&l, 0x1005));
	live__fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_high_load),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_saturated),
		cmocka_unit_test(test_store_fields),
		cmocka_unit_test(test_page_split_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
