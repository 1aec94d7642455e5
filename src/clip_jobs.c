/*
 * clip_jobs.c - the per-segment clip-job loop of the providers that make one
 * clip per timeline segment as a paid, asynchronous job at a cloud service
 * (prov_heygen.c: avatar videos, prov_runway.c: b-roll).  A provider brings
 * its protocol as a struct clip_jobs_prov (fingerprint, submit, poll,
 * cancel); this file owns the rest.
 *
 * clip_jobs_stage() is one run of the stage; the daemon runs the stage again
 * after ctx->retry_after for as long as it answers STAGE_PENDING:
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
 *   seg-NN_sent     epoch seconds of a job-creating request whose outcome is
 *                   not known yet (in flight, or ended ambiguously)
 *   seg-NN_asset    HeyGen: the uploaded narration's asset id
 *   seg-NN_retried  Runway: a task id given up after INTERNAL.BAD_OUTPUT
 *   seg-NN_offline  the "sent" time of a request in doubt whose segment was
 *                   rendered offline instead (substitute())
 *   episode:seg-NN_mark  clip_recover.c (HeyGen, recover: video_list): the
 *                   submission's tag and fingerprint, then its id; kept
 *                   across a person's retry
 *
 * Invariants:
 *  - a job is submitted only for a segment without a live id, and its id is
 *    stored before anything else happens: a SIGKILL at any moment resumes
 *    polling the same ids and never submits twice; when an id cannot be
 *    stored the stage fails rather than retries (a retry would pay again);
 *  - seg-NN_sent brackets the creating request, which the HTTP layer resends
 *    only after an answer proving nothing was made (http.c).  It is cleared
 *    once the id is stored or such an answer came.  Otherwise (the stage was
 *    killed in flight; a 500, 502 or 504, a timeout or a dropped connection
 *    after sending; a 2xx we cannot read) the job may exist: it stays set.
 *    A provider that can find a job by a tag sent with it (HeyGen's
 *    video.list, clip_recover.c) looks it up and adopts it, or submits again
 *    once it is proven absent.  A provider that cannot (Runway) renders the
 *    segment offline instead (in_doubt: offline, the default: Runway's
 *    generated b-roll), noted as seg-NN_offline; otherwise (in_doubt: fail,
 *    HeyGen with recover: none) the stage fails telling the operator what to
 *    look for at the provider.  Either way nothing is paid for twice;
 *  - a failed render is never resubmitted (except Runway's
 *    INTERNAL.BAD_OUTPUT, once, decided by prov_runway.c);
 *  - clips appear only through http_request(download_to) (fsio_commit);
 *    <dir>/.seg-NN.mp4.req beside a clip holds the sha256 of the
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
#define RETRY_AFTER_MAX 600.0 /* seconds: a server asking for longer is asked again then */

/* One segment of the timeline as the loop sees it. */
struct clip_seg {
	const struct media_seg *s;
	int want;         /* of this provider's kind and not empty */
	int done;         /* its clip is on disk and current, or it was rendered offline */
	int offline;      /* in doubt, rendered offline (seg-NN_offline) when the stage finishes */
	char fp[65];      /* sha256 of the request that makes its clip */
	char *clip, *req; /* <dir>/seg-NN.mp4, <dir>/.seg-NN.mp4.req */
};

/* ---- provider-job keys --------------------------------------------------- */

static char *seg_key(int seg, const char *what)
{
	return what ? xasprintf("seg-%02d_%s", seg, what) : xasprintf("seg-%02d", seg);
}

/* The value stored under seg-NN[_what] in this job row, or NULL; valid
 * until that same key is set again. */
const char *clip_jobs_get(const struct clip_jobs *r, int seg, const char *what)
{
	char *k = seg_key(seg, what);
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(r->jobs, k);
	free(k);
	return cJSON_IsString(j) && j->valuestring[0] ? j->valuestring : NULL;
}

/* Stores seg-NN[_what] in the database at once, and in r->jobs. */
int clip_jobs_set(struct clip_jobs *r, int seg, const char *what, const char *value)
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
static const char *live_id(const struct clip_jobs *r, int seg)
{
	const char *id = clip_jobs_get(r, seg, NULL), *spent = clip_jobs_get(r, seg, "retried");
	return id && (!spent || strcmp(id, spent) != 0) ? id : NULL;
}

