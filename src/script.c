/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * kmemscope script: a trace file, one record per line (script.h). The lines
 * come from one description of each record (struct ev_line), rendered as
 * text columns or as a JSON object.
 */
#include <argp.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "agg.h"
#include "cli.h"
#include "detect.h"
#include "gfp.h"
#include "htab.h"
#include "ksyms.h"
#include "log.h"
#include "rows.h"
#include "script.h"
#include "session.h"
#include "trace.h"

#define NSEC_PER_SEC 1000000000ULL
#define SYM_LEN 256		/* a formatted symbol, "func+0x1f [module]" */
#define GFP_LEN 1024		/* every flag name of one GFP value */

/* what --strip-addresses numbers, each kind counting on its own: "obj#17" */
enum id_kind { ID_OBJ, ID_PAGE, ID_CODE, ID_CACHE, ID_DEV, ID_NR };
static const char *const id_names[ID_NR] = { "obj", "page", "site", "cache", "dev" };

struct id_slot {
	__u64 addr;		/* key: addr, kind */
	__u64 kind;
	__u32 id;
	__u8 pad[3];
	__u8 meta;		/* htab.h's */
};
HTAB_SLOT(struct id_slot);
#define ID_KEY_SIZE (2 * sizeof(__u64))

struct script {
	struct script_opts o;
	struct htab ids;		/* --strip-addresses: address -> its number */
	/*
	 * An event's JSON object, made once: every line sets every member again,
	 * so the object and its keys are not made again for each (a third of the
	 * time of a line).
	 */
	json_t *ev_json;
	__u32 next_id[ID_NR];
	bool nomem;
	char *buf;			/* the line being made */
	size_t len, cap;
	/* the frames of the stack being printed (--stack) */
	char frames[KMS_MAX_STACK][SYM_LEN];
};

static __u64 id_hash(const void *slot)
{
	const struct id_slot *s = slot;

	return kms_hash64(s->addr ^ (s->kind * 0x9e3779b97f4a7c15ULL));
}

struct script *script__new(const struct script_opts *o)
{
	struct script *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->o = *o;
	if ((o->strip && htab__init(&sc->ids, sizeof(struct id_slot), 1024, HTAB_FAST, id_hash)) ||
	    !(sc->buf = malloc(sc->cap = 1024)) || (o->json && !(sc->ev_json = json_object()))) {
		script__free(sc);
		errno = ENOMEM;
		return NULL;
	}
	return sc;
}

void script__free(struct script *sc)
{
	if (!sc)
		return;
	htab__fini(&sc->ids);
	json_decref(sc->ev_json);
	free(sc->buf);
	free(sc);
}

/*
 * The number of an address of one kind. An allocation asks for a fresh one
 * (the address holds a new object now), so that a free shows the number of
 * the allocation it frees, and an address used again gets another.
 */
static __u32 addr_id(struct script *sc, enum id_kind kind, __u64 addr, bool fresh)
{
	struct id_slot key = { .addr = addr, .kind = kind }, *s;
	bool created;

	s = htab__get(&sc->ids, id_hash(&key), &key, ID_KEY_SIZE, sizeof(*s), &created);
	if (!s) {
		sc->nomem = true;
		return 0;
	}
	if (created || fresh)
		s->id = ++sc->next_id[kind];
	return s->id;
}

/* an address as the lines show it: hex, or its number with --strip-addresses */
static void addr_str(struct script *sc, enum id_kind kind, __u64 addr, bool fresh, char *b,
		     size_t n)
{
	if (sc->o.strip)
		snprintf(b, n, "%s#%u", id_names[kind], addr_id(sc, kind, addr, fresh));
	else
		snprintf(b, n, "0x%llx", (unsigned long long)addr);
}

/* "func+0x1f [mod]", else the address (or its number); NULL for 0 (unknown) */
static const char *code_str(struct script *sc, __u64 addr, char *b, size_t n)
{
	if (!addr)
		return NULL;
	if (sc->o.ksyms && ksyms__resolve(sc->o.ksyms, addr))
		ksyms__format(sc->o.ksyms, addr, b, n);
	else
		addr_str(sc, ID_CODE, addr, false, b, n);
	return b;
}

