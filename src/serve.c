/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope serve: one long tracing session, exported over HTTP in the
 * Prometheus text format, and with --pprof as pprof profiles (docs/man/kmemscope-serve.md).
 *
 * The aggregator and the detector belong to the pipeline's thread and are
 * never read from another: every --interval that thread renders every page
 * into a buffer (session__run's tick) and swaps it in under a lock; HTTP
 * threads only copy the latest page out. A scrape therefore costs a copy, and
 * sees a page that is at most one interval old and consistent with itself.
 */
#include <argp.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include "agg.h"
#include "cli.h"
#include "detect.h"
#include "ksyms.h"
#include "log.h"
#include "pprof.h"
#include "profile.h"
#include "session.h"

#define SERVE_DEFAULT_LISTEN	"127.0.0.1:9464"
#define SERVE_TOP_SITES		50
#define SERVE_MAX_CACHES	300
/* a scraper or two, and a browser: what one exporter needs, and a bound on its memory */
#define SERVE_MAX_CONNECTIONS	16
#define SERVE_TIMEOUT_SEC	10

struct serve_env {
	struct session_args sa;
	const char *listen;
	double interval;
	unsigned long top_sites;
	unsigned long max_caches;
	bool pprof;
};

static const struct argp_option serve_options[] = {
	{ NULL, 0, NULL, 0, "Serving:", 1 },
	{ "listen", 'l', "ADDR:PORT", 0, "listen on ADDR:PORT (default " SERVE_DEFAULT_LISTEN
					 ", loopback only; [::1]:PORT for IPv6, :PORT for every "
					 "interface, port 0 for any free port)" },
	{ "interval", 'I', "SEC", 0, "render the metrics every SEC seconds (default 5): a scrape "
				     "sees what was counted up to the last rendering" },
	{ "top-sites", 1001, "N", 0, "export the N call sites with the most allocated bytes "
				     "(default 50, 0: no per-site metrics)" },
	{ "max-caches", 1002, "N", 0, "export at most N slab cache names, the first seen; the "
				      "others are summed as cache=\"other\" (default 300)" },
	{ "pprof", 1003, NULL, 0, "also serve pprof profiles at /debug/pprof/kernel_allocs and "
				  "/debug/pprof/kernel_inuse (a stack per allocation, cached per "
				  "call site: costs more per event)" },
	{},
};

static error_t serve_parse(int key, char *arg, struct argp_state *state)
{
	struct serve_env *env = state->input;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &env->sa;
		break;
	case 'l':
		env->listen = arg;
		break;
	case 'I':
		if (cli_parse_interval(arg, &env->interval))
			return EINVAL;
		break;
	case 1001:
		if (cli_parse_uint(arg, "site count", 10000, &env->top_sites))
			return EINVAL;
		break;
	case 1002:
		if (cli_parse_uint(arg, "cache count", 100000, &env->max_caches))
			return EINVAL;
		break;
	case 1003:
		env->pprof = true;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* ---- the listening socket ---- */

/*
 * Bind ADDR:PORT ("[v6]:PORT", ":PORT" for every interface) before anything
 * is loaded, so that a bad address or a port in use is a usage error that
 * costs nothing. The address bound goes to shown, as a URL's host:port.
 */
static int serve_listen(const char *spec, char *shown, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16], addr[INET6_ADDRSTRLEN];
	const char *colon = strrchr(spec, ':');
	struct addrinfo *res;
	size_t hl;
	int fd, one = 1, err;

	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof(port) ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) || atol(colon + 1) > 65535) {
		fprintf(stderr, "kmemscope serve: --listen '%s': expected ADDR:PORT with a port "
			"from 0 to 65535\n", spec);
		return -1;
	}
	hl = colon - spec;
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		fprintf(stderr, "kmemscope serve: --listen '%s': address too long\n", spec);
		return -1;
	}
	memcpy(host, spec, hl);
	host[hl] = 0;
	strcpy(port, colon + 1);
	err = getaddrinfo(hl ? host : NULL, port, &hints, &res);
	if (err) {
		fprintf(stderr, "kmemscope serve: --listen: cannot resolve '%s': %s\n", host,
			gai_strerror(err));
		return -1;
	}
	fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 64) ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
			err = errno;
			close(fd);
			fd = -1;
			errno = err;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "kmemscope serve: cannot listen on %s:%s: %s\n", hl ? host : "*",
			port, strerror(errno));
		return -1;
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof(addr));
		snprintf(shown, len, "[%s]:%u", addr, ntohs(a->sin6_port));
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
		snprintf(shown, len, "%s:%u", addr, ntohs(a->sin_port));
	}
	return fd;
}

