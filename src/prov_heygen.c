/*
 * prov_heygen.c - the avatar stage through HeyGen (asynchronous avatar
 * videos): one video per avatar segment of timeline.json, downloaded into
 * avatar/seg-NN.mp4.  The submit / poll / resume loop is clip_jobs_stage()
 * in clip_jobs.c; this file only speaks HeyGen's protocol (its public API;
 * tests/fakes/fake_heygen.py mirrors it).
 *
 * Invariants:
 *  - a segment's narration is uploaded once (its asset id kept as
 *    seg-NN_asset), streamed from the MP3 cut for it, never read into memory;
 *  - the generate request is the job-creating one (clip_jobs_create);
 *  - HeyGen's failure inside a 2xx answer (non-null error, code != 100) is a
 *    failure; a failed render is never retried;
 *  - recover: video_list (the default): each generate carries a tag unique
 *    to it (clip_recover.c) as the start of its title and as its
 *    callback_id; a generate whose answer was lost (the stage killed in
 *    flight) is looked up in GET /v1/video.list (newest first, paged by
 *    token) by that title, back to the mark's time less
 *    RECOVER_CLOCK_SLACK_S, and its video_id adopted instead of paying
 *    again.  A list not read back that far within VIDEO_LIST_PAGES pages
 *    proves nothing: the stage fails for a person, as with recover: none.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VIDEO_LIST_PAGES 50 /* of 100 videos: how far back a look-up goes (only after a crash) */

/* HeyGen's options (checked when a channel loads); timeout, rps,
 * concurrency and the key options come from the shared sets.  Always paid. */
/* clang-format off: a table keeps one row per line */
const struct provider_opt heygen_opts[] = {
	{ "base_url", OPT_URL, "https://api.heygen.com", 0, 0, NULL, "the API root" },
	{ "upload_url", OPT_URL, "https://upload.heygen.com", 0, 0, NULL, "where the narration is uploaded" },
	{ "avatar_id", OPT_STRING, NULL, 0, 200, NULL, "the avatar (this or talking_photo_id is needed)" },
	{ "talking_photo_id", OPT_STRING, NULL, 0, 200, NULL, "a talking photo instead of an avatar" },
	{ "avatar_style", OPT_ENUM, "normal", 0, 0, "normal|circle|closeUp", "how the avatar is framed" },
	{ "background", OPT_STRING, NULL, 0, 64, NULL, "background colour, e.g. #008000" },
	{ "poll_seconds", OPT_NUMBER, "10", 0.05, 3600, NULL, "wait between two status requests" },
	{ "max_wait_seconds", OPT_NUMBER, "1200", 1, 604800, NULL, "give a clip up after this long" },
	{ "recover", OPT_ENUM, "video_list", 0, 0, "video_list|none",
	  "after a crash, find a submitted video in the video list before paying again" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

/* ---- HeyGen ---------------------------------------------------------------------- *
 * Options (providers.avatar): base_url, upload_url, avatar_id (or
 * talking_photo_id), avatar_style (normal), background (#RRGGBB),
 * api_key_env | api_key_file, poll_seconds (10), max_wait_seconds (1200),
 * timeout.  Per avatar segment: its narration cut from audio.wav to MP3,
 * uploaded once (seg-NN_asset), one v2 generate of one scene with that
 * audio, the channel's frame as dimension (scaled into 128..4096, even). */

static const char *hg_base(const struct clip_jobs *r)
{
	return json_str(r->ctx->provider, "base_url", "https://api.heygen.com");
}

/* HeyGen's own failure inside a 2xx answer: non-null error, or code != 100. */
static enum stage_rc hg_check(struct clip_jobs *r, const cJSON *j, const char *what)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "code");
	const char *msg;

	if (e && !cJSON_IsNull(e)) {
		msg = cJSON_IsString(e) ? e->valuestring : json_str(e, "message", "no message");
		return stage_fail(r->ctx, STAGE_FAIL, "%s: heygen: %s", what, msg);
	}
	if (cJSON_IsNumber(code) && code->valueint != 100)
		return stage_fail(r->ctx, STAGE_FAIL, "%s: heygen: code %d: %s", what, code->valueint,
				  json_str(j, "message", "no message"));
	return STAGE_OK;
}

/* An API call with the key (ctype NULL: no body); *j is the checked answer
 * on STAGE_OK.  create >= 0: the job-creating request of that segment. */
