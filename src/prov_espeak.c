/*
 * prov_espeak.c - audio stage, offline: narration with espeak-ng.
 *
 * Each sentence of script.md is synthesised on its own (text passed in a
 * file, never on the command line), its leading and trailing silence is
 * trimmed, and the sentences are laid end to end with gap_ms of silence
 * between them.  Because this file places every sample itself, it knows
 * exactly when each sentence is heard, so subtitles.srt and timeline.json
 * are exact by construction, not estimated.
 *
 * Invariants:
 *  - audio.wav, subtitles.srt and timeline.json are written atomically,
 *    timeline.json last (later stages read it; it names audio.wav);
 *  - a cue starts at the first audible sample of its sentence and ends at
 *    its last one; a segment starts at its first cue (the first at 0) and
 *    ends where the next one starts (the last at the end of the audio);
 *  - scratch files are .sNNN.txt.<pid>.tmp and .sNNN.wav.<pid>.tmp (the
 *    temporary names of fsio.c): each is removed as soon as its sentence is
 *    read, whatever the outcome, and those of a run that died are removed
 *    by tmpclean_dir before the next run.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUDIBLE 300       /* |sample| above this is heard (about -40 dBFS) */
#define LEAD_MS 300       /* silence before the first sentence */
#define TAIL_MS 300       /* ... and after the last */
#define PRE_MS 15         /* kept before the first audible sample (attack) */
#define POST_MS 40        /* kept after the last one (decay) */
#define EMPTY_SEG_MS 2000 /* a segment without narration is shown this long */
#define WAV_MAX (64 * 1024 * 1024)

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
struct narration {
	struct media_pcm pcm;
	long pending_ms; /* silence owed before the next sound */
	struct media_cue *cue;
	size_t ncue;
	double *seg_start;
	int nsent; /* sentences synthesised, names scratch files */
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

static unsigned rd16(const unsigned char *p)
{
	return p[0] | (unsigned)p[1] << 8;
}
static uint32_t rd32(const unsigned char *p)
{
	return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

/* Parses a RIFF/WAVE file of 16-bit mono PCM; samples are copied out. */
static int wav_parse(const char *name, const unsigned char *d, size_t len, struct media_pcm *out)
{
	size_t off = 12;
	int have_fmt = 0;

	if (len < 12 || memcmp(d, "RIFF", 4) != 0 || memcmp(d + 8, "WAVE", 4) != 0)
		return err_set("%s is not a RIFF/WAVE file", name);
	while (off + 8 <= len) {
		uint32_t id_len = rd32(d + off + 4);
		size_t body = off + 8, n = id_len > len - body ? len - body : id_len;
		if (memcmp(d + off, "fmt ", 4) == 0 && n >= 16) {
			if (rd16(d + body) != 1 || rd16(d + body + 2) != 1 || rd16(d + body + 14) != 16)
				return err_set("%s is not 16-bit mono PCM", name);
			out->rate = rd32(d + body + 4);
			have_fmt = 1;
		} else if (memcmp(d + off, "data", 4) == 0 && have_fmt) {
			out->n = out->cap = n / 2;
			out->s = xmalloc((out->n ? out->n : 1) * sizeof *out->s);
			for (size_t i = 0; i < out->n; i++) out->s[i] = (int16_t)rd16(d + body + 2 * i);
			return out->rate >= 8000 && out->rate <= 192000
				? 0
				: err_set("%s has an unusable sample rate %u", name, out->rate);
		}
		off = body + n + (n & 1); /* chunks are padded to even sizes */
	}
	return err_set("%s has no fmt/data chunk", name);
}

static void pcm_reserve(struct media_pcm *p, size_t more)
{
	if (p->n + more <= p->cap) return;
	while (p->n + more > p->cap) p->cap = p->cap ? p->cap * 2 : 1 << 16;
	p->s = xrealloc(p->s, p->cap * sizeof *p->s);
}

static void pcm_silence(struct media_pcm *p, long ms)
{
	size_t n = (size_t)(ms * (long)p->rate / 1000);
	pcm_reserve(p, n);
	memset(p->s + p->n, 0, n * sizeof *p->s);
	p->n += n;
}

/* ".sNNN.<ext>.<pid>.tmp": a temporary name nothing commits. */
static char *scratch_name(int num, const char *ext)
{
	char *name = xasprintf("s%03d.%s", num, ext), *tmp = fsio_tmp_name(name);
	free(name);
	return tmp;
}

/* Synthesises one sentence into *w (which the caller frees). */
static enum stage_rc synth(struct stage_ctx *ctx, const struct espeak_opts *o, int num, const char *text,
			   struct media_pcm *w)
{
	char *txt, *wav;
	struct media_argv a = { 0 };
	enum stage_rc rc = STAGE_OK;
	unsigned char *data = NULL;
	size_t len;

	txt = scratch_name(num, "txt");
	wav = scratch_name(num, "wav");
	if (media_write_scratch(txt, text) < 0) {
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
		goto out;
	}
	media_argv_words(&a, "espeak-ng -b 1"); /* -b 1: the text file is UTF-8 */
	media_argv_opt(&a, "-v", "%s", o->voice);
	media_argv_opt(&a, "-s", "%d", o->speed);
	if (o->pitch >= 0) { media_argv_opt(&a, "-p", "%d", o->pitch); }
	media_argv_opt(&a, "-w", "%s", wav);
	media_argv_opt(&a, "-f", "%s", txt);
	if ((rc = media_run(ctx, &a, "narration (check providers.audio.voice)")) != STAGE_OK) goto out;
	if (!(data = (unsigned char *)fsio_read(wav, WAV_MAX, &len)) || wav_parse(wav, data, len, w) < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "espeak-ng output for sentence %d: %s", num, err_msg());
out:
	free(data);
	media_argv_free(&a);
	unlink(txt);
	unlink(wav);
	free(txt);
	free(wav);
	return rc;
}

/* Cue text on one line: SRT ends a cue at a blank line. */
static char *one_line(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;
	for (; *s; s++) {
		int space = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';
		if (space && (o == out || o[-1] == ' ')) continue;
		*o++ = space ? ' ' : *s;
	}
	while (o > out && o[-1] == ' ') o--;
	*o = 0;
	return out;
}

/* Appends a sentence's audible part to the narration and records its cue.
 * Returns 0 when nothing in it is audible (no cue, nothing appended). */
static int place(struct narration *nr, const struct media_pcm *w, const char *text)
{
	struct media_pcm *p = &nr->pcm;
	size_t first = 0, last = w->n, a, b, base;

	while (first < w->n && abs(w->s[first]) <= AUDIBLE) first++;
	if (first == w->n) return 0;
	while (last > first && abs(w->s[last - 1]) <= AUDIBLE) last--;
	a = first > PRE_MS * w->rate / 1000 ? first - PRE_MS * w->rate / 1000 : 0;
	b = last + POST_MS * w->rate / 1000 < w->n ? last + POST_MS * w->rate / 1000 : w->n;
	pcm_silence(p, nr->pending_ms);
	base = p->n;
	pcm_reserve(p, b - a);
	memcpy(p->s + p->n, w->s + a, (b - a) * sizeof *p->s);
	p->n += b - a;
	nr->cue = xrealloc(nr->cue, (nr->ncue + 1) * sizeof *nr->cue);
	nr->cue[nr->ncue].start = (double)(base + first - a) / p->rate;
	nr->cue[nr->ncue].end = (double)(base + last - a) / p->rate;
	nr->cue[nr->ncue++].text = one_line(text);
	return 1;
}

/* Speaks one segment's narration; records where the segment starts. */
static enum stage_rc narrate_segment(struct stage_ctx *ctx, const struct espeak_opts *o, struct narration *nr,
				     size_t si, const char *text)
{
	char **sent = NULL;
	size_t ns = script_sentences(text ? text : "", &sent), spoken = 0;
	enum stage_rc rc = STAGE_OK;

	nr->seg_start[si] = nr->pcm.rate ? (double)nr->pcm.n / nr->pcm.rate + nr->pending_ms / 1000.0
					 : nr->pending_ms / 1000.0;
	for (size_t i = 0; i < ns && rc == STAGE_OK; i++) {
		struct media_pcm w = { 0 };
		rc = synth(ctx, o, ++nr->nsent, sent[i], &w);
		if (rc == STAGE_OK && nr->pcm.rate && w.rate != nr->pcm.rate)
			rc = stage_fail(ctx, STAGE_FAIL,
					"espeak-ng changed sample rate (%u, then %u Hz) "
					"for voice %s",
					nr->pcm.rate, w.rate, o->voice);
		if (rc == STAGE_OK) {
			nr->pcm.rate = w.rate;
			if (place(nr, &w, sent[i])) {
				if (spoken++ == 0) nr->seg_start[si] = nr->cue[nr->ncue - 1].start;
				nr->pending_ms = o->gap_ms;
			} else {
				stage_log(ctx, "warn", "sentence %d is silent, no subtitle: %.60s", nr->nsent, sent[i]);
			}
		}
		free(w.s);
	}
	if (rc == STAGE_OK && spoken == 0) {
		stage_log(ctx, "info", "segment %zu has no narration; showing it for %d ms", si + 1, EMPTY_SEG_MS);
		nr->pending_ms += EMPTY_SEG_MS;
	}
	for (size_t i = 0; i < ns; i++) free(sent[i]);
	free(sent);
	return rc;
}

static enum stage_rc write_outputs(struct stage_ctx *ctx, const struct script *sc, struct narration *nr,
				   const struct media_frame *f)
{
	double total;

	pcm_silence(&nr->pcm, nr->pending_ms > TAIL_MS ? nr->pending_ms : TAIL_MS);
	total = (double)nr->pcm.n / nr->pcm.rate;
	if (narration_write(sc, &nr->pcm, nr->cue, nr->ncue, nr->seg_start, f) < 0)
		return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	stage_log(ctx, "info", "audio.wav: %.2f s, %zu segments, %zu subtitles", total, sc->n, nr->ncue);
	stage_output(ctx, "audio", "audio.wav", "audio/wav", lround(total * 1000));
	return STAGE_OK;
}

static enum stage_rc narrate(struct stage_ctx *ctx, const struct espeak_opts *o, const struct script *sc,
			     const struct media_frame *f)
{
	struct narration nr = { .pending_ms = LEAD_MS };
	enum stage_rc rc = STAGE_OK;

	nr.seg_start = xcalloc(sc->n, sizeof *nr.seg_start);
	for (size_t i = 0; i < sc->n && rc == STAGE_OK; i++) rc = narrate_segment(ctx, o, &nr, i, sc->seg[i].text);
	if (rc == STAGE_OK && nr.ncue == 0)
		rc = stage_fail(ctx, STAGE_FAIL,
				"script.md has no narration espeak-ng could speak; "
				"add text under the [AVATAR]/[VOICEOVER]/[BROLL] markers");
	if (rc == STAGE_OK) rc = write_outputs(ctx, sc, &nr, f);
	for (size_t i = 0; i < nr.ncue; i++) free((char *)nr.cue[i].text);
	free(nr.cue);
	free(nr.seg_start);
	free(nr.pcm.s);
	return rc;
}

enum stage_rc prov_audio_espeak(struct stage_ctx *ctx)
{
	struct espeak_opts o;
	struct media_frame f;
	struct script sc = { 0 };
	char *text = NULL;
	enum stage_rc rc;

	if (opts_get(ctx, &o) < 0 || media_frame_get(ctx->channel, &f) < 0)
		return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	if (!(text = fsio_read("script.md", IDEA_MAX_BYTES * 4, NULL)))
		return stage_fail(ctx, STAGE_FAIL, "%s; run the scripting stage first", err_msg());
	if (script_parse(text, &sc) < 0) {
		rc = stage_fail(ctx, STAGE_FAIL, "script.md: %s", err_msg());
		goto out;
	}
	if (sc.n == 0) {
		rc = stage_fail(ctx, STAGE_FAIL,
				"script.md has no segments; "
				"add [AVATAR] or [BROLL: ...] sections");
		goto out;
	}
	(void)!tmpclean_dir("."); /* scratch files of a run that died; each removal is logged */
	rc = narrate(ctx, &o, &sc, &f);
out:
	script_free(&sc);
	free(text);
	return rc;
}
