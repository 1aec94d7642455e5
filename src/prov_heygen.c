/*
 * prov_heygen.c - the avatar stage through HeyGen (asynchronous avatar
 * videos), and the asynchronous-job loop it shares with prov_runway.c.
 *
 * The loop, async_stage(), is one run of the stage; the daemon runs the
 * stage again after ctx->retry_after for as long as it answers STAGE_PENDING:
 *  1. every wanted clip (a segment of the provider's kind, at least one frame
 *     long) that is not on disk, and has no live job id in this job row, is
 *     submitted, and its id stored with stage_state_set() at once;
 *  2. every live id is polled once (one GET); a finished job is downloaded
 *     into its clip at once (the links expire);
 *  3. anything still pending: STAGE_PENDING, retry_after = poll_seconds;
 *     else every clip is reported, with the cost of the ones this job made.
 *
 * Keys in the provider-state store (ctx->state), NN = segment index:
 *   seg-NN          the provider's job id (HeyGen video_id, Runway task id)
 *   seg-NN_t        epoch seconds of the first submission (max_wait_seconds)
 *   seg-NN_cost     "UNITS USD", stored when the job finished, reported once
 *                   the stage completes (the daemon records costs only then)
 *   seg-NN_sent     set while the job-creating request is in flight
 *   seg-NN_asset    HeyGen: the uploaded narration's asset id
 *   seg-NN_retried  Runway: a task id given up after INTERNAL.BAD_OUTPUT
 *
 * Invariants:
 *  - a job is submitted only for a segment without a live id, and its id is
 *    stored before anything else happens: a SIGKILL at any moment resumes
 *    polling the same ids and never submits twice; when an id cannot be
 *    stored the stage fails rather than retries (a retry would pay again);
 *  - seg-NN_sent brackets the creating request: a stage killed while that
 *    request was in flight cannot know whether the job exists, so the next
 *    run fails with a message instead of submitting again (the HTTP layer's
 *    rule for not_idempotent requests, applied across a crash);
 *  - a failed render is never resubmitted (except Runway's
 *    INTERNAL.BAD_OUTPUT, once, decided by prov_runway.c);
 *  - clips appear only through http_request(download_to) (temp, fsync,
 *    rename); <dir>/.seg-NN.mp4.req beside a clip holds the sha256 of the
 *    request that made it and the clip's size, mtime and sha256; a clip
 *    without a matching one (another script, settings or provider) is
 *    stale: it is removed and made again;
 *  - the API key is sent to the API hosts only, never to download links.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DOWNLOAD_MAX ((size_t)4 << 30)
#define UPLOAD_MAX (256u << 20)
#define RETRY_AFTER_MAX 600.0     /* seconds: a server asking for longer is asked again then */

/* One segment of the timeline as the loop sees it. */
struct async_seg {
	const struct media_seg *s;
	int want;                 /* of this provider's kind and not empty */
	int done;                 /* its clip is on disk and current */
	char fp[65];              /* sha256 of the request that makes its clip */
	char *clip, *req;         /* <dir>/seg-NN.mp4, <dir>/.seg-NN.mp4.req */
};

/* ---- provider-job keys --------------------------------------------------- */

static char *seg_key(int seg, const char *what)
{
	return what ? xasprintf("seg-%02d_%s", seg, what) : xasprintf("seg-%02d", seg);
}

/* The value stored under seg-NN[_what] in this job row, or NULL; valid
 * until that same key is set again. */
const char *async_get(const struct async_run *r, int seg, const char *what)
{
	char *k = seg_key(seg, what);
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(r->jobs, k);
	free(k);
	return cJSON_IsString(j) && j->valuestring[0] ? j->valuestring : NULL;
}

/* Stores seg-NN[_what] in the database at once, and in r->jobs. */
int async_set(struct async_run *r, int seg, const char *what, const char *value)
{
	char *k = seg_key(seg, what);
	int rc = stage_state_set(r->ctx, k, value);
	if (rc == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(r->jobs, k);
		cJSON_AddStringToObject(r->jobs, k, value);
	}
	free(k);
	return rc;
}

