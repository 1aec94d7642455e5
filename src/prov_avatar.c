/*
 * prov_avatar.c - avatar stage, offline.
 *
 *  none:  makes no clips; assembly shows a title card for avatar segments.
 *  still: the channel's image (providers.avatar.image, relative to the
 *         channel folder, default avatar.png) fitted once to the frame,
 *         avatar/still.png, and a recipe per avatar segment of
 *         timeline.json, avatar/seg-NN.json, that assembly renders straight
 *         into the final encode (avatar_gen.c): each frame is encoded once.
 *         motion: "voice" (the default) sets the picture above a waveform of
 *         the segment's narration that moves with the voice (an audiogram);
 *         "zoom" fills the frame with a slow zoom; "static" holds the picture.
 *
 * Invariants: still.png appears only through media_commit(), before any
 * recipe names it; re-running replaces both, and removes an earlier run's
 * clip of the segment; clips and recipes of segments that are no longer
 * avatar segments are removed from avatar/ so assembly never uses a stale one.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

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

static enum avatar_motion motion_of(struct stage_ctx *ctx)
{
	int m = avatar_motion_parse(stage_opt_str(ctx, "motion"));
	return m < 0 ? AVATAR_VOICE : m; /* the option is checked against voice|zoom|static when the channel loads */
}

/* The channel's picture fitted once, for every segment (avatar_gen.c). */
static enum stage_rc still_picture(struct stage_ctx *ctx, const struct media_frame *f, const char *image,
				   enum avatar_motion m)
{
	struct media_argv a = { 0 };
	char *tmp = fsio_tmp_name_ext(AVATAR_STILL, "png"), *fit = avatar_fit_filter(f, m);
	enum stage_rc rc;

	media_argv_words(&a, "ffmpeg -nostdin -hide_banner -loglevel error -y");
	media_argv_opt(&a, "-i", "%s", image);
	media_argv_opt(&a, "-vf", "%s", fit);
	media_argv_words(&a, "-frames:v 1 -update 1 -f image2");
	media_argv_add(&a, "%s", tmp);
	rc = media_run(ctx, &a, AVATAR_STILL);
	if (rc == STAGE_OK && media_commit(tmp, AVATAR_STILL) < 0) rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	if (rc != STAGE_OK) unlink(tmp);
	media_argv_free(&a);
	free(fit);
	free(tmp);
	return rc;
}

/* A segment's recipe; an earlier run's clip of it is removed first (assembly
 * prefers a clip), and the recipe's durable write in the same folder makes
 * that removal durable too. */
static enum stage_rc still_recipe(struct stage_ctx *ctx, const struct media_frame *f, enum avatar_motion m,
				  const struct media_seg *s)
{
	long frames = media_seg_frames(s, f->fps);
	char *path = avatar_recipe_path(s->index), *clip = xasprintf("avatar/seg-%02d.mp4", s->index);
	enum stage_rc rc = STAGE_OK;

	if (frames <= 0) goto out; /* too short to show; assembly skips it too */
	if (unlink(clip) < 0 && errno != ENOENT)
		rc = stage_fail(ctx, STAGE_RETRY, "cannot remove the earlier clip %s: %s", clip, strerror(errno));
	else if (avatar_recipe_save(path, m) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	else
		stage_output(ctx, "avatar_video", path, "application/json", frames * 1000L / f->fps);
out:
	free(clip);
	free(path);
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
	enum avatar_motion m = motion_of(ctx);
	enum stage_rc rc;
	int made = 0;

	if (fsio_mkdirs("avatar") < 0 || media_prune_clips("avatar", t, 0) < 0)
		return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	rc = still_picture(ctx, f, image, m);
	for (size_t i = 0; i < t->n && rc == STAGE_OK; i++)
		if (!t->seg[i].broll && (rc = still_recipe(ctx, f, m, &t->seg[i])) == STAGE_OK) made++;
	if (rc == STAGE_OK)
		stage_log(ctx, "info", "avatar: %s fitted once, %d segments to render in assembly (motion %s)", image,
			  made, avatar_motion_names[m]);
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