/* ---- rendering, on the pipeline's thread ---- */

/* one call site, summed over the caches and devices agg keeps apart */
struct site_sum {
	int family;
	__u64 addr;
	__u64 allocs;
	__u64 bytes_alloc;
	__u64 outstanding;
	__u64 outstanding_bytes;
};

/* one cache name, summed over the caches of that name */
struct cache_sum {
	const char *name;
	size_t first;		/* agg index of the first cache of this name */
	__u64 allocs;
	__u64 frees;
	__u64 unmatched_frees;
	__u64 outstanding;
	__u64 outstanding_bytes;
};

/* what is served: each page's latest rendering */
enum serve_page {
	PAGE_METRICS,
	PAGE_ALLOCS,		/* --pprof: every allocation, alloc_space shown first */
	PAGE_INUSE,		/* --pprof: the same profile, inuse_space shown first */
	PAGE_NR,
};

static const struct {
	const char *path;
	const char *type;
} pages[PAGE_NR] = {
	[PAGE_METRICS] = { "/metrics", "text/plain; version=0.0.4; charset=utf-8" },
	[PAGE_ALLOCS] = { "/debug/pprof/kernel_allocs", "application/octet-stream" },
	[PAGE_INUSE] = { "/debug/pprof/kernel_inuse", "application/octet-stream" },
};

struct serve {
	const struct serve_env *env;
	struct session *s;
	/* the latest pages (NULL: not served), and the lock HTTP threads take to copy them */
	pthread_mutex_t lock;
	void *page[PAGE_NR];
	size_t page_len[PAGE_NR];
	/*
	 * Profile requests suspended until the next rendering: a profile costs
	 * the pipeline 0.15-0.6 s to build and encode (bench/README.md), so it is
	 * made only when asked for, and the request waits for it (at most an
	 * interval), as Go's /debug/pprof/profile waits for its samples.
	 */
	struct {
		struct MHD_Connection *c;
		int page;
	} waiting[SERVE_MAX_CONNECTIONS];
	int nr_waiting;
	unsigned int asked;	/* the pages they wait for, 1 << PAGE_* */
	bool stopping;		/* nothing waits from now on */
	/* the renderer's scratch tables, kept between renderings */
	struct site_sum *sites;
	size_t cap_sites;
	struct cache_sum *caches;
	size_t cap_caches;
	__u64 start_realtime_ns;	/* wall clock when the session began */
};

/* the new rendering of page i, a malloc'ed buffer, replaces the last one */
static void publish(struct serve *sv, int i, void *buf, size_t len)
{
	void *old;

	pthread_mutex_lock(&sv->lock);
	old = sv->page[i];
	sv->page[i] = buf;
	sv->page_len[i] = len;
	pthread_mutex_unlock(&sv->lock);
	free(old);
}

