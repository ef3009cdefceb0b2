/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include "session.h"
#include "collector.h"
#include "frames.h"
#include "gfp.h"
#include "ksyms.h"
#include "log.h"
#include "plan.h"
#include "tracefs.h"
#include <bpf/libbpf.h>

#define STACK_ENTRIES 16384
#define POLL_NS (10ULL * 1000 * 1000)

/* events whose attach points report no call site: the site comes from the stack */
static const __u64 site_stack_types = (1ULL << KMS_EV_PAGE_ALLOC) | (1ULL << KMS_EV_VMALLOC) |
				      (1ULL << KMS_EV_DMA_ALLOC) | (1ULL << KMS_EV_ALLOC_FAIL);

static __u64 resolve_site(struct session *s, int stack_id)
{
	__u64 ips[KMS_MAX_STACK];
	unsigned long uips[KMS_MAX_STACK];
	int n, i;

	if (stack_id < 0 || (unsigned int)stack_id >= s->stack_entries)
		return 0;
	if (s->site_cache[stack_id])
		return s->site_cache[stack_id] - 1;
	n = collector__stack(s->coll, stack_id, ips, KMS_MAX_STACK);
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++)
		uips[i] = ips[i];
	i = s->ksyms ? frames__pick_site(s->ksyms, uips, n) : 0;
	s->site_cache[stack_id] = (i >= 0 ? ips[i] : 0) + 1;
	return i >= 0 ? ips[i] : 0;
}

static void sink_event(void *ctx, struct kms_event *e)
{
	struct session *s = ctx;

	if (!e->site && e->stack_id >= 0)
		e->site = resolve_site(s, e->stack_id);
	agg__event(s->agg, e);
}

static void sink_meta(void *ctx, const struct kms_meta *m)
{
	struct session *s = ctx;

	agg__meta(s->agg, m);
}

int session__start(struct session *s, const struct session_opts *o)
{
	struct collector_opts co = {};
	struct agg_opts ao = {};
	struct collector_sink sink = { sink_event, sink_meta, s };
	int err;

	memset(s, 0, sizeof(*s));
	s->cmd.go_fd = -1;
	err = cli_preflight();
	if (err)
		return err;

	ao.comm = o->comm;
	ao.families = o->families;
	s->agg = agg__new(&ao);
	if (!s->agg)
		return 1;
	s->ksyms = ksyms__load(NULL);
	if (!s->ksyms)
		kms_warn("cannot read kernel symbols (/proc/kallsyms): %s; sites stay hex\n",
			 strerror(errno));
	err = gfp_table__load(&s->gfp, tracefs_root());
	if (err) {
		kms_warn("cannot read GFP flag names of this kernel: %s; GFP stays hex\n",
			 strerror(-err));
		s->gfp = NULL;
	}
	err = plan__probe(&s->plan, o->families);
	if (err) {
		kms_error("Failed to probe attach points: %s\n", strerror(-err));
		return 1;
	}
	for (int f = 0; f < KMS_FAM_MAX; f++)
		if ((!o->families || (o->families & (1u << f))) && !s->plan->fam_traced[f])
			kms_warn("family %s cannot be traced on this kernel (see 'kmemscope "
				 "probe'); reports mark it NOT TRACED\n",
				 f == KMS_FAM_KMALLOC ? "kmalloc" : f == KMS_FAM_CACHE ? "kmem_cache" :
				 f == KMS_FAM_PAGE ? "page" : f == KMS_FAM_VMALLOC ? "vmalloc" :
				 f == KMS_FAM_DMA ? "dma" : "percpu");

	co.ring_mb = o->ring_mb;
	co.families = o->families;
	/* a shared counter is cheapest on small machines; ktime scales on big ones */
	co.order_seq = o->order == SESSION_ORDER_SEQ ||
		       (o->order == SESSION_ORDER_AUTO && libbpf_num_possible_cpus() <= 8);
	co.filter_pids = o->nr_pids > 0 || (o->cmd && !o->all_cpus);
	if (!o->no_stacks) {
		co.stack_entries = STACK_ENTRIES;
		co.stack_types = site_stack_types;
		s->stack_entries = STACK_ENTRIES;
		s->site_cache = calloc(STACK_ENTRIES, sizeof(*s->site_cache));
		if (!s->site_cache)
			return 1;
	}
	err = collector__open(&s->coll, s->plan, &co, sink);
	if (err)
		return 1;
	for (int i = 0; i < o->nr_pids; i++) {
		if (kill(o->pids[i], 0) && errno == ESRCH) {
			kms_error("no process with pid %d\n", o->pids[i]);
			return 2;
		}
		collector__add_pid(s->coll, o->pids[i]);
	}
	if (o->cmd) {
		err = cli_cmd_start(&s->cmd, o->cmd);
		if (err) {
			kms_error("Failed to start %s: %s\n", o->cmd[0], strerror(-err));
			return 1;
		}
		if (!o->all_cpus)
			collector__add_pid(s->coll, s->cmd.pid);
	}
	err = collector__attach(s->coll);
	if (err) {
		cli_cmd_abort(&s->cmd);
		return 1;
	}
	s->start_ns = cli_now_ns();
	cli_cmd_go(&s->cmd);
	return 0;
}

int session__run(struct session *s, double duration, double interval,
		 int (*tick)(struct session *s, void *ctx), void *ctx)
{
	__u64 end = duration > 0 ? s->start_ns + (__u64)(duration * 1e9) : ~0ULL;
	__u64 every = interval > 0 ? (__u64)(interval * 1e9) : 0;
	__u64 next_tick = every ? s->start_ns + every : ~0ULL;
	struct timespec pause = { 0, POLL_NS };
	int err;

	for (;;) {
		__u64 now;

		err = collector__poll(s->coll);
		if (err) {
			kms_error("Failed to read events: %s\n", strerror(-err));
			return 1;
		}
		now = cli_now_ns();
		if (tick && now >= next_tick) {
			err = tick(s, ctx);
			if (err)
				return err > 0 ? 0 : 1;
			next_tick += every;
		}
		if (cli_exiting() || now >= end)
			break;
		if (s->cmd.pid > 0 && cli_cmd_done(&s->cmd))
			break;
		nanosleep(&pause, NULL);
	}
	return 0;
}

int session__stop(struct session *s)
{
	int err;

	s->stop_ns = cli_now_ns();
	err = collector__stop(s->coll);
	cli_cmd_abort(&s->cmd);
	if (err)
		kms_error("Failed to drain events: %s\n", strerror(-err));
	return err ? 1 : 0;
}

void session__quality(struct session *s, struct kms_quality *q)
{
	memset(q, 0, sizeof(*q));
	collector__quality(s->coll, q);
	q->duration_ns = (s->stop_ns ? s->stop_ns : cli_now_ns()) - s->start_ns;
}

void session__free(struct session *s)
{
	cli_cmd_abort(&s->cmd);
	collector__free(s->coll);
	plan__free(s->plan);
	agg__free(s->agg);
	ksyms__free(s->ksyms);
	gfp_table__free(s->gfp);
	free(s->site_cache);
	memset(s, 0, sizeof(*s));
}
