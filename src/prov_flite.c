/*
 * prov_flite.c - audio stage, offline: narration with flite (laid out by
 * tts_offline.c), each sentence's words timed by flite itself.
 *
 * flite -psdur prints the segments (phones) it synthesised with their end
 * times while it writes the sentence's audio.  Which phones belong to which
 * word: a second run, with no audio, of the sentence's words each made its
 * own phrase ("word. word. ..."), prints the phones of each word between
 * pauses.  When the counts agree, word i starts where its first phone
 * starts and ends where its last one ends; when not (a word said
 * differently in the phrase than alone), the sentence is estimated.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* clang-format off: a table keeps one row per line */
const struct provider_opt flite_opts[] = {
	{ "voice", OPT_STRING, "slt", 0, 64, NULL, "flite voice (see flite -lv): slt, rms, awb, kal16, kal" },
	{ "stretch", OPT_NUMBER, "1", 0.5, 2, NULL, "speech duration factor: above 1 is slower" },
	{ "gap_ms", OPT_INTEGER, "250", 0, 10000, NULL, "silence between sentences, in milliseconds" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

struct flite_opts {
	const char *voice;
	double stretch;
};

/* flite's arguments up to the text: voice and speed. */
static void base_argv(struct media_argv *a, const struct flite_opts *o)
{
	media_argv_add(a, "flite");
	media_argv_opt(a, "-voice", "%s", o->voice);
	media_argv_opt(a, "--setf", "duration_stretch=%.3f", o->stretch);
}

/* "hh:0.255 ax:0.304 ..." (or without times): phones, pauses included,
 * and their end times in the whole audio (negative - 1 for a pause).
 * flite prints one line per utterance, each timed from its own start, and
 * its audio is the utterances end to end. */
static size_t phones(const char *s, double **end)
{
	size_t n = 0;
	char name[32];
	int used;
	double t, base = 0, last = 0;

	*end = NULL;
	while (sscanf(s, " %31[^: \n]%n", name, &used) == 1) {
		for (const char *p = s; p < s + used; p++)
			if (*p == '\n') base = last; /* a new utterance */
		s += used;
		t = 0;
		if (*s == ':' && sscanf(s + 1, "%lf%n", &t, &used) == 1) s += 1 + used;
		last = t += base;
		*end = xrealloc(*end, (n + 1) * sizeof **end);
		(*end)[n++] = strcmp(name, "pau") ? t : -t - 1;
	}
	return n;
}

static int has_alnum(const char *w)
{
	for (; *w; w++)
		if (isalnum((unsigned char)*w)) return 1;
	return 0;
}

/* flite on the words, each its own phrase; a failure only costs the word
 * times (logged; the sentence's words are estimated). */
static int phrase_run(struct stage_ctx *ctx, struct media_argv *a, struct sbuf *out)
{
	if (tts_run(ctx, (const char *const *)a->v, "flite", out) == STAGE_OK && out->s) return 0;
	stage_log(ctx, "warn", "flite could not time the words: %s", ctx->error[0] ? ctx->error : "no output");
	ctx->error[0] = 0;
	return -1;
}

/* How many phones each spoken word of text has (words without a letter
 * or digit have none and are not sent); 0 on any doubt. */
static int word_phones(struct stage_ctx *ctx, const struct flite_opts *o, int num, const char *text, size_t **cnt,
		       size_t *nw)
{
	char **w, *txt = tts_scratch(num, "words.txt");
	size_t n = words_split(text, &w), np, k = 0;
	struct sbuf body = { 0 }, out = { 0 };
	struct media_argv a = { 0 };
	double *t = NULL;
	int ok = 0;

	*cnt = xcalloc(n + 1, sizeof **cnt);
	*nw = n;
	for (size_t i = 0; i < n; i++)
		if (has_alnum(w[i])) sb_printf(&body, "%s. ", w[i]);
	base_argv(&a, o);
	media_argv_words(&a, "-ps -f");
	media_argv_add(&a, "%s", txt);
	media_argv_add(&a, "none");
	if (body.len && media_write_scratch(txt, body.s) == 0 && !phrase_run(ctx, &a, &out)) {
		np = phones(out.s, &t);
		ok = 1;
		for (size_t i = 0, run = 0; i < np; i++) {
			if (t[i] >= 0) run++;
			if (t[i] >= 0 || !run) continue;
			while (k < n && !has_alnum(w[k])) k++;
			if (k < n)
				(*cnt)[k++] = run;
			else
				ok = 0;
			run = 0;
		}
		while (k < n && !has_alnum(w[k])) k++;
		ok = ok && k == n;
	}
	for (size_t i = 0; i < n; i++) free(w[i]);
	free(w), free(t), unlink(txt), free(txt), sb_free(&body), sb_free(&out);
	media_argv_free(&a);
	return ok;
}

/* Word times from the sentence's phones (end times; pauses negative). */
static void words_from_phones(const double *t, size_t np, const size_t *cnt, size_t nw, struct tts_words *tw)
{
	size_t p = 0;
	double prev = 0;

	for (size_t i = 0; i < nw; i++) {
		double start;
		while (p < np && t[p] < 0) prev = -t[p++] - 1; /* pauses */
		start = prev;
		for (size_t k = 0; k < cnt[i] && p < np; p++) {
			if (t[p] < 0) {
				prev = -t[p] - 1;
				continue;
			}
			prev = t[p], k++;
		}
		tts_words_add(tw, start, cnt[i] ? prev : start);
	}
	while (p < np && t[p] < 0) p++;
	if (p != np) tts_words_free(tw); /* phones left over: the counts did not match */
}

static enum stage_rc synth(struct stage_ctx *ctx, void *opts, int num, const char *text, struct media_pcm *w,
			   struct tts_words *tw)
{
	const struct flite_opts *o = opts;
	char *txt = tts_scratch(num, "txt"), *wav = tts_scratch(num, "wav");
	struct media_argv a = { 0 };
	struct sbuf out = { 0 };
	enum stage_rc rc;
	size_t *cnt = NULL, nw = 0, np;
	double *t = NULL;

	base_argv(&a, o);
	media_argv_words(&a, "-psdur -f");
	media_argv_add(&a, "%s", txt);
	media_argv_add(&a, "%s", wav);
	if (media_write_scratch(txt, text) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	else if ((rc = tts_run(ctx, (const char *const *)a.v, "flite", &out)) == STAGE_OK && tts_wav_read(wav, w) < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "flite output for sentence %d (check providers.audio.voice): %s", num,
				err_msg());
	if (rc == STAGE_OK && out.s && (np = phones(out.s, &t)) && word_phones(ctx, o, num, text, &cnt, &nw))
		words_from_phones(t, np, cnt, nw, tw);
	unlink(txt), unlink(wav), free(txt), free(wav), free(t), free(cnt);
	sb_free(&out);
	media_argv_free(&a);
	return rc;
}

static const struct tts_engine flite = { "flite", synth, NULL };

enum stage_rc prov_audio_flite(struct stage_ctx *ctx)
{
	struct flite_opts o = { stage_opt_str(ctx, "voice"), stage_opt_num(ctx, "stretch") };

	if (!*o.voice || strchr(o.voice, '/') || *o.voice == '-')
		return stage_fail(ctx, STAGE_FAIL,
				  "providers.audio.voice \"%s\" is not a flite voice name (see flite -lv)", o.voice);
	return tts_offline(ctx, &flite, &o, (int)stage_opt_num(ctx, "gap_ms"));
}