static void help(FILE *f, const char *name, const char *type, const char *text)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* a label value: backslash, double quote and newline escaped, as the format asks */
static void label(FILE *f, const char *key, const char *v, bool last)
{
	fprintf(f, "%s=\"", key);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputs(last ? "\"}" : "\",", f);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	void *p;

	if (need <= *cap)
		return 0;
	p = realloc(*arr, need * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = need;
	return 0;
}

#define U64_AT(p, off) (*(const __u64 *)((const char *)(p) + (off)))

struct metric {
	const char *name;
	const char *type;
	const char *help;
	size_t off;
};

static const struct metric family_metrics[] = {
	{ "kmemscope_allocations_total", "counter", "Allocations traced, by allocator family.",
	  offsetof(struct agg_counts, allocs) },
	{ "kmemscope_frees_total", "counter", "Frees of traced allocations, by the allocating "
	  "family.", offsetof(struct agg_counts, frees) },
	{ "kmemscope_deferred_frees_total", "counter", "Of the frees, those made through RCU or "
	  "a bulk free (seen where function probes work).",
	  offsetof(struct agg_counts, deferred_frees) },
	{ "kmemscope_unmatched_frees_total", "counter", "Frees of objects whose allocation was "
	  "not seen (made before tracing began, or in bulk), by the freeing family.",
	  offsetof(struct agg_counts, unmatched_frees) },
	{ "kmemscope_untraced_frees_total", "counter", "Objects whose address was allocated "
	  "again while they were live: their free was not traced.",
	  offsetof(struct agg_counts, realloc_without_free) },
	{ "kmemscope_allocation_failures_total", "counter", "Allocations that failed.",
	  offsetof(struct agg_counts, fails) },
	{ "kmemscope_requested_bytes_total", "counter", "Bytes the callers asked for.",
	  offsetof(struct agg_counts, bytes_req) },
	{ "kmemscope_allocated_bytes_total", "counter", "Bytes the allocator handed out "
	  "(allocated minus requested is waste).", offsetof(struct agg_counts, bytes_alloc) },
	{ "kmemscope_outstanding_objects", "gauge", "Objects allocated since tracing began and "
	  "not freed yet.", offsetof(struct agg_counts, outstanding) },
	{ "kmemscope_outstanding_bytes", "gauge", "Bytes of the outstanding objects.",
	  offsetof(struct agg_counts, outstanding_bytes) },
};

/*
 * One metric family per entry of metrics, one series per row: row(i) is the
 * struct the metric's offset is read from, labels() writes row i's label set
 * (braces included).
 */
struct rows {
	size_t n;
	const void *(*row)(const struct rows *r, size_t i);
	void (*labels)(FILE *f, const struct rows *r, size_t i);
	const void *ctx;
};

static void render_rows(FILE *f, const struct metric *metrics, size_t nr_metrics,
			const struct rows *r)
{
	for (size_t m = 0; m < nr_metrics; m++) {
		help(f, metrics[m].name, metrics[m].type, metrics[m].help);
		for (size_t i = 0; i < r->n; i++) {
			fputs(metrics[m].name, f);
			r->labels(f, r, i);
			fprintf(f, " %llu\n", U64_AT(r->row(r, i), metrics[m].off));
		}
	}
}

static const void *family_row(const struct rows *r, size_t i)
{
	return agg__family(r->ctx, i);
}

static void family_labels(FILE *f, const struct rows *r, size_t i)
{
	fputc('{', f);
	label(f, "family", kms_family_name(i), true);
}

static void render_families(FILE *f, const struct agg *a, const struct kms_quality *q)
{
	const struct rows r = { KMS_FAM_MAX, family_row, family_labels, a };

	render_rows(f, family_metrics, sizeof(family_metrics) / sizeof(family_metrics[0]), &r);
	help(f, "kmemscope_family_traced", "gauge", "1 when the family's allocations and frees "
	     "are traced on this kernel, 0 when it cannot be or was left out (-F).");
	for (int fam = 0; fam < KMS_FAM_MAX; fam++) {
		fputs("kmemscope_family_traced{", f);
		label(f, "family", kms_family_name(fam), true);
		fprintf(f, " %d\n", q->traced[fam]);
	}
}

static void cache_add(struct cache_sum *d, const struct cache_sum *c)
{
	d->allocs += c->allocs;
	d->frees += c->frees;
	d->unmatched_frees += c->unmatched_frees;
	d->outstanding += c->outstanding;
	d->outstanding_bytes += c->outstanding_bytes;
}

static int by_name(const void *x, const void *y)
{
	const struct cache_sum *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	return c ? c : (a->first > b->first) - (a->first < b->first);
}

static int by_first(const void *x, const void *y)
{
	const struct cache_sum *a = x, *b = y;

	return (a->first > b->first) - (a->first < b->first);
}

static const struct metric cache_metrics[] = {
	{ "kmemscope_cache_allocations_total", "counter", "kmem_cache_alloc() allocations, by "
	  "slab cache name.", offsetof(struct cache_sum, allocs) },
	{ "kmemscope_cache_frees_total", "counter", "Frees of those objects, by slab cache name.",
	  offsetof(struct cache_sum, frees) },
	{ "kmemscope_cache_unmatched_frees_total", "counter", "Frees into the cache of objects "
	  "whose allocation was not seen.", offsetof(struct cache_sum, unmatched_frees) },
	{ "kmemscope_cache_outstanding_objects", "gauge", "Objects of the cache allocated since "
	  "tracing began and not freed yet.", offsetof(struct cache_sum, outstanding) },
	{ "kmemscope_cache_outstanding_bytes", "gauge", "Bytes of those objects.",
	  offsetof(struct cache_sum, outstanding_bytes) },
};

/*
 * Caches by name: a name can belong to several caches (created again, per
 * cgroup), and one series per name keeps the label set unique. Names are
 * given in the order they were first seen, so the set of exported names only
 * grows and a counter never moves between a name and "other".
 */
static const void *cache_row(const struct rows *r, size_t i)
{
	return (const struct cache_sum *)r->ctx + i;
}

static void cache_labels(FILE *f, const struct rows *r, size_t i)
{
	fputc('{', f);
	label(f, "cache", ((const struct cache_sum *)r->ctx)[i].name, true);
}

static int render_caches(FILE *f, struct serve *sv, const struct agg *a, size_t *folded)
{
	size_t n = agg__nr_caches(a), nr = 0;
	struct rows r;

	*folded = 0;
	if (grow((void **)&sv->caches, &sv->cap_caches, n + 1, sizeof(*sv->caches)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct agg_cache *c = agg__cache(a, i);

		sv->caches[i] = (struct cache_sum){
			.name = c->known && c->name[0] ? c->name : "unknown", .first = i,
			.allocs = c->allocs, .frees = c->frees,
			.unmatched_frees = c->unmatched_frees, .outstanding = c->outstanding,
			.outstanding_bytes = c->outstanding_bytes,
		};
	}
	qsort(sv->caches, n, sizeof(*sv->caches), by_name);
	for (size_t i = 0; i < n; i++) {
		struct cache_sum *c = &sv->caches[i];

		if (nr && !strcmp(sv->caches[nr - 1].name, c->name))
			cache_add(&sv->caches[nr - 1], c);
		else
			sv->caches[nr++] = *c;
	}
	qsort(sv->caches, nr, sizeof(*sv->caches), by_first);
	/* past the cap, every name is summed into one row named "other" */
	if (nr > sv->env->max_caches) {
		struct cache_sum *o = &sv->caches[sv->env->max_caches];

		*folded = nr - sv->env->max_caches;
		o->name = "other";
		for (size_t i = sv->env->max_caches + 1; i < nr; i++)
			cache_add(o, &sv->caches[i]);
		nr = sv->env->max_caches + 1;
	}
	r = (struct rows){ nr, cache_row, cache_labels, sv->caches };
	render_rows(f, cache_metrics, sizeof(cache_metrics) / sizeof(cache_metrics[0]), &r);
	return 0;
}

static int by_site(const void *x, const void *y)
{
	const struct site_sum *a = x, *b = y;

	if (a->family != b->family)
		return a->family - b->family;
	return (a->addr > b->addr) - (a->addr < b->addr);
}

static int by_bytes(const void *x, const void *y)
{
	const struct site_sum *a = x, *b = y;

	if (a->bytes_alloc != b->bytes_alloc)
		return a->bytes_alloc < b->bytes_alloc ? 1 : -1;
	return by_site(x, y);
}

static const struct metric site_metrics[] = {
	{ "kmemscope_site_allocations_total", "counter", "Allocations by call site, for the "
	  "sites with the most allocated bytes (--top-sites).", offsetof(struct site_sum, allocs) },
	{ "kmemscope_site_allocated_bytes_total", "counter", "Bytes allocated by call site.",
	  offsetof(struct site_sum, bytes_alloc) },
	{ "kmemscope_site_outstanding_objects", "gauge", "Objects allocated at the call site "
	  "and not freed yet.", offsetof(struct site_sum, outstanding) },
	{ "kmemscope_site_outstanding_bytes", "gauge", "Bytes of those objects.",
	  offsetof(struct site_sum, outstanding_bytes) },
};

static const void *site_row(const struct rows *r, size_t i)
{
	const struct serve *sv = r->ctx;

	return &sv->sites[i];
}

/* the labels of a site: family, function, offset and module (vmlinux for the kernel's own) */
static void site_labels(FILE *f, const struct rows *r, size_t i)
{
	const struct serve *sv = r->ctx;
	const struct ksyms *k = sv->s->ksyms;
	const struct site_sum *s = &sv->sites[i];
	const struct ksym *sym = k && s->addr ? ksyms__resolve(k, s->addr) : NULL;
	char buf[32];

	fputc('{', f);
	label(f, "family", kms_family_name(s->family), false);
	if (sym) {
		label(f, "function", sym->name, false);
		snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)(s->addr - sym->addr));
		label(f, "offset", buf, false);
		label(f, "module", sym->module ? sym->module : "vmlinux", true);
	} else {
		snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)s->addr);
		label(f, "function", s->addr ? buf : "unknown", false);
		label(f, "offset", "0x0", false);
		label(f, "module", "", true);
	}
}

