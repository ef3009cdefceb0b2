/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Medians and the Mann-Whitney U test, from their definitions: check counts
 * a change between several runs on each side only when the two samples are
 * clearly apart, whatever their distribution (run-to-run noise of allocation
 * counts is neither normal nor symmetric).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gate.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double gate_median(const double *v, size_t n)
{
	double *s, m;

	if (!n)
		return 0;
	s = malloc(n * sizeof(*s));
	if (!s)
		return NAN;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

double gate_mw_u(const double *x, size_t m, const double *y, size_t n)
{
	double u = 0;

	for (size_t i = 0; i < m; i++)
		for (size_t j = 0; j < n; j++)
			u += y[j] > x[i] ? 1 : y[j] == x[i] ? 0.5 : 0;
	return u;
}

/*
 * Without ties, the number of orderings of m + n values giving U = u is the
 * coefficient of q^u in the Gaussian binomial [m+n choose m]_q, the product
 * over i = 1..m of (1 - q^(n+i)) / (1 - q^i): exact integers in doubles up to
 * C(m+n, m) = 2^53, beyond which the normal approximation is as good.
 */
#define EXACT_MAX 50	/* m + n */

static double *u_counts(size_t m, size_t n)
{
	size_t deg = m * n;
	double *c = calloc(deg + 1, sizeof(*c));

	if (!c)
		return NULL;
	c[0] = 1;
	for (size_t i = 1; i <= m; i++) {
		for (size_t k = deg; k >= n + i; k--)	/* times (1 - q^(n+i)) */
			c[k] -= c[k - n - i];
		for (size_t k = i; k <= deg; k++)	/* over (1 - q^i) */
			c[k] += c[k - i];
	}
	return c;
}

double gate_mw_p(const double *x, size_t m, const double *y, size_t n)
{
	double u = gate_mw_u(x, m, y, n), mu = m * n / 2.0;
	double dist = fabs(u - mu), ties = 0, sigma, z;
	size_t tot = m + n;

	if (!m || !n)
		return 1;
	if (tot <= EXACT_MAX) {
		/*
		 * P(|U - mu| >= dist) under the null; ties make U a half
		 * integer, rounded towards mu so that ties never make a
		 * change look clearer than it is.
		 */
		double *c = u_counts(m, n), all = 0, tail = 0;

		if (!c)
			return 1;
		dist = floor(dist + 1e-9);
		for (size_t k = 0; k <= m * n; k++) {
			all += c[k];
			if (fabs(k - mu) >= dist - 1e-9)
				tail += c[k];
		}
		free(c);
		return tail / all;
	}
	/* normal approximation with the tie correction of the variance */
	{
		double *v = malloc(tot * sizeof(*v));

		if (!v)
			return 1;
		memcpy(v, x, m * sizeof(*v));
		memcpy(v + m, y, n * sizeof(*v));
		qsort(v, tot, sizeof(*v), cmp_double);
		for (size_t i = 0, j; i < tot; i = j) {
			for (j = i; j < tot && v[j] == v[i]; j++)
				;
			ties += pow(j - i, 3) - (j - i);
		}
		free(v);
	}
	sigma = sqrt(m * n / 12.0 * ((tot + 1) - ties / ((double)tot * (tot - 1))));
	if (sigma == 0)
		return 1;
	z = (dist - 0.5) / sigma;	/* continuity correction */
	return z <= 0 ? 1 : erfc(z / M_SQRT2);
}

double gate_mw_min_p(size_t m, size_t n)
{
	double c = 1;

	/* the two extreme orderings of C(m+n, m) */
	for (size_t i = 1; i <= m; i++)
		c = c * (n + i) / i;
	return m && n ? fmin(1, 2 / c) : 1;
}