/* The job id to poll for a segment: stored, and not spent by a retry. */
static const char *live_id(const struct async_run *r, int seg)
{
	const char *id = async_get(r, seg, NULL), *spent = async_get(r, seg, "retried");
	return id && (!spent || strcmp(id, spent) != 0) ? id : NULL;
}

/* ---- HTTP ----------------------------------------------------------------- */

/* One request; a failure becomes STAGE_RETRY (retriable, with the server's
 * Retry-After or poll_seconds) or STAGE_FAIL, the message starting with
 * `what`.  With json, a 2xx answer must be JSON and *json holds it. */
enum stage_rc async_http(struct async_run *r, struct http_req *q, const char *what, cJSON **json)
{
	struct http_resp resp;
	enum stage_rc rc = STAGE_OK;

	q->provider = r->p->name;
	if (!q->timeout_s) q->timeout_s = r->timeout_s;
	if (http_request(r->ctx, q, &resp) < 0) {
		rc = stage_fail(r->ctx, resp.retriable ? STAGE_RETRY : STAGE_FAIL, "%s: %s", what,
				resp.error[0] ? resp.error : "request failed");
		if (resp.retriable)
			r->ctx->retry_after = resp.retry_after > 0 ? fmin(resp.retry_after, RETRY_AFTER_MAX) : r->poll_s;
	} else if (json && !(*json = cJSON_Parse(resp.body.s ? resp.body.s : ""))) {
		rc = stage_fail(r->ctx, q->not_idempotent ? STAGE_FAIL : STAGE_RETRY, "%s: %s answered HTTP %ld "
				"with a body that is not JSON%s", what, r->p->name, resp.status, q->not_idempotent ?
				" (it may be making it anyway: look at its dashboard before a retry)" : "");
		if (rc == STAGE_RETRY) r->ctx->retry_after = r->poll_s;
	}
	http_resp_free(&resp);
	return rc;
}

/* The job-creating request of segment seg (never resent by the HTTP layer).
 * seg-NN_sent is stored first and cleared once the answer is known: a stage
 * that dies in between leaves it, and the next run refuses to pay twice. */
enum stage_rc async_create(struct async_run *r, int seg, struct http_req *q, const char *what, cJSON **json)
{
	char now[32];
	enum stage_rc rc;

	snprintf(now, sizeof now, "%.3f", time_now());
	if (async_set(r, seg, "sent", now) < 0)
		return stage_fail(r->ctx, STAGE_RETRY, "%s: %s", what, err_msg());
	q->not_idempotent = 1;
	rc = async_http(r, q, what, json);
	if (rc == STAGE_RETRY && async_set(r, seg, "sent", "") < 0)   /* it did not reach the provider */
		stage_log(r->ctx, "warn", "%s: segment %d: could not clear seg-%02d_sent: %s", r->p->name, seg,
			  seg, err_msg());
	return rc;
}

/* Provider ids go into URLs and the database: only plain characters. */
int async_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > 200) return 0;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

/* ---- the loop ---------------------------------------------------------------- */

static void segs_free(struct async_run *r)
{
	for (size_t i = 0; r->seg && i < r->tl.n; i++) {
		free(r->seg[i].clip);
		free(r->seg[i].req);
	}
	free(r->seg);
	r->seg = NULL;
}

/* The sidecar's text: the request's hash, then the clip's size, mtime and
 * content hash, so a clip another provider wrote later is stale too. */
static char *clip_stamp(const struct async_seg *g)
{
	struct stat st;
	char sha[65];
	if (stat(g->clip, &st) < 0) { err_set_errno("cannot stat %s", g->clip); return NULL; }
	if (hash_file(g->clip, sha) < 0) return NULL;
	return xasprintf("%s %lld %lld.%09ld %s\n", g->fp, (long long)st.st_size,
			 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, sha);
}

/* Is the clip on disk, and made from the request we would send now?  Same
 * size and mtime as recorded is enough; otherwise (a restored backup) the
 * content hash decides. */
