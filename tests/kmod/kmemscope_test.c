// SPDX-License-Identifier: GPL-2.0
/*
 * kmemscope_test: ground truth for the QEMU tests.
 *
 * Writing "SCENARIO key=val ..." to /sys/kernel/debug/kmemscope_test/run runs
 * one scenario synchronously in the writer's context. Each scenario lives in
 * its own noinline, noclone function so its call sites are distinct and keep
 * their symbol (nothing allocates from .init.text). What each run really did
 * is appended to /sys/kernel/debug/kmemscope_test/ledger, one line per
 * (family, allocating function); the harness compares kmemscope to that.
 *
 * Keys: tag=NAME count=N size=BYTES size2=BYTES order=N min=N
 *       gfp=kernel|atomic|nowait|zero|dma32
 */
#include <linux/module.h>
#include <linux/version.h>
#include <linux/kernel.h>
#include <linux/debugfs.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/mm.h>
#include <linux/gfp.h>
#include <linux/percpu.h>
#include <linux/mempool.h>
#include <linux/platform_device.h>
#include <linux/dma-mapping.h>
#include <linux/spinlock.h>
#include <linux/irqflags.h>
#include <linux/timer.h>
#include <linux/smp.h>
#include <linux/sched.h>
#include <linux/completion.h>
#include <linux/mutex.h>
#include <linux/list.h>
#include <linux/uaccess.h>
#include <linux/string.h>
#include <linux/kallsyms.h>
#include <linux/rcupdate.h>
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/rbtree.h>
#include <asm/memtype.h>

/* a clone (.constprop/.isra) would carry another symbol name */
#define KMS_FN noinline __attribute__((__noclone__))

#define KMS_MAX_LINES	8
#define KMS_LEDGER_SIZE	(256 * 1024)
#define KMS_MAX_COUNT	100000
#define KMS_CACHE_NAME	"kms_test_cache"
#define KMS_BULK_MAX	256	/* objects per bulk-free scenario run */

static unsigned int cache_size = 200;
module_param(cache_size, uint, 0444);
MODULE_PARM_DESC(cache_size, "object size of the module's own kmem_cache");

/*
 * pcpu_obj_full_size() adds a memcg pointer per 4 bytes unless cgroup.memory=nokmem,
 * with kernel memory accounting: CONFIG_MEMCG_KMEM, folded into CONFIG_MEMCG in 6.10
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
#define KMS_MEMCG_KMEM	IS_ENABLED(CONFIG_MEMCG)
#else
#define KMS_MEMCG_KMEM	IS_ENABLED(CONFIG_MEMCG_KMEM)
#endif
static bool nokmem;
module_param(nokmem, bool, 0444);
MODULE_PARM_DESC(nokmem, "set when the guest boots with cgroup.memory=nokmem");

/* the gate scenario's regression (issue #9), set between runs through sysfs so the traced
 * command line stays the same: allocs, size, order, leak or misuse; empty for none */
static char inject[16];
module_param_string(inject, inject, sizeof(inject), 0644);
MODULE_PARM_DESC(inject, "regression of the gate scenario: allocs, size, order, leak, misuse");

struct kms_args {
	char tag[48];
	char scenario[32];
	unsigned long count;
	unsigned long size;
	unsigned long size2;
	unsigned long order;
	unsigned long min;
	gfp_t gfp;
	const char *gfpname;
	const char *gfparg;
};

/* one ledger line: what one function did to one family */
struct kms_line {
	const char *family;
	unsigned long ip;	/* an address inside the allocating function */
	unsigned long allocs, frees, fails, bytes_req, bytes_alloc, leaked, leaked_bytes;
	const char *badfree;	/* the bad free the function made: double_free, wrong_api */
	const char *badfree_by;	/* ... the freeing call (kmemscope's free event name) */
	unsigned long badfrees;	/* ... how many */
	unsigned long deferred;	/* of frees: through RCU or a bulk free */
	gfp_t gfp[3];
	int ngfp;
	const char *gfpname;
	int order;
	const char *cache;
	const char *device;
	const char *context;	/* where it is not the run's */
};

struct kms_run {
	struct kms_args *a;
	const char *context;
	int nlines;
	struct kms_line line[KMS_MAX_LINES];
};

/*
 * An object a leak scenario keeps until "release" (or rmmod). They sit in a
 * static array, so keeping one allocates nothing the leak report would show.
 */
enum kms_kind { KMS_KMALLOC, KMS_CACHE, KMS_VMALLOC, KMS_PAGES, KMS_PERCPU, KMS_DMA };
struct kms_held {
	enum kms_kind kind;
	unsigned int order;	/* KMS_PAGES */
	size_t size;		/* KMS_DMA */
	dma_addr_t handle;	/* KMS_DMA */
	void *p;		/* KMS_PERCPU: the __percpu pointer */
};
#define KMS_HELD_MAX	4096

static DEFINE_MUTEX(kms_lock);
static char kms_ledger[KMS_LEDGER_SIZE];
static size_t kms_ledger_len;
static unsigned long kms_runs;
static struct dentry *kms_dir;
static struct kmem_cache *kms_cache;
static struct platform_device *kms_pdev;
static struct kms_held kms_held[KMS_HELD_MAX];
static unsigned int kms_nheld;
static DEFINE_SPINLOCK(kms_spin);
static DEFINE_RAW_SPINLOCK(kms_raw_spin);

/* state shared with the timer callback and the mempool element functions */
static struct kms_run *kms_cur;
static struct timer_list kms_timer;
static unsigned long kms_pool_ip;
static DECLARE_COMPLETION(kms_timer_done);
static int kms_timer_ret;

static struct kms_line *kms_line(struct kms_run *r, const char *family, unsigned long ip)
{
	struct kms_line *l;
	int i;

	for (i = 0; i < r->nlines; i++) {
		l = &r->line[i];
		if (l->family == family && l->ip == ip)
			return l;
	}
	if (WARN_ON(r->nlines == KMS_MAX_LINES))
		return &r->line[KMS_MAX_LINES - 1];
	l = &r->line[r->nlines++];
	memset(l, 0, sizeof(*l));
	l->family = family;
	l->ip = ip;
	l->order = -1;
	return l;
}

static void kms_line_gfp(struct kms_line *l, gfp_t gfp, const char *name)
{
	int i;

	for (i = 0; i < l->ngfp; i++)
		if (l->gfp[i] == gfp)
			return;
	if (l->ngfp < (int)ARRAY_SIZE(l->gfp))
		l->gfp[l->ngfp++] = gfp;
	if (!l->ngfp || l->ngfp == 1)
		l->gfpname = name;
}

/*
 * One kmalloc-family object allocated at ip. A request above
 * KMALLOC_MAX_CACHE_SIZE bypasses the slabs: the kernel fires kmem:kmalloc and
 * also takes a compound page block (mm_page_alloc with __GFP_COMP added), so
 * look at the memory itself rather than guess from the size.
 */
static void kms_note_kmalloc(struct kms_run *r, unsigned long ip, const void *p, size_t req,
			     gfp_t gfp)
{
	struct kms_line *l = kms_line(r, "kmalloc", ip);
	struct folio *folio = virt_to_folio(p);

	l->allocs++;
	l->bytes_req += req;
	l->bytes_alloc += ksize(p);
	kms_line_gfp(l, gfp, r->a->gfpname);
	if (!folio_test_slab(folio)) {
		struct kms_line *pl = kms_line(r, "page", ip);

		pl->allocs++;
		pl->bytes_req += folio_size(folio);
		pl->bytes_alloc += folio_size(folio);
		pl->order = folio_order(folio);
		kms_line_gfp(pl, gfp | __GFP_COMP, r->a->gfpname);
	}
}

