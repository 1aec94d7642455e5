/*
 * prov_assembly.c - assembly stage: final.mp4 and thumbnail.png with ffmpeg.
 *
 * One ffmpeg run: one input per segment of timeline.json (its avatar/ or
 * broll/ clip when present, else its b-roll or avatar recipe rendered here,
 * in the same graph (broll_gen.c, avatar_gen.c: generated b-roll and the
 * offline presenter are encoded once, in this encode), else a title card
 * with the channel name and the episode title),
 * each normalised to the frame and to exactly its segment's
 * frames, concatenated, the captions burned in when video.burn_subtitles
 * (captions.ass, or subtitles.srt for a tall frame; drawn only where they
 * change and blended in their band, caption_band.c),
 * the narration as AAC 192k (at 128k a synthetic voice's true peak rises
 * 1.6 dB in the codec, past the -1 dBTP ceiling); H.264 yuv420p, +faststart.  Clips may have
 * any length: a longer one is cut, a shorter one fills its segment as
 * video.short_clip says (hold its last frame, loop it, or show the title
 * card).  A thumbnail (thumbnail.c), drawn beside the loudness pass and the
 * encode (media_bg.c: a forked copy of this process): a frame from the middle of the
 * first avatar clip shown, within the clip's measured length (or a
 * gradient), with the title on a band below it.  The narration is
 * loudness-normalised in the same encode (measured by ebur128, then loudnorm
 * with those figures, qa_loudnorm.c),
 * and the finished video is measured for the QA report, qa.json (qa.c): its
 * picture on a branch of the encode's own graph (not decoded again), its
 * sound from final.mp4.
 *
 * Invariants: final.mp4 appears only after ffprobe has found its duration
 * within 0.5 s of the narration's, and only through media_commit(); the
 * same holds for thumbnail.png (without the duration check).  User text
 * (title, channel name) reaches ffmpeg only through textfile= scratch files.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CARD_COLOR "0x14213d"
/* The scratch files of a run, under the temporary-name convention of fsio.c
 * (".<name>.<pid>.tmp.<ext>": ffmpeg picks the format by the extension), so
 * tmpclean removes what a killed run left; removed whatever happens. */
enum { S_FINAL, S_SHORTS, S_CARD_TITLE, S_CARD_CHANNEL, S_QA_BLACK, S_QA_FREEZE, S_COUNT };
static char *scratch[S_COUNT];
#define FINAL_TMP scratch[S_FINAL]
#define SHORTS_TMP scratch[S_SHORTS]
#define CARD_TITLE scratch[S_CARD_TITLE]
#define CARD_CHANNEL scratch[S_CARD_CHANNEL]
#define QA_FILES ((const char *const *)scratch + S_QA_BLACK) /* the picture's QA events, from the encode */
#define MAX_DRIFT 0.5
#define SHORT_SLACK 0.25   /* a clip this much shorter is not "short": it is held */
#define THUMB_MIN_SEEK 0.2 /* seek no less: a clip of a frame or two has one at 0 */
#define GRAPH_MAX 120000   /* the graph is one argument: Linux takes 128 KiB at most */

