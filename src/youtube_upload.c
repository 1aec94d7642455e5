/*
 * youtube_upload.c - publish one video with YouTube's resumable upload
 * (the YouTube Data API v3 protocol; tests/fakes/fake_youtube.py), so that no dropped connection, expired token,
 * quota wall or SIGKILL ever loses it or makes it twice.
 *
 * Invariants:
 *  - The session URI is in the durable store before the first byte is
 *    sent; a later attempt asks the server how much it holds
 *    (Content-Range: bytes * /TOTAL) and continues from there, never from
 *    zero while the session lives.  308's Range is the truth, not our count.
 *  - Chunks are streamed from the file, each a multiple of 262,144 bytes
 *    but the last; a chunk is never resent by http.c (max_attempts 1):
 *    after an error we query the session instead.
 *  - A new session is made only when the old one is gone (404/410) and no
 *    video with our marker exists among the channel's recent uploads.
 *  - The video id and time are stored as soon as the final answer arrives;
 *    after that only the follow-up steps run.
 */
#define _GNU_SOURCE
#include "youtube.h"
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define UNIT 262144LL
#define QUERY_TRIES 5

static const long resume_answers[] = { 308, 404, 410, 0 };

int yt_store_set(struct yt_job *job, const char *key, const char *value)
{
	return job->store.set(job->store.arg, key, value);
}

const char *yt_store_get(const struct yt_job *job, const char *key)
{
	return job->store.get(job->store.arg, key);
}

struct upload {
	struct yt_api *a;
	long long total, chunk, offset; /* offset: bytes the server holds */
	const char *session;
};

static long long chunk_bytes(const cJSON *opts)
{
	long long n = (long long)(json_num(opts, "chunk_mib", 8) * 1048576) / UNIT * UNIT;
	return n < UNIT ? UNIT : n;
}

static enum stage_rc got_video(struct upload *u, const struct http_resp *r)
{
	struct yt_job *job = u->a->job;
	cJSON *j = cJSON_Parse(r->body.s);
	const char *id = json_str(j, "id", "");
	enum stage_rc rc = STAGE_OK;
	if (!clip_jobs_id_ok(id))
		rc = stage_fail(job->ctx, STAGE_RETRY, "YouTube upload finished without a valid video id");
	else
		snprintf(job->video_id, sizeof job->video_id, "%s", id);
	cJSON_Delete(j);
	return rc;
}

/* 308: the server holds bytes 0..LAST (Range: bytes=0-LAST), or none.  A
 * LAST that is no byte of the file (past its end, negative, out of range
 * of a number) is not believed: the upload goes on from byte 0. */
static void got_range(struct upload *u, const struct http_resp *r)
{
	char v[80], progress[64], *end;
	long long last = -1;
	if (http_header(r, "Range", v, sizeof v) && !strncmp(v, "bytes=0-", 8)) {
		errno = 0;
		last = strtoll(v + 8, &end, 10);
		if (errno || end == v + 8) last = -1;
	}
	u->offset = last >= 0 && last < u->total ? last + 1 : 0;
	snprintf(progress, sizeof progress, "%lld/%lld", u->offset, u->total);
	yt_store_set(u->a->job, YT_KEY_PROGRESS, progress); /* display only: a lost write is harmless */
}

/* One PUT on the session: a chunk from offset, or (len < 0) a status query.
 * STAGE_OK with video_id set, STAGE_PENDING to go on, RETRY when unsure,
 * FAIL with ctx->error "gone" when the session no longer exists. */