/* must run before the free: it looks at the memory */
static void kms_note_kfree(struct kms_run *r, unsigned long ip, const void *p)
{
	struct kms_line *l = kms_line(r, "kmalloc", ip);

	l->frees++;
	if (!folio_test_slab(virt_to_folio(p)))
		kms_line(r, "page", ip)->frees++;
}

static void kms_note_page(struct kms_run *r, unsigned long ip, unsigned int order, gfp_t gfp)
{
	struct kms_line *l = kms_line(r, "page", ip);

	l->allocs++;
	l->bytes_req += PAGE_SIZE << order;
	l->bytes_alloc += PAGE_SIZE << order;
	l->order = order;
	kms_line_gfp(l, gfp, r->a->gfpname);
}

static void kms_note_vmalloc(struct kms_run *r, unsigned long ip, size_t size, gfp_t gfp)
{
	struct kms_line *l = kms_line(r, "vmalloc", ip);

	l->allocs++;
	l->bytes_req += size;
	/* the pages the area holds, its guard page not counted */
	l->bytes_alloc += PAGE_ALIGN(size);
	kms_line_gfp(l, gfp, r->a->gfpname);
}

static void kms_note_dma(struct kms_run *r, unsigned long ip, size_t size, gfp_t gfp)
{
	struct kms_line *l = kms_line(r, "dma", ip), *pl;

	l->allocs++;
	l->bytes_req += size;
	l->bytes_alloc += size;
	l->device = dev_name(&kms_pdev->dev);
	kms_line_gfp(l, gfp, r->a->gfpname);
	/*
	 * dma-direct (no IOMMU, no CMA in the guest): dma_alloc_attrs() drops the
	 * zone bits, dma_direct_alloc() drops __GFP_ZERO (it zeroes by hand), then
	 * alloc_pages_node() of the page-aligned size
	 */
	pl = kms_line(r, "page", ip);
	kms_note_page(r, ip, get_order(size),
		      gfp & ~(__GFP_ZERO | __GFP_DMA | __GFP_DMA32 | __GFP_HIGHMEM));
	pl->gfpname = (gfp & __GFP_ZERO) ? NULL : r->a->gfpname;
}

/*
 * One percpu object: pcpu_alloc() rounds to PCPU_MIN_ALLOC_SIZE, and the
 * tracepoint's bytes_alloc is pcpu_obj_full_size(). Returns that.
 */
static size_t kms_note_percpu(struct kms_run *r, unsigned long ip, size_t size, gfp_t gfp)
{
	struct kms_line *l = kms_line(r, "percpu", ip);
	size_t asize = ALIGN(size, PCPU_MIN_ALLOC_SIZE), full = asize * num_possible_cpus();

	if (KMS_MEMCG_KMEM && !nokmem)
		full += asize / PCPU_MIN_ALLOC_SIZE * sizeof(void *);
	l->allocs++;
	l->bytes_req += asize;
	l->bytes_alloc += full;
	kms_line_gfp(l, gfp, r->a->gfpname);
	return full;
}

/* one object of the module's cache: kmem:kmem_cache_alloc reports object_size and ksize */
static void kms_note_cache(struct kms_run *r, unsigned long ip, const void *p, gfp_t gfp)
{
	struct kms_line *l = kms_line(r, "kmem_cache", ip);

	l->allocs++;
	l->bytes_req += kmem_cache_size(kms_cache);
	l->bytes_alloc += ksize(p);
	l->cache = KMS_CACHE_NAME;
	kms_line_gfp(l, gfp, r->a->gfpname);
}

static void kms_fail(struct kms_run *r, const char *family, unsigned long ip)
{
	kms_line(r, family, ip)->fails++;
}

/* ---- scenarios: every allocation call sits in the function named in the ledger ---- */

static KMS_FN int kms_do_kmalloc(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_note_kfree(r, ip, p);
		kfree(p);
	}
	return 0;
}

static KMS_FN int kms_do_kzalloc(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kzalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		/* kzalloc() is kmalloc() with __GFP_ZERO */
		kms_note_kmalloc(r, ip, p, size, gfp | __GFP_ZERO);
		kms_line(r, "kmalloc", ip)->gfpname = "__GFP_ZERO";
		kms_note_kfree(r, ip, p);
		kfree(p);
	}
	return 0;
}

static KMS_FN int kms_do_kmalloc_array(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t n = r->a->size2 ? r->a->size2 : 4, size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmalloc_array(n, size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, n * size, gfp);
		kms_note_kfree(r, ip, p);
		kfree(p);
	}
	return 0;
}

/* the objects krealloc() starts from come from here, so their slab refills do too */
static KMS_FN void *kms_do_krealloc_prep(struct kms_run *r, unsigned long *prep_ip)
{
	unsigned long ip = _THIS_IP_;
	void *p = kmalloc(r->a->size, r->a->gfp);

	*prep_ip = ip;
	if (p)
		kms_note_kmalloc(r, ip, p, r->a->size, r->a->gfp);
	else
		kms_fail(r, "kmalloc", ip);
	return p;
}

static KMS_FN int kms_do_krealloc(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, prep_ip = 0, i;
	size_t size2 = r->a->size2 ? r->a->size2 : 3 * PAGE_SIZE;
	gfp_t gfp = r->a->gfp;
	void *p, *q;

	for (i = 0; i < r->a->count; i++) {
		p = kms_do_krealloc_prep(r, &prep_ip);
		if (!p)
			continue;
		/* krealloc() keeps the object when it still fits: then nothing is traced */
		if (ksize(p) >= size2) {
			q = krealloc(p, size2, gfp);
		} else {
			kms_note_kfree(r, prep_ip, p);
			q = krealloc(p, size2, gfp);
			if (!q) {
				/* the old object survives a failed krealloc */
				kms_line(r, "kmalloc", prep_ip)->frees--;
				kms_fail(r, "kmalloc", ip);
				q = p;
			} else {
				kms_note_kmalloc(r, ip, q, size2, gfp);
			}
		}
		kms_note_kfree(r, q == p ? prep_ip : ip, q);
		kfree(q);
	}
	return 0;
}

static void kms_cache_ctor(void *obj)
{
	/* a constructor keeps SLUB from merging this cache into another */
	memset(obj, 0, cache_size);
}

static KMS_FN int kms_do_kmem_cache(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	gfp_t gfp = r->a->gfp;
	struct kms_line *l;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmem_cache_alloc(kms_cache, gfp);
		l = kms_line(r, "kmem_cache", ip);
		if (!p) {
			l->fails++;
			continue;
		}
		kms_note_cache(r, ip, p, gfp);
		kmem_cache_free(kms_cache, p);
		l->frees++;
	}
	return 0;
}

static KMS_FN int kms_do_vmalloc(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = vmalloc(size);
		if (!p) {
			kms_fail(r, "vmalloc", ip);
			continue;
		}
		kms_note_vmalloc(r, ip, size, GFP_KERNEL);
		kms_line(r, "vmalloc", ip)->gfpname = "GFP_KERNEL";
		vfree(p);
		kms_line(r, "vmalloc", ip)->frees++;
	}
	return 0;
}

