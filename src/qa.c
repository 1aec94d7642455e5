/*
 * qa.c - the QA report of the assembly stage: qa.json next to final.mp4.
 * Each check (the table below) turns a measured figure (qa_measure.c,
 * qa_loudnorm.c, qa_text.c) into pass or not, against a threshold from the
 * assembly provider's options (channel.yaml providers.assembly); the policy
 * (option qa: fail|warn for all checks, qa_checks: {name: fail|warn|off}
 * for one, else the check's default) says whether a miss fails the stage
 * or only warns.  Schema, read by the review page:
 *   {"version":1, "verdict":"pass"|"warn"|"fail",
 *    "checks":[{"name","status","value","unit","threshold","detail"}],
 *    "measured":{...}}
 *
 * Invariants: qa.json is written through the durable commit (fsio) before
 * the stage reports its verdict, so a failed stage leaves the report that
 * explains it; a figure that could not be measured fails its check.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum qa_policy { QA_P_FAIL, QA_P_WARN, QA_P_OFF };
static const char *const policy_names[] = { "fail", "warn", "off", NULL };

struct qa_result {
	double value;  /* NAN: not a number (text, or not measured) */
	char text[64]; /* a value that is not a number ("h264/yuv420p") */
	char threshold[64];
	char detail[400];
	int miss; /* the figure is outside the threshold */
};

struct qa {
	struct stage_ctx *ctx;
	const struct media_frame *f;
	struct qa_media m;
	const struct qa_narration *n;
	const cJSON *timeline;
	struct qa_cues srt, said;
	struct qa_spans speech; /* heard: the complement of the silences */
	double offsets_max, onsets_max;
	cJSON *measured;
};

static double opt(const struct qa *q, const char *key)
{
	return stage_opt_num(q->ctx, key);
}

/* ---- the checks: one function each, in table order ------------------ */

static void loudness(struct qa *q, struct qa_result *r)
{
	double t = opt(q, "loudness_target"), tol = opt(q, "loudness_tolerance");
	r->value = q->m.lufs;
	snprintf(r->threshold, sizeof r->threshold, "%g±%g", t, tol);
	r->miss = !(fabs(r->value - t) <= tol);
	snprintf(r->detail, sizeof r->detail, "integrated loudness %.1f LUFS, target %g LUFS (narration before: %.1f)",
		 r->value, t, q->n->input_i);
}

static void true_peak(struct qa *q, struct qa_result *r)
{
	double max = opt(q, "true_peak_max");
	r->value = q->m.true_peak;
	snprintf(r->threshold, sizeof r->threshold, "≤ %g", max);
	r->miss = !(r->value <= max);
	snprintf(r->detail, sizeof r->detail, "true peak %.1f dBTP, at most %g dBTP allowed", r->value, max);
}

static void clipping(struct qa *q, struct qa_result *r)
{
	double max = opt(q, "clipping_max_percent");
	r->value = q->n->samples > 0 ? 100.0 * q->n->clipped / q->n->samples : NAN;
	snprintf(r->threshold, sizeof r->threshold, "≤ %g", max);
	r->miss = !(r->value <= max);
	snprintf(r->detail, sizeof r->detail,
		 "%.0f of %.0f narration samples are at full scale (clipped), peak %.2f dBFS", q->n->clipped,
		 q->n->samples, q->n->peak_db);
}

/* The longest span, and a sentence listing the first few. */
static double spans_longest(const struct qa_spans *s, double min, const char *what, char *out, size_t outsz)
{
	double longest = 0;
	int shown = 0, o = snprintf(out, outsz, "%s", "");
	for (size_t i = 0; i < s->n; i++) {
		double d = s->v[i].end - s->v[i].start;
		if (d > longest) longest = d;
		if (d > min && shown++ < 4 && o < (int)outsz)
			o += snprintf(out + o, outsz - (size_t)o, "%s%s %.2f-%.2f s (%.2f s)", shown > 1 ? "; " : "",
				      what, s->v[i].start, s->v[i].end, d);
	}
	if (!shown) snprintf(out, outsz, "no %s longer than %g s", what, min);
	return longest;
}