static int render_sites(FILE *f, struct serve *sv, const struct agg *a, size_t *not_shown)
{
	size_t n = agg__nr_sites(a), nr = 0, top;
	struct rows r;

	if (grow((void **)&sv->sites, &sv->cap_sites, n, sizeof(*sv->sites)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct agg_site *s = agg__site(a, i);

		sv->sites[i] = (struct site_sum){
			.family = s->family, .addr = s->addr, .allocs = s->allocs,
			.bytes_alloc = s->bytes_alloc, .outstanding = s->outstanding,
			.outstanding_bytes = s->outstanding_bytes,
		};
	}
	qsort(sv->sites, n, sizeof(*sv->sites), by_site);
	for (size_t i = 0; i < n; i++) {
		struct site_sum *s = &sv->sites[i];

		if (nr && !by_site(&sv->sites[nr - 1], s)) {
			struct site_sum *d = &sv->sites[nr - 1];

			d->allocs += s->allocs;
			d->bytes_alloc += s->bytes_alloc;
			d->outstanding += s->outstanding;
			d->outstanding_bytes += s->outstanding_bytes;
		} else {
			sv->sites[nr++] = *s;
		}
	}
	qsort(sv->sites, nr, sizeof(*sv->sites), by_bytes);
	top = nr < sv->env->top_sites ? nr : sv->env->top_sites;
	*not_shown = nr - top;
	r = (struct rows){ top, site_row, site_labels, sv };
	if (top)
		render_rows(f, site_metrics, sizeof(site_metrics) / sizeof(site_metrics[0]), &r);
	return 0;
}

static const struct metric quality_metrics[] = {
	{ "kmemscope_events_total", "counter", "Records delivered to the aggregator.",
	  offsetof(struct kms_quality, events) },
	{ "kmemscope_lost_events_total", "counter", "Records the kernel could not ship (ring "
	  "buffer full).", offsetof(struct kms_quality, lost) },
	{ "kmemscope_recursion_misses_total", "counter", "Program runs the kernel skipped "
	  "(an interrupt re-entered a handler), less the rescued ones.",
	  offsetof(struct kms_quality, misses) },
	{ "kmemscope_rescued_events_total", "counter", "Skipped runs whose event a shadow "
	  "program recorded (--rescue on).", offsetof(struct kms_quality, rescued) },
	{ "kmemscope_stack_failures_total", "counter", "Stack captures that failed.",
	  offsetof(struct kms_quality, stack_failures) },
	{ "kmemscope_out_of_order_events_total", "counter", "Records that arrived after their "
	  "time slot.", offsetof(struct kms_quality, out_of_order) },
	{ "kmemscope_filtered_events_total", "counter", "Events left out by the -p, -c and "
	  "-- CMD filters.", offsetof(struct kms_quality, filtered) },
	{ "kmemscope_self_excluded_events_total", "counter", "kmemscope's own allocations, "
	  "left out.", offsetof(struct kms_quality, self_excluded) },
	{ "kmemscope_pending_lost_total", "counter", "Function returns whose entry was not seen.",
	  offsetof(struct kms_quality, pending_lost) },
	{ "kmemscope_bulk_lost_total", "counter", "Pointers of bulk frees past the BPF handler's "
	  "bound.", offsetof(struct kms_quality, bulk_lost) },
	{ "kmemscope_kmalloc_twice_total", "counter", "The kernel's second kmem:kmalloc event of "
	  "one large kmalloc(), dropped.", offsetof(struct kms_quality, kmalloc_twice) },
	{ "kmemscope_softirqs_unseen_total", "counter", "Softirq runs in a context where the "
	  "kernel ran no handler (see the softirq witness).",
	  offsetof(struct kms_quality, softirqs_unseen) },
	{ "kmemscope_task_runs_unseen_total", "counter", "Runs of tasks in whose context the "
	  "kernel ran no handler (see the task witness).",
	  offsetof(struct kms_quality, tasks_unseen) },
};

static const void *one_row(const struct rows *r, size_t i)
{
	return r->ctx;
}

static void no_labels(FILE *f, const struct rows *r, size_t i)
{
}

static void render_quality(FILE *f, const struct kms_quality *q, const struct agg *a)
{
	const struct rows r = { 1, one_row, no_labels, q };

	render_rows(f, quality_metrics, sizeof(quality_metrics) / sizeof(quality_metrics[0]), &r);
	help(f, "kmemscope_event_recursion_misses_total", "counter", "Recursion misses of the "
	     "programs of one event: an upper bound of that event's loss.");
	for (int i = 0; i < q->nr_event_misses; i++) {
		fputs("kmemscope_event_recursion_misses_total{", f);
		label(f, "event", q->event_misses[i].name, true);
		fprintf(f, " %llu\n", q->event_misses[i].misses);
	}
	help(f, "kmemscope_uncounted_events_total", "counter", "Events not fully counted: a "
	     "table could not grow (out of memory).");
	fprintf(f, "kmemscope_uncounted_events_total %llu\n", agg__stats(a)->nomem);
	help(f, "kmemscope_quality_complete", "gauge", "1 while nothing was lost, missed or "
	     "reordered since tracing began, and no softirq or task ran unseen.");
	fprintf(f, "kmemscope_quality_complete %d\n", kms_quality_complete(q));
}

static long resident_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * sysconf(_SC_PAGESIZE);
}