/* ---- HTTP ----------------------------------------------------------------- */

/* One request; a failure becomes STAGE_RETRY (retriable, with the server's
 * Retry-After or poll_seconds) or STAGE_FAIL, the message starting with
 * `what`.  With json, a 2xx answer must be JSON and *json holds it.
 * *maybe_ran (may be NULL): a not_idempotent request failed in a way that
 * does not prove its job was not made. */
static enum stage_rc request(struct clip_jobs *r, struct http_req *q, const char *what, cJSON **json, int *maybe_ran)
{
	struct http_resp resp;
	enum stage_rc rc = STAGE_OK;
	int unknown = 0;

	q->provider = r->p->name;
	if (!q->timeout_s) q->timeout_s = r->timeout_s;
	if (http_request(&r->ctx->http, q, &resp) < 0) {
		rc = stage_fail(r->ctx, resp.retriable ? STAGE_RETRY : STAGE_FAIL, "%s: %s", what,
				resp.error[0] ? resp.error : "request failed");
		if (resp.retriable)
			r->ctx->retry_after = resp.retry_after > 0 ? fmin(resp.retry_after, RETRY_AFTER_MAX)
								   : r->poll_s;
		unknown = resp.maybe_ran;
	} else if (json && !(*json = cJSON_Parse(resp.body.s ? resp.body.s : ""))) {
		rc = stage_fail(r->ctx, q->not_idempotent ? STAGE_FAIL : STAGE_RETRY,
				"%s: %s answered HTTP %ld "
				"with a body that is not JSON",
				what, r->p->name, resp.status);
		if (rc == STAGE_RETRY) r->ctx->retry_after = r->poll_s;
		unknown = q->not_idempotent;
	}
	if (maybe_ran) *maybe_ran = unknown;
	http_resp_free(&resp);
	return rc;
}

enum stage_rc clip_jobs_http(struct clip_jobs *r, struct http_req *q, const char *what, cJSON **json)
{
	return request(r, q, what, json, NULL);
}

/* In doubt, with in_doubt: offline: segment g is rendered offline instead,
 * by finish().  seg-NN_offline is stored before "sent" is cleared, so a
 * crash in between leaves it in doubt or offline, never to be sent again. */
static enum stage_rc substitute(struct clip_jobs *r, struct clip_seg *g, const char *sent, const char *at,
				const char *cause)
{
	int n = g->s->index;

	if (clip_jobs_set(r, n, "offline", sent) < 0 || clip_jobs_set(r, n, "sent", "") < 0)
		return stage_fail(r->ctx, STAGE_RETRY, "%s: segment %d: %s", r->p->name, n, err_msg());
	stage_log(r->ctx, "warn",
		  "%s. %s may have made the %s of segment %d anyway (asked for at %s) and offers no way to look "
		  "it up, so it is not asked for again (that could pay twice): the segment is rendered offline "
		  "instead (in_doubt: offline). Look in %s's dashboard for a job created then; "
		  "`acog-batch reject %s --to %s` asks %s for it anew",
		  cause, r->p->name, r->p->clip, n, at, r->p->name, r->ctx->episode_id, r->ctx->stage, r->p->name);
	g->done = g->offline = 1;
	r->ctx->error[0] = 0;
	return STAGE_OK;
}

/* Segment seg's job may exist at the provider without our knowing its id:
 * rendered offline when the provider can (substitute), else the stage
 * fails (seg-NN_sent stays), saying what to look for before paying again. */
static enum stage_rc unknown_job(struct clip_jobs *r, struct clip_seg *g, const char *sent, const char *cause)
{
	int seg = g->s->index;
	char at[32];
	time_iso(strtod(sent, NULL), at);
	if (r->offline) return substitute(r, g, sent, at, cause);
	return stage_fail(r->ctx, STAGE_FAIL,
			  "%s. %s may have made the clip of segment %d anyway, so it is not "
			  "asked for again (that could pay twice): look in %s's dashboard for a job created at %s; "
			  "`acog-batch retry %s` then asks for it once more (clips already made are kept)",
			  cause, r->p->name, seg, r->p->name, at, r->ctx->episode_id);
}

