/*
 * diff.c - a unified line diff of two texts (for `versions --diff`), from
 * the longest common subsequence of their lines.  The LCS table is
 * quadratic in the number of lines, which is fine for a plan, a script or
 * a metadata file (a few hundred lines); larger inputs are refused rather
 * than allowed to take the machine's memory.
 */
#include "daemon.h"
#include <stdlib.h>
#include <string.h>

#define DIFF_MAX_LINES 4000
#define DIFF_CONTEXT 3

struct lines {
	const char **s; /* start of each line */
	size_t *len;    /* its length without the newline */
	size_t n;
};

static void split(const char *text, struct lines *l)
{
	const char *p = text;
	l->n = 0;
	l->s = NULL;
	l->len = NULL;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		l->s = xrealloc(l->s, (l->n + 1) * sizeof *l->s);
		l->len = xrealloc(l->len, (l->n + 1) * sizeof *l->len);
		l->s[l->n] = p;
		l->len[l->n++] = n;
		p += n + (nl ? 1 : 0);
	}
}

static int same(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
	return a->len[i] == b->len[j] && memcmp(a->s[i], b->s[j], a->len[i]) == 0;
}

/* The edit script: ops[k] is '=' (both), '-' (only in a) or '+' (only in b). */
static char *edit_script(const struct lines *a, const struct lines *b, size_t *nops)
{
	size_t w = b->n + 1, i, j, k = 0;
	unsigned *t = xcalloc((a->n + 1) * w, sizeof *t); /* t[i][j]: LCS of a[i..], b[j..] */
	char *ops = xmalloc(a->n + b->n + 1);
	for (i = a->n; i-- > 0;)
		for (j = b->n; j-- > 0;)
			t[i * w + j] = same(a, i, b, j)                  ? t[(i + 1) * w + j + 1] + 1
				: t[(i + 1) * w + j] >= t[i * w + j + 1] ? t[(i + 1) * w + j]
									 : t[i * w + j + 1];
	for (i = j = 0; i < a->n || j < b->n;) {
		if (i < a->n && j < b->n && same(a, i, b, j))
			ops[k++] = '=', i++, j++;
		else if (i < a->n && (j == b->n || t[(i + 1) * w + j] >= t[i * w + j + 1]))
			ops[k++] = '-', i++; /* removals before additions, as diff -u prints them */
		else
			ops[k++] = '+', j++;
	}
	free(t);
	*nops = k;
	return ops;
}

/* One hunk: ops[from..to) with its line numbers in a and b. */
static void hunk(struct sbuf *out, const char *ops, size_t from, size_t to, size_t ai, size_t bi, const struct lines *a,
		 const struct lines *b)
{
	size_t an = 0, bn = 0;
	for (size_t k = from; k < to; k++) an += ops[k] != '+', bn += ops[k] != '-';
	sb_printf(out, "@@ -%zu,%zu +%zu,%zu @@\n", an ? ai + 1 : ai, an, bn ? bi + 1 : bi, bn);
	for (size_t k = from; k < to; k++) {
		const struct lines *l = ops[k] == '+' ? b : a;
		size_t i = ops[k] == '+' ? bi : ai;
		sb_printf(out, "%c%.*s\n", ops[k] == '=' ? ' ' : ops[k], (int)l->len[i], l->s[i]);
		ai += ops[k] != '+', bi += ops[k] != '-';
	}
}

/* Hunks: each change with DIFF_CONTEXT lines around it, close changes merged. */
static void hunks(struct sbuf *out, const char *ops, size_t n, const struct lines *a, const struct lines *b)
{
	size_t k = 0, ai = 0, bi = 0;
	while (k < n) {
		size_t start, end, sa, sb_;
		if (ops[k] == '=') {
			ai++, bi++, k++;
			continue;
		}
		start = k > DIFF_CONTEXT ? k - DIFF_CONTEXT : 0;
		sa = ai - (k - start), sb_ = bi - (k - start);
		for (end = k;;) { /* a hunk ends after more than 2 * context unchanged lines */
			size_t eq = 0;
			while (end < n && ops[end] != '=') end++;
			while (end + eq < n && ops[end + eq] == '=') eq++;
			if (end + eq >= n || eq > 2 * DIFF_CONTEXT) {
				end += eq < DIFF_CONTEXT ? eq : DIFF_CONTEXT;
				break;
			}
			end += eq;
		}
		hunk(out, ops, start, end, sa, sb_, a, b);
		for (; k < end; k++) ai += ops[k] != '+', bi += ops[k] != '-';
	}
}

int diff_unified(const char *a_name, const char *a_text, const char *b_name, const char *b_text, struct sbuf *out)
{
	struct lines a, b;
	size_t n;
	char *ops;
	split(a_text, &a);
	split(b_text, &b);
	if (a.n > DIFF_MAX_LINES || b.n > DIFF_MAX_LINES) {
		free(a.s), free(a.len), free(b.s), free(b.len);
		return err_set_kind(ERR_DATAERR, "%s or %s has more than %d lines; too large to diff here", a_name,
				    b_name, DIFF_MAX_LINES);
	}
	ops = edit_script(&a, &b, &n);
	sb_printf(out, "--- %s\n+++ %s\n", a_name, b_name);
	hunks(out, ops, n, &a, &b);
	free(ops);
	free(a.s), free(a.len), free(b.s), free(b.len);
	return 0;
}