/* what grows with a long session, so that its memory can be watched */
static void render_self(FILE *f, struct serve *sv, size_t sites_not_shown, size_t caches_folded)
{
	const struct agg *a = sv->s->pipe.agg;
	const struct {
		const char *name, *help;
		__u64 v;
	} g[] = {
		{ "kmemscope_tracked_objects", "Live objects kmemscope holds to match their frees "
		  "and count what is outstanding.", live__count(&sv->s->pipe.live) },
		{ "kmemscope_tracked_sites", "Call sites counted (per family, cache and device).",
		  agg__nr_sites(a) },
		{ "kmemscope_tracked_caches", "Slab caches counted.", agg__nr_caches(a) },
		{ "kmemscope_tracked_processes", "Processes counted (not exported: pids are "
		  "unbounded labels).", agg__nr_procs(a) },
		{ "kmemscope_sites_not_exported", "Call sites past --top-sites in this rendering.",
		  sites_not_shown },
		{ "kmemscope_caches_folded", "Slab cache names past --max-caches, summed as "
		  "cache=\"other\".", caches_folded },
		{ "kmemscope_resident_memory_bytes", "Resident memory of kmemscope itself.",
		  resident_bytes() },
	};

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		help(f, g[i].name, "gauge", g[i].help);
		fprintf(f, "%s %llu\n", g[i].name, (unsigned long long)g[i].v);
	}
}