static enum stage_rc put(struct upload *u, long long len)
{
	struct yt_job *job = u->a->job;
	char range[96];
	if (len < 0)
		snprintf(range, sizeof range, "Content-Range: bytes */%lld", u->total);
	else
		snprintf(range, sizeof range, "Content-Range: bytes %lld-%lld/%lld", u->offset, u->offset + len - 1,
			 u->total);
	const char *hdr[] = { range, "Content-Type: application/octet-stream", NULL };
	struct http_req q = { .provider = "youtube",
			      .method = "PUT",
			      .url = u->session,
			      .headers = hdr,
			      .answers = resume_answers,
			      .max_attempts = 1,
			      .not_idempotent = 1,
			      .timeout_s = (int)json_num(job->ctx->provider, "chunk_timeout", 600) };
	struct http_resp r;
	enum stage_rc rc = STAGE_PENDING;
	if (len < 0) { /* a status query: an empty body (body_length 0 would mean "to the end") */
		q.body = "";
	} else {
		q.body_file = job->video;
		q.body_offset = u->offset;
		q.body_length = len;
	}
	(void)!http_request(&job->ctx->http, &q, &r); /* r.status says how it went */
	if (r.status == 200 || r.status == 201)
		rc = got_video(u, &r);
	else if (r.status == 308)
		got_range(u, &r);
	else if (r.status == 404 || r.status == 410)
		rc = stage_fail(job->ctx, STAGE_FAIL, "gone");
	else
		rc = stage_fail(job->ctx, STAGE_RETRY, "YouTube upload: %s", r.error);
	if (rc == STAGE_RETRY) job->ctx->retry_after = r.retry_after;
	http_resp_free(&r);
	return rc;
}

/* After an error: ask the server what it holds, a few times with backoff. */
static enum stage_rc query(struct upload *u)
{
	enum stage_rc rc = STAGE_RETRY;
	for (int i = 0; i < QUERY_TRIES && rc == STAGE_RETRY; i++) {
		if (i) {
			struct timespec ts = { .tv_sec = i < 3 ? i : 3, .tv_nsec = 0 };
			nanosleep(&ts, NULL);
		}
		rc = put(u, -1);
	}
	return rc;
}

static enum stage_rc send_chunks(struct upload *u)
{
	enum stage_rc rc = STAGE_PENDING;
	int errors = 0;
	while (rc == STAGE_PENDING) {
		long long len = u->total - u->offset < u->chunk ? u->total - u->offset : u->chunk;
		rc = put(u, len);
		if (rc == STAGE_RETRY && ++errors <= 8) {
			stage_log(u->a->job->ctx, "warn", "%s; asking the server how much it holds",
				  u->a->job->ctx->error);
			rc = query(u);
		}
	}
	return rc;
}

/* POST the metadata: a new session URI, stored before any byte is sent. */
static enum stage_rc new_session(struct upload *u, char **uri)
{
	struct yt_api *a = u->a;
	cJSON *res = yt_meta_resource(a->job);
	char *body, *url, len[64], loc[2048];
	struct http_resp r;
	enum stage_rc rc;
	if (!res) return stage_fail(a->job->ctx, STAGE_FAIL, "%s", err_msg());
	body = json_print(res);
	url = xasprintf("%s/upload/youtube/v3/videos?uploadType=resumable&part=snippet,status%s", a->base,
			json_bool(a->job->ctx->provider, "notify_subscribers", 1) ? "" : "&notifySubscribers=false");
	snprintf(len, sizeof len, "X-Upload-Content-Length: %lld", u->total);
	const char *hdr[] = { "Content-Type: application/json; charset=UTF-8", len, "X-Upload-Content-Type: video/mp4",
			      NULL };
	struct http_req q = { .method = "POST", .url = url, .headers = hdr, .body = body, .body_len = strlen(body) };
	rc = yt_call(a, "videos_insert", &q, &r);
	if (rc == STAGE_OK) {
		if (!http_header(&r, "Location", loc, sizeof loc) || strncmp(loc, "http", 4))
			rc = stage_fail(a->job->ctx, STAGE_RETRY,
					"YouTube videos.insert: no session URI in the answer");
		else if (yt_store_set(a->job, YT_KEY_SESSION, loc) < 0)
			rc = stage_fail(a->job->ctx, STAGE_RETRY, "%s", err_msg());
		else
			*uri = xstrdup(loc);
		http_resp_free(&r);
	}
	cJSON_Delete(res);
	free(body), free(url);
	return rc;
}

