/*
 * prov_runway.c - the b-roll stage through Runway text-to-video: one task
 * per b-roll segment of timeline.json, downloaded into broll/seg-NN.mp4.
 * The submit / poll / resume loop is clip_jobs_stage() in clip_jobs.c; this
 * file only speaks Runway's protocol (its public API; tests/fakes/fake_runway.py mirrors it).
 *
 * Options (providers.broll): base_url, model (gen4.5), ratio (1280:720, or
 * 720:1280 for a vertical frame), duration (5 s, clamped to what the model
 * allows: gen4.5 2..10, veo3* 4/6/8), seed, style (else the channel's
 * style_guide.tone), api_key_env | api_key_file, poll_seconds (6),
 * max_wait_seconds (600), in_doubt (offline), timeout.
 *
 * Invariants:
 *  - promptText is the segment's description plus the style, cut to at most
 *    1000 UTF-16 units, never inside a character;
 *  - FAILED with SAFETY.* or INPUT_PREPROCESSING.SAFETY.* is never retried;
 *    INTERNAL.BAD_OUTPUT.* is retried once per segment: the failed task id is
 *    stored as seg-NN_retried (spent), STAGE_RETRY, and the next run submits
 *    a new task; a second BAD_OUTPUT, CANCELLED or any other failure fails;
 *  - a task given up after max_wait_seconds is cancelled (DELETE), best effort;
 *  - Runway lists no tasks and keeps nothing of ours to find one by, so a
 *    task that may exist but whose id was lost (the stage killed while the
 *    create was in flight, or its answer lost) is never asked for again: with
 *    in_doubt: offline (the default) its segment becomes generated b-roll
 *    (rw_offline), which QA's paid_clips_offline check shows the reviewer.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options (checked when a channel loads); timeout, rps, concurrency and the
 * key options come from the shared sets.  Always paid. */