static void span_check(struct qa_result *r, const struct qa_spans *s, double max, const char *what)
{
	r->value = spans_longest(s, max, what, r->detail, sizeof r->detail);
	snprintf(r->threshold, sizeof r->threshold, "≤ %g", max);
	r->miss = r->value > max;
}

static void black(struct qa *q, struct qa_result *r)
{
	span_check(r, &q->m.black, opt(q, "black_max_seconds"), "black");
}

/* A black picture is frozen too: those spans are the black check's. */
static void frozen(struct qa *q, struct qa_result *r)
{
	struct qa_spans own = { 0 };
	for (size_t i = 0; i < q->m.freeze.n; i++) {
		const struct qa_span *z = &q->m.freeze.v[i];
		double in_black = 0;
		for (size_t b = 0; b < q->m.black.n; b++)
			in_black += fmax(0, fmin(z->end, q->m.black.v[b].end) - fmax(z->start, q->m.black.v[b].start));
		if (in_black < (z->end - z->start) / 2) qa_spans_add(&own, z->start, z->end);
	}
	span_check(r, &own, opt(q, "freeze_max_seconds"), "frozen");
	free(own.v);
}

static void silence(struct qa *q, struct qa_result *r)
{
	span_check(r, &q->m.silence, opt(q, "silence_max_seconds"), "silence");
}

static void duration(struct qa *q, struct qa_result *r)
{
	double tol = opt(q, "duration_tolerance");
	r->value = fabs(q->m.audio_s - q->m.video_s);
	snprintf(r->threshold, sizeof r->threshold, "≤ %g", tol);
	r->miss = !(r->value <= tol);
	snprintf(r->detail, sizeof r->detail, "audio %.2f s, video %.2f s", q->m.audio_s, q->m.video_s);
}

/* Heard time with a subtitle on screen, over all heard time. */
static void coverage(struct qa *q, struct qa_result *r)
{
	double heard = 0, shown = 0, min = opt(q, "subtitle_coverage_min");
	for (size_t i = 0; i < q->speech.n; i++) {
		const struct qa_span *s = &q->speech.v[i];
		heard += s->end - s->start;
		for (size_t c = 0; c < q->srt.n; c++)
			shown += fmax(0, fmin(s->end, q->srt.v[c].end) - fmax(s->start, q->srt.v[c].start));
	}
	r->value = heard > 0 ? 100 * fmin(1, shown / heard) : NAN;
	snprintf(r->threshold, sizeof r->threshold, "≥ %g", min);
	r->miss = !(r->value >= min);
	snprintf(r->detail, sizeof r->detail, "subtitles shown for %.1f s of %.1f s of speech (%zu cues)", shown, heard,
		 q->srt.n);
}

/* The cue with the largest |offset| from its reference, in ms. */
static void offsets(struct qa_result *r, const struct qa_cues *srt, const double *ref, size_t nref, double max_ms,
		    const char *what, cJSON *list)
{
	size_t worst = 0;
	r->value = srt->n && nref ? 0 : NAN;
	for (size_t i = 0; i < srt->n && nref; i++) {
		double best = INFINITY;
		for (size_t k = 0; k < nref; k++)
			if (fabs(srt->v[i].start - ref[k]) < fabs(best)) best = srt->v[i].start - ref[k];
		if (list) cJSON_AddItemToArray(list, cJSON_CreateNumber(round(best * 1000)));
		if (fabs(best * 1000) > fabs(r->value)) r->value = round(best * 1000), worst = i;
	}
	snprintf(r->threshold, sizeof r->threshold, "≤ %g", max_ms);
	r->miss = !(fabs(r->value) <= max_ms);
	snprintf(r->detail, sizeof r->detail, "cue %zu starts %+.0f ms from %s (%zu cues)", worst + 1, r->value, what,
		 srt->n);
}

/* Each subtitle cue against a reference start (ref, n of them; freed here). */
static void sub_against(struct qa *q, struct qa_result *r, double *ref, size_t n, const char *limit, const char *what,
			const char *key)
{
	offsets(r, &q->srt, ref, n, opt(q, limit), what, cJSON_AddArrayToObject(q->measured, key));
	free(ref);
}