static int render_metrics(struct serve *sv, const struct kms_quality *q)
{
	const struct agg *a = sv->s->pipe.agg;
	size_t sites_not_shown = 0, caches_folded = 0, len = 0;
	struct timespec now;
	char *buf = NULL;
	FILE *f;
	int err;

	f = open_memstream(&buf, &len);
	if (!f)
		return -errno;
	clock_gettime(CLOCK_REALTIME, &now);
	help(f, "kmemscope_info", "gauge", "The kmemscope version and the traced kernel's release.");
	fputs("kmemscope_info{", f);
	label(f, "version", argp_program_version, false);
	label(f, "kernel", sv->s->kernel ? sv->s->kernel : "", true);
	fputs(" 1\n", f);
	help(f, "kmemscope_start_time_seconds", "gauge", "When tracing began, in seconds since "
	     "the epoch.");
	fprintf(f, "kmemscope_start_time_seconds %.3f\n", sv->start_realtime_ns / 1e9);
	help(f, "kmemscope_last_render_time_seconds", "gauge", "When this page was rendered, in "
	     "seconds since the epoch (every --interval).");
	fprintf(f, "kmemscope_last_render_time_seconds %.3f\n", now.tv_sec + now.tv_nsec / 1e9);
	render_families(f, a, q);
	err = render_caches(f, sv, a, &caches_folded);
	if (!err)
		err = render_sites(f, sv, a, &sites_not_shown);
	render_quality(f, q, a);
	render_self(f, sv, sites_not_shown, caches_folded);
	if (fclose(f) || err) {
		free(buf);
		return err ? err : -ENOMEM;
	}
	publish(sv, PAGE_METRICS, buf, len);
	return 0;
}

/*
 * One profile of everything since the start, encoded for each page asked
 * (1 << PAGE_*): the two pages hold the same samples and values and differ
 * in the one pprof shows first, as Go's allocs and heap profiles do.
 */
static int render_pprof(struct serve *sv, const struct kms_quality *q, unsigned int asked)
{
	struct profile_opts po = {
		.scope = PROFILE_ALL, .kernel = sv->s->kernel, .source = "live",
		.command = "serve", .quality = q, .start_realtime_ns = sv->start_realtime_ns,
		.ksyms = sv->s->ksyms, .gfp = sv->s->gfp,
	};
	static const int shown[PAGE_NR] = { [PAGE_ALLOCS] = PV_ALLOC_BYTES,
					    [PAGE_INUSE] = PV_INUSE_BYTES };
	struct profile p;
	int err;

	err = profile__build(&p, sv->s->pipe.detect, &po);
	for (int i = PAGE_ALLOCS; !err && i <= PAGE_INUSE; i++) {
		void *buf;
		size_t len;

		if (!(asked & 1U << i))
			continue;
		err = pprof__encode(&p, shown[i], &buf, &len);
		if (!err)
			publish(sv, i, buf, len);
	}
	profile__free(&p);
	return err;
}

