/*
 * fuzz_youtube.c - answers of the YouTube Data API and Google's token
 * endpoint, and the HTTP layer's readers every provider's answers go
 * through (src/http.c: headers, Retry-After, error bodies).  The input is
 * one answer, STATUS-BYTE HEADERS \0 BODY, given to every request: the
 * parsers of src/youtube_api.c, src/youtube_upload.c and src/oauth.c are
 * included (static), with http_request answering from the input and the
 * quota and token steps, which need the database, passed.
 */
#include "fuzz.h"
#include "youtube.h"

static long fuzz_status;
static const char *fuzz_headers, *fuzz_body;

static int fuzz_http_request(const struct http_env *env, const struct http_req *req, struct http_resp *resp)
{
	(void)env, (void)req;
	memset(resp, 0, sizeof *resp);
	resp->status = fuzz_status;
	sb_puts(&resp->headers, fuzz_headers);
	sb_puts(&resp->body, fuzz_body);
	resp->retry_after = http_parse_retry_after(fuzz_headers);
	if (resp->status >= 200 && resp->status < 300) return 0;
	free(http_error_message(fuzz_body));
	return -1;
}
#define http_request fuzz_http_request
#include "../../src/oauth.c"
#define quota_take(ctx, ch, method) STAGE_OK
#define oauth_access(o, ctx, ch, force) STAGE_OK
#include "../../src/youtube_api.c"
#include "../../src/youtube_upload.c"

static cJSON *store;
static const char *store_get(void *arg, const char *key)
{
	(void)arg;
	return json_str(store, key, NULL);
}
static int store_set(void *arg, const char *key, const char *value)
{
	(void)arg;
	cJSON_DeleteItemFromObjectCaseSensitive(store, key);
	cJSON_AddStringToObject(store, key, value);
	return 0;
}

static void answers(struct yt_api *a)
{
	struct upload u = { .a = a, .total = 1 << 20 };
	struct http_resp r;
	struct http_req q = { .method = "GET", .url = "https://x/" };
	char id[64], v[256];
	cJSON *j = NULL;
	int found;

	(void)yt_find_by_marker(a, id, sizeof id);
	(void)listed(a, "captions_list", "captions", (const char *const[4]){ "snippet.language", "en", NULL, NULL },
		     &found);
	if (yt_call(a, "videos_insert", &q, &r) == STAGE_OK) {
		(void)got_video(&u, &r);
		got_range(&u, &r);
		(void)http_header(&r, "Location", v, sizeof v);
		(void)!http_classify(r.status, r.body.s);
		http_resp_free(&r);
	}
	if (oauth_token_post(a->job->ctx, "https://x/token", "a=b", &j, &r) < 0) (void)oauth_error(&r);
	cJSON_Delete(j);
	http_resp_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 200, 201, 308, 400, 401, 403, 404, 429, 500, 503 };
	struct stage_ctx ctx = { .stage = "upload", .episode_id = "fuzz" };
	struct yt_job job = { .ctx = &ctx, .channel = "c", .marker = "m1", .store = { NULL, store_get, store_set } };
	struct yt_api a = { .job = &job, .base = "https://x" };
	char *head, *body;

	if (size < 1) return 0;
	ctx.episode_dir = fuzz_dir();
	fuzz_status = statuses[data[0] % 10];
	fuzz_split(data + 1, size - 1, &head, &body);
	fuzz_headers = head, fuzz_body = body;
	store = cJSON_CreateObject();
	answers(&a);
	cJSON_Delete(store);
	free(head), free(body);
	return 0;
}
