/*
 * report_diff.c - what a re-run changed: a line diff (longest common
 * subsequence) of the previous version and the new one, for the review
 * page after a reject.  Versions are small (plans, scripts, metadata); past
 * DIFF_MAX_CELLS the table would be too big and the page says so instead.
 */
#include "report.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DIFF_MAX_CELLS (2000u * 2000u)

struct lines {
	char *buf;
	char **l;
	size_t n;
};

static void lines_split(const char *text, struct lines *s)
{
	size_t cap = 16;
	s->buf = xstrdup(text ? text : "");
	s->l = xmalloc(cap * sizeof *s->l);
	s->n = 0;
	for (char *p = s->buf; *p;) {
		char *nl = strchr(p, '\n');
		if (s->n == cap) s->l = xrealloc(s->l, (cap *= 2) * sizeof *s->l);
		s->l[s->n++] = p;
		if (!nl) break;
		*nl = 0;
		p = nl + 1;
	}
}

static void lines_free(struct lines *s)
{
	free(s->l);
	free(s->buf);
}

/* len[i][j] = LCS length of a[i..] and b[j..], filled from the end. */
static uint16_t *lcs_table(const struct lines *a, const struct lines *b)
{
	size_t w = b->n + 1;
	uint16_t *t = xcalloc((a->n + 1) * w, sizeof *t);
	for (size_t i = a->n; i-- > 0;)
		for (size_t j = b->n; j-- > 0;) {
			uint16_t down = t[(i + 1) * w + j], right = t[i * w + j + 1];
			t[i * w + j] = strcmp(a->l[i], b->l[j]) == 0 ? t[(i + 1) * w + j + 1] + 1
								     : (down > right ? down : right);
		}
	return t;
}

static void diff_line(struct sbuf *out, const char *tag, const char *line)
{
	if (tag) sb_printf(out, "<%s>", tag);
	html_esc(out, line);
	sb_puts(out, tag ? "" : "\n");
	if (tag) sb_printf(out, "</%s>", tag);
}

void report_diff(struct sbuf *out, const char *old, const char *new)
{
	struct lines a, b;
	size_t i = 0, j = 0, w;
	uint16_t *t;
	lines_split(old, &a);
	lines_split(new, &b);
	if ((a.n + 1) * (b.n + 1) > DIFF_MAX_CELLS) {
		sb_puts(out, "<p class=\"muted\">Too long to compare line by line.</p>");
		goto done;
	}
	t = lcs_table(&a, &b);
	w = b.n + 1;
	sb_puts(out, "<pre class=\"diff\">");
	while (i < a.n || j < b.n) {
		if (i < a.n && j < b.n && strcmp(a.l[i], b.l[j]) == 0) {
			diff_line(out, NULL, a.l[i]);
			i++, j++;
		} else if (j < b.n && (i == a.n || t[i * w + j + 1] > t[(i + 1) * w + j]))
			diff_line(out, "ins", b.l[j++]);
		else
			diff_line(out, "del", a.l[i++]);
	}
	sb_puts(out, "</pre>\n");
	free(t);
done:
	lines_free(&a);
	lines_free(&b);
}
