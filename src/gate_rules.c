/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* check's rules: the options and the rules file (docs/ci.md gives the format). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gate.h"

static const char *const fail_names[] = { "leak", "misuse", "bad-free", "new-site",
					  "new-order" };

void gate_rules_init(struct gate_rules *r)
{
	memset(r, 0, sizeof(*r));
	r->max_increase[0] = (struct gate_limit){ GATE_LIMIT_RELATIVE, 10 };	/* allocs */
	r->max_increase[1] = (struct gate_limit){ GATE_LIMIT_RELATIVE, 10 };	/* bytes */
	r->min_delta = 4096;
	r->fail_on = GATE_FAIL_LEAK | GATE_FAIL_MISUSE | GATE_FAIL_BAD_FREE;
	r->kinds = 1;	/* site */
	r->alpha = 0.05;
}

void gate_rules_free(struct gate_rules *r)
{
	for (size_t i = 0; i < r->nr_rules; i++) {
		free(r->rules[i].kind);
		free(r->rules[i].key);
	}
	free(r->rules);
	r->rules = NULL;
	r->nr_rules = 0;
}

/* "4096", "64K", "1M", "2G" (powers of 1024); -1 when not a size */
static double parse_size(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0 || *s == '+' || *s == '-')
		return -1;
	switch (*end) {
	case 'K': case 'k':
		v *= 1024, end++;
		break;
	case 'M': case 'm':
		v *= 1024 * 1024, end++;
		break;
	case 'G': case 'g':
		v *= 1024.0 * 1024 * 1024, end++;
		break;
	}
	return *end ? -1 : v;
}

/* "10%", "+4096" and, where max is allowed, "1M" */
static int parse_limit(const char *s, bool max_ok, struct gate_limit *l)
{
	size_t n = strlen(s);
	char buf[64];

	if (n && n < sizeof(buf) && s[n - 1] == '%') {
		memcpy(buf, s, n - 1);
		buf[n - 1] = '\0';
		l->type = GATE_LIMIT_RELATIVE;
		l->value = parse_size(buf);
		return l->value < 0 || strpbrk(buf, "KkMmGg") ? -1 : 0;
	}
	if (s[0] == '+') {
		l->type = GATE_LIMIT_INCREASE;
		l->value = parse_size(s + 1);
		return l->value < 0 ? -1 : 0;
	}
	if (!max_ok)
		return -1;
	l->type = GATE_LIMIT_MAX;
	l->value = parse_size(s);
	return l->value < 0 ? -1 : 0;
}

/* "metric=limit" into limits[metric] */
static int parse_assign(const char *tok, bool max_ok, struct gate_limit *limits, char *why,
			size_t len)
{
	const char *eq = strchr(tok, '=');
	char name[32];
	int m;

	if (!eq || (size_t)(eq - tok) >= sizeof(name)) {
		snprintf(why, len, "'%s' is not METRIC=LIMIT", tok);
		return -1;
	}
	memcpy(name, tok, eq - tok);
	name[eq - tok] = '\0';
	m = gate_metric_index(name);
	if (m < 0) {
		snprintf(why, len, "unknown metric '%s' (allocs, bytes, outstanding, "
			 "outstanding_bytes)", name);
		return -1;
	}
	if (parse_limit(eq + 1, max_ok, &limits[m])) {
		snprintf(why, len, "bad limit '%s' for %s (%s)", eq + 1, name,
			 max_ok ? "N%, +N or N, N with K, M or G" : "N% or +N, N with K, M or G");
		return -1;
	}
	return 0;
}

int gate_parse_max_increase(struct gate_rules *r, const char *s, char *why, size_t len)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int err = 0;

	if (!copy)
		return -1;
	for (int m = 0; m < GATE_NR_METRICS; m++)
		r->max_increase[m].type = GATE_LIMIT_NONE;
	for (tok = strtok_r(copy, ",", &save); tok && !err; tok = strtok_r(NULL, ",", &save))
		err = parse_assign(tok, false, r->max_increase, why, len);
	free(copy);
	return err;
}

int gate_parse_min_delta(struct gate_rules *r, const char *s, char *why, size_t len)
{
	r->min_delta = parse_size(s);
	if (r->min_delta < 0) {
		snprintf(why, len, "--min-delta takes a byte count (K, M, G allowed): '%s'", s);
		return -1;
	}
	return 0;
}