/* The job-creating request of segment seg.  seg-NN_sent is stored first and
 * cleared once an answer proves no job was made (a refusal, or an answer
 * the HTTP layer may resend); a stage that dies in between, or an answer
 * that proves nothing, leaves it and the stage fails rather than pay twice.
 * The caller clears it once the job's id is stored. */
enum stage_rc clip_jobs_create(struct clip_jobs *r, int seg, struct http_req *q, const char *what, cJSON **json)
{
	char now[32];
	enum stage_rc rc;
	int maybe_ran = 0;

	snprintf(now, sizeof now, "%.3f", time_now());
	if (clip_recover_store(r, seg) < 0 || clip_jobs_set(r, seg, "sent", now) < 0)
		return stage_fail(r->ctx, STAGE_RETRY, "%s: %s", what, err_msg());
	q->not_idempotent = 1;
	rc = request(r, q, what, json, &maybe_ran);
	if (maybe_ran && r->mark) /* marked: the next attempt looks it up (clip_recover.c) */
		return stage_fail(r->ctx, STAGE_RETRY, "%s" RECOVER_NEXT_TIME, r->ctx->error);
	if (maybe_ran) { /* submit_one: unknown_job() */
		snprintf(r->doubt, sizeof r->doubt, "%s", now);
		return STAGE_FAIL;
	}
	if (rc != STAGE_OK && clip_jobs_set(r, seg, "sent", "") < 0)
		stage_log(r->ctx, "warn", "%s: segment %d: could not clear seg-%02d_sent: %s", r->p->name, seg, seg,
			  err_msg());
	if (rc != STAGE_OK) clip_recover_clear(r, seg); /* a refusal: nothing was made */
	return rc;
}

/* Provider ids go into URLs and the database: only plain characters. */
int clip_jobs_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > 200) return 0;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

/* The id at path in a provider's answer (rc: how its request went): STAGE_OK
 * with *id (malloc'd), else *id NULL and the failure in ctx->error. */
enum stage_rc clip_jobs_answer_id(struct clip_jobs *r, enum stage_rc rc, const cJSON *j, const char *path,
				  const char *what, char **id)
{
	*id = NULL;
	if (rc != STAGE_OK) return rc;
	*id = xstrdup(json_str(j, path, ""));
	if (clip_jobs_id_ok(*id)) return STAGE_OK;
	free(*id);
	*id = NULL;
	return stage_fail(r->ctx, STAGE_FAIL, "%s: %s answered without a usable %s", what, r->p->name, path);
}

/* ---- the loop ---------------------------------------------------------------- */

static void segs_free(struct clip_jobs *r)
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
static char *clip_stamp(const struct clip_seg *g)
{
	struct stat st;
	char sha[65];
	if (stat(g->clip, &st) < 0) {
		err_set_errno("cannot stat %s", g->clip);
		return NULL;
	}
	if (hash_file(g->clip, sha) < 0) return NULL;
	return xasprintf("%s %lld %lld.%09ld %s\n", g->fp, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
			 st.st_mtim.tv_nsec, sha);
}

/* Is the clip on disk, and made from the request we would send now?  Same
 * size and mtime as recorded is enough; otherwise (a restored backup) the
 * content hash decides. */
static int clip_current(const struct clip_seg *g)
{
	char *have = fsio_read(g->req, 512, NULL), fp[65], mt[40], sha[65], now[65], nowmt[40];
	long long size;
	struct stat st;
	int ok = have && sscanf(have, "%64s %lld %39s %64s", fp, &size, mt, sha) == 4 && strcmp(fp, g->fp) == 0 &&
		stat(g->clip, &st) == 0 && st.st_size == size;

	snprintf(nowmt, sizeof nowmt, "%lld.%09ld", ok ? (long long)st.st_mtim.tv_sec : 0LL,
		 ok ? st.st_mtim.tv_nsec : 0L);
	if (ok && strcmp(mt, nowmt) != 0) ok = hash_file(g->clip, now) == 0 && strcmp(now, sha) == 0;
	free(have);
	return ok;
}

static void segs_load(struct clip_jobs *r)
{
	r->seg = xcalloc(r->tl.n ? r->tl.n : 1, sizeof *r->seg);
	for (size_t i = 0; i < r->tl.n; i++) {
		struct clip_seg *g = &r->seg[i];
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
		if (!g->done && r->p->offline && clip_jobs_get(r, g->s->index, "offline")) g->done = g->offline = 1;
	}
}

