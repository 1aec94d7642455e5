/*
 * qa_text.c - the text side of the QA report: the cues of subtitles.srt,
 * the narration's own cue timings (timeline.json, written by the audio
 * stage), and the words of the script and of the subtitles, compared as
 * lower-case runs of letters and digits (so "It's" and "its" agree and
 * punctuation never counts).
 */
#define _GNU_SOURCE
#include "provider.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SRT_MAX (4 * 1024 * 1024)

static void cues_add(struct qa_cues *c, double start, double end, const char *text)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 32;
		c->v = xrealloc(c->v, c->cap * sizeof *c->v);
	}
	c->v[c->n].start = start;
	c->v[c->n].end = end;
	c->v[c->n++].text = xstrdup(text);
}

void qa_cues_free(struct qa_cues *c)
{
	for (size_t i = 0; i < c->n; i++) free(c->v[i].text);
	free(c->v);
	memset(c, 0, sizeof *c);
}

static int srt_times(const char *l, double *a, double *b)
{
	int h1, m1, s1, ms1, h2, m2, s2, ms2;
	if (sscanf(l, "%d:%d:%d%*[,.]%d --> %d:%d:%d%*[,.]%d", &h1, &m1, &s1, &ms1, &h2, &m2, &s2, &ms2) != 8) return 0;
	*a = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000.0;
	*b = h2 * 3600 + m2 * 60 + s2 + ms2 / 1000.0;
	return 1;
}

/* A text line of the cue being read: joined to its text with a space.
 * The cue number before the times is not text (no cue is open yet). */
static void cue_text(struct qa_cues *c, const char *l)
{
	char *t;
	if (!c->n || !*l) return;
	t = xasprintf("%s%s%s", c->v[c->n - 1].text, *c->v[c->n - 1].text ? " " : "", l);
	free(c->v[c->n - 1].text);
	c->v[c->n - 1].text = t;
}

/* subtitles.srt's cues, in file order; 0 with none when there is no file. */
int qa_srt_load(const char *path, struct qa_cues *c)
{
	char *text = fsio_exists(path) ? fsio_read(path, SRT_MAX, NULL) : NULL, *save = NULL;
	double a, b;

	memset(c, 0, sizeof *c);
	if (!text) return fsio_exists(path) ? -1 : 0;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		l[strcspn(l, "\r")] = 0;
		if (strstr(l, "-->") && srt_times(l, &a, &b)) {
			cues_add(c, a, b, "");
		} else if (strspn(l, "0123456789") != strlen(l)) {
			cue_text(c, l);
		}
	}
	free(text);
	return 0;
}

/* The narration's cues as the audio stage timed them (timeline.json "cues"). */
void qa_said_load(const cJSON *timeline, struct qa_cues *c)
{
	const cJSON *j;
	memset(c, 0, sizeof *c);
	cJSON_ArrayForEach (j, cJSON_GetObjectItemCaseSensitive(timeline, "cues"))
		cues_add(c, json_num(j, "start", 0), json_num(j, "end", 0), json_str(j, "text", ""));
}

static void words_add(struct qa_words *w, const char *s, size_t n)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->v = xrealloc(w->v, w->cap * sizeof *w->v);
	}
	w->v[w->n] = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++) w->v[w->n][i] = (char)tolower((unsigned char)s[i]);
	w->v[w->n++][n] = 0;
}

/* Letters, digits and any UTF-8 byte make words; an apostrophe inside a
 * word is dropped ("it's" -> "its"). */
void qa_words_add(struct qa_words *w, const char *text)
{
	char buf[64];
	size_t n = 0;
	for (const char *p = text;; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch && (isalnum(ch) || ch >= 0x80)) {
			if (n < sizeof buf) buf[n++] = (char)ch;
		} else if (ch == '\'' && n) {
			continue;
		} else {
			if (n) words_add(w, buf, n);
			n = 0;
			if (!ch) break;
		}
	}
}

void qa_words_free(struct qa_words *w)
{
	for (size_t i = 0; i < w->n; i++) free(w->v[i]);
	free(w->v);
	memset(w, 0, sizeof *w);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* How many of want's words (with repeats) are among have's. */
size_t qa_words_found(const struct qa_words *want, struct qa_words *have)
{
	size_t found = 0;
	qsort(have->v, have->n, sizeof *have->v, cmp_str);
	for (size_t i = 0; i < want->n; i++)
		found += have->n && bsearch(&want->v[i], have->v, have->n, sizeof *have->v, cmp_str) != NULL;
	return found;
}