static int clip_current(const struct async_seg *g)
{
	char *have = fsio_read(g->req, 512, NULL), fp[65], mt[40], sha[65], now[65], nowmt[40];
	long long size;
	struct stat st;
	int ok = have && sscanf(have, "%64s %lld %39s %64s", fp, &size, mt, sha) == 4 &&
		 strcmp(fp, g->fp) == 0 && stat(g->clip, &st) == 0 && st.st_size == size;

	snprintf(nowmt, sizeof nowmt, "%lld.%09ld", ok ? (long long)st.st_mtim.tv_sec : 0LL,
		 ok ? st.st_mtim.tv_nsec : 0L);
	if (ok && strcmp(mt, nowmt) != 0) ok = hash_file(g->clip, now) == 0 && strcmp(now, sha) == 0;
	free(have);
	return ok;
}

static void segs_load(struct async_run *r)
{
	r->seg = xcalloc(r->tl.n ? r->tl.n : 1, sizeof *r->seg);
	for (size_t i = 0; i < r->tl.n; i++) {
		struct async_seg *g = &r->seg[i];
		char *what;
		g->s = &r->tl.seg[i];
		g->want = g->s->broll == r->p->broll && media_seg_frames(g->s, r->frame.fps) > 0;
		if (!g->want) continue;
		g->clip = xasprintf("%s/seg-%02d.mp4", r->p->dir, g->s->index);
		g->req = xasprintf("%s/.seg-%02d.mp4.req", r->p->dir, g->s->index);
		what = r->p->fingerprint(r, g->s);
		hash_hex(what, strlen(what), g->fp);
		free(what);
		g->done = clip_current(g);
	}
}

/* Options, frame, timeline, key and clip folder; STAGE_OK or a failure. */
static enum stage_rc async_open(struct async_run *r)
{
	const cJSON *o = r->ctx->provider;

	r->poll_s = json_num(o, "poll_seconds", r->p->poll_default);
	r->wait_s = json_num(o, "max_wait_seconds", r->p->wait_default);
	r->timeout_s = (int)json_num(o, "timeout", 120);
	if (r->poll_s <= 0 || r->wait_s <= 0 || r->timeout_s <= 0)
		return stage_fail(r->ctx, STAGE_FAIL, "providers.%s: poll_seconds, max_wait_seconds and "
				  "timeout must be positive numbers of seconds", r->ctx->stage);
	if (media_frame_get(r->ctx->channel, &r->frame) < 0 || media_timeline_load(&r->tl) < 0)
		return stage_fail(r->ctx, STAGE_FAIL, "%s", err_msg());
	if (!(r->key = credential_get(r->ctx, "api_key")))
		return stage_fail(r->ctx, STAGE_FAIL, "%s", err_msg());
	if (fsio_mkdirs(r->p->dir) < 0 || media_prune_clips(r->p->dir, &r->tl, r->p->broll) < 0)
		return stage_fail(r->ctx, STAGE_RETRY, "%s", err_msg());
	r->jobs = cJSON_Duplicate(r->ctx->state, 1);
	segs_load(r);
	return STAGE_OK;
}

static void async_close(struct async_run *r)
{
	segs_free(r);
	media_timeline_free(&r->tl);
	cJSON_Delete(r->jobs);
	free(r->key);
}

/* Step 1 for one segment: submit unless done or already submitted. */
static enum stage_rc submit_one(struct async_run *r, struct async_seg *g)
{
	int n = g->s->index;
	char *id = NULL, now[32];
	enum stage_rc rc;

	if (!g->want || g->done || live_id(r, n)) return STAGE_OK;
	if (async_get(r, n, "sent"))
		return stage_fail(r->ctx, STAGE_FAIL, "%s: the stage stopped while segment %d was being submitted; "
				  "%s may be making it already, so it is not submitted again (that could pay twice): "
				  "look at its dashboard, then `acog-batch retry` the episode", r->p->name, n, r->p->name);
	if (fsio_exists(g->clip)) {
		stage_log(r->ctx, "info", "%s: %s was made from another script or settings; making it again",
			  r->p->name, g->clip);
		if (fsio_unlink_durable(g->clip) < 0) return stage_fail(r->ctx, STAGE_RETRY, "%s", err_msg());
	}
	if ((rc = r->p->submit(r, g->s, &id)) != STAGE_OK) return rc;
	if (async_set(r, n, NULL, id) < 0)
		rc = stage_fail(r->ctx, STAGE_FAIL, "%s: segment %d was submitted as job %s but the id could "
				"not be stored (%s); not retrying, so as not to pay twice: check the database, "
				"then `acog-batch retry`", r->p->name, n, id, err_msg());
	snprintf(now, sizeof now, "%.3f", time_now());
	if (rc == STAGE_OK && !async_get(r, n, "t")) async_set(r, n, "t", now);
	if (rc == STAGE_OK) async_set(r, n, "sent", "");
	if (rc == STAGE_OK) stage_log(r->ctx, "info", "%s: segment %d submitted as %s", r->p->name, n, id);
	free(id);
	return rc;
}