/* /metrics, and the profile pages asked (1 << PAGE_*) */
static int render(struct serve *sv, unsigned int profiles)
{
	__u64 t0 = cli_now_ns(), t1;
	struct kms_quality q;
	int err;

	session__quality(sv->s, &q);
	err = render_metrics(sv, &q);
	t1 = cli_now_ns();
	if (!err && profiles)
		err = render_pprof(sv, &q, profiles);
	/* the pipeline waits meanwhile: -vv shows what a rendering costs it */
	kms_debug("rendered /metrics in %.2f ms%s, the profiles in %.2f ms\n", (t1 - t0) / 1e6,
		  profiles ? "" : " (no profile asked for)", (cli_now_ns() - t1) / 1e6);
	return err;
}

/*
 * The pages in done (1 << PAGE_*) are published: the requests waiting for
 * them go on. Those that came for another page meanwhile wait for the next.
 */
static void resume_waiting(struct serve *sv, unsigned int done)
{
	int kept = 0;

	pthread_mutex_lock(&sv->lock);
	sv->asked = 0;
	for (int i = 0; i < sv->nr_waiting; i++) {
		if (done & 1U << sv->waiting[i].page) {
			MHD_resume_connection(sv->waiting[i].c);
			continue;
		}
		sv->asked |= 1U << sv->waiting[i].page;
		sv->waiting[kept++] = sv->waiting[i];
	}
	sv->nr_waiting = kept;
	pthread_mutex_unlock(&sv->lock);
}

static int serve_tick(struct session *s, void *ctx)
{
	struct serve *sv = ctx;
	unsigned int asked;
	int err;

	pthread_mutex_lock(&sv->lock);
	asked = sv->asked;
	pthread_mutex_unlock(&sv->lock);
	err = render(sv, asked);
	/* on a failure the last pages stay up (the waiting get those); the next interval tries again */
	if (asked)
		resume_waiting(sv, asked);
	if (err)
		kms_warn("cannot render the metrics: %s\n", strerror(-err));
	return 0;
}

/* ---- HTTP, on libmicrohttpd's thread ---- */

static const char index_page[] =
	"<html><head><title>kmemscope</title></head><body><h1>kmemscope serve</h1>\n"
	"<p><a href=\"/metrics\">/metrics</a>: kernel memory allocations, Prometheus text "
	"format</p>\n<p><a href=\"/debug/pprof/kernel_allocs\">/debug/pprof/kernel_allocs</a>, "
	"<a href=\"/debug/pprof/kernel_inuse\">/debug/pprof/kernel_inuse</a>: pprof profiles "
	"(with --pprof)</p>\n</body></html>\n";

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
			     const char *body, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* read-only: GET and HEAD (libmicrohttpd leaves HEAD's body out), nothing else */
static enum MHD_Result serve_request(void *cls, struct MHD_Connection *c, const char *url,
				     const char *method, const char *version,
				     const char *upload, size_t *upload_len, void **req)
{
	static const char text[] = "text/plain; charset=utf-8";
	struct serve *sv = cls;
	enum MHD_Result ret;

	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD)) {
		static const char msg[] = "only GET and HEAD\n";

		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, msg, sizeof(msg) - 1);
	}
	for (int i = 0; i < PAGE_NR; i++) {
		if (strcmp(url, pages[i].path))
			continue;
		pthread_mutex_lock(&sv->lock);
		if (!sv->page[i]) {
			ret = reply(c, MHD_HTTP_NOT_FOUND, text, "not found\n", 10);
		} else if (i != PAGE_METRICS && !*req && !sv->stopping &&
			   sv->nr_waiting < SERVE_MAX_CONNECTIONS) {
			/* a profile: wait for the next rendering (resume_waiting()) */
			*req = sv;
			sv->waiting[sv->nr_waiting].c = c;
			sv->waiting[sv->nr_waiting++].page = i;
			sv->asked |= 1U << i;
			MHD_suspend_connection(c);
			ret = MHD_YES;
		} else {
			ret = reply(c, MHD_HTTP_OK, pages[i].type, sv->page[i], sv->page_len[i]);
		}
		pthread_mutex_unlock(&sv->lock);
		return ret;
	}
	if (!strcmp(url, "/"))
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", index_page,
			     sizeof(index_page) - 1);
	return reply(c, MHD_HTTP_NOT_FOUND, text, "not found\n", 10);
}