static KMS_FN int kms_do_vzalloc(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = vzalloc(size);
		if (!p) {
			kms_fail(r, "vmalloc", ip);
			continue;
		}
		kms_note_vmalloc(r, ip, size, GFP_KERNEL | __GFP_ZERO);
		kms_line(r, "vmalloc", ip)->gfpname = "__GFP_ZERO";
		vfree(p);
		kms_line(r, "vmalloc", ip)->frees++;
	}
	return 0;
}

/*
 * kvmalloc() tries kmalloc first and falls back to __vmalloc_node_range() with
 * this function as caller. Which path ran is read off the pointer.
 */
static int kms_kvmalloc_common(struct kms_run *r, unsigned long ip, void *p, size_t size,
			       gfp_t gfp)
{
	if (is_vmalloc_addr(p)) {
		kms_note_vmalloc(r, ip, size, gfp);
		kms_line(r, "vmalloc", ip)->frees++;
	} else {
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_note_kfree(r, ip, p);
	}
	return 0;
}

static KMS_FN int kms_do_kvmalloc(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kvmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_kvmalloc_common(r, ip, p, size, gfp);
		kvfree(p);
	}
	return 0;
}

static KMS_FN int kms_do_kvmalloc_large(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kvmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "vmalloc", ip);
			continue;
		}
		kms_kvmalloc_common(r, ip, p, size, gfp);
		kvfree(p);
	}
	return 0;
}

static KMS_FN int kms_do_alloc_pages(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	unsigned int order = r->a->order;
	gfp_t gfp = r->a->gfp;
	struct page *pg;

	for (i = 0; i < r->a->count; i++) {
		pg = alloc_pages(gfp, order);
		if (!pg) {
			kms_fail(r, "page", ip);
			continue;
		}
		kms_note_page(r, ip, order, gfp);
		__free_pages(pg, order);
		kms_line(r, "page", ip)->frees++;
	}
	return 0;
}

static KMS_FN int kms_do_get_free_pages(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i, addr;
	unsigned int order = r->a->order;
	gfp_t gfp = r->a->gfp;

	for (i = 0; i < r->a->count; i++) {
		addr = __get_free_pages(gfp, order);
		if (!addr) {
			kms_fail(r, "page", ip);
			continue;
		}
		/* __get_free_pages() drops __GFP_HIGHMEM before alloc_pages() */
		kms_note_page(r, ip, order, gfp & ~__GFP_HIGHMEM);
		free_pages(addr, order);
		kms_line(r, "page", ip)->frees++;
	}
	return 0;
}

static KMS_FN int kms_do_alloc_pages_node(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	unsigned int order = r->a->order;
	gfp_t gfp = r->a->gfp;
	struct page *pg;

	for (i = 0; i < r->a->count; i++) {
		pg = alloc_pages_node(numa_node_id(), gfp, order);
		if (!pg) {
			kms_fail(r, "page", ip);
			continue;
		}
		kms_note_page(r, ip, order, gfp);
		__free_pages(pg, order);
		kms_line(r, "page", ip)->frees++;
	}
	return 0;
}

static KMS_FN int kms_do_dma(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	dma_addr_t handle;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = dma_alloc_coherent(&kms_pdev->dev, size, &handle, gfp);
		if (!p) {
			kms_fail(r, "dma", ip);
			continue;
		}
		kms_note_dma(r, ip, size, gfp);
		dma_free_coherent(&kms_pdev->dev, size, p, handle);
		kms_line(r, "dma", ip)->frees++;
		kms_line(r, "page", ip)->frees++;
	}
	return 0;
}

static KMS_FN int kms_do_percpu(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	struct kms_line *l;
	void __percpu *p;

	for (i = 0; i < r->a->count; i++) {
		p = __alloc_percpu_gfp(size, sizeof(long), gfp);
		l = kms_line(r, "percpu", ip);
		if (!p) {
			l->fails++;
			continue;
		}
		kms_note_percpu(r, ip, size, gfp);
		free_percpu(p);
		l->frees++;
	}
	return 0;
}

/*
 * mempool_create() allocates the pool and its reserve array for its caller:
 * mempool_create_node() and mempool_init_node() are wrappers, so kmemscope
 * puts both at the function that created the pool.
 */
static void kms_note_pool(struct kms_run *r, unsigned long ip, mempool_t *pool)
{
	kms_note_kmalloc(r, ip, pool, sizeof(*pool), GFP_KERNEL | __GFP_ZERO);
	kms_note_kmalloc(r, ip, pool->elements, pool->min_nr * sizeof(void *), GFP_KERNEL);
}

/* before mempool_destroy(): it frees the array and the pool (its elements: the caller's) */
static void kms_note_pool_free(struct kms_run *r, unsigned long ip, mempool_t *pool)
{
	kms_note_kfree(r, ip, pool->elements);
	kms_note_kfree(r, ip, pool);
}

/* mempool element functions: the pool calls these, so they are the call sites */
static KMS_FN void *kms_pool_alloc(gfp_t gfp, void *data)
{
	unsigned long ip = _THIS_IP_;
	struct kms_run *r = kms_cur;
	size_t size = (size_t)data;
	void *p;

	kms_pool_ip = ip;
	p = kmalloc(size, gfp);
	if (!p) {
		kms_fail(r, "kmalloc", ip);
		return NULL;
	}
	kms_note_kmalloc(r, ip, p, size, gfp);
	/* the pool changes the gfp it passes: record what arrived, not a name */
	kms_line(r, "kmalloc", ip)->gfpname = NULL;
	return p;
}

static KMS_FN void kms_pool_free(void *p, void *data)
{
	kms_note_kfree(kms_cur, kms_pool_ip, p);
	kfree(p);
}

/*
 * A pool of r->a->count elements through mempool_alloc(): with the module's
 * element functions (kms_pool_alloc: they note their own elements), or the
 * kernel's kmalloc pool (kernel_fns), whose element functions
 * (mempool_kmalloc) are called from mempool_init_node() and mempool_alloc():
 * wrappers, so every element is this function's allocation, noted here.
 * mempool_alloc() first tries without direct reclaim (the gfp it passes on
 * is noted); an element taken from the reserve is no new allocation, nor
 * one put back a free.
 */
static KMS_FN int kms_mempool(struct kms_run *r, bool kernel_fns)
{
	unsigned long ip = _THIS_IP_, i, n = 0, min = r->a->min ? r->a->min : 4;
	size_t size = r->a->size, esize = max_t(size_t, r->a->count, 1) * sizeof(void *);
	gfp_t first = (r->a->gfp | __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN) &
		      ~(__GFP_DIRECT_RECLAIM | __GFP_IO);
	mempool_t *pool;
	void **elems;
	int curr;

	/* the pointer array is an allocation of this function too */
	elems = kzalloc(esize, GFP_KERNEL);
	if (!elems)
		return -ENOMEM;
	kms_note_kmalloc(r, ip, elems, esize, GFP_KERNEL | __GFP_ZERO);
	kms_line(r, "kmalloc", ip)->gfpname = "GFP_KERNEL";
	pool = kernel_fns ? mempool_create_kmalloc_pool(min, size) :
	       mempool_create(min, kms_pool_alloc, kms_pool_free, (void *)size);
	if (!pool) {
		kms_note_kfree(r, ip, elems);
		kfree(elems);
		return -ENOMEM;
	}
	kms_note_pool(r, ip, pool);
	for (i = 0; kernel_fns && i < pool->curr_nr; i++)
		kms_note_kmalloc(r, ip, pool->elements[i], size, GFP_KERNEL);
	for (i = 0; i < r->a->count; i++) {
		curr = pool->curr_nr;
		elems[n] = mempool_alloc(pool, r->a->gfp);
		if (!elems[n])
			continue;
		if (kernel_fns && pool->curr_nr == curr)
			kms_note_kmalloc(r, ip, elems[n], size, first);
		n++;
	}
	for (i = 0; i < n; i++) {
		if (kernel_fns && pool->curr_nr >= pool->min_nr)
			kms_note_kfree(r, ip, elems[i]);
		mempool_free(elems[i], pool);
	}
	for (i = 0; kernel_fns && i < pool->curr_nr; i++)
		kms_note_kfree(r, ip, pool->elements[i]);
	kms_note_pool_free(r, ip, pool);
	mempool_destroy(pool);
	kms_note_kfree(r, ip, elems);
	kfree(elems);
	return 0;
}