/* clang-format off: a table keeps one row per line */
const struct provider_opt runway_opts[] = {
	{ "base_url", OPT_URL, "https://api.dev.runwayml.com", 0, 0, NULL, "the API root" },
	{ "model", OPT_STRING, "gen4.5", 0, 100, NULL, "video model, e.g. gen4.5, veo3.1_fast" },
	{ "ratio", OPT_STRING, NULL, 0, 20, NULL, "width:height, e.g. 1280:720 (default: from the channel's video)" },
	{ "duration", OPT_NUMBER, "5", 1, 10, NULL, "seconds per clip (rounded to what the model allows)" },
	{ "style", OPT_STRING, NULL, 0, 1000, NULL, "added to every prompt (default: style_guide.tone)" },
	{ "seed", OPT_INTEGER, NULL, 0, 4294967295.0, NULL, "sampling seed, for repeatable clips" },
	{ "poll_seconds", OPT_NUMBER, "6", 0.05, 3600, NULL, "wait between two status requests" },
	{ "max_wait_seconds", OPT_NUMBER, "600", 1, 604800, NULL, "give a clip up after this long" },
	{ "in_doubt", OPT_ENUM, "offline", 0, 0, "offline|fail",
	  "a task that may exist but whose id was lost: render the segment offline, or fail for a person" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

#define RUNWAY_VERSION "2024-11-06"
#define PROMPT_MAX_UTF16 1000

static const char *rw_base(const struct clip_jobs *r)
{
	return json_str(r->ctx->provider, "base_url", "https://api.dev.runwayml.com");
}

static const char *rw_model(const struct clip_jobs *r)
{
	return json_str(r->ctx->provider, "model", "gen4.5");
}

static const char *rw_ratio(const struct clip_jobs *r)
{
	return json_str(r->ctx->provider, "ratio", r->frame.h > r->frame.w ? "720:1280" : "1280:720");
}

/* The option's duration, clamped to the model's allowed values. */
static int rw_duration(const struct clip_jobs *r)
{
	long d = lround(json_num(r->ctx->provider, "duration", 5));
	if (strncmp(rw_model(r), "veo3", 4) == 0) return d <= 5 ? 4 : d <= 7 ? 6 : 8;
	return d < 2 ? 2 : d > 10 ? 10 : (int)d;
}

/* UTF-16 code units of the UTF-8 character at p (1, or 2 beyond the BMP), its bytes in *len. */
static size_t utf16_units(const unsigned char *p, size_t *len)
{
	size_t n = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 1, k = 1;
	while (k < n && p[k]) k++; /* a cut-off sequence ends at the NUL */
	*len = k;
	return n == 4 ? 2 : 1;
}

static size_t utf16_len(const char *s)
{
	size_t units = 0, len;
	for (const unsigned char *p = (const unsigned char *)s; *p; p += len) units += utf16_units(p, &len);
	return units;
}

/* Cuts UTF-8 text to at most max UTF-16 code units, between characters, and
 * back to the last space when that keeps at least half of it. */
static void utf16_cut(char *s, size_t max)
{
	size_t units = 0, len, u;
	unsigned char *p = (unsigned char *)s, *space = NULL;

	for (; *p && units + (u = utf16_units(p, &len)) <= max; p += len) {
		units += u;
		if (*p == ' ' && units > max / 2) space = p;
	}
	if (*p && space) p = space;
	*p = 0;
	while (p > (unsigned char *)s && (p[-1] == ' ' || p[-1] == '\n')) *--p = 0;
}

/* promptText: what the segment shows, then the channel's style; the
 * description is shortened to leave the style its room. */
static char *rw_prompt(const struct clip_jobs *r, const struct media_seg *s)
{
	const char *desc = s->desc && s->desc[0] ? s->desc : json_str(r->ctx->idea, "topic", "b-roll");
	const char *style = json_str(r->ctx->provider, "style", json_str(r->ctx->channel, "style_guide.tone", NULL));
	char *tail = style && style[0] ? xasprintf(". Style: %s", style) : xstrdup("");
	char *head = xstrdup(desc), *p;

	utf16_cut(tail, PROMPT_MAX_UTF16 / 4);
	utf16_cut(head, PROMPT_MAX_UTF16 - utf16_len(tail));
	p = xasprintf("%s%s", head, tail);
	free(head);
	free(tail);
	return p;
}

static char *rw_body(const struct clip_jobs *r, const struct media_seg *s)
{
	cJSON *b = cJSON_CreateObject();
	const cJSON *seed = json_get(r->ctx->provider, "seed");
	char *prompt = rw_prompt(r, s), *out;

	cJSON_AddStringToObject(b, "model", rw_model(r));
	cJSON_AddStringToObject(b, "promptText", prompt);
	cJSON_AddStringToObject(b, "ratio", rw_ratio(r));
	cJSON_AddNumberToObject(b, "duration", rw_duration(r));
	if (cJSON_IsNumber(seed)) cJSON_AddNumberToObject(b, "seed", seed->valuedouble);
	out = json_print(b);
	cJSON_Delete(b);
	free(prompt);
	return out;
}

/* What a clip depends on: everything in the request. */
static char *rw_fingerprint(struct clip_jobs *r, const struct media_seg *s)
{
	char *body = rw_body(r, s), *fp = xasprintf("runway\n%s", body);
	free(body);
	return fp;
}

/* An API call with the key and version headers (body: JSON or none).
 * create >= 0: the job-creating request of that segment. */
static enum stage_rc rw_call(struct clip_jobs *r, struct http_req *q, const char *what, cJSON **j, int create)
{
	char *auth = xasprintf("Authorization: Bearer %s", r->key);
	const char *h[] = { auth, "X-Runway-Version: " RUNWAY_VERSION, "Accept: application/json",
			    q->body ? "Content-Type: application/json" : NULL, NULL };
	enum stage_rc rc;
	q->headers = h;
	rc = create >= 0 ? clip_jobs_create(r, create, q, what, j) : clip_jobs_http(r, q, what, j);
	free(auth);
	return rc;
}

static enum stage_rc rw_submit(struct clip_jobs *r, const struct media_seg *s, char **id)
{
	const cJSON *seed = json_get(r->ctx->provider, "seed");
	char *url, *body, *what;
	struct http_req q = { .method = "POST" };
	cJSON *j = NULL;
	enum stage_rc rc;

	if (seed &&
	    (!cJSON_IsNumber(seed) || seed->valuedouble < 0 || seed->valuedouble > 4294967295.0 ||
	     seed->valuedouble != floor(seed->valuedouble)))
		return stage_fail(r->ctx, STAGE_FAIL, "providers.broll.seed: use a whole number from 0 to 4294967295");
	q.url = url = xasprintf("%s/v1/text_to_video", rw_base(r));
	q.body = body = rw_body(r, s);
	q.body_len = strlen(body);
	what = xasprintf("asking for the b-roll of segment %d", s->index);
	rc = rw_call(r, &q, what, &j, s->index);
	rc = clip_jobs_answer_id(r, rc, j, "id", what, id);
	cJSON_Delete(j);
	free(what);
	free(body);
	free(url);
	return rc;
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* FAILED: safety never retries, INTERNAL.BAD_OUTPUT once, the rest fails. */
static enum stage_rc rw_failed(struct clip_jobs *r, const struct media_seg *s, const char *id, const cJSON *j)
{
	const char *code = json_str(j, "failureCode", ""), *why = json_str(j, "failure", "no reason given");
	int n = s->index;

	if (starts(code, "SAFETY.") || starts(code, "INPUT_PREPROCESSING.SAFETY."))
		return stage_fail(r->ctx, STAGE_FAIL,
				  "runway refused the b-roll of segment %d (%s) for safety: "
				  "%s (%s); change the [BROLL: ...] description",
				  n, id, why, code);
	if (starts(code, "INTERNAL.BAD_OUTPUT.") && !clip_jobs_get(r, n, "retried")) {
		if (clip_jobs_set(r, n, "retried", id) < 0)
			stage_log(r->ctx, "warn", "runway: segment %d: could not mark task %s as retried", n, id);
		r->ctx->retry_after = r->poll_s;
		return stage_fail(r->ctx, STAGE_RETRY,
				  "runway: the b-roll of segment %d (%s) failed: %s (%s); "
				  "submitting it once more",
				  n, id, why, code);
	}
	return stage_fail(r->ctx, STAGE_FAIL, "runway: the b-roll of segment %d (%s) failed: %s (%s)%s", n, id, why,
			  code[0] ? code : "no failureCode",
			  starts(code, "INTERNAL.BAD_OUTPUT.") ? ", for the second time" : "");
}

static char *rw_task_url(const struct clip_jobs *r, const char *id)
{
	return xasprintf("%s/v1/tasks/%s", rw_base(r), id);
}

static enum stage_rc rw_get(struct clip_jobs *r, struct http_req *q, const char *what, cJSON **j)
{
	return rw_call(r, q, what, j, -1);
}

/* A GET /v1/tasks/{id} answer: SUCCEEDED → output[0] and seconds; else see rw_failed. */
static enum stage_rc rw_status(struct clip_jobs *r, const struct media_seg *s, const char *id, const cJSON *j,
			       char **url, double *units, double *usd)
{
	const char *st = json_str(j, "status", "");
	const cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "output"), 0);

	if (!strcmp(st, "SUCCEEDED") && cJSON_IsString(out)) {
		*url = xstrdup(out->valuestring);
		*units = rw_duration(r);
		*usd = cost_price(r->ctx->global, "runway", rw_model(r), *units);
		return STAGE_OK;
	}
	if (!strcmp(st, "FAILED")) return rw_failed(r, s, id, j);
	if (!strcmp(st, "CANCELLED"))
		return stage_fail(r->ctx, STAGE_FAIL, "runway: the b-roll task of segment %d (%s) was cancelled",
				  s->index, id);
	if (strcmp(st, "PENDING") && strcmp(st, "THROTTLED") && strcmp(st, "RUNNING"))
		stage_log(r->ctx, "warn", "runway: segment %d: status \"%s\"; still waiting", s->index, st);
	return STAGE_PENDING;
}

/* Best effort: a task we gave up on should not render (and bill) on. */
static void rw_cancel(struct clip_jobs *r, const char *id)
{
	char *del = rw_task_url(r, id);
	struct http_req q = { .method = "DELETE", .url = del, .max_attempts = 1 };
	char err[sizeof r->ctx->error];

	memcpy(err, r->ctx->error, sizeof err); /* keep the caller's message */
	if (rw_call(r, &q, "cancelling a task", NULL, -1) != STAGE_OK)
		stage_log(r->ctx, "warn", "runway: could not cancel task %s: %s", id, r->ctx->error);
	memcpy(r->ctx->error, err, sizeof err);
	free(del);
}

/* A segment in doubt, rendered as the offline generator would (the same
 * picture for the same segment, whichever run renders it). */
static enum stage_rc rw_offline(struct clip_jobs *r, const struct media_seg *s)
{
	return broll_gen_segment(r->ctx, &r->frame, s, s->index);
}

/* The provider's description, grouped as the struct declares it. */
/* clang-format off */
static const struct clip_jobs_prov runway = {
	.name = "runway", .dir = "broll", .asset_type = "b_roll", .broll = 1,
	.poll_default = 6, .wait_default = 600, .operation = "text_to_video", .unit_type = "seconds",
	.fingerprint = rw_fingerprint, .submit = rw_submit, .clip = "b-roll",
	.status_url = rw_task_url, .get = rw_get, .status = rw_status, .cancel = rw_cancel,
	.offline = rw_offline,
};
/* clang-format on */

/* providers.broll: {name: runway, model, ratio, duration, ...}; see docs/cloud-providers.md. */
enum stage_rc prov_broll_runway(struct stage_ctx *ctx)
{
	return clip_jobs_stage(ctx, &runway);
}