static enum stage_rc hg_call(struct clip_jobs *r, struct http_req *q, const char *ctype, const char *what, cJSON **j,
			     int create)
{
	char *key = xasprintf("X-Api-Key: %s", r->key);
	char *ct = ctype ? xasprintf("Content-Type: %s", ctype) : NULL;
	const char *h[] = { key, "Accept: application/json", ct, NULL };
	enum stage_rc rc;

	q->headers = h;
	rc = create >= 0 ? clip_jobs_create(r, create, q, what, j) : clip_jobs_http(r, q, what, j);
	if (rc == STAGE_OK && (rc = hg_check(r, *j, what)) != STAGE_OK) {
		cJSON_Delete(*j);
		*j = NULL;
	}
	free(key);
	free(ct);
	return rc;
}

/* avatar/.seg-NN.narration.<pid>.tmp.mp3: the segment's part of the narration. */
static enum stage_rc hg_cut(struct clip_jobs *r, const struct media_seg *s, const char *mp3)
{
	struct media_argv a = { 0 };
	enum stage_rc rc;

	media_argv_words(&a, "ffmpeg -nostdin -hide_banner -loglevel error -y");
	media_argv_words(&a, "-i audio.wav");
	media_argv_opt(&a, "-ss", "%.3f", s->start);
	media_argv_opt(&a, "-t", "%.3f", s->end - s->start);
	media_argv_words(&a, "-vn -ac 1 -c:a libmp3lame -b:a 128k -f mp3");
	media_argv_add(&a, "%s", mp3);
	rc = media_run(r->ctx, &a, "the narration of an avatar segment");
	media_argv_free(&a);
	return rc;
}

/* Uploads the MP3 (POST {upload_url}/v1/asset, raw bytes streamed from the
 * file) → asset id. */
static enum stage_rc hg_upload(struct clip_jobs *r, const struct media_seg *s, const char *mp3, char **asset)
{
	char *url = xasprintf("%s/v1/asset", json_str(r->ctx->provider, "upload_url", "https://upload.heygen.com"));
	char *what = xasprintf("uploading the narration of segment %d", s->index);
	struct http_req q = { .method = "POST", .url = url, .body_file = mp3 };
	cJSON *j = NULL;
	enum stage_rc rc;

	rc = hg_call(r, &q, "audio/mpeg", what, &j, -1);
	rc = clip_jobs_answer_id(r, rc, j, "data.id", what, asset);
	cJSON_Delete(j);
	free(what);
	free(url);
	return rc;
}

/* The narration's asset id: stored from an earlier run, or cut and uploaded now. */
static enum stage_rc hg_asset(struct clip_jobs *r, const struct media_seg *s, char **asset)
{
	const char *have = clip_jobs_get(r, s->index, "asset");
	char *mp3, *seg;
	enum stage_rc rc;

	*asset = NULL;
	if (have) {
		*asset = xstrdup(have);
		return STAGE_OK;
	}
	seg = xasprintf("%s/seg-%02d.narration", r->p->dir, s->index);
	mp3 = fsio_tmp_name_ext(seg, "mp3");
	free(seg);
	if ((rc = hg_cut(r, s, mp3)) == STAGE_OK) rc = hg_upload(r, s, mp3, asset);
	unlink(mp3);
	free(mp3);
	if (rc == STAGE_OK && clip_jobs_set(r, s->index, "asset", *asset) < 0)
		stage_log(r->ctx, "warn", "heygen: segment %d: asset %s not stored; a restart uploads again", s->index,
			  *asset);
	return rc;
}

/* HeyGen's dimension: the frame's shape, scaled into 128..4096, even. */
static void hg_dimension(const struct media_frame *f, int *w, int *h)
{
	double big = f->w > f->h ? f->w : f->h, small = f->w < f->h ? f->w : f->h, k = 1;
	if (big > 4096) k = 4096 / big;
	if (small * k < 128) k = 128 / small;
	*w = (int)fmin(4096, fmax(128, 2 * floor(f->w * k / 2)));
	*h = (int)fmin(4096, fmax(128, 2 * floor(f->h * k / 2)));
}

static cJSON *hg_character(const cJSON *o)
{
	cJSON *c = cJSON_CreateObject();
	const char *photo = json_str(o, "talking_photo_id", NULL);
	if (photo) {
		cJSON_AddStringToObject(c, "type", "talking_photo");
		cJSON_AddStringToObject(c, "talking_photo_id", photo);
	} else {
		cJSON_AddStringToObject(c, "type", "avatar");
		cJSON_AddStringToObject(c, "avatar_id", json_str(o, "avatar_id", ""));
		cJSON_AddStringToObject(c, "avatar_style", json_str(o, "avatar_style", "normal"));
	}
	return c;
}

