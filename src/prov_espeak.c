/*
 * prov_espeak.c - audio stage, offline: narration with espeak-ng (laid out
 * by tts_offline.c).
 *
 * Word times: the espeak-ng command prints no word events, so each sentence
 * is spoken a second time with a long pause between words (-g, which adds
 * the same pause at every word boundary and leaves the words as they were).
 * In that copy the words are the runs of sound between the long pauses;
 * word i starts where its run starts, less i pauses (the pause's length is
 * measured: the copy's extra length over the sentence's, shared among the
 * boundaries).  When the runs are not one per word of the text (espeak-ng
 * joins "of the", speaks "25" as two words), the sentence's words are
 * estimated instead (words.c).
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GAP_UNITS 60   /* -g: the pause added between words, 10 ms units at the default speed */
#define SPLIT_MS 220   /* silence this long in the copy separates two words */

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

/* One espeak-ng run of the text file txt into *w; word_gap > 0 adds -g. */
static enum stage_rc run(struct stage_ctx *ctx, const struct espeak_opts *o, int num, const char *txt, int word_gap,
			 struct media_pcm *w)
{
	struct media_argv a = { 0 };
	char *wav = tts_scratch(num, word_gap ? "gap.wav" : "wav");
	enum stage_rc rc;

	media_argv_words(&a, "espeak-ng -b 1"); /* -b 1: the text file is UTF-8 */
	media_argv_opt(&a, "-v", "%s", o->voice);
	media_argv_opt(&a, "-s", "%d", o->speed);
	if (o->pitch >= 0) media_argv_opt(&a, "-p", "%d", o->pitch);
	if (word_gap) media_argv_opt(&a, "-g", "%d", word_gap);
	media_argv_opt(&a, "-w", "%s", wav);
	media_argv_opt(&a, "-f", "%s", txt);
	rc = media_run(ctx, &a, "narration (check providers.audio.voice)");
	if (rc == STAGE_OK && tts_wav_read(wav, w) < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "espeak-ng output for sentence %d: %s", num, err_msg());
	media_argv_free(&a);
	unlink(wav);
	free(wav);
	return rc;
}

/* The runs of sound in g separated by SPLIT_MS of silence, as word times
 * of the sentence w: run i moved back by i measured pauses. */
static void words_from_copy(const struct media_pcm *w, const struct media_pcm *g, struct tts_words *tw)
{
	size_t f0, l0, f1, l1, split = (size_t)SPLIT_MS * g->rate / 1000, start, last;
	double pause;

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
	pause = tw->n > 1 ? ((double)(l1 - f1) - (double)(l0 - f0)) / (double)(tw->n - 1) : 0;
	for (size_t i = 0; i < tw->n; i++) {
		double shift = (double)f1 - (double)f0 + (double)i * pause;
		tw->t0[i] = (tw->t0[i] - shift) / w->rate;
		tw->t1[i] = (tw->t1[i] - shift) / w->rate;
	}
}

static enum stage_rc synth(struct stage_ctx *ctx, void *opts, int num, const char *text, struct media_pcm *w,
			   struct tts_words *tw)
{
	char *txt = tts_scratch(num, "txt");
	struct media_pcm g = { 0 };
	enum stage_rc rc;

	if (media_write_scratch(txt, text) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	else if ((rc = run(ctx, opts, num, txt, 0, w)) == STAGE_OK && (rc = run(ctx, opts, num, txt, GAP_UNITS, &g)) == STAGE_OK)
		words_from_copy(w, &g, tw);
	unlink(txt);
	free(txt);
	free(g.s);
	return rc;
}

static const struct tts_engine espeak = { "espeak-ng", synth, NULL };

enum stage_rc prov_audio_espeak(struct stage_ctx *ctx)
{
	struct espeak_opts o;

	if (opts_get(ctx, &o) < 0) return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	return tts_offline(ctx, &espeak, &o, o.gap_ms);
}