static int kms_do_mempool(struct kms_run *r)
{
	return kms_mempool(r, false);
}

static int kms_do_mempool_kmalloc(struct kms_run *r)
{
	return kms_mempool(r, true);
}

/* room to keep n more objects, or -ENOSPC before a scenario allocates any */
static int kms_hold_room(unsigned long n)
{
	return n <= KMS_HELD_MAX - kms_nheld ? 0 : -ENOSPC;
}

static void kms_hold(enum kms_kind kind, void *p, unsigned int order, size_t size,
		     dma_addr_t handle)
{
	kms_held[kms_nheld++] = (struct kms_held){
		.kind = kind, .p = p, .order = order, .size = size, .handle = handle,
	};
}

/*
 * The leak scenarios: each keeps what it allocates, one family per scenario,
 * and the ledger says so (leaked, and leaked_bytes as kmemscope's leak rows
 * count them: the allocated size).
 */
static KMS_FN int kms_do_leak(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	if (kms_hold_room(r->a->count))
		return -ENOSPC;
	for (i = 0; i < r->a->count; i++) {
		p = kmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_line(r, "kmalloc", ip)->leaked++;
		kms_line(r, "kmalloc", ip)->leaked_bytes += ksize(p);
		kms_hold(KMS_KMALLOC, p, 0, 0, 0);
	}
	return 0;
}

static KMS_FN int kms_do_leak_cache(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	gfp_t gfp = r->a->gfp;
	struct kms_line *l;
	void *p;

	if (kms_hold_room(r->a->count))
		return -ENOSPC;
	for (i = 0; i < r->a->count; i++) {
		p = kmem_cache_alloc(kms_cache, gfp);
		l = kms_line(r, "kmem_cache", ip);
		if (!p) {
			l->fails++;
			continue;
		}
		kms_note_cache(r, ip, p, gfp);
		l->leaked++;
		l->leaked_bytes += ksize(p);
		kms_hold(KMS_CACHE, p, 0, 0, 0);
	}
	return 0;
}

/* the area's page array and vm_struct are vmalloc's own: no leak rows of their own */
static KMS_FN int kms_do_leak_vmalloc(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	struct kms_line *l;
	void *p;

	if (kms_hold_room(r->a->count))
		return -ENOSPC;
	for (i = 0; i < r->a->count; i++) {
		p = vmalloc(size);
		if (!p) {
			kms_fail(r, "vmalloc", ip);
			continue;
		}
		kms_note_vmalloc(r, ip, size, GFP_KERNEL);
		l = kms_line(r, "vmalloc", ip);
		l->gfpname = "GFP_KERNEL";
		l->leaked++;
		l->leaked_bytes += PAGE_ALIGN(size);
		kms_hold(KMS_VMALLOC, p, 0, 0, 0);
	}
	return 0;
}

static KMS_FN int kms_do_leak_pages(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	unsigned int order = r->a->order;
	gfp_t gfp = r->a->gfp;
	struct kms_line *l;
	struct page *pg;

	if (kms_hold_room(r->a->count))
		return -ENOSPC;
	for (i = 0; i < r->a->count; i++) {
		pg = alloc_pages(gfp, order);
		if (!pg) {
			kms_fail(r, "page", ip);
			continue;
		}
		kms_note_page(r, ip, order, gfp);
		l = kms_line(r, "page", ip);
		l->leaked++;
		l->leaked_bytes += PAGE_SIZE << order;
		kms_hold(KMS_PAGES, pg, order, 0, 0);
	}
	return 0;
}

static KMS_FN int kms_do_leak_percpu(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	struct kms_line *l;
	void __percpu *p;

	if (kms_hold_room(r->a->count))
		return -ENOSPC;
	for (i = 0; i < r->a->count; i++) {
		p = __alloc_percpu_gfp(size, sizeof(long), gfp);
		l = kms_line(r, "percpu", ip);
		if (!p) {
			l->fails++;
			continue;
		}
		l->leaked++;
		l->leaked_bytes += kms_note_percpu(r, ip, size, gfp);
		kms_hold(KMS_PERCPU, (void __force *)p, 0, 0, 0);
	}
	return 0;
}

/* the pages under the buffer are the DMA allocation's own: no leak rows of their own */
static KMS_FN int kms_do_leak_dma(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	dma_addr_t handle;
	struct kms_line *l;
	void *p;

	if (kms_hold_room(r->a->count))
		return -ENOSPC;
	for (i = 0; i < r->a->count; i++) {
		p = dma_alloc_coherent(&kms_pdev->dev, size, &handle, gfp);
		if (!p) {
			kms_fail(r, "dma", ip);
			continue;
		}
		kms_note_dma(r, ip, size, gfp);
		l = kms_line(r, "dma", ip);
		l->leaked++;
		l->leaked_bytes += size;
		kms_hold(KMS_DMA, p, 0, size, handle);
	}
	return 0;
}

/* free what the leak scenarios kept, newest first; r (NULL at rmmod) counts the frees */
static KMS_FN void kms_release_held(struct kms_run *r)
{
	static const char *const family[] = {
		[KMS_KMALLOC] = "kmalloc", [KMS_CACHE] = "kmem_cache", [KMS_VMALLOC] = "vmalloc",
		[KMS_PAGES] = "page", [KMS_PERCPU] = "percpu", [KMS_DMA] = "dma",
	};
	unsigned long ip = _THIS_IP_;

	while (kms_nheld) {
		struct kms_held *h = &kms_held[--kms_nheld];

		switch (h->kind) {
		case KMS_KMALLOC:
			kfree(h->p);
			break;
		case KMS_CACHE:
			kmem_cache_free(kms_cache, h->p);
			break;
		case KMS_VMALLOC:
			vfree(h->p);
			break;
		case KMS_PAGES:
			__free_pages(h->p, h->order);
			break;
		case KMS_PERCPU:
			free_percpu((void __percpu __force *)h->p);
			break;
		case KMS_DMA:
			dma_free_coherent(&kms_pdev->dev, h->size, h->p, h->handle);
			break;
		}
		if (r)
			kms_line(r, family[h->kind], ip)->frees++;
	}
}

static KMS_FN int kms_do_release(struct kms_run *r)
{
	kms_release_held(r);
	return 0;
}