int cmd_serve(int argc, char **argv)
{
	static const struct argp argp = {
		serve_options, serve_parse, "[-- CMD [ARGS]]",
		"Trace kernel memory allocations for as long as it runs, and serve the counts "
		"over HTTP for Prometheus to scrape: per family, per slab cache and per top "
		"call site, with the data quality of the session (kmemscope-serve(1)).\v"
		"Endpoints (GET and HEAD only): /metrics (Prometheus text format), / (an index); "
		"with --pprof, /debug/pprof/kernel_allocs and /debug/pprof/kernel_inuse (gzipped "
		"profile.proto, as go tool pprof and Parca read it).\n\n"
		"Examples:\n"
		"  kmemscope serve                           on " SERVE_DEFAULT_LISTEN "\n"
		"  kmemscope serve --listen :9464 -I 15      every interface, render every 15 s\n"
		"  kmemscope serve -F slab --top-sites 100   slab allocations, 100 sites\n\n"
		"SIGINT or SIGTERM stops it (exit status 0). Exit status 2 on a usage or "
		"environment error (an address that cannot be listened on, a port in use, not "
		"root), 1 on a runtime failure; with -- CMD it serves until CMD exits, and exits "
		"with CMD's status.",
		session_tracing_children,
	};
	struct serve_env env = { .listen = SERVE_DEFAULT_LISTEN, .interval = 5,
				 .top_sites = SERVE_TOP_SITES, .max_caches = SERVE_MAX_CACHES };
	/* allocations by stack, for the profile: the detector's groups (profile.h) */
	struct detect_opts dopts = { .leaks = true };
	struct serve sv = { .env = &env };
	struct MHD_Daemon *httpd = NULL;
	struct session s = {};
	struct timespec now;
	char shown[INET6_ADDRSTRLEN + 16];
	int fd, err;

	err = cli_argp_parse(&argp, argc, argv, &env);
	if (err)
		return err;
	env.sa.so.pids = env.sa.pids;
	if (env.pprof) {
		env.sa.so.stacks_all = true;
		env.sa.so.stack_cache = true;
		env.sa.so.detect = &dopts;
	}
	fd = serve_listen(env.listen, shown, sizeof(shown));
	if (fd < 0)
		return 2;
	pthread_mutex_init(&sv.lock, NULL);
	err = session__start(&s, &env.sa.so);
	if (err) {
		close(fd);
		goto out;
	}
	sv.s = &s;
	clock_gettime(CLOCK_REALTIME, &now);
	sv.start_realtime_ns = now.tv_sec * 1000000000ULL + now.tv_nsec - (cli_now_ns() - s.start_ns);
	/* a scrape before the first interval gets the empty counters, not an error */
	/* the profile pages exist from the start: a request for one waits for the next */
	err = render(&sv, env.pprof ? 1U << PAGE_ALLOCS | 1U << PAGE_INUSE : 0);
	if (err) {
		kms_error("Failed to render the metrics: %s\n", strerror(-err));
		close(fd);
		err = 1;
		goto stop;
	}
	httpd = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, serve_request, &sv,
				 MHD_OPTION_LISTEN_SOCKET, fd,
				 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)SERVE_MAX_CONNECTIONS,
				 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)SERVE_TIMEOUT_SEC,
				 MHD_OPTION_END);
	if (!httpd) {
		kms_error("Failed to start the HTTP server on %s\n", shown);
		close(fd);
		err = 1;
		goto stop;
	}
	fprintf(stderr, "Serving http://%s/metrics, rendered every %g s... Ctrl-C or SIGTERM "
		"to stop.\n", shown, env.interval);
	err = session__run(&s, 0, env.interval, serve_tick, &sv);
	/* libmicrohttpd must not stop with suspended connections */
	pthread_mutex_lock(&sv.lock);
	sv.stopping = true;
	pthread_mutex_unlock(&sv.lock);
	resume_waiting(&sv, ~0U);
	/* closes the listening socket: nothing is served past this point */
	MHD_stop_daemon(httpd);
stop:
	err = session__stop(&s) || err;
out:
	err = cli_cmd_status(&s.cmd, err);
	session__free(&s);
	pthread_mutex_destroy(&sv.lock);
	for (int i = 0; i < PAGE_NR; i++)
		free(sv.page[i]);
	free(sv.sites);
	free(sv.caches);
	return err;
}
