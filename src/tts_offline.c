/*
 * tts_offline.c - the audio stage of the offline voices (espeak-ng, flite,
 * festival): one engine call per sentence, laid end to end.
 *
 * Each sentence of script.md is synthesised on its own (text passed in a
 * file, never on the command line), its leading and trailing silence is
 * trimmed, and the sentences are laid end to end with gap_ms of silence
 * between them.  Because this file places every sample itself, it knows
 * exactly when each sentence is heard, so subtitles.srt and timeline.json
 * are exact by construction, not estimated.  The engine may time the words
 * of its sentence (relative to its own audio); those times are moved by the
 * same offset as the sentence's samples into words.json, and a sentence the
 * engine could not time has its words estimated (words.c).
 *
 * Invariants:
 *  - audio.wav, subtitles.srt, words.json and timeline.json are written
 *    atomically, timeline.json last (later stages read it; it names audio.wav);
 *  - a cue starts at the first audible sample of its sentence and ends at
 *    its last one; a segment starts at its first cue (the first at 0) and
 *    ends where the next one starts (the last at the end of the audio);
 *  - scratch files are .sNNN.<ext>.<pid>.tmp (the temporary names of
 *    fsio.c): the engine removes each as soon as its sentence is read,
 *    whatever the outcome, and those of a run that died are removed by
 *    tmpclean_dir before the next run.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AUDIBLE 300 /* |sample| above this is heard (about -40 dBFS) */
#define WAV_MAX (256 * 1024 * 1024)
#define LEAD_MS 300       /* silence before the first sentence */
#define TAIL_MS 300       /* ... and after the last */
#define PRE_MS 15         /* kept before the first audible sample (attack) */
#define POST_MS 40        /* kept after the last one (decay) */
#define EMPTY_SEG_MS 2000 /* a segment without narration is shown this long */
#define OUT_MAX (4 << 20) /* what an engine may print */

struct narration {
	const struct tts_engine *e;
	void *opts;
	int gap_ms;
	struct media_pcm pcm;
	long pending_ms; /* silence owed before the next sound */
	struct media_cue *cue;
	size_t ncue;
	struct media_words words;
	double *seg_start;
	int nsent; /* sentences synthesised, names scratch files */
};

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

int tts_wav_read(const char *path, struct media_pcm *w)
{
	size_t len;
	unsigned char *d = (unsigned char *)fsio_read(path, WAV_MAX, &len);
	int rc = d ? wav_parse(path, d, len, w) : -1;

	free(d);
	return rc;
}

int tts_audible_span(const struct media_pcm *w, size_t *first, size_t *last)
{
	size_t a = 0, b = w->n;

	while (a < w->n && abs(w->s[a]) <= AUDIBLE) a++;
	if (a == w->n) return 0;
	while (b > a && abs(w->s[b - 1]) <= AUDIBLE) b--;
	*first = a, *last = b;
	return 1;
}

/* ".sNNN.<ext>.<pid>.tmp": a temporary name nothing commits. */
char *tts_scratch(int num, const char *ext)
{
	char *name = xasprintf("s%03d.%s", num, ext), *tmp = fsio_tmp_name(name);
	free(name);
	return tmp;
}

/* The first line or so of what a failed engine said. */
static void err_head(FILE *f, char *out, size_t n)
{
	size_t got = 0;

	out[0] = 0;
	if (f && fseek(f, 0, SEEK_SET) == 0) got = fread(out, 1, n - 1, f);
	out[got] = 0;
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r') *p = ' ';
}

enum stage_rc tts_run(struct stage_ctx *ctx, const char *const argv[], const char *pkg, struct sbuf *out)
{
	struct proc_opts o = { .stdout_buf = out, .stdout_max = OUT_MAX, .stderr_fd = -1, .timeout_s = ctx->timeout_s };
	FILE *errf;
	char msg[300];
	int st, timed_out = 0;

