/*
 * youtube_api.c - authorised YouTube Data API calls: one call with its
 * quota charged first and one refresh + retry on 401, errors decided by
 * errors[0].reason (as the YouTube Data API v3 documents them); finding a video we may
 * already have made by the marker in its description (channels.list ->
 * uploads playlist -> playlistItems.list -> videos.list); and the steps
 * after the upload (thumbnail, playlist, captions), each remembered in the
 * state store so a restart never repeats one.
 */
#define _GNU_SOURCE
#include "youtube.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define HDR_MAX 8

static const char *reason_of(const struct http_resp *r, char *out, size_t n)
{
	cJSON *j = cJSON_Parse(r->body.s);
	const cJSON *e = cJSON_GetArrayItem(json_get(j, "error.errors"), 0);
	snprintf(out, n, "%s", json_str(e, "reason", ""));
	cJSON_Delete(j);
	return out;
}

static enum stage_rc judge(struct yt_api *a, const char *method, const struct http_resp *r)
{
	struct stage_ctx *ctx = a->job->ctx;
	char reason[64];
	reason_of(r, reason, sizeof reason);
	if (!strcmp(reason, "quotaExceeded")) return quota_spent(ctx, a->job->channel, method);
	if (!strcmp(reason, "uploadLimitExceeded"))
		return stage_hold(ctx, "upload_limit", time_now() + 86400, 1,
				  "YouTube's 24-hour upload cap of "
				  "channel %s is reached (uploadLimitExceeded); its uploads resume by themselves in "
				  "24 hours, other channels go on",
				  a->job->channel);
	ctx->retry_after = r->retry_after;
	if (!strcmp(reason, "rateLimitExceeded") || !strcmp(reason, "userRateLimitExceeded") || r->status == 0 ||
	    r->status >= 500 || r->status == 429)
		return stage_fail(ctx, STAGE_RETRY, "YouTube %s: %s", method, r->error);
	return stage_fail(ctx, STAGE_FAIL, "YouTube %s: %s", method, r->error);
}

/* The request with the Bearer token added to its headers. */
static void send_once(struct yt_api *a, const struct http_req *q, struct http_resp *resp)
{
	const char *hdr[HDR_MAX + 2];
	struct http_req copy = *q;
	char *bearer = xasprintf("Authorization: Bearer %s", a->auth.access);
	int n = 0;
	for (const char *const *h = q->headers; h && *h && n < HDR_MAX; h++) hdr[n++] = *h;
	hdr[n++] = bearer;
	hdr[n] = NULL;
	copy.headers = hdr;
	copy.provider = "youtube";
	(void)!http_request(&a->job->ctx->http, &copy, resp); /* resp->status says how it went */
	free(bearer);
}

static int answered(const struct http_req *q, long status)
{
	if (status >= 200 && status < 300) return 1;
	for (const long *s = q->answers; s && *s; s++)
		if (*s == status) return 1;
	return 0;
}

enum stage_rc yt_call(struct yt_api *a, const char *method, struct http_req *q, struct http_resp *resp)
{
	struct stage_ctx *ctx = a->job->ctx;
	enum stage_rc rc;
	memset(resp, 0, sizeof *resp);
	if ((rc = quota_take(ctx, a->job->channel, method)) != STAGE_OK) return rc;
	if ((rc = oauth_access(&a->auth, ctx, a->job->channel, 0)) != STAGE_OK) return rc;
	send_once(a, q, resp);
	if (resp->status == 401) {
		stage_log(ctx, "info", "YouTube %s: 401, refreshing the access token once", method);
		http_resp_free(resp);
		if ((rc = oauth_access(&a->auth, ctx, a->job->channel, 1)) != STAGE_OK) return rc;
		send_once(a, q, resp);
	}
	if (answered(q, resp->status)) return STAGE_OK;
	rc = judge(a, method, resp);
	http_resp_free(resp);
	return rc;
}