/* A job still pending: fine until max_wait_seconds after its first submission. */
static enum stage_rc check_wait(struct async_run *r, int n, const char *id)
{
	const char *t = async_get(r, n, "t");
	double t0 = t ? strtod(t, NULL) : 0, waited = time_now() - t0;
	char now[32];

	if (t0 <= 0) {                        /* killed between storing the id and the time */
		snprintf(now, sizeof now, "%.3f", time_now());
		async_set(r, n, "t", now);
		return STAGE_PENDING;
	}
	if (waited <= r->wait_s) return STAGE_PENDING;
	if (r->p->cancel) r->p->cancel(r, id);
	return stage_fail(r->ctx, STAGE_FAIL, "%s: gave up on segment %d (job %s) after %.0f s "
			  "(max_wait_seconds %g)", r->p->name, n, id, waited, r->wait_s);
}

/* Fetches a finished clip (no API key: the link is signed) and checks it. */
static enum stage_rc download(struct async_run *r, struct async_seg *g, const char *url)
{
	struct http_req q = { .method = "GET", .url = url, .download_to = g->clip,
			      .max_response = DOWNLOAD_MAX, .timeout_s = r->timeout_s > 600 ? r->timeout_s : 600 };
	char *what = xasprintf("downloading the clip of segment %d", g->s->index), *stamp = NULL;
	enum stage_rc rc;
	double d;

	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		rc = stage_fail(r->ctx, STAGE_FAIL, "%s: %s: the link is not http(s)", r->p->name, what);
	else if ((rc = async_http(r, &q, what, NULL)) == STAGE_RETRY || rc == STAGE_FAIL)
		rc = STAGE_RETRY;             /* an expired link: the next poll brings a fresh one */
	if (rc == STAGE_OK && (d = media_duration(g->clip)) <= 0) {
		fsio_unlink_durable(g->clip);
		rc = stage_fail(r->ctx, STAGE_RETRY, "%s: %s: not a playable video (%s)", r->p->name, what,
				err_msg());
	}
	if (rc == STAGE_OK && ((stamp = clip_stamp(g)) == NULL || fsio_write_atomic_str(g->req, stamp) < 0))
		rc = stage_fail(r->ctx, STAGE_RETRY, "%s", err_msg());
	if (rc == STAGE_OK) stage_log(r->ctx, "info", "%s: segment %d downloaded into %s", r->p->name,
				      g->s->index, g->clip);
	g->done = rc == STAGE_OK;
	free(stamp);
	free(what);
	return rc;
}

/* Step 2 for one segment: one poll; download when finished. */
static enum stage_rc poll_one(struct async_run *r, struct async_seg *g, int *pending)
{
	int n = g->s->index;
	const char *id = g->want && !g->done ? live_id(r, n) : NULL;
	char *url = NULL, *cost;
	double units = 0, usd = 0;
	enum stage_rc rc;

	if (!id) return STAGE_OK;
	rc = r->p->poll(r, g->s, id, &url, &units, &usd);
	if (rc == STAGE_PENDING && (rc = check_wait(r, n, id)) == STAGE_PENDING) (*pending)++;
	if (rc != STAGE_OK) return rc == STAGE_PENDING ? STAGE_OK : rc;
	cost = xasprintf("%.6f %.6f", units, usd);
	if (async_set(r, n, "cost", cost) < 0)
		stage_log(r->ctx, "warn", "%s: segment %d: its cost (%s) could not be stored", r->p->name, n, cost);
	rc = download(r, g, url);
	free(cost);
	free(url);
	return rc;
}

