/*
 * prov_avatar.c - avatar stage, offline.
 *
 *  none:  makes no clips; assembly shows a title card for avatar segments.
 *  still: one clip per avatar segment of timeline.json, avatar/seg-NN.mp4,
 *         from the channel's image (providers.avatar.image, relative to the
 *         channel folder, default avatar.png), exactly the segment's frames,
 *         H.264, no audio.  motion: "voice" (the default) sets the picture
 *         above a waveform of the segment's narration that moves with the
 *         voice (an audiogram); "zoom" fills the frame with a slow zoom;
 *         "static" holds the picture.  Each clip is one ffmpeg run, one encode:
 *         voice reads audio.wav through an amovie source inside the filter.
 *
 * Invariants: clips appear only through media_commit(); re-running replaces
 * them; clips of segments that are no longer avatar segments are removed
 * from avatar/ so assembly never uses a stale one.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* clang-format off: a table keeps one row per line */
const struct provider_opt still_opts[] = {
	{ "image", OPT_PATH, "avatar.png", 0, 0, NULL,
	  "the presenter's picture (PNG or JPEG), relative to the channel folder" },
	{ "motion", OPT_ENUM, "voice", 0, 0, "voice|zoom|static",
	  "a waveform of the narration under the picture, a slow zoom, or a static picture" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

enum stage_rc prov_avatar_none(struct stage_ctx *ctx)
{
	stage_log(ctx, "info", "avatar provider none: avatar segments get a title card");
	return STAGE_OK;
}

enum motion { MOTION_VOICE, MOTION_ZOOM, MOTION_STATIC };

static enum motion motion_of(struct stage_ctx *ctx)
{
	static const char *const names[] = {
		[MOTION_VOICE] = "voice", [MOTION_ZOOM] = "zoom", [MOTION_STATIC] = "static"
	};
	const char *m = stage_opt_str(ctx, "motion");
	for (int i = MOTION_ZOOM; i <= MOTION_STATIC; i++)
		if (!strcmp(m, names[i])) return i;
	return MOTION_VOICE; /* the option is checked against voice|zoom|static when the channel loads */
}

/* The picture scaled to fit a box box_h high starting box_y from the top,
 * centred in it, on the frame's dark background. */
static char *fit_filter(const struct media_frame *f, int box_h, int box_y)
{
	return xasprintf("scale=%d:%d:force_original_aspect_ratio=decrease,"
			 "pad=%d:%d:(ow-iw)/2:%d+(%d-ih)/2:color=0x101820,setsar=1",
			 f->w, box_h, f->w, f->h, box_y, box_h);
}

/* With zoom, zoompan makes all the frames from the one input frame
 * (d=frames, so the image is fitted once, not per frame), going from 1.0
 * to 1.06 on a 2x canvas so the motion moves in half pixels and does not
 * judder. */
static char *zoom_filter(const struct media_frame *f, long frames)
{
	char *fit = fit_filter(f, f->h, 0);
	char *out = xasprintf("%s,scale=%d:%d,format=yuv420p,zoompan=z='1+0.06*on/%ld':d=%ld:"
			      "x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s=%dx%d:fps=%d",
			      fit, 2 * f->w, 2 * f->h, frames, frames, f->w, f->h, f->fps);
	free(fit);
	return out;
}

/* The audiogram: the picture fitted once (loop repeats the fitted frame)
 * in the upper part of the frame, and under it a waveform of the segment's
 * narration, read from audio.wav by an amovie source so the clip stays one
 * ffmpeg run.  Everything sits in the top three quarters, above the burned
 * captions.  The narration is resampled to fps x width samples a second, so
 * each frame draws exactly the sound heard during it, one sample a column;
 * dynaudnorm makes a quiet voice as visible as a loud one. */
static char *voice_filter(const struct media_frame *f, const struct media_seg *s)
{
	int box_h = f->h * 56 / 100 / 2 * 2, box_y = f->h * 7 / 100;
	int wave_w = f->w * 6 / 10 / 2 * 2, wave_h = f->h / 10 / 2 * 2, wave_y = box_y + box_h + f->h / 50;
	char *fit = fit_filter(f, box_h, box_y);
	char *out = xasprintf("%s,loop=loop=-1:size=1,setpts=N/(%d*TB)[pic];"
			      "amovie=audio.wav,atrim=start=%.3f:end=%.3f,asetpts=PTS-STARTPTS,"
			      "aformat=channel_layouts=mono,dynaudnorm,aresample=%d,"
			      "showwaves=s=%dx%d:mode=cline:rate=%d:scale=sqrt:draw=full:colors=0xFFD400[wave];"
			      "[pic][wave]overlay=(W-w)/2:%d",
			      fit, f->fps, s->start, s->end, f->fps * wave_w, wave_w, wave_h, f->fps, wave_y);
	free(fit);
	return out;
}

static enum stage_rc still_clip(struct stage_ctx *ctx, const struct media_frame *f, const char *image, enum motion m,
				const struct media_seg *s)
{
	long frames = media_seg_frames(s, f->fps);
	struct media_argv in = { 0 };
	char *final, *filter;
	enum stage_rc rc;

	if (frames <= 0) return STAGE_OK; /* too short to show; assembly skips it too */
	final = xasprintf("avatar/seg-%02d.mp4", s->index);
	filter = m == MOTION_VOICE ? voice_filter(f, s) : m == MOTION_ZOOM ? zoom_filter(f, frames) : NULL;
	if (!filter) filter = fit_filter(f, f->h, 0);
	if (m == MOTION_STATIC) { /* repeat the image */
		media_argv_opt(&in, "-loop", "1");
		media_argv_opt(&in, "-framerate", "%d", f->fps);
	}
	media_argv_opt(&in, "-i", "%s", image);
	rc = media_make_clip(ctx, f, &in, filter, frames, final, "avatar_video");
	media_argv_free(&in);
	free(filter);
	free(final);
	return rc;
}

static char *image_path(struct stage_ctx *ctx)
{
	const char *img = stage_opt_str(ctx, "image");
	return img[0] == '/' ? xstrdup(img) : xasprintf("%s/%s", ctx->channel_dir, img);
}

static enum stage_rc still_all(struct stage_ctx *ctx, const struct media_frame *f, const char *image,
			       const struct media_timeline *t)
{
	enum motion m = motion_of(ctx);
	enum stage_rc rc = STAGE_OK;
	int made = 0;

	if (fsio_mkdirs("avatar") < 0 || media_prune_clips("avatar", t, 0) < 0)
		return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	for (size_t i = 0; i < t->n && rc == STAGE_OK; i++)
		if (!t->seg[i].broll && (rc = still_clip(ctx, f, image, m, &t->seg[i])) == STAGE_OK) made++;
	if (rc == STAGE_OK) stage_log(ctx, "info", "avatar: %d clips from %s", made, image);
	return rc;
}

enum stage_rc prov_avatar_still(struct stage_ctx *ctx)
{
	struct media_frame f;
	struct media_timeline t;
	struct stat st;
	char *image = image_path(ctx);
	enum stage_rc rc;

	if (stat(image, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = stage_fail(ctx, STAGE_FAIL,
				"avatar image %s not found: put a PNG or JPEG there, "
				"or set providers.avatar.image in channel.yaml",
				image);
	} else if (media_frame_get(ctx->channel, &f) < 0 || media_timeline_load(&t) < 0) {
		rc = stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	} else {
		rc = still_all(ctx, &f, image, &t);
		media_timeline_free(&t);
	}
	free(image);
	return rc;
}