/* Each subtitle cue against the narration cue the audio stage timed. */
static void sub_offset(struct qa *q, struct qa_result *r)
{
	double *ref = xcalloc(q->said.n + 1, sizeof *ref);
	for (size_t i = 0; i < q->said.n; i++) ref[i] = q->said.v[i].start;
	sub_against(q, r, ref, q->said.n, "subtitle_offset_max_ms", "its narration", "subtitle_offsets_ms");
}

/* Each subtitle cue against the nearest speech onset heard in the video. */
static void sub_onset(struct qa *q, struct qa_result *r)
{
	double *starts = xcalloc(q->speech.n + 1, sizeof *starts);
	size_t n = q->speech.n;
	for (size_t i = 0; i < n; i++) starts[i] = q->speech.v[i].start;
	sub_against(q, r, starts, n, "subtitle_onset_max_ms", "the nearest speech onset", "subtitle_onsets_ms");
}

static void script_words(struct qa_words *w)
{
	char *text = fsio_exists("script.md") ? fsio_read("script.md", 4 << 20, NULL) : NULL;
	struct script sc;
	script_parse(text, &sc);
	for (size_t i = 0; i < sc.n; i++) qa_words_add(w, sc.seg[i].text ? sc.seg[i].text : "");
	script_free(&sc);
	free(text);
}

static void script_match(struct qa *q, struct qa_result *r)
{
	struct qa_words want = { 0 }, have = { 0 };
	double min = opt(q, "script_match_min");
	size_t found;

	script_words(&want);
	for (size_t i = 0; i < q->srt.n; i++) qa_words_add(&have, q->srt.v[i].text);
	found = qa_words_found(&want, &have);
	r->value = want.n ? round(1000.0 * found / want.n) / 10 : NAN;
	snprintf(r->threshold, sizeof r->threshold, "≥ %g", min);
	r->miss = !(r->value >= min);
	snprintf(r->detail, sizeof r->detail, "%zu of the script's %zu words are in the subtitles", found, want.n);
	qa_words_free(&want);
	qa_words_free(&have);
}

/* B-roll segments the channel's paid provider was asked for, rendered
 * offline instead: its request was in doubt and is not paid for twice
 * (clip_jobs.c, substitute()).  The reviewer decides whether to pay again. */
static void paid_clips_offline(struct qa *q, struct qa_result *r)
{
	const cJSON *prov = json_get(q->ctx->channel, "providers.broll"), *seg;
	int paid = cost_is_paid(prov);
	const cJSON *segs = paid ? json_get(q->timeline, "segments") : NULL;
	struct sbuf list = { 0 };
	int n = 0;

	cJSON_ArrayForEach (seg, segs) {
		int i = (int)json_num(seg, "index", -1);
		char *clip = xasprintf("broll/seg-%02d.mp4", i), *recipe = xasprintf("broll/seg-%02d.json", i);
		if (!strcmp(json_str(seg, "visual", ""), "broll") && !fsio_exists(clip) && fsio_exists(recipe)) {
			sb_printf(&list, "%s%d", n ? ", " : "", i);
			n++;
		}
		free(clip);
		free(recipe);
	}
	r->value = n;
	snprintf(r->threshold, sizeof r->threshold, "≤ 0");
	r->miss = n > 0;
	if (n)
		snprintf(r->detail, sizeof r->detail,
			 "b-roll of segment%s %s rendered offline: %s may have made %s, but the request was in doubt, "
			 "so it was not paid for twice (the broll stage's log says when it was sent); "
			 "`reject --to broll` asks %s again",
			 n > 1 ? "s" : "", list.s, json_str(prov, "name", ""), n > 1 ? "them" : "it",
			 json_str(prov, "name", ""));
	else
		snprintf(r->detail, sizeof r->detail, "%s",
			 paid ? "every b-roll segment is the paid provider's"
			      : "the b-roll provider is not a paid one");
	sb_free(&list);
}

