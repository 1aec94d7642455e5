/*
 * words.c - word timings of the narration (words.json), which the assembly
 * stage turns into captions that highlight the word being spoken.
 *
 * A word is a whitespace-separated piece of a subtitle cue's text, so the
 * captions show exactly the words of subtitles.srt.  Each audio provider
 * times the words of a sentence as well as its engine lets it: by the
 * engine's own timings when it gives one per word (words_place), else by
 * each word's share of the sentence's syllables (words_estimate).
 *
 * words.json: {"words": [{"word", "start", "end", "segment", "timed"}]}
 * with times in seconds from the start of audio.wav, in order, and
 * "timed" true when the engine timed the word, false when estimated.
 */
#include "provider.h"
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define WORD_GAP 0.25 /* weight of the pause after a word, in syllables */

size_t words_split(const char *text, char ***out)
{
	size_t n = 0;

	*out = NULL;
	for (const char *p = text; *p;) {
		size_t len;
		while (*p && isspace((unsigned char)*p)) p++;
		if (!*p) break;
		for (len = 0; p[len] && !isspace((unsigned char)p[len]); len++)
			;
		*out = xrealloc(*out, (n + 1) * sizeof **out);
		(*out)[n++] = xasprintf("%.*s", (int)len, p);
		p += len;
	}
	return n;
}

static void split_free(char **w, size_t n)
{
	for (size_t i = 0; i < n; i++) free(w[i]);
	free(w);
}

/* Vowel groups, at least one; a digit is about a syllable. */
double words_syllables(const char *w)
{
	int n = 0, in_vowel = 0;

	for (; *w; w++) {
		int c = tolower((unsigned char)*w), v = c && strchr("aeiouy", c);
		if (isdigit(c)) n++;
		if (v && !in_vowel) n++;
		in_vowel = v;
	}
	return n ? n : 1;
}

static void add(struct media_words *ws, const char *text, int seg, double start, double end, int timed)
{
	ws->w = xrealloc(ws->w, (ws->n + 1) * sizeof *ws->w);
	ws->w[ws->n++] = (struct media_word){ start, end > start ? end : start, xstrdup(text), seg, timed };
}

void words_estimate(struct media_words *ws, const char *text, int seg, double start, double end)
{
	char **w;
	size_t n = words_split(text, &w);
	double total = 0, at = 0;

	for (size_t i = 0; i < n; i++) total += words_syllables(w[i]) + (i + 1 < n ? WORD_GAP : 0);
	for (size_t i = 0; i < n; i++) {
		double s = start + (end - start) * at / total;
		at += words_syllables(w[i]);
		add(ws, w[i], seg, s, start + (end - start) * at / total, 0);
		at += WORD_GAP;
	}
	split_free(w, n);
}

int words_place(struct media_words *ws, const char *text, int seg, const double *t0, const double *t1, size_t nt,
		double start, double end)
{
	char **w;
	size_t n = words_split(text, &w);
	int ok = n == nt && n > 0;

	for (size_t i = 1; ok && i < n; i++) ok = t0[i] >= t0[i - 1];
	if (ok)
		for (size_t i = 0; i < n; i++) add(ws, w[i], seg, fmax(t0[i], start), fmin(fmax(t1[i], t0[i]), end), 1);
	split_free(w, n);
	if (!ok) words_estimate(ws, text, seg, start, end);
	return ok;
}

static double ms3(double t)
{
	return round(t * 1000) / 1000;
}

int words_write(const struct media_words *ws, const char *path)
{
	cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "words");
	char *s;
	int rc;

	for (size_t i = 0; i < ws->n; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "word", ws->w[i].text);
		cJSON_AddNumberToObject(o, "start", ms3(ws->w[i].start));
		cJSON_AddNumberToObject(o, "end", ms3(ws->w[i].end));
		cJSON_AddNumberToObject(o, "segment", ws->w[i].seg + 1);
		cJSON_AddBoolToObject(o, "timed", ws->w[i].timed);
		cJSON_AddItemToArray(arr, o);
	}
	s = json_print(doc);
	rc = fsio_write_atomic_str(path, s);
	free(s);
	cJSON_Delete(doc);
	return rc;
}

size_t words_timed(const struct media_words *ws)
{
	size_t n = 0;
	for (size_t i = 0; i < ws->n; i++) n += ws->w[i].timed;
	return n;
}

void words_clear(struct media_words *ws)
{
	for (size_t i = 0; i < ws->n; i++) free(ws->w[i].text);
	free(ws->w);
	*ws = (struct media_words){ 0 };
}