/* The /v2/video/generate body: one scene, the segment's own narration. */
static char *hg_body(struct clip_jobs *r, const struct media_seg *s, const char *asset)
{
	cJSON *b = cJSON_CreateObject(), *scene = cJSON_CreateObject(), *v, *d;
	const char *bg = json_str(r->ctx->provider, "background", NULL), *tag = clip_recover_tag(r);
	char *title = xasprintf("%s%s%s - segment %d", tag ? tag : "", tag ? " " : "",
				json_str(r->ctx->idea, "topic", "acog"), s->index),
	     *out;
	int w, h;

	cJSON_AddItemToObject(scene, "character", hg_character(r->ctx->provider));
	v = cJSON_AddObjectToObject(scene, "voice");
	cJSON_AddStringToObject(v, "type", "audio");
	cJSON_AddStringToObject(v, "audio_asset_id", asset);
	if (bg) {
		cJSON *g = cJSON_AddObjectToObject(scene, "background");
		cJSON_AddStringToObject(g, "type", "color");
		cJSON_AddStringToObject(g, "value", bg);
	}
	cJSON_AddItemToArray(cJSON_AddArrayToObject(b, "video_inputs"), scene);
	hg_dimension(&r->frame, &w, &h);
	d = cJSON_AddObjectToObject(b, "dimension");
	cJSON_AddNumberToObject(d, "width", w);
	cJSON_AddNumberToObject(d, "height", h);
	cJSON_AddStringToObject(b, "title", title);
	if (tag) cJSON_AddStringToObject(b, "callback_id", tag);
	out = json_print(b);
	cJSON_Delete(b);
	free(title);
	return out;
}

/* What a clip depends on: the avatar, the frame and the segment's narration. */
static char *hg_fingerprint(struct clip_jobs *r, const struct media_seg *s)
{
	const cJSON *o = r->ctx->provider, *c;
	struct sbuf b = { 0 };
	int w, h;

	hg_dimension(&r->frame, &w, &h);
	sb_printf(&b, "heygen\n%s\n%s\n%s\n%s\n%dx%d\n%.3f-%.3f\n", json_str(o, "talking_photo_id", ""),
		  json_str(o, "avatar_id", ""), json_str(o, "avatar_style", "normal"), json_str(o, "background", ""), w,
		  h, s->start, s->end);
	cJSON_ArrayForEach (c, cJSON_GetObjectItemCaseSensitive(r->tl.json, "cues")) {
		double t = json_num(c, "start", -1);
		if (t >= s->start - 0.001 && t < s->end - 0.001) sb_printf(&b, "%.3f %s\n", t, json_str(c, "text", ""));
	}
	return b.s;
}

static enum stage_rc hg_submit(struct clip_jobs *r, const struct media_seg *s, char **id)
{
	char *asset = NULL, *url, *body, *what;
	struct http_req q = { .method = "POST" };
	cJSON *j = NULL;
	enum stage_rc rc;

	if (!json_str(r->ctx->provider, "avatar_id", NULL) && !json_str(r->ctx->provider, "talking_photo_id", NULL))
		return stage_fail(r->ctx, STAGE_FAIL,
				  "providers.avatar (heygen) needs avatar_id (or "
				  "talking_photo_id) in channel.yaml");
	if ((rc = hg_asset(r, s, &asset)) != STAGE_OK) return rc;
	q.url = url = xasprintf("%s/v2/video/generate", hg_base(r));
	q.body = body = hg_body(r, s, asset);
	q.body_len = strlen(body);
	what = xasprintf("asking for the avatar video of segment %d", s->index);
	rc = hg_call(r, &q, "application/json", what, &j, s->index);
	rc = clip_jobs_answer_id(r, rc, j, "data.video_id", what, id);
	cJSON_Delete(j);
	free(what);
	free(body);
	free(url);
	free(asset);
	return rc;
}

static int hg_waiting(const char *st)
{
	return !strcmp(st, "pending") || !strcmp(st, "waiting") || !strcmp(st, "processing");
}

/* A failed render: data.error {code, message, detail}; never retried. */
static enum stage_rc hg_failed(struct clip_jobs *r, const struct media_seg *s, const char *id, const cJSON *j)
{
	const cJSON *code = json_get(j, "data.error.code");
	char num[32] = "";
	if (cJSON_IsNumber(code)) snprintf(num, sizeof num, "%d", code->valueint);
	return stage_fail(r->ctx, STAGE_FAIL,
			  "heygen: the avatar video of segment %d (%s) failed: %s "
			  "(code %s)",
			  s->index, id, json_str(j, "data.error.message", "no message"),
			  num[0] ? num : json_str(j, "data.error.code", "none"));
}

static char *hg_status_url(const struct clip_jobs *r, const char *id)
{
	return xasprintf("%s/v1/video_status.get?video_id=%s", hg_base(r), id);
}

static enum stage_rc hg_get(struct clip_jobs *r, struct http_req *q, const char *what, cJSON **j)
{
	return hg_call(r, q, NULL, what, j, -1);
}

/* ---- recover: video_list ----------------------------------------------------------- */