/* providers.assembly options: loudness and the QA report's thresholds and policy (qa.c). */
/* clang-format off: a table keeps one row per line */
const struct provider_opt assembly_opts[] = {
	{ "normalize_loudness", OPT_BOOL, "true", 0, 0, NULL, "two-pass loudnorm of the narration to loudness_target" },
	{ "loudness_target", OPT_NUMBER, "-14", -40, -5, NULL, "integrated loudness, LUFS" },
	{ "loudness_tolerance", OPT_NUMBER, "1", 0.1, 10, NULL, "QA: LU either side of loudness_target" },
	{ "true_peak_max", OPT_NUMBER, "-1", -9, 0, NULL, "true peak ceiling, dBTP" },
	{ "clipping_max_percent", OPT_NUMBER, "0.01", 0, 100, NULL, "QA: narration samples at full scale, %" },
	{ "black_max_seconds", OPT_NUMBER, "1", 0, 3600, NULL, "QA: longest black picture" },
	{ "freeze_max_seconds", OPT_NUMBER, "8", 0, 3600, NULL, "QA: longest frozen picture" },
	{ "silence_max_seconds", OPT_NUMBER, "2.5", 0, 3600, NULL, "QA: longest silence" },
	{ "silence_db", OPT_NUMBER, "-45", -90, -10, NULL, "QA: sound below this is silence, dB" },
	{ "duration_tolerance", OPT_NUMBER, "0.3", 0, 60, NULL, "QA: audio and video lengths may differ by this, s" },
	{ "subtitle_coverage_min", OPT_NUMBER, "90", 0, 100, NULL, "QA: % of speech with a subtitle shown" },
	{ "subtitle_offset_max_ms", OPT_NUMBER, "200", 0, 10000, NULL, "QA: cue start vs its narration, ms" },
	{ "subtitle_onset_max_ms", OPT_NUMBER, "250", 0, 10000, NULL, "QA: cue start vs the speech heard, ms" },
	{ "script_match_min", OPT_NUMBER, "90", 0, 100, NULL, "QA: % of the script's words in the subtitles" },
	{ "qa", OPT_ENUM, NULL, 0, 0, "fail|warn", "QA policy for every check (unset: each check's default)" },
	{ "qa_checks", OPT_OBJECT, NULL, 0, 0, NULL, "QA policy per check: {black_video: warn, ...} (fail|warn|off)" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

/* A segment's picture: its clip (NULL: its recipe, else the title card),
 * how long the clip has pictures, and whether it plays again until the
 * segment ends; or a b-roll recipe and the scratch file of its text; or
 * the offline presenter's recipe (avatar_gen.c). */
struct seg_src {
	char *clip;
	double clip_s;
	int loop;
	struct broll_recipe recipe;
	char *text; /* scratch: the recipe's text for drawtext; NULL: no recipe */
	int still;  /* an avatar recipe: avatar/still.png in this motion */
	enum avatar_motion motion;
};

struct assembly {
	struct media_frame f;
	struct media_frame chan; /* the channel's frame: recipes render at it, like clips */
	struct media_timeline t;
	struct seg_src *src; /* one per timeline segment */
	const char *font;
	char *font_esc; /* escaped for the filter graph */
	char *title, *channel;
	const char *audio;
	double audio_s;
	int ass;                  /* captions.ass written: burned instead of subtitles.srt */
	struct qa_narration narr; /* loudness pass one */
	char *loudnorm;           /* pass two, NULL: the narration as it is */
};

static int min_side(const struct media_frame *f)
{
	return f->w < f->h ? f->w : f->h;
}

/* Characters per line for text of this size across 90% of the width. */
static int wrap_cols(const struct media_frame *f, int size)
{
	int cols = f->w * 9 / 10 * 10 / (size * 6);
	return cols < 6 ? 6 : cols;
}

static char *title_get(struct stage_ctx *ctx)
{
	cJSON *meta = fsio_exists("metadata.json") ? json_load_file("metadata.json", 1 << 20) : NULL;
	const char *t = json_str(meta, "final_title", NULL);
	char *out;
	if (!t || !*t) t = json_str(ctx->idea, "topic", NULL);
	out = xstrdup(t && *t ? t : "Untitled");
	cJSON_Delete(meta);
	return out;
}

static char *channel_name(struct stage_ctx *ctx)
{
	const char *n = json_str(ctx->channel, "name", NULL), *slash;
	if (n && *n) return xstrdup(n);
	slash = ctx->channel_dir ? strrchr(ctx->channel_dir, '/') : NULL;
	return xstrdup(slash ? slash + 1 : "");
}

/* drawtext for one scratch file; y is an ffmpeg expression. */
static char *drawtext(const struct assembly *as, const char *file, int size, const char *color, const char *y)
{
	char *ef = media_filter_escape(file);
	char *out = xasprintf("drawtext=fontfile=%s:textfile=%s:expansion=none:fontcolor=%s:"
			      "fontsize=%d:line_spacing=%d:x=(w-text_w)/2:y=%s:"
			      "shadowcolor=black@0.6:shadowx=2:shadowy=2",
			      as->font_esc, ef, color, size, size / 4, y);
	free(ef);
	return out;
}

static int card_files(const struct assembly *as)
{
	char *t = media_wrap(as->title, wrap_cols(&as->f, min_side(&as->f) / 12), 4);
	int rc = media_write_scratch(CARD_TITLE, t);
	if (rc == 0) rc = media_write_scratch(CARD_CHANNEL, as->channel);
	free(t);
	return rc;
}

static int nonempty_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* The clip for a segment, or NULL when the card should be shown. */
static char *seg_clip(const struct media_seg *s)
{
	char *p = xasprintf("%s/seg-%02d.mp4", s->broll ? "broll" : "avatar", s->index);
	if (nonempty_file(p)) return p;
	free(p);
	return NULL;
}

/* How a short clip fills its segment, as the channel says (video.short_clip):
 * held (tpad in add_segment clones its last frame), looped, or not shown. */
static void short_clip(struct stage_ctx *ctx, const struct assembly *as, struct seg_src *c, double need)
{
	static const char *const how[] = { [MEDIA_SHORT_HOLD] = "its last frame is held",
					   [MEDIA_SHORT_LOOP] = "it is looped",
					   [MEDIA_SHORT_STILL] = "the title card is shown instead" };
	enum media_short m = as->f.short_clip;

	stage_log(ctx, "info", "%s lasts %.2f s, its segment %.2f s: %s (video.short_clip: %s)", c->clip, c->clip_s,
		  need, how[m], media_short_names[m]);
	c->loop = m == MEDIA_SHORT_LOOP;
	if (m == MEDIA_SHORT_STILL) {
		free(c->clip);
		c->clip = NULL;
	}
}

/* An avatar segment without a clip: its recipe, if the avatar stage wrote
 * one and the picture it names. */
static enum stage_rc still_load(struct stage_ctx *ctx, const struct media_seg *s, struct seg_src *c)
{
	char *path = avatar_recipe_path(s->index);
	enum stage_rc rc = STAGE_OK;

	if (!nonempty_file(path)) goto out;
	if (avatar_recipe_load(path, &c->motion) < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "%s; re-run the avatar stage to write it again", err_msg());
	else if (!nonempty_file(AVATAR_STILL))
		rc = stage_fail(ctx, STAGE_FAIL, "%s names the picture %s, which is missing; re-run the avatar stage",
				path, AVATAR_STILL);
	else
		c->still = 1;
out:
	free(path);
	return rc;
}

/* A segment without a clip: its recipe, if its stage wrote one (for b-roll,
 * with its text in a scratch file for drawtext). */
static enum stage_rc recipe_load(struct stage_ctx *ctx, const struct media_seg *s, struct seg_src *c)
{
	char *path = broll_recipe_path(s->index);
	enum stage_rc rc = STAGE_OK;

	if (!s->broll) {
		free(path);
		return still_load(ctx, s, c);
	}
	if (!nonempty_file(path)) goto out;
	if (broll_recipe_load(path, &c->recipe) < 0) {
		rc = stage_fail(ctx, STAGE_FAIL, "%s; re-run the broll stage to write it again", err_msg());
		goto out;
	}
	c->text = fsio_tmp_name_ext(path, "txt");
	if (media_write_scratch(c->text, c->recipe.text) < 0) rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
out:
	free(path);
	return rc;
}

/* Each segment's clip, measured: a clip of any length is fine (a longer
 * one is cut in add_segment), but one ffprobe cannot read is not.  A
 * recipe makes exactly its segment's frames. */
static enum stage_rc sources_load(struct stage_ctx *ctx, struct assembly *as)
{
	as->src = xcalloc(as->t.n ? as->t.n : 1, sizeof *as->src);
	for (size_t i = 0; i < as->t.n; i++) {
		const struct media_seg *s = &as->t.seg[i];
		struct seg_src *c = &as->src[i];
		double need = (double)media_seg_frames(s, as->f.fps) / as->f.fps;
		if (need <= 0) continue;
		if (!(c->clip = seg_clip(s))) {
			enum stage_rc rc = recipe_load(ctx, s, c);
			if (rc != STAGE_OK) return rc;
			continue;
		}
		if ((c->clip_s = media_video_duration(c->clip)) <= 0)
			return stage_fail(ctx, STAGE_FAIL, "%s; re-run the %s stage to make it again", err_msg(),
					  s->broll ? "broll" : "avatar");
		if (c->clip_s < need - SHORT_SLACK) short_clip(ctx, as, c, need);
	}
	return STAGE_OK;
}

/* One input per visible segment, and its normalising filter chain. */
static void add_segment(const struct assembly *as, const struct media_seg *s, long frames, int input,
			struct media_argv *a, struct sbuf *g)
{
	const struct media_frame *f = &as->f;
	const struct seg_src *c = &as->src[s - as->t.seg];

	if (c->clip) {
		if (c->loop) media_argv_words(a, "-stream_loop -1");
		media_argv_opt(a, "-i", "%s", c->clip);
		sb_printf(g, "[%d:v]", input);
	} else if (c->still) {
		char *filter = avatar_gen_filter(&as->chan, c->motion, s, frames, input, as->audio);
		media_argv_opt(a, "-i", "%s", AVATAR_STILL);
		sb_printf(g, "%s,", filter);
		free(filter);
	} else if (c->text) {
		const char *scale;
		char *src = broll_gen_source(&as->chan, &c->recipe, &scale);
		char *filter = broll_gen_filter(&as->chan, scale, as->font, c->text);
		media_argv_words(a, "-f lavfi");
		media_argv_opt(a, "-i", "%s", src);
		sb_printf(g, "[%d:v]%s,", input, filter);
		free(src);
		free(filter);
	} else {
		int big = min_side(f) / 12, small = min_side(f) / 22;
		char *ch = drawtext(as, CARD_CHANNEL, small, "0xc0c8d8", "h/8");
		char *ti = drawtext(as, CARD_TITLE, big, "white", "(h-text_h)/2");
		media_argv_words(a, "-f lavfi");
		media_argv_opt(a, "-i", "color=c=" CARD_COLOR ":s=%dx%d:r=%d", f->w, f->h, f->fps);
		sb_printf(g, "[%d:v]%s,%s,", input, ch, ti);
		free(ch);
		free(ti);
	}
	sb_printf(g,
		  "scale=%d:%d:force_original_aspect_ratio=decrease,"
		  "pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=%d,"
		  "tpad=stop_mode=clone:stop_duration=%.3f,trim=end_frame=%ld,"
		  "setpts=PTS-STARTPTS[v%d];",
		  f->w, f->h, f->w, f->h, f->fps, (double)frames / f->fps + 1, frames, input);
}

/* The subtitles.srt style of add_subtitles() in pixels, for caption_band.c
 * (libass's script is 384x288 for a subtitles.srt: sizes are in 288ths of
 * the height, margins are scaled by the larger of the two ratios here, and a
 * character is taken as 0.75 em wide: a low guess of what a line holds). */
static void srt_band(const struct media_frame *f, int size, int margin_v, int margin_lr, struct caption_band *b)
{
	double y = f->h / 288.0, x = fmax(f->w / 384.0, y);
	*b = (struct caption_band){ .align = 2,
				    .size = (int)ceil(size * y),
				    .margin_v = (int)(margin_v * y),
				    .outline = 1.2 * y,
				    .canvas = "0x000000" }; /* ffmpeg's default outline colour */
	b->cols = (int)((f->w - 2 * margin_lr * x) / (0.75 * size * y));
}

/* The captions burned in, after the chain so far (the video of frames
 * frames): subtitles=ARGS drawn where the captions change, in band b
 * (caption_band.c), else, when that cannot be vouched for (or b is NULL,
 * err_msg() saying why), the plain filter on every frame. */
static void burn(struct stage_ctx *ctx, const struct media_frame *f, long frames, const char *file, const char *args,
		 struct caption_band *b, struct sbuf *g)
{
	char *branch = b ? caption_band_graph(file, args, f, frames, "capmain", b) : NULL;
	if (branch && g->len + strlen(branch) > GRAPH_MAX) {
		err_set("the graph would be longer than ffmpeg's argument limit");
		free(branch);
		branch = NULL;
	}
	if (!branch) {
		stage_log(ctx, "warn", "captions: %s; libass draws them on every frame instead (slower)", err_msg());
		sb_printf(g, ",subtitles=%s", args);
		return;
	}
	stage_log(ctx, "info", "captions: %s drawn on %zu of %ld frames, blended in rows %d-%d", file, b->drawn, frames,
		  b->y, b->y + b->h - 1);
	sb_printf(g, "[capmain];%s", branch);
	free(branch);
}

/* Subtitle style scaled for the frame (libass sizes are in 288ths of the
 * height, so a vertical frame needs a smaller number). */
static void add_subtitles(struct stage_ctx *ctx, const struct assembly *as, long frames, struct sbuf *g)
{
	int size = as->f.h > as->f.w ? 9 : 16;
	int tall = as->f.h > as->f.w; /* narrower lines, well inside the frame */
	int mv = tall ? 40 : 18, mlr = tall ? 24 : 10;
	struct caption_band b;
	char *style, *es, *args;

	if (as->ass && !tall) { /* captions.ass carries its own style, laid out for the wide frame */
		int known = captions_band(ctx->channel, &as->f, &b) == 0;
		burn(ctx, &as->f, frames, "captions.ass", "filename=captions.ass", known ? &b : NULL, g);
		return;
	}
	style = xasprintf("FontName=DejaVu Sans,FontSize=%d,Outline=1.2,Shadow=0,MarginV=%d,MarginL=%d,MarginR=%d",
			  size, mv, mlr, mlr);
	es = media_filter_escape(style);
	args = xasprintf("filename=subtitles.srt:force_style=%s", es);
	srt_band(&as->f, size, mv, mlr, &b);
	burn(ctx, &as->f, frames, "subtitles.srt", args, &b, g);
	free(args);
	free(es);
	free(style);
}

/* qa: also the picture's QA detectors (qa_video_chain), on a copy of what
 * is encoded, to [qb] and [qf]: the finished video is not decoded again. */
static void build_graph(struct stage_ctx *ctx, const struct assembly *as, struct media_argv *a, struct sbuf *g,
			int *audio_input, int qa)
{
	int n = 0;
	long total = 0;
	for (size_t i = 0; i < as->t.n; i++) {
		long frames = media_seg_frames(&as->t.seg[i], as->f.fps);
		if (frames <= 0) continue;
		add_segment(as, &as->t.seg[i], frames, n++, a, g);
		total += frames;
	}
	for (int i = 0; i < n; i++) sb_printf(g, "[v%d]", i);
	sb_printf(g, "concat=n=%d:v=1:a=0", n);
	if (as->f.burn && nonempty_file("subtitles.srt")) add_subtitles(ctx, as, total, g);
	sb_puts(g, qa ? ",format=yuv420p,split=2[out][qa];" : ",format=yuv420p[out]");
	if (qa) {
		char *chain = qa_video_chain("qa", "qb", "qf", QA_FILES);
		sb_puts(g, chain);
		free(chain);
	}
	*audio_input = n;
}

/* overlay (the caption band) has each video frame copied outside ffmpeg's
 * buffer pools (framesync), and glibc would give those megabytes back to the
 * kernel after every frame: ~650,000 page faults, 1.2 s of system time in
 * the demo's minute of 1080p.  With these tunables (read by glibc when
 * ffmpeg starts) the memory stays with ffmpeg, up to 128 MB; a value the
 * operator set is kept. */
static void malloc_keep(void)
{
	setenv("MALLOC_MMAP_THRESHOLD_", "33554432", 0);
	setenv("MALLOC_TRIM_THRESHOLD_", "134217728", 0);
}

/* Encodes to tmp; cut > 0: only the first cut seconds (the Shorts cut);
 * the full video is measured for QA as it is encoded (QA_FILES). */
static enum stage_rc encode(struct stage_ctx *ctx, const struct assembly *as, const char *tmp, double cut)
{
	struct media_argv a = { 0 };
	struct sbuf g = { 0 };
	int audio_input;
	enum stage_rc rc;
	double t0 = time_mono();
	char *amap = NULL;

	media_argv_words(&a, "ffmpeg -nostdin -hide_banner -loglevel error -y");
	malloc_keep();
	build_graph(ctx, as, &a, &g, &audio_input, cut <= 0);
	/* the narration, normalised when pass one measured it, is [narr] */
	sb_printf(&g, ";[%d:a]%s[narr]", audio_input, as->loudnorm ? as->loudnorm : "anull");
	media_argv_opt(&a, "-i", "%s", as->audio);
	if ((rc = music_mix(ctx, &a, &g, audio_input + 1, &amap)) != STAGE_OK) goto out;
	media_argv_opt(&a, "-filter_complex", "%s", g.s);
	if (cut <= 0)
		media_argv_words(&a, "-map [qb] -map [qf] -f null -"); /* before: the video is the last argument */
	media_argv_words(&a, "-map [out]");
	media_argv_opt(&a, "-map", "%s", amap);
	media_argv_words(&a, "-c:v libx264 -pix_fmt yuv420p");
	media_argv_opt(&a, "-preset", "%s", as->f.preset);
	media_argv_opt(&a, "-crf", "%d", as->f.crf);
	media_argv_opt(&a, "-r", "%d", as->f.fps);
	if (cut > 0) media_argv_opt(&a, "-t", "%.3f", cut);
	media_argv_words(&a, "-c:a aac -b:a 192k -ar 48000 -movflags +faststart -shortest -f mp4");
	media_argv_add(&a, "%s", tmp);
	rc = media_run(ctx, &a, tmp);
	if (rc == STAGE_OK)
		stage_log(ctx, "info", "encoded %s (%dx%d, %zu segments, preset %s) in %.1f s", tmp, as->f.w, as->f.h,
			  as->t.n, as->f.preset, time_mono() - t0);
out:
	free(amap);
	media_argv_free(&a);
	sb_free(&g);
	return rc;
}

/* Checks the encoded file before it may take the name final.mp4. */
static enum stage_rc verify_commit(struct stage_ctx *ctx, const struct assembly *as)
{
	double d = media_duration(FINAL_TMP);
	if (d < 0) return stage_fail(ctx, STAGE_FAIL, "final.mp4 was encoded but %s", err_msg());
	if (fabs(d - as->audio_s) > MAX_DRIFT)
		return stage_fail(ctx, STAGE_FAIL,
				  "final.mp4 lasts %.2f s but the narration %s lasts "
				  "%.2f s; re-run the avatar and broll stages, then assembly",
				  d, as->audio, as->audio_s);
	if (media_commit(FINAL_TMP, "final.mp4") < 0) return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	stage_output(ctx, "assembled_video", "final.mp4", "video/mp4", lround(d * 1000));
	return STAGE_OK;
}

/* Thumbnail picture: the middle of the first avatar clip shown (the
 * channel's face), or the offline presenter's fitted picture, else none (thumbnail.c draws a gradient).  Never a b-roll
 * frame: a generated one carries its own caption.  The middle is the middle
 * of what the clip has and the segment shows, so the frame exists however
 * short the clip is.  Drawn beside the encode (media_bg.c): it needs only
 * the clips. */
static enum stage_rc thumbnail(struct stage_ctx *ctx, void *arg)
{
	const struct assembly *as = arg;
	struct thumb_spec t = { .title = as->title, .font = as->font };
	for (size_t i = 0; i < as->t.n && !t.clip; i++) {
		const struct media_seg *s = &as->t.seg[i];
		const struct seg_src *c = &as->src[i];
		double mid = fmin(s->end - s->start, c->clip_s) / 2;
		if (s->broll || (!c->clip && !c->still)) continue;
		t.clip = c->clip ? c->clip : AVATAR_STILL;
		t.seek = c->clip && mid >= THUMB_MIN_SEEK ? mid : 0;
	}
	return thumbnail_make(ctx, &as->f, &t, "thumbnail.png");
}

/* The 9:16 cut (shorts.c): the same segments and captions in the tall frame. */
static enum stage_rc shorts(struct stage_ctx *ctx, const struct assembly *as)
{
	struct assembly tall = *as;
	double cut = shorts_cut(ctx, as->t.json);
	enum stage_rc rc;

	shorts_frame(&as->f, &tall.f);
	if (card_files(&tall) < 0) return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	if ((rc = encode(ctx, &tall, SHORTS_TMP, cut)) != STAGE_OK) return rc;
	return shorts_commit(ctx, SHORTS_TMP, &tall.f, cut);
}

/* Loudness pass one: the narration's figures (for qa.json too), and the
 * pass-two filter encode() puts on the audio unless normalize_loudness is off. */
static enum stage_rc loudness(struct stage_ctx *ctx, struct assembly *as)
{
	double target = stage_opt_num(ctx, "loudness_target"), tp = stage_opt_num(ctx, "true_peak_max");
	if (qa_loudness_measure(as->audio, target, tp, &as->narr, ctx->timeout_s) < 0)
		return stage_fail(ctx, STAGE_FAIL, "%s; re-run the audio stage", err_msg());
	if (!json_bool(ctx->provider, "normalize_loudness", 1)) return STAGE_OK;
	if (!(as->loudnorm = qa_loudness_filter(&as->narr, target, tp)))
		stage_log(ctx, "warn", "%s: not normalised", err_msg());
	else
		stage_log(ctx, "info", "narration %.1f LUFS, true peak %.1f dBTP: normalised to %g LUFS",
			  as->narr.input_i, as->narr.input_tp, target);
	return STAGE_OK;
}

/* The narration's loudness pass and the encode of final.mp4, with the
 * thumbnail drawn beside them (both ffmpeg runs of the loudness pass and the
 * thumbnail use one core each); the failure of the first is the one
 * reported when both fail. */
static enum stage_rc final_and_thumbnail(struct stage_ctx *ctx, struct assembly *as)
{
	struct media_bg bg;
	enum stage_rc rc, trc;
	char err[sizeof ctx->error];

	media_bg_start(ctx, &bg, thumbnail, as);
	rc = loudness(ctx, as);
	if (rc == STAGE_OK) rc = encode(ctx, as, FINAL_TMP, 0);
	memcpy(err, ctx->error, sizeof err);
	trc = media_bg_join(ctx, &bg);
	if (rc != STAGE_OK) {
		memcpy(ctx->error, err, sizeof err);
		return rc;
	}
	if ((rc = verify_commit(ctx, as)) != STAGE_OK) return rc;
	if (trc == STAGE_OK) stage_output(ctx, "thumbnail", "thumbnail.png", "image/png", -1);
	return trc;
}

/* Settings, timeline, narration, font: everything checked before encoding. */
static enum stage_rc prepare(struct stage_ctx *ctx, struct assembly *as)
{
	if (media_frame_get(ctx->channel, &as->f) < 0 || media_timeline_load(&as->t) < 0)
		return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	as->chan = as->f;
	as->audio = json_str(as->t.json, "audio", "audio.wav");
	if (!path_component_ok(as->audio) || !fsio_exists(as->audio))
		return stage_fail(ctx, STAGE_FAIL,
				  "timeline.json names narration \"%s\", which is "
				  "not in the episode folder; re-run the audio stage",
				  as->audio);
	if ((as->audio_s = media_duration(as->audio)) <= 0)
		return stage_fail(ctx, STAGE_FAIL, "%s; re-run the audio stage", err_msg());
	if (!(as->font = media_font())) return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	as->font_esc = media_filter_escape(as->font);
	as->title = title_get(ctx);
	as->channel = channel_name(ctx);
	if (card_files(as) < 0) return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	if (as->f.burn && (as->ass = captions_ass_write(ctx->channel, &as->f, "captions.ass")) < 0)
		return stage_fail(ctx, STAGE_FAIL, "channel.yaml %s", err_msg());
	return sources_load(ctx, as);
}

static void scratch_names(void)
{
	static const char *const names[S_COUNT][2] = {
		[S_FINAL] = { "final.mp4", "mp4" },       [S_SHORTS] = { "shorts.mp4", "mp4" },
		[S_CARD_TITLE] = { "card-title", "txt" }, [S_CARD_CHANNEL] = { "card-channel", "txt" },
		[S_QA_BLACK] = { "qa-black", "txt" },     [S_QA_FREEZE] = { "qa-freeze", "txt" },
	};
	for (int i = 0; i < S_COUNT; i++) scratch[i] = fsio_tmp_name_ext(names[i][0], names[i][1]);
}

static void assembly_free(struct assembly *as)
{
	for (size_t i = 0; as->src && i < as->t.n; i++) {
		free(as->src[i].clip);
		broll_recipe_free(&as->src[i].recipe);
		if (as->src[i].text) unlink(as->src[i].text);
		free(as->src[i].text);
	}
	free(as->src);
	media_timeline_free(&as->t);
	free(as->font_esc);
	free(as->title);
	free(as->channel);
	free(as->loudnorm);
}

enum stage_rc prov_assembly_ffmpeg(struct stage_ctx *ctx)
{
	struct assembly as = { 0 };
	enum stage_rc rc;

	scratch_names();
	rc = prepare(ctx, &as);

	if (rc == STAGE_OK) rc = final_and_thumbnail(ctx, &as);
	if (rc == STAGE_OK) rc = qa_run(ctx, "final.mp4", &as.f, &as.narr, as.t.json, QA_FILES);
	if (rc == STAGE_OK && shorts_wanted(ctx)) rc = shorts(ctx, &as);
	for (int i = 0; i < S_COUNT; i++) {
		unlink(scratch[i]);
		free(scratch[i]);
	}
	assembly_free(&as);
	return rc;
}