	if (!proc_find(argv[0]))
		return stage_fail(ctx, STAGE_FAIL,
				  "%s is not installed or not in PATH, needed for the narration: "
				  "install it (Debian: apt-get install %s)",
				  argv[0], pkg);
	errf = tmpfile(); /* keeps the child's stderr for the error message */
	if (errf) o.stderr_fd = fileno(errf);
	st = proc_run(argv, &o, &timed_out);
	err_head(errf, msg, sizeof msg);
	if (errf) fclose(errf);
	if (st < 0) return stage_fail(ctx, timed_out ? STAGE_RETRY : STAGE_FAIL, "%s: %s %s", argv[0], err_msg(), msg);
	if (st > 0)
		return stage_fail(ctx, STAGE_FAIL, "%s failed (exit %d) making the narration: %s", argv[0], st,
				  msg[0] ? msg : "no message");
	return STAGE_OK;
}

void tts_words_add(struct tts_words *tw, double t0, double t1)
{
	tw->t0 = xrealloc(tw->t0, (tw->n + 1) * sizeof *tw->t0);
	tw->t1 = xrealloc(tw->t1, (tw->n + 1) * sizeof *tw->t1);
	tw->t0[tw->n] = t0;
	tw->t1[tw->n++] = t1;
}

void tts_words_free(struct tts_words *tw)
{
	free(tw->t0);
	free(tw->t1);
	*tw = (struct tts_words){ 0 };
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

/* The sentence's words, by the engine's times (moved by shift: where its
 * audio now is), else estimated within its cue. */
static void place_words(struct narration *nr, size_t si, const struct tts_words *tw, double shift)
{
	const struct media_cue *c = &nr->cue[nr->ncue - 1];
	double *t0 = xcalloc(tw->n + 1, sizeof *t0), *t1 = xcalloc(tw->n + 1, sizeof *t1);

	for (size_t i = 0; i < tw->n; i++) t0[i] = tw->t0[i] + shift, t1[i] = tw->t1[i] + shift;
	(void)words_place(&nr->words, c->text, (int)si, t0, t1, tw->n, c->start, c->end);
	free(t0);
	free(t1);
}

/* Appends a sentence's audible part to the narration and records its cue
 * and words.  Returns 0 when nothing in it is audible (nothing appended). */
static int place(struct narration *nr, size_t si, const struct media_pcm *w, const struct tts_words *tw,
		 const char *text)
{
	struct media_pcm *p = &nr->pcm;
	size_t first, last, a, b, base;

	if (!tts_audible_span(w, &first, &last)) return 0;
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
	place_words(nr, si, tw, (double)base / p->rate - (double)a / w->rate);
	return 1;
}

/* Synthesises one sentence and places it. */
static enum stage_rc speak(struct stage_ctx *ctx, struct narration *nr, size_t si, const char *text, int *spoken)
{
	struct media_pcm w = { 0 };
	struct tts_words tw = { 0 };
	enum stage_rc rc = nr->e->synth(ctx, nr->opts, ++nr->nsent, text, &w, &tw);

	if (rc == STAGE_OK && nr->pcm.rate && w.rate != nr->pcm.rate)
		rc = stage_fail(ctx, STAGE_FAIL, "%s changed sample rate (%u, then %u Hz); check providers.audio.voice",
				nr->e->name, nr->pcm.rate, w.rate);
	if (rc == STAGE_OK) {
		nr->pcm.rate = w.rate;
		if (place(nr, si, &w, &tw, text)) {
			if ((*spoken)++ == 0) nr->seg_start[si] = nr->cue[nr->ncue - 1].start;
			nr->pending_ms = nr->gap_ms;
		} else {
			stage_log(ctx, "warn", "sentence %d is silent, no subtitle: %.60s", nr->nsent, text);
		}
	}
	tts_words_free(&tw);
	free(w.s);
	return rc;
}

/* Speaks one segment's narration; records where the segment starts. */
static enum stage_rc narrate_segment(struct stage_ctx *ctx, struct narration *nr, size_t si, char *const *sent,
				     size_t ns)
{
	int spoken = 0;
	enum stage_rc rc = STAGE_OK;

	nr->seg_start[si] = nr->pcm.rate ? (double)nr->pcm.n / nr->pcm.rate + nr->pending_ms / 1000.0
					 : nr->pending_ms / 1000.0;
	for (size_t i = 0; i < ns && rc == STAGE_OK; i++) rc = speak(ctx, nr, si, sent[i], &spoken);
	if (rc == STAGE_OK && spoken == 0) {
		stage_log(ctx, "info", "segment %zu has no narration; showing it for %d ms", si + 1, EMPTY_SEG_MS);
		nr->pending_ms += EMPTY_SEG_MS;
	}
	return rc;
}

static enum stage_rc write_outputs(struct stage_ctx *ctx, const struct script *sc, struct narration *nr,
				   const struct media_frame *f)
{
	double total;

	pcm_silence(&nr->pcm, nr->pending_ms > TAIL_MS ? nr->pending_ms : TAIL_MS);
	total = (double)nr->pcm.n / nr->pcm.rate;
	if (words_write(&nr->words, "words.json") < 0 ||
	    narration_write(sc, &nr->pcm, nr->cue, nr->ncue, nr->seg_start, f) < 0)
		return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	stage_log(ctx, "info", "audio.wav: %.2f s, %zu segments, %zu subtitles, %zu words (%zu timed by %s)", total,
		  sc->n, nr->ncue, nr->words.n, words_timed(&nr->words), nr->e->name);
	stage_output(ctx, "audio", "audio.wav", "audio/wav", lround(total * 1000));
	return STAGE_OK;
}

static enum stage_rc narrate(struct stage_ctx *ctx, struct narration *nr, const struct script *sc,
			     const struct media_frame *f)
{
	enum stage_rc rc = STAGE_OK;
	char ***sent = xcalloc(sc->n, sizeof *sent), **all = NULL;
	size_t *ns = xcalloc(sc->n, sizeof *ns), nall = 0;

	for (size_t i = 0; i < sc->n; i++) {
		ns[i] = script_sentences(sc->seg[i].text ? sc->seg[i].text : "", &sent[i]);
		all = xrealloc(all, (nall + ns[i] + 1) * sizeof *all);
		memcpy(all + nall, sent[i], ns[i] * sizeof *all);
		nall += ns[i];
	}
	nr->seg_start = xcalloc(sc->n, sizeof *nr->seg_start);
	if (nr->e->batch && nall) rc = nr->e->batch(ctx, nr->opts, all, nall);
	for (size_t i = 0; i < sc->n && rc == STAGE_OK; i++) rc = narrate_segment(ctx, nr, i, sent[i], ns[i]);
	if (rc == STAGE_OK && nr->ncue == 0)
		rc = stage_fail(ctx, STAGE_FAIL,
				"script.md has no narration %s could speak; "
				"add text under the [AVATAR]/[VOICEOVER]/[BROLL] markers",
				nr->e->name);
	if (rc == STAGE_OK) rc = write_outputs(ctx, sc, nr, f);
	for (size_t i = 0; i < nr->ncue; i++) free((char *)nr->cue[i].text);
	free(nr->cue);
	free(nr->seg_start);
	free(nr->pcm.s);
	words_clear(&nr->words);
	for (size_t i = 0; i < nall; i++) free(all[i]); /* the sentences, each once */
	for (size_t i = 0; i < sc->n; i++) free(sent[i]);
	free(all), free(sent), free(ns);
	return rc;
}

enum stage_rc tts_offline(struct stage_ctx *ctx, const struct tts_engine *e, void *opts, int gap_ms)
{
	struct narration nr = { .e = e, .opts = opts, .gap_ms = gap_ms, .pending_ms = LEAD_MS };
	struct media_frame f;
	struct script sc = { 0 };
	char *text = NULL;
	enum stage_rc rc;

	if (media_frame_get(ctx->channel, &f) < 0) return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
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
	rc = narrate(ctx, &nr, &sc, &f);
out:
	script_free(&sc);
	free(text);
	return rc;
}