static void video_codec(struct qa *q, struct qa_result *r)
{
	snprintf(r->text, sizeof r->text, "%s/%s", q->m.vcodec, q->m.pix_fmt);
	snprintf(r->threshold, sizeof r->threshold, "h264/yuv420p");
	r->miss = strcmp(r->text, r->threshold) != 0;
	snprintf(r->detail, sizeof r->detail, "video is %s, players expect h264/yuv420p", r->text);
}

static void audio_codec(struct qa *q, struct qa_result *r)
{
	snprintf(r->text, sizeof r->text, "%s/%d", q->m.acodec, q->m.sample_rate);
	snprintf(r->threshold, sizeof r->threshold, "aac/48000");
	r->miss = strcmp(r->text, r->threshold) != 0;
	snprintf(r->detail, sizeof r->detail, "audio is %s Hz, expected AAC at 48000 Hz", r->text);
}

static void resolution(struct qa *q, struct qa_result *r)
{
	snprintf(r->text, sizeof r->text, "%dx%d", q->m.w, q->m.h);
	snprintf(r->threshold, sizeof r->threshold, "%dx%d", q->f->w, q->f->h);
	r->miss = strcmp(r->text, r->threshold) != 0;
	snprintf(r->detail, sizeof r->detail, "frame %s, the channel's video.width/height %s", r->text, r->threshold);
}

static void frame_rate(struct qa *q, struct qa_result *r)
{
	r->value = round(q->m.fps * 1000) / 1000;
	snprintf(r->threshold, sizeof r->threshold, "%d", q->f->fps);
	r->miss = !(fabs(r->value - q->f->fps) < 0.01);
	snprintf(r->detail, sizeof r->detail, "%.3f frames per second, the channel's video.fps %d", r->value,
		 q->f->fps);
}

static void faststart(struct qa *q, struct qa_result *r)
{
	snprintf(r->text, sizeof r->text, "%s", q->m.faststart == 1 ? "yes" : "no");
	snprintf(r->threshold, sizeof r->threshold, "yes");
	r->miss = q->m.faststart != 1;
	snprintf(r->detail, sizeof r->detail, "the moov box %s mdat: %s", q->m.faststart == 1 ? "precedes" : "follows",
		 q->m.faststart == 1 ? "playback starts before the download ends"
				     : "players must download it all first");
}

struct qa_check {
	const char *name, *unit;
	enum qa_policy def;
	void (*run)(struct qa *q, struct qa_result *r);
};
/* clang-format off: a table keeps one row per line */
static const struct qa_check checks[] = {
	{ "loudness_integrated", "LUFS", QA_P_FAIL, loudness },
	{ "true_peak", "dBTP", QA_P_WARN, true_peak },
	{ "narration_clipping", "%", QA_P_FAIL, clipping },
	{ "black_video", "s", QA_P_FAIL, black },
	{ "frozen_video", "s", QA_P_WARN, frozen },
	{ "silence", "s", QA_P_FAIL, silence },
	{ "duration_mismatch", "s", QA_P_FAIL, duration },
	{ "subtitle_coverage", "%", QA_P_WARN, coverage },
	{ "subtitle_offset", "ms", QA_P_WARN, sub_offset },
	{ "subtitle_onset", "ms", QA_P_WARN, sub_onset },
	{ "script_match", "%", QA_P_WARN, script_match },
	{ "paid_clips_offline", "segments", QA_P_WARN, paid_clips_offline },
	{ "video_codec", "", QA_P_FAIL, video_codec },
	{ "audio_codec", "", QA_P_FAIL, audio_codec },
	{ "resolution", "px", QA_P_FAIL, resolution },
	{ "frame_rate", "fps", QA_P_FAIL, frame_rate },
	{ "faststart", "", QA_P_FAIL, faststart },
};
/* clang-format on */
#define NCHECKS (sizeof checks / sizeof *checks)

static int policy_index(const char *s)
{
	for (int i = 0; policy_names[i]; i++)
		if (!strcmp(s, policy_names[i])) return i;
	return -1;
}