/* GET {api_base}/youtube/v3/<what>; the answer parsed into *j. */
static enum stage_rc get_json(struct yt_api *a, const char *method, const char *what, cJSON **j)
{
	char *url = xasprintf("%s/youtube/v3/%s", a->base, what);
	struct http_req q = { .method = "GET", .url = url };
	struct http_resp r;
	enum stage_rc rc = yt_call(a, method, &q, &r);
	*j = NULL;
	if (rc != STAGE_OK) { /* yt_call freed the answer */
		free(url);
		return rc;
	}
	if (!(*j = cJSON_Parse(r.body.s)))
		rc = stage_fail(a->job->ctx, STAGE_RETRY, "YouTube %s: the answer is not JSON", method);
	http_resp_free(&r); /* also when it was not JSON (found by tests/fuzz/fuzz_youtube.c) */
	free(url);
	return rc;
}

static enum stage_rc uploads_playlist(struct yt_api *a, char *out, size_t n)
{
	cJSON *j;
	const cJSON *item;
	enum stage_rc rc = get_json(a, "channels_list", "channels?part=contentDetails&mine=true", &j);
	if (rc != STAGE_OK) return rc;
	item = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "items"), 0);
	snprintf(out, n, "%s", json_str(item, "contentDetails.relatedPlaylists.uploads", ""));
	cJSON_Delete(j);
	return out[0] ? STAGE_OK : stage_fail(a->job->ctx, STAGE_FAIL, "YouTube channels.list: no uploads playlist");
}

/* Comma-separated ids of the newest uploads (malloc'd). */
static enum stage_rc recent_ids(struct yt_api *a, const char *playlist, char **ids)
{
	char *what = xasprintf("playlistItems?part=contentDetails&maxResults=50&playlistId=%s", playlist);
	struct sbuf b = { 0 };
	const cJSON *it;
	cJSON *j;
	enum stage_rc rc = get_json(a, "playlist_items_list", what, &j);
	free(what);
	sb_add(&b, "", 0);
	cJSON_ArrayForEach (it, cJSON_GetObjectItem(j, "items")) {
		const char *id = json_str(it, "contentDetails.videoId", NULL);
		if (id && clip_jobs_id_ok(id)) sb_printf(&b, "%s%s", b.len ? "," : "", id);
	}
	cJSON_Delete(j);
	*ids = b.s;
	return rc;
}

enum stage_rc yt_find_by_marker(struct yt_api *a, char *id, size_t n)
{
	char playlist[128], *ids = NULL, *what, *mark = xasprintf("[acog:%s]", a->job->marker);
	const cJSON *v;
	cJSON *j = NULL;
	enum stage_rc rc;
	id[0] = 0;
	if ((rc = uploads_playlist(a, playlist, sizeof playlist)) != STAGE_OK ||
	    (rc = recent_ids(a, playlist, &ids)) != STAGE_OK || !ids[0])
		goto out;
	what = xasprintf("videos?part=snippet&id=%s", ids);
	rc = get_json(a, "videos_list", what, &j);
	free(what);
	cJSON_ArrayForEach (v, cJSON_GetObjectItem(j, "items"))
		if (strstr(json_str(v, "snippet.description", ""), mark)) snprintf(id, n, "%s", json_str(v, "id", ""));
out:
	cJSON_Delete(j);
	free(ids), free(mark);
	return rc;
}

/* ---- after the upload ------------------------------------------------- */

static int file_size(const char *path, long long *n)
{
	struct stat st;
	if (stat(path, &st) < 0) return err_set_errno("cannot stat %s", path);
	*n = st.st_size;
	return 0;
}

/* A JPEG re-encoding of the thumbnail under max bytes, or NULL. */
static char *thumb_shrink(struct stage_ctx *ctx, const char *in, long long max)
{
	static const char *const q[] = { "3", "8", "16", "31", NULL };
	char *out = xasprintf("%s.youtube.jpg", in);
	long long n = 0;
	for (int i = 0; q[i]; i++) {
		struct media_argv av = { 0 };
		media_argv_words(&av, "ffmpeg -nostdin -loglevel error -y -i");
		media_argv_add(&av, "%s", in);
		media_argv_words(&av, "-vf scale=min(1280\\,iw):-2 -frames:v 1 -q:v");
		media_argv_add(&av, "%s", q[i]);
		media_argv_add(&av, "%s", out);
		enum stage_rc rc = media_run(ctx, &av, "thumbnail re-encoding");
		media_argv_free(&av);
		if (rc == STAGE_OK && file_size(out, &n) == 0 && n > 0 && n <= max) return out;
	}
	free(out);
	return NULL;
}