/* The old session is gone: was the video made anyway? */
static enum stage_rc session_gone(struct upload *u)
{
	struct yt_job *job = u->a->job;
	enum stage_rc rc = yt_find_by_marker(u->a, job->video_id, sizeof job->video_id);
	if (rc != STAGE_OK || job->video_id[0]) return rc;
	stage_log(job->ctx, "warn",
		  "the upload session expired and no video with marker %s exists; "
		  "starting a new session",
		  job->marker);
	return yt_store_set(job, YT_KEY_SESSION, "") < 0 ? stage_fail(job->ctx, STAGE_RETRY, "%s", err_msg())
							 : STAGE_PENDING;
}

static enum stage_rc upload_loop(struct upload *u)
{
	enum stage_rc rc = STAGE_PENDING;
	char *made = NULL;
	for (int round = 0; round < 3 && rc == STAGE_PENDING; round++) {
		const char *old = yt_store_get(u->a->job, YT_KEY_SESSION);
		free(made), made = NULL;
		u->offset = 0;
		if (old) {
			u->session = old;
			rc = query(u);
		} else if ((rc = new_session(u, &made)) == STAGE_OK) {
			u->session = made;
			rc = STAGE_PENDING;
		}
		if (rc == STAGE_PENDING) {
			stage_log(u->a->job->ctx, "info", "uploading %s from byte %lld of %lld", u->a->job->video,
				  u->offset, u->total);
			rc = send_chunks(u);
		}
		if (rc == STAGE_FAIL && !strcmp(u->a->job->ctx->error, "gone")) rc = session_gone(u);
	}
	free(made);
	return rc;
}

static enum stage_rc record_video(struct yt_job *job)
{
	char now[32];
	const char *t = yt_store_get(job, YT_KEY_TIME);
	if (!t) {
		time_iso(time_now(), now);
		t = now;
		if (yt_store_set(job, YT_KEY_VIDEO, job->video_id) < 0 || yt_store_set(job, YT_KEY_TIME, now) < 0)
			return stage_fail(job->ctx, STAGE_RETRY, "%s", err_msg());
	}
	snprintf(job->published_at, sizeof job->published_at, "%s", t);
	snprintf(job->url, sizeof job->url, "https://www.youtube.com/watch?v=%s", job->video_id);
	return STAGE_OK;
}

static enum stage_rc upload_video(struct yt_api *a)
{
	struct stat st;
	struct upload u = { .a = a, .chunk = chunk_bytes(a->job->ctx->provider) };
	enum stage_rc rc;
	if (stat(a->job->video, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
		return stage_fail(a->job->ctx, STAGE_FAIL, "%s is missing or empty; run assembly again", a->job->video);
	u.total = st.st_size;
	rc = upload_loop(&u);
	if (rc == STAGE_PENDING)
		rc = stage_fail(a->job->ctx, STAGE_RETRY, "YouTube upload did not finish; will resume");
	if (rc == STAGE_OK) stage_log(a->job->ctx, "info", "uploaded %s as video %s", a->job->video, a->job->video_id);
	return rc;
}

enum stage_rc youtube_publish(struct yt_job *job)
{
	struct yt_api a = { .job = job,
			    .base = json_str(job->ctx->provider, "api_base", "https://www.googleapis.com") };
	const char *known = yt_store_get(job, YT_KEY_VIDEO);
	enum stage_rc rc = STAGE_OK;
	cJSON *res;
	if (!known && !(res = yt_meta_resource(job))) return stage_fail(job->ctx, STAGE_FAIL, "%s", err_msg());
	if (!known) cJSON_Delete(res);
	if (oauth_load(&a.auth, job->ctx, job->channel) < 0) return stage_fail(job->ctx, STAGE_FAIL, "%s", err_msg());
	if (known)
		snprintf(job->video_id, sizeof job->video_id, "%s", known);
	else
		rc = upload_video(&a);
	if (rc == STAGE_OK) rc = record_video(job);
	if (rc == STAGE_OK) rc = yt_follow_ups(&a);
	oauth_free(&a.auth);
	return rc;
}
