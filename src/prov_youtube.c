/*
 * prov_youtube.c - the `youtube` upload provider: publishes the episode's
 * final.mp4 with metadata.json, thumbnail.png and subtitles.srt through
 * youtube_publish(), keeping its state (session URI, video id, done-marks,
 * progress) in the episode-scoped provider-state store, and writes
 * publish.json {provider, video_id, url, published_at}, which the pipeline
 * turns into episodes.published_url / published_at.  When the assembly made
 * a Shorts cut (shorts.mp4, shorts_metadata.json), it is uploaded after the
 * video as a video of its own, with its state under keys prefixed "shorts_"
 * (so a restart resumes it and never uploads either twice), and publish.json
 * gains shorts_video_id and shorts_url.  A repurposed Shorts cut (shorts.c,
 * shorts_only) publishes the Shorts video alone.
 *
 * Options (a contract): client_id; client_secret_file | client_secret_env;
 * refresh_token_file; api_base; token_url; privacy; category_id;
 * default_language; playlist_id; made_for_kids; synthetic_media;
 * notify_subscribers; chunk_mib; captions; ca_file; thumbnail_max_mb.
 */
#define _GNU_SOURCE
#include "youtube.h"
#include <stdlib.h>
#include <string.h>

/* Options (a contract: issue 8 item 1), checked when a channel loads.  Not
 * paid: YouTube charges quota units, kept in quota.c's ledger. */