static enum stage_rc thumbnail(struct yt_api *a)
{
	struct yt_job *job = a->job;
	long long n = 0, max = (long long)(json_num(job->ctx->provider, "thumbnail_max_mb", 2) * 1048576);
	char *shrunk = NULL, *url = xasprintf("%s/upload/youtube/v3/thumbnails/set?videoId=%s", a->base, job->video_id);
	const char *path = job->thumbnail, *ctype;
	struct http_resp r;
	enum stage_rc rc;
	if (file_size(path, &n) < 0) return stage_fail(job->ctx, STAGE_FAIL, "%s", err_msg());
	if (n > max && !(path = shrunk = thumb_shrink(job->ctx, job->thumbnail, max))) {
		free(url);
		return stage_fail(job->ctx, STAGE_FAIL, "cannot bring %s under thumbnail_max_mb", job->thumbnail);
	}
	file_size(path, &n);
	ctype = strstr(path, ".png") && !shrunk ? "Content-Type: image/png" : "Content-Type: image/jpeg";
	const char *hdr[] = { ctype, NULL };
	struct http_req q = { .method = "POST", .url = url, .headers = hdr, .body_file = path, .body_length = n };
	rc = yt_call(a, "thumbnails_set", &q, &r);
	if (rc == STAGE_OK) http_resp_free(&r);
	free(url), free(shrunk);
	return rc;
}

/* Whether a list answer (playlistItems.list, captions.list) already holds
 * what an insert whose answer was lost may have made: match is { field,
 * value, second field or NULL, its value }. */
static enum stage_rc listed(struct yt_api *a, const char *method, const char *what, const char *const match[4],
			    int *found)
{
	const cJSON *it;
	cJSON *j = NULL;
	enum stage_rc rc = get_json(a, method, what, &j);
	*found = 0;
	cJSON_ArrayForEach (it, cJSON_GetObjectItem(j, "items"))
		if (!strcmp(json_str(it, match[0], ""), match[1]) &&
		    (!match[2] || !strcmp(json_str(it, match[2], ""), match[3])))
			*found = 1;
	cJSON_Delete(j);
	return rc;
}

static enum stage_rc playlist_insert(struct yt_api *a)
{
	struct yt_job *job = a->job;
	char *url = xasprintf("%s/youtube/v3/playlistItems?part=snippet", a->base), *body;
	cJSON *b = cJSON_CreateObject(), *s = cJSON_AddObjectToObject(b, "snippet"), *rid;
	const char *hdr[] = { "Content-Type: application/json; charset=UTF-8", NULL };
	struct http_resp r;
	enum stage_rc rc;
	cJSON_AddStringToObject(s, "playlistId", json_str(job->ctx->provider, "playlist_id", ""));
	rid = cJSON_AddObjectToObject(s, "resourceId");
	cJSON_AddStringToObject(rid, "kind", "youtube#video");
	cJSON_AddStringToObject(rid, "videoId", job->video_id);
	body = json_print(b);
	struct http_req q = {
		.method = "POST", .url = url, .headers = hdr, .body = body, .body_len = strlen(body), .not_idempotent = 1
	};
	rc = yt_call(a, "playlist_items_insert", &q, &r);
	if (rc == STAGE_OK) http_resp_free(&r);
	cJSON_Delete(b);
	free(url), free(body);
	return rc;
}

/* playlistItems.insert is not idempotent: after a lost answer the video may
 * already be there, so look first (1 unit) rather than add it twice. */
static enum stage_rc playlist(struct yt_api *a)
{
	const char *id = a->job->video_id, *match[4] = { "snippet.resourceId.videoId", id, NULL, NULL };
	char *what = xasprintf("playlistItems?part=snippet&playlistId=%s&videoId=%s",
			       json_str(a->job->ctx->provider, "playlist_id", ""), id);
	int found;
	enum stage_rc rc = listed(a, "playlist_items_list", what, match, &found);
	free(what);
	if (rc != STAGE_OK || !found) return rc == STAGE_OK ? playlist_insert(a) : rc;
	stage_log(a->job->ctx, "info", "video %s is already in the playlist (an earlier answer was lost)", id);
	return STAGE_OK;
}