/* Step 4: every clip is there; report them and what this job paid for. */
static enum stage_rc finish(struct async_run *r)
{
	int clips = 0, made = 0;
	double total = 0, units, usd, d;

	for (size_t i = 0; i < r->tl.n; i++) {
		const struct async_seg *g = &r->seg[i];
		const char *cost = g->want ? async_get(r, g->s->index, "cost") : NULL;
		if (!g->want) continue;
		if ((d = media_duration(g->clip)) < 0)
			return stage_fail(r->ctx, STAGE_RETRY, "%s: %s", r->p->name, err_msg());
		stage_output(r->ctx, r->p->asset_type, g->clip, "video/mp4", (long)llround(d * 1000));
		clips++;
		if (cost && sscanf(cost, "%lf %lf", &units, &usd) == 2) {
			stage_cost(r->ctx, r->p->name, r->p->operation, units, r->p->unit_type, usd);
			total += usd;
			made++;
		}
	}
	stage_log(r->ctx, "info", "%s: %d clips in %s/, %d made by this job for $%.2f", r->p->name, clips,
		  r->p->dir, made, total);
	r->ctx->error[0] = 0;
	return STAGE_OK;
}

/* Worst first: FAIL, then RETRY, then the rest. */
static enum stage_rc worse(enum stage_rc a, enum stage_rc b)
{
	if (a == STAGE_FAIL || b == STAGE_FAIL) return STAGE_FAIL;
	return a == STAGE_RETRY || b == STAGE_RETRY ? STAGE_RETRY : a;
}

/* The stage fails for good: jobs still running at the provider would only
 * cost money, so every live one is cancelled (where the provider can). */
static void cancel_live(struct async_run *r)
{
	for (size_t i = 0; r->p->cancel && i < r->tl.n; i++) {
		struct async_seg *g = &r->seg[i];
		const char *id = g->want && !g->done ? live_id(r, g->s->index) : NULL;
		if (id) r->p->cancel(r, id);
	}
}

static enum stage_rc async_pass(struct async_run *r)
{
	enum stage_rc rc = STAGE_OK, one;
	int pending = 0;

	for (size_t i = 0; i < r->tl.n && rc == STAGE_OK; i++)
		rc = submit_one(r, &r->seg[i]);          /* a RETRY stops submitting, not polling */
	for (size_t i = 0; i < r->tl.n && rc != STAGE_FAIL; i++)
		if ((one = poll_one(r, &r->seg[i], &pending)) != STAGE_OK) rc = worse(rc, one);
	if (rc == STAGE_FAIL) cancel_live(r);
	if (rc != STAGE_OK) return rc;
	if (pending) {
		stage_log(r->ctx, "info", "%s: %d job(s) pending; polling again in %g s", r->p->name,
			  pending, r->poll_s);
		r->ctx->retry_after = r->poll_s;
		r->ctx->error[0] = 0;
		return STAGE_PENDING;
	}
	return finish(r);
}

/* One run of an asynchronous provider's stage (see the top of this file). */
enum stage_rc async_stage(struct stage_ctx *ctx, const struct async_prov *p)
{
	struct async_run r = { .ctx = ctx, .p = p };
	enum stage_rc rc = async_open(&r);
	if (rc == STAGE_OK) rc = async_pass(&r);
	async_close(&r);
	return rc;
}

/* ---- HeyGen ---------------------------------------------------------------------- *
 * Options (providers.avatar): base_url, upload_url, avatar_id (or
 * talking_photo_id), avatar_style (normal), background (#RRGGBB),
 * api_key_env | api_key_file, poll_seconds (10), max_wait_seconds (1200),
 * timeout.  Per avatar segment: its narration cut from audio.wav to MP3,
 * uploaded once (seg-NN_asset), one v2 generate of one scene with that
 * audio, the channel's frame as dimension (scaled into 128..4096, even). */

static const char *hg_base(const struct async_run *r)
{
	return json_str(r->ctx->provider, "base_url", "https://api.heygen.com");
}