/* Options, frame, timeline, key and clip folder; STAGE_OK or a failure. */
static enum stage_rc run_open(struct clip_jobs *r)
{
	const cJSON *o = r->ctx->provider;

	r->poll_s = json_num(o, "poll_seconds", r->p->poll_default);
	r->wait_s = json_num(o, "max_wait_seconds", r->p->wait_default);
	r->timeout_s = (int)json_num(o, "timeout", 120);
	r->recover = r->p->find && strcmp(json_str(o, "recover", ""), "none") != 0;
	r->offline = r->p->offline && strcmp(json_str(o, "in_doubt", ""), "fail") != 0;
	if (r->poll_s <= 0 || r->wait_s <= 0 || r->timeout_s <= 0)
		return stage_fail(r->ctx, STAGE_FAIL,
				  "providers.%s: poll_seconds, max_wait_seconds and "
				  "timeout must be positive numbers of seconds",
				  r->ctx->stage);
	if (media_frame_get(r->ctx->channel, &r->frame) < 0 || media_timeline_load(&r->tl) < 0)
		return stage_fail(r->ctx, STAGE_FAIL, "%s", err_msg());
	if (!(r->key = credential_get(r->ctx, "api_key"))) return stage_fail(r->ctx, STAGE_FAIL, "%s", err_msg());
	if (fsio_mkdirs(r->p->dir) < 0 || media_prune_clips(r->p->dir, &r->tl, r->p->broll) < 0)
		return stage_fail(r->ctx, STAGE_RETRY, "%s", err_msg());
	r->jobs = cJSON_Duplicate(r->ctx->state, 1);
	segs_load(r);
	return STAGE_OK;
}

static void run_close(struct clip_jobs *r)
{
	segs_free(r);
	clip_recover_end(r);
	media_timeline_free(&r->tl);
	cJSON_Delete(r->jobs);
	free(r->key);
}

/* Segment n's job id, stored now (from a submission, or one an earlier
 * attempt made): STAGE_FAIL when it cannot be (a retry would pay again). */
static enum stage_rc keep_id(struct clip_jobs *r, int n, const char *id)
{
	char now[32];

	if (clip_jobs_set(r, n, NULL, id) < 0)
		return stage_fail(r->ctx, STAGE_FAIL,
				  "%s: segment %d was submitted as job %s but the id could "
				  "not be stored (%s); not retrying, so as not to pay twice: check the database, "
				  "then `acog-batch retry`",
				  r->p->name, n, id, err_msg());
	snprintf(now, sizeof now, "%.3f", time_now());
	/* Both marks are logged when they cannot be stored: "t" only times
	 * max_wait_seconds, and a "sent" left set errs on the side of never
	 * submitting twice. */
	if (!clip_jobs_get(r, n, "t")) (void)!clip_jobs_set(r, n, "t", now);
	(void)!clip_jobs_set(r, n, "sent", "");
	clip_recover_done(r, n, id);
	return STAGE_OK;
}

/* A new submission of segment g (a stale clip of it removed first), marked
 * for clip_recover.c when recovery is on. */
static enum stage_rc submit_new(struct clip_jobs *r, struct clip_seg *g, char **id)
{
	enum stage_rc rc;

	if (fsio_exists(g->clip)) {
		stage_log(r->ctx, "info", "%s: %s was made from another script or settings; making it again",
			  r->p->name, g->clip);
		if (fsio_unlink_durable(g->clip) < 0) return stage_fail(r->ctx, STAGE_RETRY, "%s", err_msg());
	}
	clip_recover_begin(r, g->s->index, g->fp);
	r->doubt[0] = 0;
	rc = r->p->submit(r, g->s, id);
	clip_recover_end(r);
	return rc;
}

/* Step 1 for one segment: submit unless done, already submitted, or found
 * submitted by an earlier attempt (clip_recover.c).  A submission that may
 * exist and cannot be found fails the stage for a person (unknown_job). */
static enum stage_rc submit_one(struct clip_jobs *r, struct clip_seg *g)
{
	int n = g->s->index;
	char *id = NULL, at[32], cause[sizeof r->ctx->error];
	const char *sent;
	double since = 0;
	enum stage_rc rc;