/* qa_checks: every key a check's name, every value fail|warn|off (the registry row's extra check). */
int assembly_check(const cJSON *opts)
{
	const cJSON *it;
	cJSON_ArrayForEach (it, cJSON_GetObjectItemCaseSensitive(opts, "qa_checks")) {
		size_t i = 0;
		while (i < NCHECKS && strcmp(checks[i].name, it->string)) i++;
		if (i == NCHECKS) return err_set("qa_checks.%s is not a QA check (see README: QA report)", it->string);
		if (!cJSON_IsString(it) || policy_index(it->valuestring) < 0)
			return err_set("qa_checks.%s: use fail, warn or off", it->string);
	}
	return 0;
}

static enum qa_policy policy(const struct qa *q, const struct qa_check *c)
{
	const char *one = json_str(cJSON_GetObjectItemCaseSensitive(q->ctx->provider, "qa_checks"), c->name, NULL);
	const char *all = json_str(q->ctx->provider, "qa", NULL);
	int p = one ? policy_index(one) : all ? policy_index(all) : -1;
	return p < 0 ? c->def : (enum qa_policy)p;
}

static cJSON *result_json(const struct qa_check *c, const struct qa_result *r, const char *status)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", c->name);
	cJSON_AddStringToObject(o, "status", status);
	if (r->text[0])
		cJSON_AddStringToObject(o, "value", r->text);
	else if (isfinite(r->value))
		cJSON_AddNumberToObject(o, "value", round(r->value * 100) / 100);
	else
		cJSON_AddNullToObject(o, "value");
	cJSON_AddStringToObject(o, "unit", c->unit);
	cJSON_AddStringToObject(o, "threshold", r->threshold);
	cJSON_AddStringToObject(o, "detail", r->detail);
	return o;
}

/* "black_video 1.60 s (threshold ≤ 1 s: black 2.00-3.60 s (1.60 s))" */
static void why_add(struct sbuf *why, const struct qa_check *c, const struct qa_result *r)
{
	sb_printf(why, "%s%s ", why->len ? "; " : "", c->name);
	if (r->text[0])
		sb_puts(why, r->text);
	else if (isfinite(r->value))
		sb_printf(why, "%.2f %s", r->value, c->unit);
	else
		sb_puts(why, "not measured");
	sb_printf(why, " (threshold %s %s: %s)", r->threshold, c->unit, r->detail);
}

/* One check: its row in the report, and (when it fails) its reason in why. */
static const char *run_check(struct qa *q, const struct qa_check *c, cJSON *arr, struct sbuf *why)
{
	struct qa_result r = { .value = NAN };
	enum qa_policy p = policy(q, c);
	const char *status;

	if (p == QA_P_OFF) return "pass";
	c->run(q, &r);
	status = !r.miss ? "pass" : p == QA_P_FAIL ? "fail" : "warn";
	if (r.miss && p == QA_P_FAIL) why_add(why, c, &r);
	if (r.miss) stage_log(q->ctx, p == QA_P_FAIL ? "error" : "warn", "QA %s %s: %s", c->name, status, r.detail);
	cJSON_AddItemToArray(arr, result_json(c, &r, status));
	return status;
}

static void spans_json(cJSON *o, const char *key, const struct qa_spans *s)
{
	cJSON *a = cJSON_AddArrayToObject(o, key);
	for (size_t i = 0; i < s->n; i++) {
		cJSON *p = cJSON_CreateArray();
		cJSON_AddItemToArray(p, cJSON_CreateNumber(round(s->v[i].start * 1000) / 1000));
		cJSON_AddItemToArray(p, cJSON_CreateNumber(round(s->v[i].end * 1000) / 1000));
		cJSON_AddItemToArray(a, p);
	}
}