/* HeyGen's own failure inside a 2xx answer: non-null error, or code != 100. */
static enum stage_rc hg_check(struct async_run *r, const cJSON *j, const char *what)
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
static enum stage_rc hg_call(struct async_run *r, struct http_req *q, const char *ctype,
			     const char *what, cJSON **j, int create)
{
	char *key = xasprintf("X-Api-Key: %s", r->key);
	char *ct = ctype ? xasprintf("Content-Type: %s", ctype) : NULL;
	const char *h[] = { key, "Accept: application/json", ct, NULL };
	enum stage_rc rc;

	q->headers = h;
	rc = create >= 0 ? async_create(r, create, q, what, j) : async_http(r, q, what, j);
	if (rc == STAGE_OK && (rc = hg_check(r, *j, what)) != STAGE_OK) {
		cJSON_Delete(*j);
		*j = NULL;
	}
	free(key);
	free(ct);
	return rc;
}

/* avatar/.seg-NN.narration.tmp.mp3: the segment's part of the narration. */
static enum stage_rc hg_cut(struct async_run *r, const struct media_seg *s, const char *mp3)
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

/* Uploads the MP3 (POST {upload_url}/v1/asset, raw bytes) → asset id. */
static enum stage_rc hg_upload(struct async_run *r, const struct media_seg *s, const char *mp3, char **asset)
{
	size_t len = 0;
	char *data = fsio_read(mp3, UPLOAD_MAX, &len), *what;
	char *url = xasprintf("%s/v1/asset", json_str(r->ctx->provider, "upload_url", "https://upload.heygen.com"));
	struct http_req q = { .method = "POST", .url = url, .body = data, .body_len = len };
	cJSON *j = NULL;
	enum stage_rc rc;

	what = xasprintf("uploading the narration of segment %d", s->index);
	if (!data) rc = stage_fail(r->ctx, STAGE_RETRY, "%s", err_msg());
	else if ((rc = hg_call(r, &q, "audio/mpeg", what, &j, -1)) == STAGE_OK &&
		 !async_id_ok(*asset = xstrdup(json_str(j, "data.id", ""))))
		rc = stage_fail(r->ctx, STAGE_FAIL, "%s: heygen answered without a usable data.id", what);
	if (rc != STAGE_OK && *asset) { free(*asset); *asset = NULL; }
	cJSON_Delete(j);
	free(what);
	free(url);
	free(data);
	return rc;
}

/* The narration's asset id: stored from an earlier run, or cut and uploaded now. */
static enum stage_rc hg_asset(struct async_run *r, const struct media_seg *s, char **asset)
{
	const char *have = async_get(r, s->index, "asset");
	char *mp3;
	enum stage_rc rc;

	*asset = NULL;
	if (have) { *asset = xstrdup(have); return STAGE_OK; }
	mp3 = xasprintf("%s/.seg-%02d.narration.tmp.mp3", r->p->dir, s->index);
	if ((rc = hg_cut(r, s, mp3)) == STAGE_OK) rc = hg_upload(r, s, mp3, asset);
	unlink(mp3);
	free(mp3);
	if (rc == STAGE_OK && async_set(r, s->index, "asset", *asset) < 0)
		stage_log(r->ctx, "warn", "heygen: segment %d: asset %s not stored; a restart uploads again",
			  s->index, *asset);
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
static char *hg_body(struct async_run *r, const struct media_seg *s, const char *asset)
{
	cJSON *b = cJSON_CreateObject(), *scene = cJSON_CreateObject(), *v, *d;
	const char *bg = json_str(r->ctx->provider, "background", NULL);
	char *title = xasprintf("%s - segment %d", json_str(r->ctx->idea, "topic", "acog"), s->index), *out;
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
	out = json_print(b);
	cJSON_Delete(b);
	free(title);
	return out;
}

/* What a clip depends on: the avatar, the frame and the segment's narration. */
static char *hg_fingerprint(struct async_run *r, const struct media_seg *s)
{
	const cJSON *o = r->ctx->provider, *c;
	struct sbuf b = { 0 };
	int w, h;

	hg_dimension(&r->frame, &w, &h);
	sb_printf(&b, "heygen\n%s\n%s\n%s\n%s\n%dx%d\n%.3f-%.3f\n", json_str(o, "talking_photo_id", ""),
		  json_str(o, "avatar_id", ""), json_str(o, "avatar_style", "normal"),
		  json_str(o, "background", ""), w, h, s->start, s->end);
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r->tl.json, "cues")) {
		double t = json_num(c, "start", -1);
		if (t >= s->start - 0.001 && t < s->end - 0.001)
			sb_printf(&b, "%.3f %s\n", t, json_str(c, "text", ""));
	}
	return b.s;
}