	if (!g->want || g->done || live_id(r, n)) return STAGE_OK;
	rc = clip_recover_find(r, n, g->fp, &id, &since);
	sent = id ? NULL : clip_jobs_get(r, n, "sent"); /* still set: no mark settled it */
	if (rc == STAGE_FAIL || (rc == STAGE_OK && sent)) {
		snprintf(at, sizeof at, "%.3f", sent ? strtod(sent, NULL) : since);
		if (rc == STAGE_OK)
			(void)stage_fail(r->ctx, STAGE_FAIL,
					 "%s: the stage stopped while segment %d was being submitted", r->p->name, n);
		snprintf(cause, sizeof cause, "%s", r->ctx->error);
		return unknown_job(r, g, at, cause);
	}
	if (rc == STAGE_OK && !id && (rc = submit_new(r, g, &id)) == STAGE_OK)
		stage_log(r->ctx, "info", "%s: segment %d submitted as %s", r->p->name, n, id);
	else if (rc == STAGE_FAIL && r->doubt[0]) { /* the create's answer proved nothing */
		snprintf(cause, sizeof cause, "%s", r->ctx->error);
		free(id);
		return unknown_job(r, g, r->doubt, cause);
	}
	if (rc == STAGE_OK) rc = keep_id(r, n, id);
	free(id);
	return rc;
}

/* A job still pending: fine until max_wait_seconds after its first submission. */
static enum stage_rc check_wait(struct clip_jobs *r, int n, const char *id)
{
	const char *t = clip_jobs_get(r, n, "t");
	double t0 = t ? strtod(t, NULL) : 0, waited = time_now() - t0;
	char now[32];

	if (t0 <= 0) { /* killed between storing the id and the time */
		snprintf(now, sizeof now, "%.3f", time_now());
		(void)!clip_jobs_set(r, n, "t", now); /* only times max_wait_seconds; logged on failure */
		return STAGE_PENDING;
	}
	if (waited <= r->wait_s) return STAGE_PENDING;
	if (r->p->cancel) r->p->cancel(r, id);
	clip_recover_clear(r, n); /* given up: a person's retry submits it anew */
	return stage_fail(r->ctx, STAGE_FAIL,
			  "%s: gave up on segment %d (job %s) after %.0f s "
			  "(max_wait_seconds %g)",
			  r->p->name, n, id, waited, r->wait_s);
}

/* Fetches a finished clip (no API key: the link is signed) and checks it. */
static enum stage_rc download(struct clip_jobs *r, struct clip_seg *g, const char *url)
{
	struct http_req q = { .method = "GET",
			      .url = url,
			      .download_to = g->clip,
			      .max_response = DOWNLOAD_MAX,
			      .timeout_s = r->timeout_s > 600 ? r->timeout_s : 600 };
	char *what = xasprintf("downloading the clip of segment %d", g->s->index), *stamp = NULL;
	enum stage_rc rc;
	double d;

	if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
		rc = stage_fail(r->ctx, STAGE_FAIL, "%s: %s: the link is not http(s)", r->p->name, what);
	else if ((rc = clip_jobs_http(r, &q, what, NULL)) == STAGE_RETRY || rc == STAGE_FAIL)
		rc = STAGE_RETRY; /* an expired link: the next poll brings a fresh one */
	if (rc == STAGE_OK && (d = media_duration(g->clip)) <= 0) {
		(void)!fsio_unlink_durable(g->clip); /* a stale clip left behind is replaced on the next poll */
		rc = stage_fail(r->ctx, STAGE_RETRY, "%s: %s: not a playable video (%s)", r->p->name, what, err_msg());
	}
	if (rc == STAGE_OK && ((stamp = clip_stamp(g)) == NULL || fsio_write_atomic_str(g->req, stamp) < 0))
		rc = stage_fail(r->ctx, STAGE_RETRY, "%s", err_msg());
	if (rc == STAGE_OK)
		stage_log(r->ctx, "info", "%s: segment %d downloaded into %s", r->p->name, g->s->index, g->clip);
	g->done = rc == STAGE_OK;
	free(stamp);
	free(what);
	return rc;
}