/* clang-format off: a table keeps one row per line */
const struct provider_opt youtube_opts[] = {
	{ "client_id", OPT_STRING, NULL, 1, 300, NULL, "the OAuth client id (a Desktop app)" },
	{ "client_secret_env", OPT_ENV_NAME, NULL, 0, 0, NULL, "environment variable holding the client secret" },
	{ "client_secret_file", OPT_SECRET_FILE, NULL, 0, 0, NULL, "file holding the client secret (mode 0600)" },
	{ "refresh_token_file", OPT_PATH, NULL, 0, 0, NULL,
	  "written by `auth` (default channels/<id>/secrets/youtube-refresh-token)" },
	{ "api_base", OPT_URL, "https://www.googleapis.com", 0, 0, NULL, "the API root" },
	{ "token_url", OPT_URL, "https://oauth2.googleapis.com/token", 0, 0, NULL, "the OAuth token endpoint" },
	{ "auth_url", OPT_URL, "https://accounts.google.com/o/oauth2/v2/auth", 0, 0, NULL, "the consent page (auth)" },
	{ "device_url", OPT_URL, "https://oauth2.googleapis.com/device/code", 0, 0, NULL,
	  "device flow (auth --device)" },
	{ "chunk_mib", OPT_NUMBER, "8", 0.25, 1024, NULL, "upload chunk (rounded down to 256 KiB units)" },
	{ "chunk_timeout", OPT_NUMBER, "600", 10, 86400, NULL, "seconds one chunk may take" },
	{ "captions", OPT_BOOL, "false", 0, 0, NULL, "upload subtitles.srt as a caption track" },
	{ "thumbnail_max_mb", OPT_NUMBER, "2", 0.1, 50, NULL, "re-encode a larger thumbnail under this" },
	{ "token_warn_days", OPT_NUMBER, "5", 0, 365, NULL, "warn when the refresh token is this old" },
	{ "ca_file", OPT_PATH, NULL, 0, 0, NULL, "CA bundle for the API (acog.yaml ca_file otherwise)" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

static const char *state_get(void *arg, const char *key)
{
	return stage_state_get(arg, key);
}

static int state_set(void *arg, const char *key, const char *value)
{
	return stage_state_set(arg, key, value);
}

#define SHORTS_KEY "shorts_%s"

static const char *shorts_get(void *arg, const char *key)
{
	char *k = xasprintf(SHORTS_KEY, key);
	const char *v = stage_state_get(arg, k);
	free(k);
	return v;
}

static int shorts_set(void *arg, const char *key, const char *value)
{
	char *k = xasprintf(SHORTS_KEY, key);
	int rc = stage_state_set(arg, k, value);
	free(k);
	return rc;
}

static const char *channel_of(const struct stage_ctx *ctx)
{
	const char *slash = strrchr(ctx->channel_dir, '/');
	return json_str(ctx->channel, "id", slash ? slash + 1 : ctx->channel_dir);
}

static int write_publish_json(const struct stage_ctx *ctx, const struct yt_job *job, const struct yt_job *sj)
{
	char *path = xasprintf("%s/publish.json", ctx->episode_dir);
	cJSON *j = cJSON_CreateObject();
	int rc;
	cJSON_AddStringToObject(j, "provider", "youtube");
	cJSON_AddStringToObject(j, "video_id", job->video_id);
	cJSON_AddStringToObject(j, "url", job->url);
	cJSON_AddStringToObject(j, "published_at", job->published_at);
	if (sj && sj->video_id[0]) {
		cJSON_AddStringToObject(j, "shorts_video_id", sj->video_id);
		cJSON_AddStringToObject(j, "shorts_url", sj->url);
	}
	rc = json_write_file(path, j);
	cJSON_Delete(j);
	free(path);
	return rc;
}

/* The Shorts cut as a second video: no thumbnail (YouTube picks a frame of
 * a Short) and no caption track; its own marker and state keys. */
static enum stage_rc publish_shorts(const struct yt_job *main, struct yt_job *sj)
{
	struct stage_ctx *ctx = main->ctx;
	char *video = xasprintf("%s/shorts.mp4", ctx->episode_dir),
	     *mpath = xasprintf("%s/shorts_metadata.json", ctx->episode_dir), *marker;
	cJSON *meta;
	enum stage_rc rc = STAGE_OK;

	if (!fsio_exists(video)) goto out;
	if (!(meta = json_load_file(mpath, 1 << 20))) {
		rc = stage_fail(ctx, STAGE_FAIL, "%s; run assembly again (acog-batch retry %s --from assembly)",
				err_msg(), ctx->episode_id);
		goto out;
	}
	marker = xasprintf("%s-shorts", ctx->episode_id);
	*sj = (struct yt_job){ .ctx = ctx,
			       .channel = main->channel,
			       .video = video,
			       .meta = meta,
			       .marker = marker,
			       .publish_at = main->publish_at,
			       .store = { ctx, shorts_get, shorts_set } };
	rc = youtube_publish(sj);
	if (rc == STAGE_OK) stage_log(ctx, "info", "published the Shorts cut %s", sj->url);
	cJSON_Delete(meta);
	free(marker);
out:
	free(video);
	free(mpath);
	return rc;
}

enum stage_rc prov_upload_youtube(struct stage_ctx *ctx)
{
	struct yt_job sj = { 0 };
	int only = shorts_only(ctx); /* a repurposed Shorts cut: the 16:9 video is the source's */
	char *video = xasprintf("%s/final.mp4", ctx->episode_dir),
	     *thumb = xasprintf("%s/thumbnail.png", ctx->episode_dir);
	char *srt = xasprintf("%s/subtitles.srt", ctx->episode_dir),
	     *mpath = xasprintf("%s/metadata.json", ctx->episode_dir);
	cJSON *meta = json_load_file(mpath, 1 << 20);
	char at[32];
	int sched = schedule_publish_time(ctx, at); /* schedule.json: idea publish_at or cadence slot */
	struct yt_job job = { .ctx = ctx,
			      .channel = channel_of(ctx),
			      .video = video,
			      .thumbnail = thumb,
			      .captions = srt,
			      .meta = meta,
			      .marker = ctx->episode_id,
			      .publish_at = at[0] ? at : NULL,
			      .store = { ctx, state_get, state_set } };
	enum stage_rc rc;
	if (sched < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	else if (!meta)
		rc = stage_fail(ctx, STAGE_FAIL, "%s; run metadata again (acog-batch retry %s --from metadata)",
				err_msg(), ctx->episode_id);
	else
		rc = only ? STAGE_OK : youtube_publish(&job);
	if (rc == STAGE_OK) rc = publish_shorts(&job, &sj);
	if (rc == STAGE_OK && write_publish_json(ctx, only ? &sj : &job, only ? NULL : &sj) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	if (rc == STAGE_OK) stage_log(ctx, "info", "published %s", job.url);
	cJSON_Delete(meta);
	free(video), free(thumb), free(srt), free(mpath);
	return rc;
}
