/*
 * prov_espeak.c - audio stage, offline: narration with espeak-ng (laid out
 * by tts_offline.c).
 *
 * Word times: the espeak-ng command prints no word events, so each sentence
 * is spoken a second time with a long pause between words (-g, which adds
 * the same pause at every word boundary and leaves the words as they were).
 * In that copy espeak-ng's words are the runs of sound between the long
 * pauses; run i starts where it starts, less i pauses (the pause's length
 * is measured: the copy's extra length over the sentence's, shared among
 * the boundaries).  espeak-ng's words are not always the text's: it says
 * "of the" as one word and "25" as two, and a dash as none.  So the text's
 * words are matched to the runs by the cheapest alignment (a word to a
 * run, two or three words espeak-ng joins to one run, a number to up to
 * six runs, a word without letters or digits to none), a run's length against the word's syllables; words
 * sharing a run share it by syllables.  Which words espeak-ng joins is what
 * its translation trace (-X) says it found as one dictionary entry
 * ("Found: 'of the"); only a word with a digit is expected to be several.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GAP_UNITS 60   /* -g: the pause added between words, 10 ms units at the default speed */
#define SPLIT_MS 220   /* silence this long in the copy separates two words */
#define GROUP_COST 0.1 /* what matching other than a word to a run costs */
#define SPLIT_COST 3   /* what saying words espeak-ng joins apart costs */
#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* clang-format off: a table keeps one row per line */
const struct provider_opt espeak_opts[] = {
	{ "voice", OPT_STRING, "en-us", 0, 64, NULL, "espeak-ng voice (see espeak-ng --voices)" },
	{ "speed", OPT_INTEGER, "165", 80, 500, NULL, "words per minute" },
	{ "pitch", OPT_INTEGER, NULL, 0, 99, NULL, "0 to 99 (espeak-ng's default when unset)" },
	{ "gap_ms", OPT_INTEGER, "250", 0, 10000, NULL, "silence between sentences, in milliseconds" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

struct espeak_opts {
	const char *voice;
	int speed, pitch, gap_ms;
};

/* Types and ranges were checked when the channel loaded (the table above). */
static int opts_get(struct stage_ctx *ctx, struct espeak_opts *o)
{
	double pitch = stage_opt_num(ctx, "pitch");

	o->voice = stage_opt_str(ctx, "voice");
	o->speed = (int)stage_opt_num(ctx, "speed");
	o->pitch = isnan(pitch) ? -1 : (int)pitch;
	o->gap_ms = (int)stage_opt_num(ctx, "gap_ms");
	if (!*o->voice || strchr(o->voice, '/'))
		return err_set("providers.audio.voice \"%s\" is not a voice name "
			       "(see espeak-ng --voices)",
			       o->voice);
	return 0;
}

/* One espeak-ng run of the text file txt into *w.  With trace: the copy
 * with word gaps, and espeak-ng's translation trace (-X) in *trace. */
static enum stage_rc run(struct stage_ctx *ctx, const struct espeak_opts *o, int num, const char *txt,
			 struct media_pcm *w, struct sbuf *trace)
{
	struct media_argv a = { 0 };
	char *wav = tts_scratch(num, trace ? "gap.wav" : "wav");
	enum stage_rc rc;

	media_argv_words(&a, "espeak-ng -b 1"); /* -b 1: the text file is UTF-8 */
	media_argv_opt(&a, "-v", "%s", o->voice);
	media_argv_opt(&a, "-s", "%d", o->speed);
	if (o->pitch >= 0) media_argv_opt(&a, "-p", "%d", o->pitch);
	if (trace) {
		media_argv_words(&a, "-X");
		media_argv_opt(&a, "-g", "%d", GAP_UNITS);
	}
	media_argv_opt(&a, "-w", "%s", wav);
	media_argv_opt(&a, "-f", "%s", txt);
	rc = trace ? tts_run(ctx, (const char *const *)a.v, "espeak-ng", trace)
		   : media_run(ctx, &a, "narration (check providers.audio.voice)");
	if (rc == STAGE_OK && tts_wav_read(wav, w) < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "espeak-ng output for sentence %d: %s", num, err_msg());
	media_argv_free(&a);
	unlink(wav);
	free(wav);
	return rc;
}

/* How many pauses the copy added at each boundary between runs (a dash or
 * the like adds one more, in a run of its own that is silent): the
 * silence there over the shortest one, rounded down (a clause's own pause
 * is well under a word gap). */
static void pauses_at(const struct tts_words *tw, int *np)
{
	double least = INFINITY;

	for (size_t k = 1; k < tw->n; k++) least = fmin(least, tw->t0[k] - tw->t1[k - 1]);
	for (size_t k = 1; k < tw->n; k++) {
		np[k] = (int)floor((tw->t0[k] - tw->t1[k - 1]) / least + 0.2);
		if (np[k] < 1) np[k] = 1;
	}
}

/* The runs of sound in g separated by SPLIT_MS of silence, as word times
 * of the sentence w: each run moved back by the pauses added before it,
 * a pause being the copy's extra length over the sentence's, shared. */
static void words_from_copy(const struct media_pcm *w, const struct media_pcm *g, struct tts_words *tw)
{
	size_t f0, l0, f1, l1, split = (size_t)SPLIT_MS * g->rate / 1000, start, last;
	double pause = 0, shift;
	int *np, total = 0;

	if (!tts_audible_span(w, &f0, &l0) || !tts_audible_span(g, &f1, &l1)) return;
	for (size_t i = start = last = f1; i < l1; i++) {
		if (abs(g->s[i]) <= 300) continue;
		if (i - last > split) {
			tts_words_add(tw, (double)start, (double)last + 1);
			start = i;
		}
		last = i;
	}
	tts_words_add(tw, (double)start, (double)l1);
	np = xcalloc(tw->n, sizeof *np);
	pauses_at(tw, np);
	for (size_t k = 1; k < tw->n; k++) total += np[k];
	if (total) pause = ((double)(l1 - f1) - (double)(l0 - f0)) / total;
	shift = (double)f1 - (double)f0;
	for (size_t i = 0; i < tw->n; i++) {
		shift += (double)np[i] * pause;
		tw->t0[i] = (tw->t0[i] - shift) / w->rate;
		tw->t1[i] = (tw->t1[i] - shift) / w->rate;
	}
	free(np);
}

/* The matches tried: a words to b runs. */
static const int moves[][2] = {
	{ 1, 1 }, { 2, 1 }, { 3, 1 }, { 1, 0 }, { 1, 2 }, { 1, 3 }, { 1, 4 }, { 1, 5 }, { 1, 6 }
};
#define NMOVES (sizeof moves / sizeof *moves)

struct align {
	char **w, *joined; /* joined: the -X trace */
	size_t nw, nr;
	double *syl, *cost; /* cost[(nr + 1) * i + j]: words 0..i-1 on runs 0..j-1 */
	int *move;
};

/* The words before i, a of them, are one entry of espeak-ng's dictionary. */
static int joined(const struct align *al, size_t i, int a)
{
	struct sbuf b = { 0 };
	int found;

	sb_puts(&b, "found: '"); /* the trace is lower-cased */
	for (int k = a; k >= 1; k--) {
		for (const char *c = al->w[i - k]; *c; c++)
			if (isalpha((unsigned char)*c) || *c == '\'') sb_printf(&b, "%c", tolower((unsigned char)*c));
		if (k > 1) sb_puts(&b, " ");
	}
	found = al->joined && strstr(al->joined, b.s) != NULL;
	sb_free(&b);
	return found;
}

/* What a match other than a word to a run costs: words share a run only
 * when espeak-ng found them as one entry, and only a number is several. */
static double group_cost(const struct align *al, size_t i, int a)
{
	if (a > 1) return joined(al, i, a) ? GROUP_COST : INFINITY;
	return strpbrk(al->w[i - 1], "0123456789") ? GROUP_COST : INFINITY;
}

/* Words for 1..99. */
static int number_words_below(long n)
{
	return n >= 100 ? 2 : n < 20 || n % 10 == 0 ? 1 : 2;
}

/* A word on its own run when espeak-ng joins it to a neighbour. */
static double split_cost(const struct align *al, size_t i)
{
	return (i < al->nw && joined(al, i + 1, 2)) || (i >= 2 && joined(al, i, 2)) ? SPLIT_COST : 0;
}

/* About how many words a number is said in (espeak-ng reads 2027 "two
 * thousand twenty seven"); 1 for what it cannot tell. */
static int number_words(const char *w)
{
	long n = 0;
	int digits = 0, out = 0;

	for (w += strcspn(w, "0123456789"); isdigit((unsigned char)*w) && digits < 7; w++, digits++)
		n = n * 10 + (*w - '0');
	if (digits >= 7) return 1;
	if (n >= 1000) out += number_words_below(n / 1000) + 1, n %= 1000;
	if (n >= 100) out += 2, n %= 100;
	return out + (n ? number_words_below(n) : 0) + (out == 0 && n == 0);
}

/* How well a run of dur seconds fits words of syl syllables (sps: seconds a syllable). */
static double fit(double syl, double dur, double sps)
{
	double r = log((dur + 0.05) / (syl * sps + 0.05));
	return r * r;
}

static double move_cost(const struct align *al, const struct tts_words *runs, size_t i, size_t j, int m, double sps)
{
	int a = moves[m][0], b = moves[m][1];
	double syl = 0;

	if (i < (size_t)a || j < (size_t)b) return INFINITY;
	if (a == 1 && !strpbrk(al->w[i - 1], ALNUM)) return b ? INFINITY : 0; /* a dash is not said */
	if (b == 0) return INFINITY;
	if (a == 1 && strpbrk(al->w[i - 1], "0123456789"))
		return GROUP_COST * (1 + abs(b - number_words(al->w[i - 1])));
	for (int k = 1; k <= a; k++) syl += al->syl[i - k];
	return fit(syl, runs->t1[j - 1] - runs->t0[j - b], sps) +
		(a == 1 && b == 1 ? split_cost(al, i) : group_cost(al, i, a));
}

static void align_fill(struct align *al, const struct tts_words *runs, double sps)
{
	size_t w = al->nr + 1;

	for (size_t i = 0; i <= al->nw; i++)
		for (size_t j = 0; j <= al->nr; j++) {
			al->cost[w * i + j] = i || j ? INFINITY : 0;
			for (int m = 0; m < (int)NMOVES; m++) {
				double c = move_cost(al, runs, i, j, m, sps);
				if (!isfinite(c)) continue;
				c += al->cost[w * (i - moves[m][0]) + j - moves[m][1]];
				if (c < al->cost[w * i + j]) al->cost[w * i + j] = c, al->move[w * i + j] = m;
			}
		}
}

/* Walks the cheapest alignment back, giving each word its times. */
static void align_times(const struct align *al, const struct tts_words *runs, double *t0, double *t1)
{
	size_t i = al->nw, j = al->nr, w = al->nr + 1;

	while (i > 0) {
		int m = al->move[w * i + j], a = moves[m][0], b = moves[m][1];
		double s = b ? runs->t0[j - b] : j ? runs->t1[j - 1] : 0, e = b ? runs->t1[j - 1] : s, syl = 0, at = 0;
		for (int k = 1; k <= a; k++) syl += al->syl[i - k];
		for (int k = a; k >= 1; k--) {
			t0[i - k] = s + (e - s) * at / syl;
			at += al->syl[i - k];
			t1[i - k] = s + (e - s) * at / syl;
		}
		i -= (size_t)a, j -= (size_t)b;
	}
}

/* The text's words on espeak-ng's (runs): *tw replaced, or emptied when
 * no alignment uses every run. */
static void words_on_runs(const char *text, char *trace, struct tts_words *tw)
{
	char **w;
	struct align al = { .nr = tw->n, .joined = trace };
	double total_syl = 0, total_dur = 0;
	struct tts_words out = { 0 };

	al.nw = words_split(text, &w);
	al.w = w;
	for (char *c = trace; c && *c; c++) *c = (char)tolower((unsigned char)*c);
	al.syl = xcalloc(al.nw + 1, sizeof *al.syl);
	al.cost = xcalloc((al.nw + 1) * (al.nr + 1), sizeof *al.cost);
	al.move = xcalloc((al.nw + 1) * (al.nr + 1), sizeof *al.move);
	for (size_t i = 0; i < al.nw; i++) total_syl += al.syl[i] = words_syllables(w[i]);
	for (size_t j = 0; j < al.nr; j++) total_dur += tw->t1[j] - tw->t0[j];
	align_fill(&al, tw, total_syl > 0 ? total_dur / total_syl : 0.2);
	if (al.nw && isfinite(al.cost[(al.nr + 1) * al.nw + al.nr])) {
		out.n = al.nw;
		out.t0 = xcalloc(al.nw, sizeof *out.t0);
		out.t1 = xcalloc(al.nw, sizeof *out.t1);
		align_times(&al, tw, out.t0, out.t1);
	}
	tts_words_free(tw);
	*tw = out;
	for (size_t i = 0; i < al.nw; i++) free(w[i]);
	free(w), free(al.syl), free(al.cost), free(al.move);
}

static enum stage_rc synth(struct stage_ctx *ctx, void *opts, int num, const char *text, struct media_pcm *w,
			   struct tts_words *tw)
{
	char *txt = tts_scratch(num, "txt");
	struct media_pcm g = { 0 };
	struct sbuf trace = { 0 };
	enum stage_rc rc;

	if (media_write_scratch(txt, text) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	else if ((rc = run(ctx, opts, num, txt, w, NULL)) == STAGE_OK &&
		 (rc = run(ctx, opts, num, txt, &g, &trace)) == STAGE_OK)
		words_from_copy(w, &g, tw);
	if (rc == STAGE_OK && tw->n) words_on_runs(text, trace.s, tw);
	unlink(txt);
	free(txt);
	free(g.s);
	sb_free(&trace);
	return rc;
}

static const struct tts_engine espeak = { "espeak-ng", synth, NULL };

enum stage_rc prov_audio_espeak(struct stage_ctx *ctx)
{
	struct espeak_opts o;

	if (opts_get(ctx, &o) < 0) return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	return tts_offline(ctx, &espeak, &o, o.gap_ms);
}