static void measured_json(const struct qa *q)
{
	cJSON *o = q->measured;
	cJSON_AddNumberToObject(o, "integrated_lufs", q->m.lufs);
	cJSON_AddNumberToObject(o, "true_peak_dbtp", q->m.true_peak);
	cJSON_AddNumberToObject(o, "loudness_range_lu", q->m.lra);
	cJSON_AddNumberToObject(o, "narration_lufs", q->n->input_i);
	cJSON_AddNumberToObject(o, "narration_true_peak_dbtp", q->n->input_tp);
	cJSON_AddNumberToObject(o, "narration_clipped_samples", q->n->clipped);
	cJSON_AddNumberToObject(o, "audio_seconds", q->m.audio_s);
	cJSON_AddNumberToObject(o, "video_seconds", q->m.video_s);
	cJSON_AddNumberToObject(o, "width", q->m.w);
	cJSON_AddNumberToObject(o, "height", q->m.h);
	cJSON_AddNumberToObject(o, "fps", q->m.fps);
	spans_json(o, "black", &q->m.black);
	spans_json(o, "frozen", &q->m.freeze);
	spans_json(o, "silences", &q->m.silence);
}

/* What is heard: [0, audio end] less the silences. */
static void speech_spans(struct qa *q)
{
	double at = 0;
	for (size_t i = 0; i < q->m.silence.n; i++) {
		if (q->m.silence.v[i].start > at) qa_spans_add(&q->speech, at, q->m.silence.v[i].start);
		at = q->m.silence.v[i].end;
	}
	if (isfinite(q->m.audio_s) && q->m.audio_s > at + 0.05) qa_spans_add(&q->speech, at, q->m.audio_s);
}

/* Every check, qa.json, and the verdict: STAGE_OK unless a failing check
 * fails the stage (the reason names each check, figure and threshold). */
static enum stage_rc report(struct qa *q)
{
	cJSON *root = cJSON_CreateObject(), *arr;
	struct sbuf why = { 0 };
	int fails = 0, warns = 0;
	enum stage_rc rc = STAGE_OK;

	cJSON_AddNumberToObject(root, "version", 1);
	cJSON_AddStringToObject(root, "verdict", "pass");
	arr = cJSON_AddArrayToObject(root, "checks");
	q->measured = cJSON_AddObjectToObject(root, "measured");
	for (size_t i = 0; i < NCHECKS; i++) {
		const char *st = run_check(q, &checks[i], arr, &why);
		fails += !strcmp(st, "fail");
		warns += !strcmp(st, "warn");
	}
	measured_json(q);
	cJSON_ReplaceItemInObject(root, "verdict", cJSON_CreateString(fails ? "fail" : warns ? "warn" : "pass"));
	if (json_write_file("qa.json", root) < 0)
		rc = stage_fail(q->ctx, STAGE_RETRY, "cannot write qa.json: %s", err_msg());
	else if (fails)
		rc = stage_fail(q->ctx, STAGE_FAIL,
				"QA failed (%d check%s; see qa.json): %s. Fix the input, or set "
				"providers.assembly.qa_checks.<name>: warn in channel.yaml",
				fails, fails > 1 ? "s" : "", why.s);
	stage_log(q->ctx, "info", "QA %s: %d failed, %d warned, %zu checks",
		  fails           ? "fail"
			  : warns ? "warn"
				  : "pass",
		  fails, warns, NCHECKS);
	cJSON_Delete(root);
	sb_free(&why);
	return rc;
}

enum stage_rc qa_run(struct stage_ctx *ctx, const char *video, const struct media_frame *f,
		     const struct qa_narration *n, const cJSON *timeline, const char *const *files)
{
	struct qa q = { .ctx = ctx, .f = f, .n = n, .timeline = timeline };
	enum stage_rc rc;

	if (qa_measure(video, &q.m, opt(&q, "silence_db"), ctx->timeout_s, files) < 0)
		return stage_fail(ctx, STAGE_FAIL, "QA of %s: %s", video, err_msg());
	if (qa_srt_load("subtitles.srt", &q.srt) < 0) {
		qa_media_free(&q.m);
		return stage_fail(ctx, STAGE_FAIL, "QA: cannot read subtitles.srt: %s", err_msg());
	}
	qa_said_load(timeline, &q.said);
	speech_spans(&q);
	rc = report(&q);
	qa_media_free(&q.m);
	qa_cues_free(&q.srt);
	qa_cues_free(&q.said);
	free(q.speech.v);
	return rc;
}