static enum stage_rc captions_insert(struct yt_api *a)
{
	struct yt_job *job = a->job;
	const char *lang = json_str(job->ctx->provider, "default_language", "en");
	char *srt = fsio_read(job->captions, 8 << 20, NULL), *url, *body;
	struct http_resp r;
	enum stage_rc rc;
	if (!srt) return stage_fail(job->ctx, STAGE_FAIL, "%s", err_msg());
	url = xasprintf("%s/upload/youtube/v3/captions?uploadType=multipart&part=snippet", a->base);
	body = xasprintf("--acogpart\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
			 "{\"snippet\":{\"videoId\":\"%s\",\"language\":\"%s\",\"name\":\"\"}}\r\n"
			 "--acogpart\r\nContent-Type: application/x-subrip\r\n\r\n%s\r\n--acogpart--\r\n",
			 job->video_id, lang, srt);
	const char *hdr[] = { "Content-Type: multipart/related; boundary=acogpart", NULL };
	struct http_req q = {
		.method = "POST", .url = url, .headers = hdr, .body = body, .body_len = strlen(body), .not_idempotent = 1
	};
	rc = yt_call(a, "captions_insert", &q, &r);
	if (rc == STAGE_OK) http_resp_free(&r);
	free(srt), free(url), free(body);
	return rc;
}

/* The same for captions.insert: our track is the one in default_language
 * with an empty name (captions.list costs 50 units, an insert 400). */
static enum stage_rc captions(struct yt_api *a)
{
	const char *lang = json_str(a->job->ctx->provider, "default_language", "en");
	const char *match[4] = { "snippet.language", lang, "snippet.name", "" };
	char *what = xasprintf("captions?part=snippet&videoId=%s", a->job->video_id);
	int found;
	enum stage_rc rc = listed(a, "captions_list", what, match, &found);
	free(what);
	if (rc != STAGE_OK || !found) return rc == STAGE_OK ? captions_insert(a) : rc;
	stage_log(a->job->ctx, "info", "video %s already has its %s captions (an earlier answer was lost)",
		  a->job->video_id, lang);
	return STAGE_OK;
}

struct follow_up {
	const char *key;
	int (*wanted)(const struct yt_job *job);
	enum stage_rc (*run)(struct yt_api *a);
};
static int want_thumb(const struct yt_job *j)
{
	return j->thumbnail && fsio_exists(j->thumbnail);
}
static int want_playlist(const struct yt_job *j)
{
	return json_str(j->ctx->provider, "playlist_id", NULL) != NULL;
}
static int want_captions(const struct yt_job *j)
{
	return json_bool(j->ctx->provider, "captions", 0) && j->captions && fsio_exists(j->captions);
}
/* clang-format off: a table keeps one row per line */
static const struct follow_up follow_ups[] = { { YT_KEY_THUMB, want_thumb, thumbnail },
					       { YT_KEY_PLAYLIST, want_playlist, playlist },
					       { YT_KEY_CAPTIONS, want_captions, captions },
					       { NULL, NULL, NULL } };
/* clang-format on */

/* A permanent failure of a follow-up (no custom-thumbnail permission, a
 * full playlist) is logged and marked, not retried: the video is public. */
enum stage_rc yt_follow_ups(struct yt_api *a)
{
	for (const struct follow_up *f = follow_ups; f->key; f++) {
		enum stage_rc rc;
		if (yt_store_get(a->job, f->key) || !f->wanted(a->job)) continue;
		rc = f->run(a);
		if (rc == STAGE_FAIL) {
			stage_log(a->job->ctx, "warn", "%s skipped: %s", f->key, a->job->ctx->error);
			a->job->ctx->error[0] = 0;
		} else if (rc != STAGE_OK) {
			return rc;
		}
		if (yt_store_set(a->job, f->key, rc == STAGE_OK ? "done" : "skipped") < 0)
			return stage_fail(a->job->ctx, STAGE_RETRY, "%s", err_msg());
	}
	return STAGE_OK;
}