/* One status GET of a segment's job, read by the provider. */
static enum stage_rc poll_status(struct clip_jobs *r, const struct media_seg *s, const char *id, char **url,
				 double *units, double *usd)
{
	char *get = r->p->status_url(r, id);
	char *what = xasprintf("polling the %s of segment %d (%s)", r->p->clip, s->index, id);
	struct http_req q = { .method = "GET", .url = get };
	cJSON *j = NULL;
	enum stage_rc rc = r->p->get(r, &q, what, &j);

	if (rc == STAGE_OK && (rc = r->p->status(r, s, id, j, url, units, usd)) == STAGE_FAIL)
		clip_recover_clear(r, s->index); /* the job failed there: a person's retry submits it anew */
	cJSON_Delete(j);
	free(what);
	free(get);
	return rc;
}

/* Step 2 for one segment: one poll; download when finished. */
static enum stage_rc poll_one(struct clip_jobs *r, struct clip_seg *g, int *pending)
{
	int n = g->s->index;
	const char *id = g->want && !g->done ? live_id(r, n) : NULL;
	char *url = NULL, *cost;
	double units = 0, usd = 0;
	enum stage_rc rc;

	if (!id) return STAGE_OK;
	rc = poll_status(r, g->s, id, &url, &units, &usd);
	if (rc == STAGE_PENDING && (rc = check_wait(r, n, id)) == STAGE_PENDING) (*pending)++;
	if (rc != STAGE_OK) return rc == STAGE_PENDING ? STAGE_OK : rc;
	cost = xasprintf("%.6f %.6f", units, usd);
	if (clip_jobs_set(r, n, "cost", cost) < 0)
		stage_log(r->ctx, "warn", "%s: segment %d: its cost (%s) could not be stored", r->p->name, n, cost);
	rc = download(r, g, url);
	free(cost);
	free(url);
	return rc;
}

/* Step 4: every clip is there; report them and what this job paid for. */
static enum stage_rc finish(struct clip_jobs *r)
{
	int clips = 0, made = 0, offline = 0;
	double total = 0, units, usd, d;

	for (size_t i = 0; i < r->tl.n; i++) {
		const struct clip_seg *g = &r->seg[i];
		const char *cost = g->want ? clip_jobs_get(r, g->s->index, "cost") : NULL;
		if (!g->want) continue;
		if (g->offline) {
			enum stage_rc rc = r->p->offline(r, g->s); /* writes and reports it */
			if (rc != STAGE_OK) return rc;
			offline++;
			continue;
		}
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
	stage_log(r->ctx, "info", "%s: %d clips in %s/, %d made by this job for $%.2f, %d rendered offline", r->p->name,
		  clips, r->p->dir, made, total, offline);
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
static void cancel_live(struct clip_jobs *r)
{
	for (size_t i = 0; r->p->cancel && i < r->tl.n; i++) {
		struct clip_seg *g = &r->seg[i];
		const char *id = g->want && !g->done ? live_id(r, g->s->index) : NULL;
		if (id) r->p->cancel(r, id);
	}
}

static enum stage_rc run_pass(struct clip_jobs *r)
{
	enum stage_rc rc = STAGE_OK, one;
	int pending = 0;

	for (size_t i = 0; i < r->tl.n && rc == STAGE_OK; i++)
		rc = submit_one(r, &r->seg[i]); /* a RETRY stops submitting, not polling */
	for (size_t i = 0; i < r->tl.n && rc != STAGE_FAIL; i++)
		if ((one = poll_one(r, &r->seg[i], &pending)) != STAGE_OK) rc = worse(rc, one);
	if (rc == STAGE_FAIL) cancel_live(r);
	if (rc != STAGE_OK) return rc;
	if (pending) {
		stage_log(r->ctx, "info", "%s: %d job(s) pending; polling again in %g s", r->p->name, pending,
			  r->poll_s);
		r->ctx->retry_after = r->poll_s;
		r->ctx->error[0] = 0;
		return STAGE_PENDING;
	}
	return finish(r);
}

/* One run of an asynchronous provider's stage (see the top of this file). */
enum stage_rc clip_jobs_stage(struct stage_ctx *ctx, const struct clip_jobs_prov *p)
{
	struct clip_jobs r = { .ctx = ctx, .p = p };
	enum stage_rc rc = run_open(&r);
	if (rc == STAGE_OK) rc = run_pass(&r);
	run_close(&r);
	return rc;
}