/* seconds since the trace began, 9 decimals; records before it are negative */
static __s64 rel_ns(const struct script *sc, __u64 ts)
{
	return (__s64)(ts - sc->o.start_ns);
}

static void time_str(__s64 ns, char *b, size_t n)
{
	__u64 d = ns < 0 ? -(__u64)ns : (__u64)ns;

	snprintf(b, n, "%s%llu.%09llu", ns < 0 ? "-" : "", (unsigned long long)(d / NSEC_PER_SEC),
		 (unsigned long long)(d % NSEC_PER_SEC));
}

/* ---- the line buffer ---- */

static bool reserve(struct script *sc, size_t more)
{
	char *n;
	size_t cap;

	if (sc->len + more <= sc->cap)
		return true;
	cap = 2 * (sc->len + more);
	n = realloc(sc->buf, cap);
	if (!n) {
		sc->nomem = true;
		return false;
	}
	sc->buf = n;
	sc->cap = cap;
	return true;
}

/*
 * A text column and the blank after it. Blanks and control characters in a
 * value (a comm may hold any) become '_': every line splits into the same
 * columns. An empty or absent value is "-".
 */
static void put_col(struct script *sc, const char *s)
{
	size_t n;

	if (!s || !*s)
		s = "-";
	n = strlen(s);
	if (!reserve(sc, n + 1))
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];

		sc->buf[sc->len++] = c <= ' ' || c == 0x7f ? '_' : c;
	}
	sc->buf[sc->len++] = ' ';
}