/*
 * Bad frees the kernel survives: vfree() of an address that is no vmalloc
 * area only warns and returns. The warnings go between markers, which the
 * harness's kernel-log check skips. Freed areas' addresses wait for a lazy
 * purge before they are handed out again, so a second vfree() right after
 * the first cannot free someone else's area.
 */
#define KMS_EXPECT_WARN	"kmemscope_test: expected warnings begin"
#define KMS_END_WARN	"kmemscope_test: expected warnings end"

/* a vmalloc area freed twice: one double_free per area */
static KMS_FN int kms_do_vfree_twice(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	struct kms_line *l;
	void *p;

	pr_info(KMS_EXPECT_WARN "\n");
	for (i = 0; i < r->a->count; i++) {
		p = vmalloc(size);
		if (!p) {
			kms_fail(r, "vmalloc", ip);
			continue;
		}
		kms_note_vmalloc(r, ip, size, GFP_KERNEL);
		l = kms_line(r, "vmalloc", ip);
		l->gfpname = "GFP_KERNEL";
		vfree(p);
		l->frees++;
		vfree(p);
		l->badfree = "double_free";
		l->badfree_by = "vfree";
		l->badfrees++;
	}
	pr_info(KMS_END_WARN "\n");
	return 0;
}

/* a kmalloc object given to vfree(), which leaves it allocated, then to kfree() */
static KMS_FN int kms_do_vfree_kmalloc(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	struct kms_line *l;
	void *p;

	pr_info(KMS_EXPECT_WARN "\n");
	for (i = 0; i < r->a->count; i++) {
		p = kmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		l = kms_line(r, "kmalloc", ip);
		vfree(p);
		l->badfree = "wrong_api";
		l->badfree_by = "vfree";
		l->badfrees++;
		kms_note_kfree(r, ip, p);
		kfree(p);
	}
	pr_info(KMS_END_WARN "\n");
	return 0;
}

/*
 * GFP_KERNEL (may sleep) while holding a lock. A raw_spinlock_t disables
 * preemption on every kernel: the bug the tool must flag. A spinlock_t does
 * too, except on PREEMPT_RT, where it is a sleeping lock and the allocation is
 * legal. Under the raw lock, the scenario also takes gfp=atomic: legal where
 * the allocators spin, a bug on PREEMPT_RT, where they take sleeping locks.
 * Inlined so that each scenario's function is the call site.
 */
static __always_inline void kms_kmalloc_locked(struct kms_run *r, unsigned long ip, bool raw)
{
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	unsigned long i;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		if (raw)
			raw_spin_lock(&kms_raw_spin);
		else
			spin_lock(&kms_spin);
		p = kmalloc(size, gfp);
		if (raw)
			raw_spin_unlock(&kms_raw_spin);
		else
			spin_unlock(&kms_spin);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_note_kfree(r, ip, p);
		kfree(p);
	}
}

/*
 * ioremap: a range that is neither RAM nor a device in QEMU's pc machine with
 * 1 GB of RAM (the PCI hole, below the BARs the firmware places near 4 GB),
 * mapped and unmapped count times. What the kernel allocates for each
 * mapping, in wrappers kmemscope attributes to this function's call:
 * - its vm_struct (kzalloc_node() in __get_vm_area_node()),
 * - its memtype entry (kzalloc() in memtype_reserve(): x86 with PAT on, for a
 *   range that is neither RAM nor the ISA hole),
 * - an area of the kernel's address space (the pages asked for and a guard
 *   page): no memory, the "vmap" line. kmemscope counts such areas as
 *   vmap_mappings where it traces vmap areas (vmalloc:alloc_vmap_area), and
 *   does not see them where it traces vmalloc at __vmalloc_node_range().
 * Not in the ledger: the area's vmap_area descriptor (kmem_cache "vmap_area":
 * the allocator keeps a spare per CPU for splits, and 6.12 reuses descriptors
 * from per-node pools, so their count is not the number of mappings; their
 * frees are lazy) and page-table pages, made only when a range of the address
 * space is first used.
 */
#define KMS_IOREMAP_PHYS	0xe0000000UL
/*
 * struct memtype (arch/x86/mm/pat/memtype.h, not in the headers a module is
 * built with): start, end, subtree_max_end, an enum type, an rb_node; the
 * same in 6.1 and 6.12
 */
#define KMS_MEMTYPE_SIZE	(ALIGN(3 * sizeof(u64) + sizeof(int), sizeof(long)) + \
				 sizeof(struct rb_node))

/* an allocation the kernel made for this function and freed again */
static void kms_note_kernel_kzalloc(struct kms_run *r, unsigned long ip, size_t size)
{
	struct kms_line *l = kms_line(r, "kmalloc", ip);

	l->allocs++;
	l->frees++;
	l->bytes_req += size;
	l->bytes_alloc += kmalloc_size_roundup(size);
	kms_line_gfp(l, GFP_KERNEL | __GFP_ZERO, "__GFP_ZERO");
}

static KMS_FN int kms_do_ioremap(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	struct kms_line *vl;
	void __iomem *p;

	for (i = 0; i < r->a->count; i++) {
		p = ioremap(KMS_IOREMAP_PHYS, size);
		if (!p) {
			kms_fail(r, "vmap", ip);
			continue;
		}
		iounmap(p);
		kms_note_kernel_kzalloc(r, ip, sizeof(struct vm_struct));
		if (pat_enabled())
			kms_note_kernel_kzalloc(r, ip, KMS_MEMTYPE_SIZE);
		vl = kms_line(r, "vmap", ip);
		vl->allocs++;
		vl->frees++;
		vl->bytes_req += size;
		vl->bytes_alloc += PAGE_ALIGN(size);
	}
	return 0;
}

static KMS_FN int kms_do_spinlock(struct kms_run *r)
{
	r->context = "spinlock";
	kms_kmalloc_locked(r, _THIS_IP_, false);
	return 0;
}

static KMS_FN int kms_do_raw_spinlock(struct kms_run *r)
{
	r->context = "raw_spinlock";
	kms_kmalloc_locked(r, _THIS_IP_, true);
	return 0;
}

static KMS_FN int kms_do_irqs_off(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i, flags;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	r->context = "irqs_off";
	for (i = 0; i < r->a->count; i++) {
		local_irq_save(flags);
		p = kmalloc(size, gfp);
		local_irq_restore(flags);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_note_kfree(r, ip, p);
		kfree(p);
	}
	return 0;
}

/* runs in softirq context; the writer waits for it */
static KMS_FN void kms_timer_fn(struct timer_list *t)
{
	unsigned long ip = _THIS_IP_, i;
	struct kms_run *r = kms_cur;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_note_kfree(r, ip, p);
		kfree(p);
	}
	kms_timer_ret = 0;
	complete(&kms_timer_done);
}

static int kms_do_softirq(struct kms_run *r)
{
	r->context = "softirq";
	reinit_completion(&kms_timer_done);
	kms_timer_ret = -EINPROGRESS;
	mod_timer(&kms_timer, jiffies + 1);
	wait_for_completion(&kms_timer_done);
	del_timer_sync(&kms_timer);
	return kms_timer_ret;
}

/*
 * kmemscope leaves its own process out of what it traces, but an interrupt
 * that arrives while that process runs is not its own. This scenario's IPIs
 * allocate (in hardirq context) only when they find the tracer, the writer's
 * parent, running on the CPU they interrupt; the writer's own allocations
 * between them give the tracer work, so that it runs.
 */
static pid_t kms_ipi_tgid;
static unsigned long kms_ipi_hits;

