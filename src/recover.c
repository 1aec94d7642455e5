/*
 * recover.c - never pay twice for a synchronous paid request (ElevenLabs
 * speech, OpenAI chat) whose answer was lost with its process (the stage
 * child killed, or dying with the daemon).
 *
 * Before such a request a provider stores a mark under a key naming the
 * request (a hash of what is sent) in the provider-state store: it is in
 * the database before the request goes out.  Once the answer is in, the
 * mark gets the provider's id of the result.  A later attempt of the same
 * job that finds a mark first asks the provider for the earlier result (the
 * ElevenLabs history, OpenAI's stored completions; the look-ups are the
 * providers' own), and sends again only when there is none.
 *
 * A mark is {"since": <unix seconds before the request went out>, "id":
 * <the provider's id, once answered>, ...what the provider matches on}; an
 * empty value means no mark (a request that was answered with a refusal).
 * A request not found while it could still be running at the provider (the
 * mark younger than the request's timeout) is looked up again later
 * (STAGE_PENDING, no attempt counted) rather than paid for again at once.
 *
 * Marks outlive their job only where the answer may have died with its
 * process: a person's retry of a job that ended without a result (killed,
 * timed out) keeps them (state.c), and a provider that fails the stage
 * itself spends them (recover_marks_spent), so that retry asks afresh.
 */
#include "provider.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

cJSON *recover_mark(const struct stage_ctx *ctx, const char *key)
{
	const char *v = stage_state_get(ctx, key);
	cJSON *m = v ? cJSON_Parse(v) : NULL;

	if (m && !cJSON_IsObject(m)) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

cJSON *recover_mark_new(void)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddNumberToObject(m, "since", floor(time_now()));
	return m;
}

int recover_mark_set(struct stage_ctx *ctx, const char *key, const cJSON *mark)
{
	char *v = json_print(mark);
	int rc = stage_state_set(ctx, key, v);

	free(v);
	return rc;
}

/* The answer's id on the mark: a later attempt fetches that result, free. */
void recover_mark_done(struct stage_ctx *ctx, const char *key, cJSON *mark, const char *id)
{
	if (!mark || !id || !recover_id_ok(id)) return;
	cJSON_DeleteItemFromObjectCaseSensitive(mark, "id");
	cJSON_AddStringToObject(mark, "id", id);
	if (recover_mark_set(ctx, key, mark) < 0)
		stage_log(ctx, "warn", "could not note the answer's id %s: a retry would look it up again", id);
}

/* An answer proved nothing was done (a 4xx): no mark, no look-up next time. */
void recover_mark_clear(struct stage_ctx *ctx, const char *key)
{
	if (stage_state_get(ctx, key) && stage_state_set(ctx, key, "") < 0)
		stage_log(ctx, "warn", "could not clear the mark %s", key);
}

void recover_marks_spent(struct stage_ctx *ctx)
{
	if (stagedb_marks_spend(ctx->root, ctx->episode_id, ctx->stage) < 0)
		stage_log(ctx, "warn", "%s: a retry may fetch this attempt's answers again instead of asking afresh",
			  err_msg());
}

/* Ids go into URL paths: letters, digits, '_' and '-' only. */
int recover_id_ok(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n <= 128 && strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

enum stage_rc recover_lookup_failed(struct stage_ctx *ctx, struct http_resp *r, const char *what)
{
	enum stage_rc rc = STAGE_OK;

	if (r->retriable) {
		ctx->retry_after = r->retry_after;
		rc = stage_fail(ctx, STAGE_RETRY,
				"%s (looking up %s, which an earlier attempt sent, before paying for it again)",
				r->error, what);
	} else {
		stage_log(ctx, "warn",
			  "%s was sent by an earlier attempt, but cannot be looked up (%s); sending it again: "
			  "it may be paid twice",
			  what, r->error);
	}
	http_resp_free(r);
	return rc;
}

enum stage_rc recover_wait(struct stage_ctx *ctx, const cJSON *mark, int timeout_s, const char *what)
{
	double left = json_num(mark, "since", 0) + timeout_s + RECOVER_CLOCK_SLACK_S - time_now();

	if (left <= 0) return STAGE_OK;
	ctx->retry_after = ceil(left);
	stage_log(ctx, "info",
		  "%s, sent by an earlier attempt, is not found yet; it may still be running there: looking again "
		  "in %.0f s before paying for it again",
		  what, ctx->retry_after);
	return STAGE_PENDING;
}

int recover_get(struct stage_ctx *ctx, const char *prov, const char *url, const char *const *hdrs, int timeout_s,
		struct http_resp *r)
{
	struct http_req q = { .provider = prov,
			      .method = "GET",
			      .url = url,
			      .headers = hdrs,
			      .max_response = (size_t)256 << 20,
			      .timeout_s = timeout_s };

	return http_request(&ctx->http, &q, r);
}