static void put_colf(struct script *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_colf(struct script *sc, const char *fmt, ...)
{
	char b[SYM_LEN + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	put_col(sc, b);
}

/* the columns made so far, as one line */
static const char *text_line(struct script *sc, size_t *len)
{
	if (sc->nomem)
		return NULL;
	sc->buf[sc->len - 1] = '\n';	/* the last column's blank */
	*len = sc->len;
	return sc->buf;
}

/* j as one line; j is released */
static const char *json_line(struct script *sc, json_t *j, size_t *len)
{
	const size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(15);
	size_t n;

	if (!j) {
		sc->nomem = true;
		return NULL;
	}
	n = json_dumpb(j, sc->buf, sc->cap, flags);
	if (n + 1 > sc->cap && reserve(sc, n + 1))
		n = json_dumpb(j, sc->buf, sc->cap, flags);
	json_decref(j);
	if (!n || sc->nomem) {
		sc->nomem = true;
		return NULL;
	}
	sc->buf[n] = '\n';
	*len = n + 1;
	return sc->buf;
}

static void set_time(json_t *j, __s64 ns)
{
	json_object_set_new(j, "time", json_real((double)ns / NSEC_PER_SEC));
	json_object_set_new(j, "time_ns", json_integer(ns));
}

/* ---- events ---- */

/* what an event line says, whichever the format */
struct ev_line {
	__s64 time_ns;
	char time[32];
	const char *comm;	/* NULL: no TASK record named the process yet */
	const char *event;
	const char *family;	/* NULL: none (an event of unknown family) */
	char ptr[32];
	__u32 bytes_req, bytes_alloc;
	int order;		/* page events only, else -1 */
	int migratetype;	/* page allocations only, else -1 */
	const char *gfp;	/* NULL: the record carries none */
	char gfp_value[16];
	char gfp_buf[GFP_LEN];
	bool is_cache, is_device;
	const char *obj_name;	/* the cache's or device's name, NULL when not named */
	char obj_addr[32];
	const char *site;	/* NULL: unknown */
	char site_buf[SYM_LEN];
	char site_addr[32];
	const char *context;	/* NULL: the record carries no preempt count */
	char pc[16];
	const char *flags[9];
	int nr_flags;
	int nr_frames;		/* --stack: frames in sc->frames, -1: the record has no stack */
};

static const struct {
	__u8 bit;
	bool extra;		/* a KMS_X_* bit of a non-page event, else a KMS_CTX_* bit */
	const char *name;
} flag_names[] = {
	{ KMS_CTX_OUTSIDE, false, "outside" },
	{ KMS_CTX_RCU_DONE, false, "rcu_done" },
	{ KMS_CTX_SELF, false, "self" },
	{ KMS_CTX_NESTED, false, "direct" },
	{ KMS_X_NESTED, true, "nested" },
	{ KMS_X_FAILED, true, "failed" },
	{ KMS_X_ATOMIC, true, "atomic" },
	{ KMS_X_RESERVED, true, "reserved" },
	{ KMS_X_MAPPING, true, "mapping" },
};

_Static_assert(sizeof(flag_names) / sizeof(flag_names[0]) <= 9, "ev_line.flags holds them all");

static void describe(struct script *sc, const struct kms_event *e, struct ev_line *l)
{
	const struct kms_ev_info *ei = kms_ev_info(e->type);
	int fam = e->type == KMS_EV_ALLOC_FAIL ? e->order : ei ? ei->family : -1;
	bool known_fam = fam >= 0 && fam < KMS_FAM_MAX;
	bool page = ei && ei->cls == KMS_OC_PAGE;
	bool alloc = (ei && ei->alloc) || e->type == KMS_EV_ALLOC_FAIL;

	l->time_ns = rel_ns(sc, e->ts);
	time_str(l->time_ns, l->time, sizeof(l->time));
	l->comm = sc->o.agg ? agg__proc_comm(sc->o.agg, e->pid) : NULL;
	l->event = kms_ev_name(e->type);
	l->family = known_fam ? kms_family_name(fam) : NULL;
	/* kfree(NULL), a failure: no address to hide */
	if (e->ptr)
		addr_str(sc, page ? ID_PAGE : ID_OBJ, e->ptr, ei && ei->alloc, l->ptr,
			 sizeof(l->ptr));
	else
		snprintf(l->ptr, sizeof(l->ptr), "0x0");
	l->bytes_req = e->bytes_req;
	l->bytes_alloc = e->bytes_alloc;
	/* kmem_cache events carry no sizes: the cache's, as the reports count them */
	if (fam == KMS_FAM_CACHE && ei && ei->alloc && !e->bytes_alloc && sc->o.agg) {
		const struct agg_cache *c = agg__find_cache(sc->o.agg, e->obj);

		if (c) {
			l->bytes_req = c->object_size;
			l->bytes_alloc = c->size;
		}
	}
	l->order = page ? e->order : -1;
	l->migratetype = fam == KMS_FAM_PAGE && alloc ? e->extra : -1;
	/*
	 * No GFP from the attach point (vmalloc's tracepoint; files recorded
	 * before KMS_GFP_UNKNOWN wrote 0 there): "unknown", not "none"
	 */
	l->gfp = NULL;
	l->gfp_value[0] = '\0';
	if (alloc && (e->gfp == KMS_GFP_UNKNOWN || (fam == KMS_FAM_VMALLOC && !e->gfp))) {
		l->gfp = "unknown";
	} else if (alloc) {
		gfp_table__decode(sc->o.gfp, e->gfp, l->gfp_buf, sizeof(l->gfp_buf));
		snprintf(l->gfp_value, sizeof(l->gfp_value), "0x%x", e->gfp);
		l->gfp = l->gfp_buf;
	}
	l->is_cache = fam == KMS_FAM_CACHE && e->obj;
	l->is_device = fam == KMS_FAM_DMA && e->obj;
	l->obj_name = NULL;
	if (l->is_cache || l->is_device) {
		l->obj_name = !sc->o.agg ? NULL : l->is_cache ? agg__cache_name(sc->o.agg, e->obj) :
			      agg__device_name(sc->o.agg, e->obj);
		addr_str(sc, l->is_cache ? ID_CACHE : ID_DEV, e->obj, false, l->obj_addr,
			 sizeof(l->obj_addr));
	}
	l->site = code_str(sc, e->site, l->site_buf, sizeof(l->site_buf));
	snprintf(l->site_addr, sizeof(l->site_addr), "0x%llx", (unsigned long long)e->site);
	l->context = NULL;
	if ((e->ctx & KMS_CTX_KNOWN) && known_fam) {
		int base = sc->o.baseline_pc ? sc->o.baseline_pc[fam] : -1;

		l->context = detect_ctx_name(detect__classify(e->ctx, e->pc, base));
		snprintf(l->pc, sizeof(l->pc), "0x%x", e->pc);
	}
	l->nr_flags = 0;
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++) {
		/* page events keep their migratetype in extra, user events their API */
		__u8 bits = !flag_names[i].extra ? e->ctx :
			    fam == KMS_FAM_PAGE || kms_family_is_user(fam) ? 0 : e->extra;

		if (bits & flag_names[i].bit)
			l->flags[l->nr_flags++] = flag_names[i].name;
	}
	l->nr_frames = -1;
	if (sc->o.stacks && sc->o.stack && e->stack_id >= 0) {
		__u64 ips[KMS_MAX_STACK];
		int n = sc->o.stack(sc->o.stack_ctx, e->stack_id, ips, KMS_MAX_STACK);

		for (int i = 0; i < n; i++)
			if (!code_str(sc, ips[i], sc->frames[i], SYM_LEN))
				snprintf(sc->frames[i], SYM_LEN, "0x0");
		/* a stack recorded empty (gone from the map when it was written): [] */
		l->nr_frames = n >= 0 ? n : -1;
	}
}

static const char *event_text(struct script *sc, const struct kms_event *e,
			      const struct ev_line *l, size_t *len)
{
	put_col(sc, l->time);
	put_colf(sc, "%u", e->cpu);
	put_col(sc, l->comm ? l->comm : "?");
	put_colf(sc, "%u", e->pid);
	put_col(sc, l->event);
	put_col(sc, l->ptr);
	put_colf(sc, "%u", l->bytes_req);
	put_colf(sc, "%u", l->bytes_alloc);
	if (l->order >= 0)
		put_colf(sc, "%d", l->order);
	else
		put_col(sc, NULL);
	put_col(sc, l->gfp);
	put_colf(sc, "%d", e->node);
	put_col(sc, l->obj_name ? l->obj_name : (l->is_cache || l->is_device) ? l->obj_addr : NULL);
	put_col(sc, l->site);
	put_col(sc, l->context);
	if (l->nr_flags) {
		char b[96] = "";

		for (int i = 0; i < l->nr_flags; i++)
			snprintf(b + strlen(b), sizeof(b) - strlen(b), "%s%s", i ? "," : "",
				 l->flags[i]);
		put_col(sc, b);
	} else {
		put_col(sc, NULL);
	}
	if (sc->o.stacks) {
		size_t start = sc->len;

		/* the frames, innermost first, joined by ';' in one column */
		for (int i = 0; i < l->nr_frames; i++) {
			put_col(sc, sc->frames[i]);
			sc->buf[sc->len - 1] = ';';
		}
		if (sc->len > start)
			sc->buf[sc->len - 1] = ' ';
		else
			put_col(sc, NULL);
	}
	return text_line(sc, len);
}

static const char *event_json(struct script *sc, const struct kms_event *e,
			      const struct ev_line *l, size_t *len)
{
	json_t *j = json_incref(sc->ev_json), *flags = json_array();

	json_object_set_new(j, "record", json_string("event"));
	set_time(j, l->time_ns);
	json_object_set_new(j, "cpu", json_integer(e->cpu));
	json_object_set_new(j, "pid", json_integer(e->pid));
	json_object_set_new(j, "comm", rows__json_str(l->comm));
	json_object_set_new(j, "event", rows__json_str(l->event));
	json_object_set_new(j, "family", rows__json_str(l->family));
	json_object_set_new(j, "ptr", json_string(l->ptr));
	json_object_set_new(j, "bytes_req", json_integer(l->bytes_req));
	json_object_set_new(j, "bytes_alloc", json_integer(l->bytes_alloc));
	json_object_set_new(j, "order", l->order >= 0 ? json_integer(l->order) : json_null());
	json_object_set_new(j, "migratetype", l->migratetype >= 0 ? json_integer(l->migratetype) :
			    json_null());
	json_object_set_new(j, "gfp", rows__json_str(l->gfp));
	json_object_set_new(j, "gfp_value", l->gfp_value[0] ? json_string(l->gfp_value) :
			    json_null());
	json_object_set_new(j, "node", json_integer(e->node));
	json_object_set_new(j, "cache", rows__json_str(l->is_cache ? l->obj_name : NULL));
	json_object_set_new(j, "cache_addr", l->is_cache ? json_string(l->obj_addr) : json_null());
	json_object_set_new(j, "device", rows__json_str(l->is_device ? l->obj_name : NULL));
	json_object_set_new(j, "device_addr", l->is_device ? json_string(l->obj_addr) : json_null());
	json_object_set_new(j, "site", rows__json_str(l->site));
	if (!sc->o.strip)
		json_object_set_new(j, "site_addr", l->site ? json_string(l->site_addr) :
				    json_null());
	json_object_set_new(j, "context", rows__json_str(l->context));
	json_object_set_new(j, "preempt_count", l->context ? json_string(l->pc) : json_null());
	for (int i = 0; i < l->nr_flags; i++)
		json_array_append_new(flags, json_string(l->flags[i]));
	json_object_set_new(j, "flags", flags);
	if (sc->o.stacks) {
		json_t *st = l->nr_frames >= 0 ? json_array() : json_null();

		for (int i = 0; i < l->nr_frames; i++)
			json_array_append_new(st, rows__json_str(sc->frames[i]));
		json_object_set_new(j, "stack", st);
	}
	return json_line(sc, j, len);
}

const char *script__event(struct script *sc, const struct kms_event *e, size_t *len)
{
	struct ev_line l;

	sc->len = 0;
	describe(sc, e, &l);
	return sc->o.json ? event_json(sc, e, &l, len) : event_text(sc, e, &l, len);
}

/* ---- metadata records and marks ---- */

static const char *const meta_kinds[] = { "task", "cache", "device", "loss" };
static const char *const meta_kinds_text[] = { "TASK", "CACHE", "DEVICE", "LOSS" };

const char *script__meta(struct script *sc, const struct kms_meta *m, size_t *len)
{
	unsigned int k = m->type - KMS_EV_META_TASK;
	char name[KMS_NAME_LEN], addr[32] = "", time[32] = "", fams[64] = "";
	/* the collector's own records (losses) have no time */
	__s64 ns = rel_ns(sc, m->ts);
	json_t *j, *fl;

	sc->len = 0;
	/* the reader takes no other type; a consumer counts what it cannot read */
	if (k >= sizeof(meta_kinds) / sizeof(meta_kinds[0])) {
		*len = 0;
		return sc->buf;
	}
	memcpy(name, m->name, sizeof(name));
	name[(m->type == KMS_EV_META_TASK ? KMS_COMM_LEN : KMS_NAME_LEN) - 1] = '\0';
	if (m->ts)
		time_str(ns, time, sizeof(time));
	if (m->type == KMS_EV_META_CACHE || m->type == KMS_EV_META_DEVICE)
		addr_str(sc, m->type == KMS_EV_META_CACHE ? ID_CACHE : ID_DEV, m->key, false, addr,
			 sizeof(addr));
	for (int f = 0; m->type == KMS_EV_META_LOSS && f < KMS_FAM_MAX; f++)
		if (m->key & (1ULL << f))
			snprintf(fams + strlen(fams), sizeof(fams) - strlen(fams), "%s%s",
				 *fams ? "," : "", kms_family_name(f));
	if (!sc->o.json) {
		bool task = m->type == KMS_EV_META_TASK;

		put_col(sc, time);
		if (m->ts)
			put_colf(sc, "%u", m->cpu);
		else
			put_col(sc, NULL);
		put_col(sc, task ? name : NULL);
		if (task)
			put_colf(sc, "%u", (__u32)m->key);
		else
			put_col(sc, NULL);
		put_col(sc, meta_kinds_text[k]);
		if (m->type == KMS_EV_META_CACHE) {
			put_colf(sc, "name=%s", name);
			put_colf(sc, "cache=%s", addr);
			put_colf(sc, "object_size=%u", m->a);
			put_colf(sc, "size=%u", m->b);
			put_colf(sc, "reclaimable=%d", !!(m->flags & KMS_META_RECLAIMABLE));
		} else if (m->type == KMS_EV_META_DEVICE) {
			put_colf(sc, "name=%s", name);
			put_colf(sc, "device=%s", addr);
		} else if (m->type == KMS_EV_META_LOSS) {
			put_colf(sc, "families=%s", *fams ? fams : "-");
		}
		return text_line(sc, len);
	}
	j = json_object();
	json_object_set_new(j, "record", json_string(meta_kinds[k]));
	if (m->ts) {
		set_time(j, ns);
		json_object_set_new(j, "cpu", json_integer(m->cpu));
	} else {
		json_object_set_new(j, "time", json_null());
		json_object_set_new(j, "time_ns", json_null());
		json_object_set_new(j, "cpu", json_null());
	}
	switch (m->type) {
	case KMS_EV_META_TASK:
		json_object_set_new(j, "pid", json_integer((__u32)m->key));
		json_object_set_new(j, "comm", rows__json_str(name));
		break;
	case KMS_EV_META_CACHE:
		json_object_set_new(j, "cache", rows__json_str(name));
		json_object_set_new(j, "cache_addr", json_string(addr));
		json_object_set_new(j, "object_size", json_integer(m->a));
		json_object_set_new(j, "size", json_integer(m->b));
		json_object_set_new(j, "reclaimable", json_boolean(m->flags & KMS_META_RECLAIMABLE));
		break;
	case KMS_EV_META_DEVICE:
		json_object_set_new(j, "device", rows__json_str(name));
		json_object_set_new(j, "device_addr", json_string(addr));
		break;
	default:
		fl = json_array();
		for (int f = 0; f < KMS_FAM_MAX; f++)
			if (m->key & (1ULL << f))
				json_array_append_new(fl, json_string(kms_family_name(f)));
		json_object_set_new(j, "families", fl);
		break;
	}
	return json_line(sc, j, len);
}

const char *script__mark(struct script *sc, enum script_mark mark, size_t *len)
{
	const char *name = mark == SCRIPT_BEGIN ? "begin" : "settle";

	sc->len = 0;
	if (sc->o.json)
		return json_line(sc, json_pack("{s:s}", "record", name), len);
	/* a mark has no time, cpu or process of its own */
	for (int i = 0; i < 4; i++)
		put_col(sc, NULL);
	put_col(sc, mark == SCRIPT_BEGIN ? "BEGIN" : "SETTLE");
	return text_line(sc, len);
}

/* ---- the command ---- */

/* the replay checks for a stop this often, in trace time */
#define SCRIPT_TICK 0.01

struct script_env {
	struct session_args sa;
	bool json;
	bool strip;
	bool stacks;
	const char *output;
};

/* where the session's tap prints */
struct printer {
	struct script *sc;
	FILE *out;
	int err;		/* errno of the first failed write: nothing is printed after it */
};

static const struct argp_option script_options[] = {
	{ NULL, 0, NULL, 0, "Filters:", 1 },
	{ NULL, 0, NULL, 0, "Output:", 3 },
	{ "json", 'j', NULL, 0, "one JSON object per line (NDJSON, docs/json-schema.md)" },
	{ "strip-addresses", 1001, NULL, 0, "no kernel address in the output: objects, unresolved "
					    "sites, caches and devices become numbers (obj#17), "
					    "symbols stay" },
	{ "stack", 1002, NULL, 0, "the recorded stack of each record that has one" },
	{ "output", 'o', "FILE", 0, "write to FILE" },
	{},
};

static error_t script_parse(int key, char *arg, struct argp_state *state)
{
	struct script_env *env = state->input;

	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = &env->sa;
		break;
	case 'j':
		env->json = true;
		break;
	case 1001:
		env->strip = true;
		break;
	case 1002:
		env->stacks = true;
		break;
	case 'o':
		env->output = arg;
		break;
	case ARGP_KEY_END:
		if (!env->sa.so.input)
			cli_argp_fail(state, "a trace file to read is needed: -i FILE");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* after a failed write, nothing: the replay stops at its next tick */
static void print(struct printer *p, const char *line, size_t len)
{
	if (p->err)
		return;
	if (!line) {
		p->err = p->err ? p->err : ENOMEM;
		return;
	}
	errno = 0;
	if (fwrite(line, 1, len, p->out) != len)
		p->err = errno ? errno : EIO;
}

static void tap_event(void *ctx, const struct kms_event *e)
{
	struct printer *p = ctx;
	size_t len = 0;
	const char *line = script__event(p->sc, e, &len);

	print(p, line, len);
}

static void tap_meta(void *ctx, const struct kms_meta *m)
{
	struct printer *p = ctx;
	size_t len = 0;
	const char *line = script__meta(p->sc, m, &len);

	print(p, line, len);
}

static void tap_mark(struct printer *p, enum script_mark mark)
{
	size_t len = 0;
	const char *line = script__mark(p->sc, mark, &len);

	print(p, line, len);
}

static void tap_settle(void *ctx)
{
	tap_mark(ctx, SCRIPT_SETTLE);
}

static void tap_begin(void *ctx)
{
	tap_mark(ctx, SCRIPT_BEGIN);
}

/* a write failed (a reader gone: | head): the replay stops here (Ctrl-C stops it itself) */
static int tick(struct session *s, void *ctx)
{
	const struct printer *p = ctx;

	return p->err ? 1 : 0;
}

static int file_stack(void *ctx, int stack_id, __u64 *ips, int max)
{
	return trace_reader__stack(ctx, stack_id, ips, max);
}

int cmd_script(int argc, char **argv)
{
	static const struct argp argp = {
		script_options, script_parse, NULL,
		"Print every record of a trace file that passes the filters, one per line, in "
		"stream order: text columns, or NDJSON with --json, for jq, awk or pandas.\v"
		"Text columns: time (seconds since the trace began) cpu comm pid event ptr "
		"bytes_req bytes_alloc order gfp node cache|device site context flags [stack]; "
		"'-' where a record has no value. Metadata records and marks are lines of their "
		"own (TASK, CACHE, DEVICE, LOSS, BEGIN, SETTLE in the event column). See "
		"kmemscope-script(1).\n\n"
		"Examples:\n"
		"  kmemscope script -i run.kmt | head\n"
		"  kmemscope script -i run.kmt --json -F slab | jq -r 'select(.event == \"kmalloc\")"
		" | .site' | sort | uniq -c\n"
		"  kmemscope script -i run.kmt --json --strip-addresses -o shared.ndjson\n\n"
		"Exit status: 0 (also when the reader of the output goes away early, as | head "
		"does), 1 on a write error, 2 on a usage error or a file that cannot be read.",
		session_file_children,
	};
	struct script_env env = {};
	struct script_opts so = {};
	struct printer p = {};
	struct session s;
	int err;

	err = cli_argp_parse(&argp, argc, argv, &env);
	if (err)
		return err;
	env.sa.so.pids = env.sa.pids;
	err = cli_check_output(env.output);
	if (err)
		return err;
	err = session__start(&s, &env.sa.so);
	if (err)
		goto out;
	so.json = env.json;
	so.strip = env.strip;
	so.stacks = env.stacks;
	so.ksyms = s.ksyms;
	so.gfp = s.gfp;
	so.agg = s.pipe.agg;
	so.baseline_pc = s.baseline_pc;
	so.start_ns = s.start_ns;
	so.stack = file_stack;
	so.stack_ctx = s.trace;
	p.sc = script__new(&so);
	p.out = p.sc ? cli_open_output(env.output) : NULL;
	if (!p.out) {
		if (!p.sc)
			kms_error("Failed to set up the output: %s\n", strerror(ENOMEM));
		err = 1;
		goto out;
	}
	s.pipe.tap = (struct pipeline_tap){ .event = tap_event, .meta = tap_meta,
					    .settle = tap_settle, .begin = tap_begin, .ctx = &p };
	err = session__run(&s, 0, SCRIPT_TICK, tick, &p);
	if (fflush(p.out) && !p.err)
		p.err = errno ? errno : EIO;
	cli_close_output(p.out);
	/* the reader went away (| head): what it wanted was written */
	if (p.err && p.err != EPIPE) {
		kms_error("Failed to write %s: %s\n", env.output ? env.output : "the output",
			  strerror(p.err));
		err = 1;
	}
out:
	script__free(p.sc);
	session__free(&s);
	return err;
}