static KMS_FN void kms_ipi_fn(void *unused)
{
	unsigned long ip = _THIS_IP_;
	struct kms_run *r = kms_cur;
	struct kms_line *l;
	void *p;

	if (current->tgid != kms_ipi_tgid || kms_ipi_hits >= r->a->count)
		return;
	kms_ipi_hits++;
	p = kmalloc(r->a->size, GFP_ATOMIC);
	if (!p) {
		kms_fail(r, "kmalloc", ip);
		return;
	}
	kms_note_kmalloc(r, ip, p, r->a->size, GFP_ATOMIC);
	l = kms_line(r, "kmalloc", ip);
	l->gfpname = "GFP_ATOMIC";
	l->context = "hardirq";
	kms_note_kfree(r, ip, p);
	kfree(p);
}

static KMS_FN int kms_do_hardirq_in_tracer(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, deadline = jiffies + 20 * HZ;
	int cpu, me, i;
	void *p;

	/* an allocation in hardirq context is a bug on PREEMPT_RT: not done there */
	if (IS_ENABLED(CONFIG_PREEMPT_RT))
		return -EOPNOTSUPP;
	rcu_read_lock();
	kms_ipi_tgid = rcu_dereference(current->real_parent)->tgid;
	rcu_read_unlock();
	kms_ipi_hits = 0;
	while (kms_ipi_hits < r->a->count && time_before(jiffies, deadline)) {
		for (i = 0; i < 64; i++) {
			p = kmalloc(r->a->size, r->a->gfp);
			if (!p) {
				kms_fail(r, "kmalloc", ip);
				continue;
			}
			kms_note_kmalloc(r, ip, p, r->a->size, r->a->gfp);
			kms_note_kfree(r, ip, p);
			kfree(p);
		}
		me = get_cpu();
		for_each_online_cpu(cpu)
			if (cpu != me)
				smp_call_function_single(cpu, kms_ipi_fn, NULL, 1);
		put_cpu();
		cond_resched();
	}
	/* the tracer never ran where an IPI looked: the ledger would check nothing */
	return kms_ipi_hits < r->a->count ? -ETIMEDOUT : 0;
}

/* GFP_ATOMIC where sleeping was fine: needless pressure on the reserves */
static KMS_FN int kms_do_atomic(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmalloc(size, GFP_ATOMIC);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, GFP_ATOMIC);
		kms_line(r, "kmalloc", ip)->gfpname = "GFP_ATOMIC";
		kms_note_kfree(r, ip, p);
		kfree(p);
	}
	return 0;
}

/* high-order atomic page allocation: likely to fail under fragmentation */
static KMS_FN int kms_do_atomic_order3(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	struct page *pg;

	for (i = 0; i < r->a->count; i++) {
		pg = alloc_pages(GFP_ATOMIC, 3);
		if (!pg) {
			kms_fail(r, "page", ip);
			continue;
		}
		kms_note_page(r, ip, 3, GFP_ATOMIC);
		kms_line(r, "page", ip)->gfpname = "GFP_ATOMIC";
		__free_pages(pg, 3);
		kms_line(r, "page", ip)->frees++;
	}
	return 0;
}

/*
 * ---- deferred frees: no per-object free tracepoint fires for these ----
 * The objects are freed a grace period (and a batching delay) later by the
 * RCU worker: kfree_bulk() of a page of pointers on 6.1, or kvfree() one by
 * one when that page could not be had. rcu_barrier() alone does not wait for
 * kfree_rcu() batches before 6.12 (kvfree_rcu_barrier()): wait out the batch
 * delay (KFREE_DRAIN_JIFFIES, 5 * HZ since 6.0), then the grace period of the
 * batch (its rcu_work is a call_rcu()), then the work that frees it. The host
 * checks that the real frees were seen.
 */
#define KMS_KFREE_DRAIN_MS	5000

static void kms_rcu_settle(void)
{
	int i;

	msleep(KMS_KFREE_DRAIN_MS + 500);
	for (i = 0; i < 3; i++) {
		rcu_barrier();
		msleep(100);
	}
}

struct kms_rcu_obj {
	struct rcu_head rcu;
	char data[];
};

static KMS_FN int kms_do_kfree_rcu(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = max_t(size_t, r->a->size, sizeof(struct kms_rcu_obj));
	gfp_t gfp = r->a->gfp;
	struct kms_rcu_obj *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_note_kfree(r, ip, p);
		kms_line(r, "kmalloc", ip)->deferred++;
		kfree_rcu(p, rcu);
	}
	kms_rcu_settle();
	return 0;
}

/* one-argument form: kvfree_call_rcu(NULL, ptr), may sleep */
static KMS_FN int kms_do_kvfree_rcu(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_note_kfree(r, ip, p);
		kms_line(r, "kmalloc", ip)->deferred++;
		kvfree_rcu_mightsleep(p);
	}
	kms_rcu_settle();
	return 0;
}

static void *kms_bulk[KMS_BULK_MAX];

static KMS_FN int kms_do_kfree_bulk(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i, n = 0;
	size_t size = r->a->size;
	gfp_t gfp = r->a->gfp;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmalloc(size, gfp);
		if (!p) {
			kms_fail(r, "kmalloc", ip);
			continue;
		}
		kms_note_kmalloc(r, ip, p, size, gfp);
		kms_note_kfree(r, ip, p);
		kms_line(r, "kmalloc", ip)->deferred++;
		kms_bulk[n++] = p;
	}
	kfree_bulk(n, kms_bulk);
	return 0;
}

static KMS_FN int kms_do_cache_free_bulk(struct kms_run *r)
{
	unsigned long ip = _THIS_IP_, i, n = 0;
	gfp_t gfp = r->a->gfp;
	struct kms_line *l;
	void *p;

	for (i = 0; i < r->a->count; i++) {
		p = kmem_cache_alloc(kms_cache, gfp);
		l = kms_line(r, "kmem_cache", ip);
		if (!p) {
			l->fails++;
			continue;
		}
		kms_note_cache(r, ip, p, gfp);
		l->frees++;
		l->deferred++;
		kms_bulk[n++] = p;
	}
	kmem_cache_free_bulk(kms_cache, n, kms_bulk);
	return 0;
}

/* ---- the gate scenario: one site per kind of regression, each its own function so
 * kmemscope check names it; the ledger does not count them (tests/qemu/check.py
 * judges them through kmemscope baseline and check) ---- */

#define KMS_GATE_N	32

static bool kms_inject(const char *kind)
{
	return sysfs_streq(inject, kind);
}

/* allocs: four times as many allocations at the same site */
static KMS_FN void kms_gate_allocs(void)
{
	int i, n = kms_inject("allocs") ? 4 * KMS_GATE_N : KMS_GATE_N;
	void *p;

	for (i = 0; i < n; i++) {
		p = kmalloc(256, GFP_KERNEL);
		kfree(p);
	}
}

/* size: the same count from a larger size class (kmalloc-64 -> kmalloc-1k) */
static KMS_FN void kms_gate_size(void)
{
	size_t size = kms_inject("size") ? 1024 : 64;
	void *p;
	int i;

	for (i = 0; i < KMS_GATE_N; i++) {
		p = kmalloc(size, GFP_KERNEL);
		kfree(p);
	}
}