/* a comma-separated list of names[] into bits (1 << index); "none" is none */
static int parse_names(const char *s, const char *const *names, size_t n, const char *what,
		       unsigned int *bits, char *why, size_t len)
{
	char *copy = strdup(s), *save = NULL, *tok;
	size_t i;

	if (!copy)
		return -1;
	*bits = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "none"))
			continue;
		for (i = 0; i < n && strcmp(tok, names[i]); i++)
			;
		if (i == n) {
			int off = snprintf(why, len, "unknown %s '%s' (", what, tok);

			for (i = 0; i < n && (size_t)off < len; i++)
				off += snprintf(why + off, len - off, "%s%s", i ? ", " : "",
						names[i]);
			if ((size_t)off < len)
				snprintf(why + off, len - off, ")");
			free(copy);
			return -1;
		}
		*bits |= 1u << i;
	}
	free(copy);
	return 0;
}

int gate_parse_fail_on(struct gate_rules *r, const char *s, char *why, size_t len)
{
	return parse_names(s, fail_names, sizeof(fail_names) / sizeof(fail_names[0]),
			   "--fail-on", &r->fail_on, why, len);
}

int gate_parse_kinds(unsigned int *kinds, const char *s, char *why, size_t len)
{
	if (parse_names(s, gate_kinds, GATE_NR_KINDS, "key", kinds, why, len))
		return -1;
	return *kinds ? 0 : (snprintf(why, len, "no key kind given"), -1);
}

/*
 * One rule a line: KIND KEY... TERM..., where TERM is METRIC=LIMIT or
 * "ignore" and KEY is every word before the first term (keys hold spaces:
 * "f [module]", stacks). '#' starts a comment line.
 */
static int parse_line(struct gate_rules *r, char *line, int lineno, char *why, size_t len)
{
	char *save = NULL, *tok, key[2048] = "";
	struct gate_rule rule = { .line = lineno };
	bool terms = false;
	size_t off = 0;
	struct gate_rule *grown;

	tok = strtok_r(line, " \t", &save);
	if (!tok || tok[0] == '#')
		return 0;
	if (gate_kind_index(tok) < 0) {
		snprintf(why, len, "line %d: unknown key kind '%s' (site, stack, cache, family, "
			 "order, gfp)", lineno, tok);
		return -1;
	}
	rule.kind = tok;
	while ((tok = strtok_r(NULL, " \t", &save))) {
		char sub[160];

		if (!strcmp(tok, "ignore")) {
			rule.ignore = terms = true;
		} else if (strchr(tok, '=')) {
			if (parse_assign(tok, true, rule.limit, sub, sizeof(sub))) {
				snprintf(why, len, "line %d: %s", lineno, sub);
				return -1;
			}
			terms = true;
		} else if (terms) {
			snprintf(why, len, "line %d: '%s' after the limits (KIND KEY "
				 "METRIC=LIMIT...)", lineno, tok);
			return -1;
		} else {
			off += snprintf(key + off, off < sizeof(key) ? sizeof(key) - off : 0,
					"%s%s", off ? " " : "", tok);
		}
	}
	if (!off || !terms) {
		snprintf(why, len, "line %d: %s (KIND KEY METRIC=LIMIT... or KIND KEY ignore)",
			 lineno, off ? "no limit" : "no key");
		return -1;
	}
	if (gate_rule_for(r, rule.kind, key)) {
		snprintf(why, len, "line %d: %s '%s' has a rule already (line %d)", lineno,
			 rule.kind, key, gate_rule_for(r, rule.kind, key)->line);
		return -1;
	}
	grown = realloc(r->rules, (r->nr_rules + 1) * sizeof(*grown));
	if (!grown)
		return -1;
	r->rules = grown;
	rule.kind = strdup(rule.kind);
	rule.key = strdup(key);
	r->rules[r->nr_rules++] = rule;
	return 0;
}

int gate_parse_rules(struct gate_rules *r, const char *text, char *why, size_t len)
{
	char *copy = strdup(text), *line, *next;
	int lineno = 1, err = 0;

	if (!copy)
		return -1;
	for (line = copy; line && !err; line = next, lineno++) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		err = parse_line(r, line, lineno, why, len);
	}
	free(copy);
	return err;
}

const struct gate_rule *gate_rule_for(const struct gate_rules *r, const char *kind,
				      const char *key)
{
	for (size_t i = 0; i < r->nr_rules; i++)
		if (!strcmp(r->rules[i].kind, kind) && !strcmp(r->rules[i].key, key))
			return &r->rules[i];
	return NULL;
}

void gate_limit_name(const struct gate_limit *l, int metric, char *buf, size_t len)
{
	snprintf(buf, len, "%s=%s%g%s", gate_metrics[metric],
		 l->type == GATE_LIMIT_INCREASE ? "+" : "", l->value,
		 l->type == GATE_LIMIT_RELATIVE ? "%" : "");
}