/* A title hg_body() made with tag: the tag, then a space or nothing. */
static int hg_tagged(const char *title, const char *tag)
{
	size_t n = strlen(tag);
	return n && !strncmp(title, tag, n) && (title[n] == 0 || title[n] == ' ');
}

/* One page of the list: the tagged video → *id; *back: a video made before after. */
static void hg_list_page(const cJSON *videos, const char *tag, double after, char **id, int *back)
{
	const cJSON *v;

	cJSON_ArrayForEach (v, videos) {
		const char *vid = json_str(v, "video_id", "");
		if (!*id && hg_tagged(json_str(v, "video_title", ""), tag) && clip_jobs_id_ok(vid)) *id = xstrdup(vid);
		if (json_num(v, "created_at", after) < after) *back = 1;
	}
}

/* GET /v1/video.list?limit=100[&token=...]: one page; *token the next one (malloc'd) or NULL. */
static enum stage_rc hg_list(struct clip_jobs *r, const char *tag, double after, char **token, char **id, int *back)
{
	struct sbuf u = { 0 };
	struct http_req q = { .method = "GET" };
	cJSON *j = NULL;
	enum stage_rc rc;

	sb_printf(&u, "%s/v1/video.list?limit=100", hg_base(r));
	if (*token) sb_puts(&u, "&token="), sb_percent_escape(&u, *token, "-._~");
	free(*token);
	*token = NULL;
	q.url = u.s;
	rc = hg_get(r, &q, "heygen: looking up a video an earlier attempt submitted, in the video list", &j);
	if (rc == STAGE_OK && !cJSON_IsArray(json_get(j, "data.videos")))
		rc = stage_fail(r->ctx, STAGE_FAIL, "heygen: the video list answered without data.videos");
	if (rc == STAGE_OK) {
		hg_list_page(json_get(j, "data.videos"), tag, after, id, back);
		if (json_str(j, "data.token", NULL) && *json_str(j, "data.token", ""))
			*token = xstrdup(json_str(j, "data.token", ""));
	}
	cJSON_Delete(j);
	free(u.s);
	return rc;
}

/* clip_jobs_prov.find: the video titled with the mark's tag, newest first,
 * back to the mark's time (less the clock slack) or the end of the list. */
static enum stage_rc hg_find(struct clip_jobs *r, const cJSON *mark, char **id)
{
	const char *tag = json_str(mark, "tag", "");
	double after = json_num(mark, "since", 0) - RECOVER_CLOCK_SLACK_S;
	char *token = NULL;
	int back = 0, page = 0;
	enum stage_rc rc = STAGE_OK;

	*id = NULL;
	do rc = hg_list(r, tag, after, &token, id, &back);
	while (rc == STAGE_OK && !*id && !back && token && ++page < VIDEO_LIST_PAGES);
	if (rc == STAGE_OK && !*id && !back && token)
		rc = stage_fail(r->ctx, STAGE_FAIL,
				"heygen: the video list was not read back to the submission (%s) within %d pages", tag,
				VIDEO_LIST_PAGES);
	free(token);
	return rc;
}

/* A status answer: completed → video_url and minutes; failed → STAGE_FAIL. */
static enum stage_rc hg_status(struct clip_jobs *r, const struct media_seg *s, const char *id, const cJSON *j,
			       char **url, double *units, double *usd)
{
	const char *st = json_str(j, "data.status", "");

	if (!strcmp(st, "completed") && json_str(j, "data.video_url", NULL)) {
		*url = xstrdup(json_str(j, "data.video_url", ""));
		*units = json_num(j, "data.duration", s->end - s->start) / 60.0;
		*usd = cost_price(r->ctx->global, "heygen", "minutes", *units);
		return STAGE_OK;
	}
	if (!strcmp(st, "failed")) return hg_failed(r, s, id, j);
	if (!hg_waiting(st))
		stage_log(r->ctx, "warn", "heygen: segment %d: status \"%s\"; still waiting", s->index, st);
	return STAGE_PENDING;
}

/* The provider's description, grouped as the struct declares it. */
/* clang-format off */
static const struct clip_jobs_prov heygen = {
	.name = "heygen", .dir = "avatar", .asset_type = "avatar_video", .broll = 0,
	.poll_default = 10, .wait_default = 1200, .operation = "avatar_video", .unit_type = "minutes",
	.fingerprint = hg_fingerprint, .submit = hg_submit, .clip = "avatar video",
	.status_url = hg_status_url, .get = hg_get, .status = hg_status, /* no cancel: HeyGen has no endpoint for it */
	.find = hg_find,
};
/* clang-format on */

/* providers.avatar: {name: heygen, avatar_id | talking_photo_id, ...}; see docs/cloud-providers.md. */
enum stage_rc prov_avatar_heygen(struct stage_ctx *ctx)
{
	return clip_jobs_stage(ctx, &heygen);
}