/* order: the same count of page allocations at order 2 instead of 0 */
static KMS_FN void kms_gate_order(void)
{
	unsigned int order = kms_inject("order") ? 2 : 0;
	struct page *pg;
	int i;

	for (i = 0; i < KMS_GATE_N / 4; i++) {
		pg = alloc_pages(GFP_KERNEL, order);
		if (pg)
			__free_pages(pg, order);
	}
}

/* leak: the objects are kept (freed by "release" or rmmod) */
static KMS_FN void kms_gate_leak(void)
{
	bool keep = kms_inject("leak") && !kms_hold_room(KMS_GATE_N);
	void *p;
	int i;

	for (i = 0; i < KMS_GATE_N; i++) {
		p = kmalloc(128, GFP_KERNEL);
		if (p && keep)
			kms_hold(KMS_KMALLOC, p, 0, 0, 0);
		else
			kfree(p);
	}
}

/*
 * misuse: the same GFP_KERNEL allocations, moved under a raw spinlock (atomic on
 * every kernel: a spinlock_t sleeps on PREEMPT_RT)
 */
static KMS_FN void kms_gate_misuse(void)
{
	bool locked = kms_inject("misuse");
	void *p;
	int i;

	for (i = 0; i < KMS_GATE_N / 4; i++) {
		if (locked)
			raw_spin_lock(&kms_raw_spin);
		p = kmalloc(64, GFP_KERNEL);
		if (locked)
			raw_spin_unlock(&kms_raw_spin);
		kfree(p);
	}
}

static KMS_FN int kms_do_gate(struct kms_run *r)
{
	kms_gate_allocs();
	kms_gate_size();
	kms_gate_order();
	kms_gate_leak();
	kms_gate_misuse();
	return 0;
}

/* ---- command parsing and the ledger ---- */

struct kms_scenario {
	const char *name;
	int (*fn)(struct kms_run *r);
	unsigned long def_size;
	bool pages;		/* gfp=dma32 is only valid for page allocations */
};

static const struct kms_scenario kms_scenarios[] = {
	{ "kmalloc", kms_do_kmalloc, 64 },
	{ "kzalloc", kms_do_kzalloc, 64 },
	{ "kmalloc_array", kms_do_kmalloc_array, 32 },
	{ "krealloc", kms_do_krealloc, 64 },
	{ "kmem_cache", kms_do_kmem_cache, 0 },
	{ "vmalloc", kms_do_vmalloc, 4 * PAGE_SIZE },
	{ "vzalloc", kms_do_vzalloc, 4 * PAGE_SIZE },
	{ "kvmalloc", kms_do_kvmalloc, 256 },
	/* kmalloc cannot serve more than KMALLOC_MAX_SIZE: forces the vmalloc path */
	{ "kvmalloc_large", kms_do_kvmalloc_large, KMALLOC_MAX_SIZE + PAGE_SIZE },
	{ "alloc_pages", kms_do_alloc_pages, 0, true },
	{ "get_free_pages", kms_do_get_free_pages, 0, true },
	{ "alloc_pages_node", kms_do_alloc_pages_node, 0, true },
	{ "dma", kms_do_dma, PAGE_SIZE, true },
	{ "percpu", kms_do_percpu, 64 },
	{ "mempool", kms_do_mempool, 128 },
	{ "mempool_kmalloc", kms_do_mempool_kmalloc, 128 },
	{ "leak", kms_do_leak, 64 },
	{ "leak_cache", kms_do_leak_cache, 0 },
	{ "leak_vmalloc", kms_do_leak_vmalloc, 4 * PAGE_SIZE },
	{ "leak_pages", kms_do_leak_pages, 0, true },
	{ "leak_percpu", kms_do_leak_percpu, 64 },
	{ "leak_dma", kms_do_leak_dma, PAGE_SIZE, true },
	{ "vfree_twice", kms_do_vfree_twice, 4 * PAGE_SIZE },
	{ "vfree_kmalloc", kms_do_vfree_kmalloc, 64 },
	{ "release", kms_do_release, 0 },
	{ "spinlock", kms_do_spinlock, 64 },
	{ "raw_spinlock", kms_do_raw_spinlock, 64 },
	{ "irqs_off", kms_do_irqs_off, 64 },
	{ "softirq", kms_do_softirq, 64 },
	{ "hardirq_in_tracer", kms_do_hardirq_in_tracer, 64 },
	{ "atomic", kms_do_atomic, 64 },
	{ "atomic_order3", kms_do_atomic_order3, 0, true },
	{ "kfree_rcu", kms_do_kfree_rcu, 96 },
	{ "kvfree_rcu", kms_do_kvfree_rcu, 64 },
	{ "kfree_bulk", kms_do_kfree_bulk, 64 },
	{ "kmem_cache_free_bulk", kms_do_cache_free_bulk, 0 },
	{ "gate", kms_do_gate, 0 },
	{ "ioremap", kms_do_ioremap, 2 * PAGE_SIZE },
};

static const struct {
	const char *arg;
	gfp_t gfp;
	const char *name;	/* the flag name the kernel's tracefs table gives it */
} kms_gfps[] = {
	{ "kernel", GFP_KERNEL, "GFP_KERNEL" },
	{ "atomic", GFP_ATOMIC, "GFP_ATOMIC" },
	{ "nowait", GFP_NOWAIT, "GFP_NOWAIT" },
	{ "zero", GFP_KERNEL | __GFP_ZERO, "__GFP_ZERO" },
	{ "dma32", GFP_KERNEL | __GFP_DMA32, "GFP_DMA32" },
};

static int kms_parse(char *buf, struct kms_args *a, const struct kms_scenario **sc)
{
	char *tok, *val;
	bool size_set = false;
	unsigned int i;
	int ret;

	memset(a, 0, sizeof(*a));
	a->count = 1;
	a->gfp = GFP_KERNEL;
	a->gfpname = "GFP_KERNEL";
	a->gfparg = "kernel";

	tok = strsep(&buf, " \t\n");
	if (!tok || !*tok)
		return -EINVAL;
	*sc = NULL;
	for (i = 0; i < ARRAY_SIZE(kms_scenarios); i++)
		if (!strcmp(tok, kms_scenarios[i].name))
			*sc = &kms_scenarios[i];
	if (!*sc) {
		pr_warn("kmemscope_test: unknown scenario '%s'\n", tok);
		return -EINVAL;
	}
	strscpy(a->scenario, tok, sizeof(a->scenario));
	strscpy(a->tag, tok, sizeof(a->tag));

	while ((tok = strsep(&buf, " \t\n"))) {
		if (!*tok)
			continue;
		val = strchr(tok, '=');
		if (!val)
			return -EINVAL;
		*val++ = 0;
		ret = 0;
		if (!strcmp(tok, "tag")) {
			strscpy(a->tag, val, sizeof(a->tag));
		} else if (!strcmp(tok, "count")) {
			ret = kstrtoul(val, 0, &a->count);
		} else if (!strcmp(tok, "size")) {
			ret = kstrtoul(val, 0, &a->size);
			size_set = true;
		} else if (!strcmp(tok, "size2")) {
			ret = kstrtoul(val, 0, &a->size2);
		} else if (!strcmp(tok, "order")) {
			ret = kstrtoul(val, 0, &a->order);
		} else if (!strcmp(tok, "min")) {
			ret = kstrtoul(val, 0, &a->min);
		} else if (!strcmp(tok, "gfp")) {
			for (i = 0; i < ARRAY_SIZE(kms_gfps); i++)
				if (!strcmp(val, kms_gfps[i].arg))
					break;
			if (i == ARRAY_SIZE(kms_gfps))
				return -EINVAL;
			a->gfp = kms_gfps[i].gfp;
			a->gfpname = kms_gfps[i].name;
			a->gfparg = kms_gfps[i].arg;
		} else {
			pr_warn("kmemscope_test: unknown key '%s'\n", tok);
			return -EINVAL;
		}
		if (ret)
			return ret;
	}
	if (!size_set)
		a->size = (*sc)->def_size;
	if (a->count > KMS_MAX_COUNT || a->order > 3)
		return -EINVAL;
	/* the bulk scenarios free from one array */
	if (strstr(a->scenario, "_bulk") && a->count > KMS_BULK_MAX)
		return -EINVAL;
	/* kmalloc() with __GFP_DMA32 is a slab bug (kmalloc_fix_flags warns) */
	if ((a->gfp & __GFP_DMA32) && !(*sc)->pages)
		return -EINVAL;
	/*
	 * the spinlock/irqs_off/softirq bugs are about GFP_KERNEL: pin it. Under a
	 * raw spinlock GFP_ATOMIC is a bug too, on PREEMPT_RT: gfp= is taken there
	 */
	if (!strcmp(a->scenario, "spinlock") ||
	    !strcmp(a->scenario, "irqs_off") || !strcmp(a->scenario, "softirq")) {
		a->gfp = GFP_KERNEL;
		a->gfpname = "GFP_KERNEL";
		a->gfparg = "kernel";
	}
	return 0;
}