static enum stage_rc hg_submit(struct async_run *r, const struct media_seg *s, char **id)
{
	char *asset = NULL, *url, *body, *what;
	struct http_req q = { .method = "POST" };
	cJSON *j = NULL;
	enum stage_rc rc;

	if (!json_str(r->ctx->provider, "avatar_id", NULL) && !json_str(r->ctx->provider, "talking_photo_id", NULL))
		return stage_fail(r->ctx, STAGE_FAIL, "providers.avatar (heygen) needs avatar_id (or "
				  "talking_photo_id) in channel.yaml");
	if ((rc = hg_asset(r, s, &asset)) != STAGE_OK) return rc;
	q.url = url = xasprintf("%s/v2/video/generate", hg_base(r));
	q.body = body = hg_body(r, s, asset);
	q.body_len = strlen(body);
	what = xasprintf("asking for the avatar video of segment %d", s->index);
	if ((rc = hg_call(r, &q, "application/json", what, &j, s->index)) == STAGE_OK &&
	    !async_id_ok(*id = xstrdup(json_str(j, "data.video_id", ""))))
		rc = stage_fail(r->ctx, STAGE_FAIL, "%s: heygen answered without a usable data.video_id", what);
	if (rc != STAGE_OK && *id) { free(*id); *id = NULL; }
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
static enum stage_rc hg_failed(struct async_run *r, const struct media_seg *s, const char *id,
			       const cJSON *j)
{
	const cJSON *code = json_get(j, "data.error.code");
	char num[32] = "";
	if (cJSON_IsNumber(code)) snprintf(num, sizeof num, "%d", code->valueint);
	return stage_fail(r->ctx, STAGE_FAIL, "heygen: the avatar video of segment %d (%s) failed: %s "
			  "(code %s)", s->index, id, json_str(j, "data.error.message", "no message"),
			  num[0] ? num : json_str(j, "data.error.code", "none"));
}

/* One status GET: completed → video_url and minutes; failed → STAGE_FAIL. */
static enum stage_rc hg_poll(struct async_run *r, const struct media_seg *s, const char *id,
			     char **url, double *units, double *usd)
{
	char *get = xasprintf("%s/v1/video_status.get?video_id=%s", hg_base(r), id);
	char *what = xasprintf("polling the avatar video of segment %d (%s)", s->index, id);
	struct http_req q = { .method = "GET", .url = get };
	const char *st;
	cJSON *j = NULL;
	enum stage_rc rc = hg_call(r, &q, NULL, what, &j, -1);

	st = json_str(j, "data.status", "");
	if (rc != STAGE_OK) {
		/* hg_call said why */
	} else if (!strcmp(st, "completed") && json_str(j, "data.video_url", NULL)) {
		*url = xstrdup(json_str(j, "data.video_url", ""));
		*units = json_num(j, "data.duration", s->end - s->start) / 60.0;
		*usd = cost_price(r->ctx->global, "heygen", "minutes", *units);
	} else if (!strcmp(st, "failed")) {
		rc = hg_failed(r, s, id, j);
	} else {
		if (!hg_waiting(st))
			stage_log(r->ctx, "warn", "heygen: segment %d: status \"%s\"; still waiting", s->index, st);
		rc = STAGE_PENDING;
	}
	cJSON_Delete(j);
	free(what);
	free(get);
	return rc;
}

static const struct async_prov heygen = {
	.name = "heygen", .dir = "avatar", .asset_type = "avatar_video", .broll = 0,
	.poll_default = 10, .wait_default = 1200,
	.operation = "avatar_video", .unit_type = "minutes",
	.fingerprint = hg_fingerprint, .submit = hg_submit, .poll = hg_poll, .cancel = NULL,
};

/* providers.avatar: {name: heygen, avatar_id | talking_photo_id, ...}; see docs/cloud-providers.md. */
enum stage_rc prov_avatar_heygen(struct stage_ctx *ctx)
{
	return async_stage(ctx, &heygen);
}
