/*
 * prov_avatar.c - avatar stage, offline.
 *
 *  none:  makes no clips; assembly shows a title card for avatar segments.
 *  still: one clip per avatar segment of timeline.json, avatar/seg-NN.mp4,
 *         from the channel's image (providers.avatar.image, relative to the
 *         channel folder, default avatar.png) scaled and padded to the frame,
 *         with a slow zoom (motion: "zoom", the default) or static
 *         (motion: "static"); exactly the segment's frames, H.264, no audio.
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
const struct provider_opt still_opts[] = { { "image", OPT_PATH, "avatar.png", 0, 0, NULL,
					     "the presenter's picture (PNG or JPEG), relative to the channel folder" },
					   { "motion", OPT_ENUM, "zoom", 0, 0, "zoom|static",
					     "a slow zoom, or a static picture" },
					   { NULL, 0, NULL, 0, 0, NULL, NULL } };
/* clang-format on */

enum stage_rc prov_avatar_none(struct stage_ctx *ctx)
{
	stage_log(ctx, "info", "avatar provider none: avatar segments get a title card");
	return STAGE_OK;
}

/* The scale/pad/zoom chain for a still image.  With zoom, zoompan makes
 * all the frames from the one input frame (d=frames, so the image is
 * fitted once, not per frame), going from 1.0 to 1.06 on a 2x canvas so
 * the motion moves in half pixels and does not judder. */
static char *still_filter(const struct media_frame *f, int zoom, long frames)
{
	char *fit = xasprintf("scale=%d:%d:force_original_aspect_ratio=decrease,"
			      "pad=%d:%d:(ow-iw)/2:(oh-ih)/2:color=0x101820,setsar=1",
			      f->w, f->h, f->w, f->h),
	     *out;
	if (!zoom) return fit;
	out = xasprintf("%s,scale=%d:%d,format=yuv420p,zoompan=z='1+0.06*on/%ld':d=%ld:"
			"x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s=%dx%d:fps=%d",
			fit, 2 * f->w, 2 * f->h, frames, frames, f->w, f->h, f->fps);
	free(fit);
	return out;
}

static enum stage_rc still_clip(struct stage_ctx *ctx, const struct media_frame *f, const char *image, int zoom,
				const struct media_seg *s)
{
	long frames = media_seg_frames(s, f->fps);
	struct media_argv in = { 0 };
	char *final, *filter;
	enum stage_rc rc;

	if (frames <= 0) return STAGE_OK; /* too short to show; assembly skips it too */
	final = xasprintf("avatar/seg-%02d.mp4", s->index);
	filter = still_filter(f, zoom, frames);
	if (!zoom) { /* static: repeat the image */
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
	int zoom = strcmp(stage_opt_str(ctx, "motion"), "static") != 0;
	enum stage_rc rc = STAGE_OK;
	int made = 0;

	if (fsio_mkdirs("avatar") < 0 || media_prune_clips("avatar", t, 0) < 0)
		return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	for (size_t i = 0; i < t->n && rc == STAGE_OK; i++)
		if (!t->seg[i].broll && (rc = still_clip(ctx, f, image, zoom, &t->seg[i])) == STAGE_OK) made++;
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