static void kms_ledger_add(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (kms_ledger_len >= KMS_LEDGER_SIZE - 1)
		return;
	va_start(ap, fmt);
	n = vscnprintf(kms_ledger + kms_ledger_len, KMS_LEDGER_SIZE - kms_ledger_len, fmt, ap);
	va_end(ap);
	kms_ledger_len += n;
}

static void kms_ledger_run(struct kms_run *r, int ret)
{
	char gfp[64], blk[16], fn[KSYM_SYMBOL_LEN];
	struct kms_line *l;
	int i, j, n, nb;

	kms_runs++;
	for (i = 0; i < r->nlines; i++) {
		l = &r->line[i];
		n = nb = 0;
		gfp[0] = blk[0] = 0;
		/* blocking: the kernel's own verdict on each gfp (__GFP_DIRECT_RECLAIM) */
		for (j = 0; j < l->ngfp; j++) {
			n += scnprintf(gfp + n, sizeof(gfp) - n, "%s%#x", j ? "," : "",
				       (unsigned int)l->gfp[j]);
			nb += scnprintf(blk + nb, sizeof(blk) - nb, "%s%d", j ? "," : "",
					gfpflags_allow_blocking(l->gfp[j]));
		}
		/* the symbol kallsyms gives the code, without the " [module]" suffix */
		snprintf(fn, sizeof(fn), "%ps", (void *)l->ip);
		fn[strcspn(fn, " ")] = 0;
		kms_ledger_add("run=%lu tag=%s scenario=%s function=%s family=%s allocs=%lu frees=%lu deferred=%lu fails=%lu bytes_req=%lu bytes_alloc=%lu gfp=%s blocking=%s gfpname=%s order=%d context=%s leaked=%lu leaked_bytes=%lu cache=%s device=%s badfree=%s badfree_by=%s badfrees=%lu ret=%d\n",
			       kms_runs, r->a->tag, r->a->scenario, fn, l->family,
			       l->allocs, l->frees, l->deferred, l->fails, l->bytes_req, l->bytes_alloc,
			       gfp[0] ? gfp : "-", blk[0] ? blk : "-", l->gfpname ?: "-", l->order,
			       l->context ?: r->context,
			       l->leaked, l->leaked_bytes, l->cache ?: "-", l->device ?: "-",
			       l->badfree ?: "-", l->badfree_by ?: "-", l->badfrees, ret);
	}
	if (!r->nlines)
		kms_ledger_add("run=%lu tag=%s scenario=%s function=- family=- allocs=0 frees=0 deferred=0 fails=0 bytes_req=0 bytes_alloc=0 gfp=- blocking=- gfpname=- order=-1 context=%s leaked=0 leaked_bytes=0 cache=- device=- badfree=- badfree_by=- badfrees=0 ret=%d\n",
			       kms_runs, r->a->tag, r->a->scenario, r->context, ret);
}

static ssize_t kms_run_write(struct file *file, const char __user *ubuf, size_t len,
			     loff_t *ppos)
{
	const struct kms_scenario *sc;
	struct kms_args args;
	struct kms_run run;
	char buf[256];
	int ret, i;

	if (len >= sizeof(buf))
		return -E2BIG;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = 0;
	ret = kms_parse(buf, &args, &sc);
	if (ret)
		return ret;

	mutex_lock(&kms_lock);
	memset(&run, 0, sizeof(run));
	run.a = &args;
	run.context = "process";
	kms_cur = &run;
	ret = sc->fn(&run);
	kms_cur = NULL;
	kms_ledger_run(&run, ret);
	mutex_unlock(&kms_lock);

	if (!ret)
		for (i = 0; i < run.nlines; i++)
			if (run.line[i].fails)
				ret = -ENOMEM;
	return ret ? ret : len;
}

static ssize_t kms_ledger_read(struct file *file, char __user *ubuf, size_t len, loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&kms_lock);
	ret = simple_read_from_buffer(ubuf, len, ppos, kms_ledger, kms_ledger_len);
	mutex_unlock(&kms_lock);
	return ret;
}

static const struct file_operations kms_run_fops = {
	.owner = THIS_MODULE,
	.write = kms_run_write,
	.llseek = noop_llseek,
};

static const struct file_operations kms_ledger_fops = {
	.owner = THIS_MODULE,
	.read = kms_ledger_read,
	.llseek = default_llseek,
};

static int __init kms_init(void)
{
	int ret;

	kms_cache = kmem_cache_create(KMS_CACHE_NAME, cache_size, 0, 0, kms_cache_ctor);
	if (!kms_cache)
		return -ENOMEM;

	kms_pdev = platform_device_register_simple("kmemscope_test", -1, NULL, 0);
	if (IS_ERR(kms_pdev)) {
		ret = PTR_ERR(kms_pdev);
		goto err_cache;
	}
	/* platform devices get a dma_mask pointer; widen it so dma-direct serves any page */
	ret = dma_set_mask_and_coherent(&kms_pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_pdev;

	timer_setup(&kms_timer, kms_timer_fn, 0);

	kms_dir = debugfs_create_dir("kmemscope_test", NULL);
	debugfs_create_file("run", 0200, kms_dir, NULL, &kms_run_fops);
	debugfs_create_file("ledger", 0400, kms_dir, NULL, &kms_ledger_fops);
	pr_info("kmemscope_test: ready\n");
	return 0;

err_pdev:
	platform_device_unregister(kms_pdev);
err_cache:
	kmem_cache_destroy(kms_cache);
	return ret;
}

static void __exit kms_exit(void)
{
	debugfs_remove_recursive(kms_dir);
	del_timer_sync(&kms_timer);
	mutex_lock(&kms_lock);
	kms_release_held(NULL);
	mutex_unlock(&kms_lock);
	platform_device_unregister(kms_pdev);
	kmem_cache_destroy(kms_cache);
}

module_init(kms_init);
module_exit(kms_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmemscope test scenarios with a ledger of what they allocated");
