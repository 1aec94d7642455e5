/*
 * prov_openai.c - planning, scripting and metadata through an
 * OpenAI-compatible Chat Completions server (api.openai.com, llama.cpp,
 * Ollama, vLLM): POST {base_url}/chat/completions.
 *
 * One run: fill the stage's prompt template (prompt.c: built in, or the
 * channel's prompts/<stage>.txt), ask, check the answer, and write the
 * same file the builtin provider writes (plan.json, script.md,
 * metadata.json) plus who wrote it.  Every stage asks for JSON of a schema
 * (prompt.c); scripting turns its {title, segments[{visual, broll_description,
 * narration}]} into script.md.  A bad answer (invalid JSON, wrong shape,
 * cut off at the token limit, a refusal) goes back to the model with the
 * problem, at most max_fix_attempts times; the token budget doubles after
 * a cut-off.  A server that refuses response_format json_schema is asked
 * again at once with json_object (json_mode: auto).  A script answered in
 * prose anyway (small local models) is not sent back: a script with
 * [AVATAR]/[BROLL] markers is taken as written, plain prose becomes one
 * voice-over segment per plan section, and the log says so.
 *
 * Invariants:
 *  - Nothing is written unless the answer passed every check; files are
 *    written atomically, so a crash leaves the old file or the new one.
 *  - Every 2xx answer that reports usage is one cost row (provider
 *    "openai", operation = stage, units = total tokens); local servers
 *    (127.0.0.1, localhost, ::1, or option local: true) cost 0.
 *  - Metadata is made safe for YouTube whatever the model wrote: no '<'
 *    '>', a title of at most 100 characters cut at a word, at most 15 tags.
 *  - recover: stored_completions (the default for api.openai.com): each
 *    request is sent with store: true and metadata {acog_request: <tag>},
 *    the tag a hash of the job id and the request, and a mark (recover.c)
 *    chat-<tag> is in the provider state before it goes out; the answer's id
 *    is added to it.  An attempt that finds a mark fetches that completion
 *    (GET /chat/completions/{id}), or looks it up by its tag (GET
 *    /chat/completions?metadata[acog_request]=<tag>), and asks again only
 *    when there is none: a process killed while the server answered does
 *    not make the next attempt pay twice.  A completion found by its tag
 *    records its cost then (the process that paid died first); one noted by
 *    id records none (its attempt recorded it).
 *  - HTTP failures: retriable -> STAGE_RETRY with the server's Retry-After;
 *    anything else, content_filter, or exhausted fixes -> STAGE_FAIL naming
 *    the last problem.
 */
#define _GNU_SOURCE
#include "provider.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Options (checked when a channel loads); timeout, rps, concurrency and the
 * key options come from the shared sets.  Paid unless local (cost.c). */
/* clang-format off: a table keeps one row per line */
const struct provider_opt openai_opts[] = {
	{ "base_url", OPT_URL, "https://api.openai.com/v1", 0, 0, NULL,
	  "the server's API root (OpenAI, llama.cpp, Ollama, vLLM)" },
	{ "model", OPT_STRING, "gpt-4o-mini", 0, 200, NULL, "model name" },
	{ "local", OPT_BOOL, NULL, 0, 0, NULL,
	  "true: free, false: paid (default: free when base_url is this machine)" },
	{ "temperature", OPT_NUMBER, NULL, 0, 2, NULL, "sampling temperature (the server's default when unset)" },
	{ "seed", OPT_INTEGER, NULL, 0, 0, NULL, "sampling seed, for repeatable answers" },
	{ "max_tokens", OPT_INTEGER, "4096", 1, 1000000, NULL, "tokens per answer; doubled after a cut-off answer" },
	{ "max_tokens_cap", OPT_INTEGER, NULL, 1, 1000000, NULL,
	  "most tokens after doubling (default: 32768 or max_tokens)" },
	{ "max_tokens_field", OPT_ENUM, NULL, 0, 0, "max_tokens|max_completion_tokens",
	  "how the limit is sent (default: max_completion_tokens for api.openai.com)" },
	{ "max_fix_attempts", OPT_INTEGER, "2", 0, 10, NULL, "bad answers sent back to the model with the problem" },
	{ "timeout", OPT_INTEGER, "120", 1, 3600, NULL, "seconds one request may take" },
	{ "json_mode", OPT_ENUM, "auto", 0, 0, "auto|json_schema|json_object|none",
	  "structured answers: auto tries json_schema, then json_object" },
	{ "recover", OPT_ENUM, NULL, 0, 0, "stored_completions|none",
	  "after a crash, find an answer among the stored completions before paying again "
	  "(default: stored_completions for api.openai.com, none for other servers)" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

#define FILE_MAX ((size_t)4 * 1024 * 1024)
#define ECHO_MAX 16000 /* bytes of a bad answer sent back to the model */
#define TITLE_MAX_CHARS 100
#define DESCRIPTION_MAX_BYTES 4900 /* YouTube allows 5000 */
#define TAGS_MAX 15
#define TAGS_MAX_CHARS 500
#define PRICE_IN_DEFAULT 0.00015 /* USD per 1k tokens when acog.yaml says nothing */
#define PRICE_OUT_DEFAULT 0.0006

enum mode { MODE_TEXT, MODE_SCHEMA, MODE_OBJECT };

struct chat;
struct spec {
	const char *stage, *again;
	char *(*check)(struct chat *c, const char *content); /* NULL = good */
	enum stage_rc (*write)(struct chat *c);
};

struct chat {
	struct stage_ctx *ctx;
	const struct spec *sp;
	cJSON *schema; /* the answer's JSON Schema, or NULL (a script) */
	char *url, *auth, *base;
	const char *model;
	int local, mct; /* mct: send max_completion_tokens */
	int recover;    /* stored completions: store, tag, look up before asking again */
	int max_tokens, tokens_cap, fixes, timeout, fallback;
	enum mode mode;
	cJSON *messages;
	cJSON *doc; /* the checked JSON answer */
	char *text; /* the checked script */
	int calls;
	int prose; /* c->text was built from a prose answer */
	double tokens, usd;
};

struct answer {
	char *content, *refusal;
	char finish[32];
	char ctype[80]; /* the Content-Type of a broken answer */
	int broken;
};

/* ---- small text helpers ------------------------------------------------- */

static char *path_in(const struct stage_ctx *ctx, const char *name)
{
	return xasprintf("%s/%s", ctx->episode_dir, name);
}

/* User-visible metadata text: no '<' '>' (YouTube refuses them; an HTML tag
 * goes whole), no control characters; newlines kept only when keep_nl,
 * other whitespace folded. */
static char *clean_meta(const char *s, int keep_nl)
{
	struct sbuf b = { 0 };
	int space = 0;

	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n' && keep_nl) {
			while (b.len && b.s[b.len - 1] == ' ') b.s[--b.len] = 0;
			sb_add(&b, "\n", 1), space = 0;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			space = 1;
		} else if (c == '<' && (isalpha((unsigned char)s[1]) || s[1] == '/') && strcspn(s, ">\n") < 64 &&
			   s[strcspn(s, ">\n")] == '>') {
			s += strcspn(s, ">"); /* an HTML tag: drop all of it */
		} else if (c >= 0x20 && c != 0x7f && c != '<' && c != '>') {
			if (space && b.len && b.s[b.len - 1] != '\n') sb_add(&b, " ", 1);
			space = 0;
			sb_add(&b, s, 1);
		}
	}
	if (!b.s) return xstrdup("");
	while (b.len && strchr(" \n", b.s[b.len - 1])) b.s[--b.len] = 0;
	return b.s;
}

/* ---- options --------------------------------------------------------------- */

static int host_is(const char *url, const char *host)
{
	const char *h = strstr(url, "://");

	h = h ? h + 3 : url;
	return strcspn(h, ":/?#") == strlen(host) && !strncasecmp(h, host, strlen(host));
}

static int opt_int(const struct stage_ctx *ctx, const char *key, int def, int lo, int hi, int *out)
{
	const cJSON *j = json_get(ctx->provider, key);
	double v = json_num(ctx->provider, key, def);

	if ((j && !cJSON_IsNumber(j)) || v != floor(v) || v < lo || v > hi)
		return err_set("providers.%s.%s: use a whole number from %d to %d", ctx->stage, key, lo, hi);
	*out = (int)v;
	return 0;
}

static int opts_mode(struct chat *c)
{
	const char *m = json_str(c->ctx->provider, "json_mode", "auto");

	c->mode = !c->schema ? MODE_TEXT : MODE_SCHEMA;
	c->fallback = !strcmp(m, "auto");
	if (!c->schema || !strcmp(m, "auto") || !strcmp(m, "json_schema")) return 0;
	if (!strcmp(m, "json_object") || !strcmp(m, "none")) {
		c->mode = !strcmp(m, "none") ? MODE_TEXT : MODE_OBJECT;
		return 0;
	}
	return err_set("providers.%s.json_mode \"%s\": use auto, json_schema, json_object or none", c->ctx->stage, m);
}

static int opts_load(struct chat *c)
{
	const struct stage_ctx *ctx = c->ctx;
	const char *base = json_str(ctx->provider, "base_url", "https://api.openai.com/v1");
	const char *field = json_str(ctx->provider, "max_tokens_field", NULL);
	size_t n = strlen(base);
	double t = json_num(ctx->provider, "temperature", 1);

	while (n && base[n - 1] == '/') n--;
	if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8))
		return err_set("providers.%s.base_url \"%s\": use an http:// or https:// URL", ctx->stage, base);
	c->url = xasprintf("%.*s/chat/completions", (int)n, base);
	c->base = xasprintf("%.*s", (int)n, base);
	c->recover = json_str(ctx->provider, "recover", NULL)
		? strcmp(json_str(ctx->provider, "recover", ""), "none") != 0
		: host_is(base, "api.openai.com");
	c->model = json_str(ctx->provider, "model", "gpt-4o-mini");
	c->local = !cost_is_paid(ctx->provider); /* the registry's rule, as the budget's */
	c->mct = field ? !strcmp(field, "max_completion_tokens") : host_is(base, "api.openai.com");
	if (t < 0 || t > 2 ||
	    (json_get(ctx->provider, "temperature") && !cJSON_IsNumber(json_get(ctx->provider, "temperature"))))
		return err_set("providers.%s.temperature: use a number from 0 to 2", ctx->stage);
	if (opt_int(ctx, "max_tokens", 4096, 1, 1000000, &c->max_tokens) < 0 ||
	    opt_int(ctx, "max_tokens_cap", c->max_tokens > 32768 ? c->max_tokens : 32768, c->max_tokens, 1000000,
		    &c->tokens_cap) < 0 ||
	    opt_int(ctx, "max_fix_attempts", 2, 0, 10, &c->fixes) < 0 ||
	    opt_int(ctx, "timeout", 120, 1, 3600, &c->timeout) < 0)
		return -1;
	return opts_mode(c);
}

static int key_load(struct chat *c)
{
	char *key;

	if (!json_get(c->ctx->provider, "api_key_env") && !json_get(c->ctx->provider, "api_key_file"))
		return 0; /* llama.cpp / Ollama without a key: no Authorization header */
	if (!(key = credential_get(c->ctx, NULL))) return -1;
	c->auth = xasprintf("Authorization: Bearer %s", key);
	free(key);
	return 0;
}

/* ---- one request ----------------------------------------------------------- */

/* The tags' seed: the job that first sent this stage's requests, kept in
 * "chat-seed" so a person's retry of a job that died (its marks kept,
 * state.c) makes the same tags and finds the answers it paid for; a new job
 * for any other reason (a reject, a provider's own failure) starts anew. */
static const char *tag_seed(const struct chat *c)
{
	const char *seed = stage_state_get(c->ctx, "chat-seed");

	if (seed) return seed;
	seed = c->ctx->job_id ? c->ctx->job_id : "";
	/* not stored (logged): only a retry after a death then misses this job's answers */
	if (*seed) (void)!stage_state_set(c->ctx, "chat-seed", seed);
	return seed;
}

/* recover: the request's tag (a hash of the tags' seed and the request as
 * it would be sent without it), sent as metadata with store: true; else "". */
static void request_tag(const struct chat *c, cJSON *b, char tag[33])
{
	char *plain, *k, sha[65];
	cJSON *md;

	tag[0] = 0;
	if (!c->recover) return;
	plain = json_print(b);
	k = xasprintf("%s\n%s", tag_seed(c), plain);
	hash_hex(k, strlen(k), sha);
	snprintf(tag, 33, "%.32s", sha);
	cJSON_AddBoolToObject(b, "store", 1);
	md = cJSON_AddObjectToObject(b, "metadata");
	cJSON_AddStringToObject(md, "acog_request", tag);
	cJSON_AddStringToObject(md, "acog_episode", c->ctx->episode_id);
	cJSON_AddStringToObject(md, "acog_stage", c->sp->stage);
	free(plain), free(k);
}

static char *body_build(const struct chat *c, char tag[33])
{
	cJSON *b = cJSON_CreateObject(), *rf;
	char *s;

	cJSON_AddStringToObject(b, "model", c->model);
	cJSON_AddItemToObject(b, "messages", cJSON_Duplicate(c->messages, 1));
	if (json_get(c->ctx->provider, "temperature"))
		cJSON_AddNumberToObject(b, "temperature", json_num(c->ctx->provider, "temperature", 1));
	if (cJSON_IsNumber(json_get(c->ctx->provider, "seed")))
		cJSON_AddNumberToObject(b, "seed", floor(json_num(c->ctx->provider, "seed", 0)));
	cJSON_AddNumberToObject(b, c->mct ? "max_completion_tokens" : "max_tokens", c->max_tokens);
	if (c->mode != MODE_TEXT) {
		rf = cJSON_AddObjectToObject(b, "response_format");
		cJSON_AddStringToObject(rf, "type", c->mode == MODE_SCHEMA ? "json_schema" : "json_object");
		if (c->mode == MODE_SCHEMA) {
			cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
			cJSON_AddStringToObject(js, "name", c->sp->stage);
			cJSON_AddBoolToObject(js, "strict", 1);
			cJSON_AddItemToObject(js, "schema", cJSON_Duplicate(c->schema, 1));
		}
	}
	request_tag(c, b, tag);
	s = json_print(b);
	cJSON_Delete(b);
	return s;
}

static double price(const cJSON *global, const char *model, const char *key, double def)
{
	const cJSON *p = json_get(global, "prices.openai");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(p, model);

	if (cJSON_IsNumber(json_get(m, key))) return json_num(m, key, def);
	return json_num(cJSON_GetObjectItemCaseSensitive(p, "default"), key, def);
}

static void cost_record(struct chat *c, const cJSON *usage)
{
	double in = json_num(usage, "prompt_tokens", 0), out = json_num(usage, "completion_tokens", 0);
	double total = json_num(usage, "total_tokens", in + out), usd = 0;

	if (!cJSON_IsObject(usage)) {
		stage_log(c->ctx, "warn", "the server reported no token usage; no cost recorded");
		return;
	}
	if (!c->local)
		usd = in / 1000 * price(c->ctx->global, c->model, "input_per_1k", PRICE_IN_DEFAULT) +
			out / 1000 * price(c->ctx->global, c->model, "output_per_1k", PRICE_OUT_DEFAULT);
	stage_cost(c->ctx, "openai", c->sp->stage, total, "tokens", usd);
	c->tokens += total, c->usd += usd;
}

/* The envelope of a 2xx answer; a broken one is a bad answer like any other. */
static void answer_parse(struct chat *c, const struct http_resp *r, struct answer *a, int record)
{
	cJSON *j = cJSON_ParseWithLength(r->body.s ? r->body.s : "", r->body.len);
	const cJSON *ch = cJSON_GetArrayItem(json_get(j, "choices"), 0);
	const char *fin = json_str(ch, "finish_reason", "");
	char rid[80];

	memset(a, 0, sizeof *a);
	a->broken = !cJSON_IsObject(json_get(ch, "message"));
	if (a->broken && !http_header(r, "content-type", a->ctype, sizeof a->ctype)) a->ctype[0] = 0;
	if (j && record) cost_record(c, json_get(j, "usage"));
	snprintf(a->finish, sizeof a->finish, "%s", fin);
	if (json_str(ch, "message.content", NULL)) a->content = xstrdup(json_str(ch, "message.content", NULL));
	if (json_str(ch, "message.refusal", NULL)) a->refusal = xstrdup(json_str(ch, "message.refusal", NULL));
	if (!a->broken)
		stage_log(c->ctx, "info", "%s: model %s answered (finish_reason %s, request %s)", c->sp->stage,
			  c->model, *fin ? fin : "null", http_header(r, "x-request-id", rid, sizeof rid) ? rid : "-");
	cJSON_Delete(j);
}

static int mentions_format(const struct http_resp *r)
{
	const char *b = r->body.s ? r->body.s : "";

	return strcasestr(r->error, "response_format") || strcasestr(r->error, "json_schema") ||
		strcasestr(b, "response_format") || strcasestr(b, "json_schema");
}

/* ---- recovery: stored completions -------------------------------------------- */

enum earlier { EARLIER_NONE, EARLIER_FOUND, EARLIER_NOTED }; /* FOUND: its cost is not recorded yet */

/* GET {base}/chat/completions?metadata[acog_request]=tag: the id (malloc'd)
 * of the first completion of that tag, or NULL. */
static enum stage_rc stored_list(struct chat *c, const char *tag, const char *const *hdrs, char **id)
{
	char *url = xasprintf("%s/chat/completions?metadata%%5Bacog_request%%5D=%s&limit=10", c->base, tag);
	struct http_resp r;
	enum stage_rc rc = STAGE_OK;
	const cJSON *it;

	if (recover_get(c->ctx, "openai", url, hdrs, c->timeout, &r) < 0) {
		rc = recover_lookup_failed(c->ctx, &r, "the chat request among the stored completions");
	} else {
		cJSON *j = cJSON_ParseWithLength(r.body.s ? r.body.s : "", r.body.len);
		cJSON_ArrayForEach (it, json_get(j, "data"))
			if (!*id && !strcmp(json_str(it, "metadata.acog_request", ""), tag) &&
			    recover_id_ok(json_str(it, "id", "")))
				*id = xstrdup(json_str(it, "id", ""));
		cJSON_Delete(j);
		http_resp_free(&r);
	}
	free(url);
	return rc;
}

/* The answer an earlier attempt paid for, into r (*e says whether there is
 * one); STAGE_RETRY when the look-up may pass later. */
static enum stage_rc stored_find(struct chat *c, const char *tag, const char *const *hdrs, struct http_resp *r,
				 enum earlier *e)
{
	char *key = xasprintf("chat-%s", tag), *found = NULL, *url = NULL;
	cJSON *mark = recover_mark(c->ctx, key);
	const char *id = json_str(mark, "id", NULL);
	enum stage_rc rc = STAGE_OK;

	*e = EARLIER_NONE;
	if (mark && !id) rc = stored_list(c, tag, hdrs, &found);
	if (rc == STAGE_OK && (id || found)) {
		url = xasprintf("%s/chat/completions/%s", c->base, id ? id : found);
		if (recover_get(c->ctx, "openai", url, hdrs, c->timeout, r) < 0)
			rc = recover_lookup_failed(c->ctx, r, "the stored chat completion");
		else
			*e = id ? EARLIER_NOTED : EARLIER_FOUND;
	}
	if (*e == EARLIER_FOUND) recover_mark_done(c->ctx, key, mark, found);
	if (*e != EARLIER_NONE)
		stage_log(c->ctx, "info",
			  "%s: the answer to this request was paid for by an earlier attempt: stored "
			  "completion %s, fetched again (not billed)",
			  c->sp->stage, id ? id : found);
	else if (mark && !id && rc == STAGE_OK &&
		 (rc = recover_wait(c->ctx, mark, c->timeout, "a chat request")) == STAGE_OK)
		stage_log(c->ctx, "info",
			  "%s: a request an earlier attempt sent is not among the stored completions; "
			  "asking again",
			  c->sp->stage);
	cJSON_Delete(mark);
	free(key), free(found), free(url);
	return rc;
}

/* Before a request goes out: its mark; after the answer: the answer's id on
 * it, or no mark when the answer says nothing was done (a 4xx). */
static enum stage_rc mark_sent(struct chat *c, const char *tag)
{
	char *key = xasprintf("chat-%s", tag);
	cJSON *m = recover_mark_new();
	int rc = recover_mark_set(c->ctx, key, m);

	cJSON_Delete(m);
	free(key);
	if (rc < 0)
		return stage_fail(c->ctx, STAGE_RETRY, "%s: cannot note a request before paying for it: %s",
				  c->sp->stage, err_msg());
	return STAGE_OK;
}

static void mark_answered(struct chat *c, const char *tag, int ok, const struct http_resp *r)
{
	char *key = xasprintf("chat-%s", tag);
	cJSON *m = recover_mark(c->ctx, key);

	if (ok == 0) {
		cJSON *j = cJSON_ParseWithLength(r->body.s ? r->body.s : "", r->body.len);
		recover_mark_done(c->ctx, key, m, json_str(j, "id", NULL));
		cJSON_Delete(j);
	} else if (r->status >= 400 && r->status < 500) {
		recover_mark_clear(c->ctx, key);
	}
	cJSON_Delete(m);
	free(key);
}

/* recover: the answer an earlier attempt paid for (*e), else this request's mark. */
static enum stage_rc before_send(struct chat *c, const char *tag, const char *const *hdrs, struct http_resp *r,
				 enum earlier *e)
{
	enum stage_rc rc;

	*e = EARLIER_NONE;
	if (!*tag) return STAGE_OK;
	if ((rc = stored_find(c, tag, hdrs, r, e)) != STAGE_OK || *e != EARLIER_NONE) return rc;
	return mark_sent(c, tag);
}

/* ---- one request ------------------------------------------------------------- */

static enum stage_rc chat_send(struct chat *c, struct answer *a)
{
	const char *hdrs[] = { "Content-Type: application/json", c->auth, NULL };
	struct http_resp r;
	enum stage_rc rc = STAGE_OK;
	enum earlier e = EARLIER_NONE;
	int ok;

	for (;;) {
		char tag[33], *body = body_build(c, tag);
		struct http_req q = { .provider = "openai",
				      .method = "POST",
				      .url = c->url,
				      .headers = hdrs,
				      .body = body,
				      .body_len = strlen(body),
				      .timeout_s = c->timeout,
				      .not_idempotent = *tag != '\0' };
		memset(&r, 0, sizeof r);
		if ((rc = before_send(c, tag, hdrs + 1, &r, &e)) != STAGE_OK || e != EARLIER_NONE) {
			free(body);
			if (rc != STAGE_OK) return rc;
			ok = 0;
			break;
		}
		ok = http_request(&c->ctx->http, &q, &r);
		free(body);
		c->calls++;
		if (*tag) mark_answered(c, tag, ok, &r);
		if (ok == 0 || r.status != 400 || c->mode != MODE_SCHEMA || !c->fallback || !mentions_format(&r)) break;
		stage_log(c->ctx, "info",
			  "%s: the server refused response_format json_schema (%s); "
			  "asking again with json_object",
			  c->sp->stage, r.error);
		c->mode = MODE_OBJECT;
		http_resp_free(&r);
	}
	if (ok == 0) {
		answer_parse(c, &r, a, e != EARLIER_NOTED);
	} else {
		int lost = r.maybe_ran && c->recover; /* looked up among the stored completions next time */

		if (r.retriable) c->ctx->retry_after = r.retry_after;
		rc = stage_fail(c->ctx, r.retriable || lost ? STAGE_RETRY : STAGE_FAIL, "%s (model %s at %s)%s",
				r.error, c->model, c->url, lost ? RECOVER_NEXT_TIME : "");
	}
	http_resp_free(&r);
	return rc;
}

/* ---- the fix loop ------------------------------------------------------------ */

/* What was wrong with an answer, or NULL when it is good (c->doc/c->text set). */
static char *answer_problem(struct chat *c, const struct answer *a)
{
	if (a->broken && *a->ctype && !strcasestr(a->ctype, "json"))
		return xasprintf("the server's answer was not a chat completion but %s (a proxy or login page "
				 "in the way? check base_url)",
				 a->ctype);
	if (a->broken) return xstrdup("the server's answer was not a chat completion (invalid JSON)");
	if (a->refusal) return xasprintf("it was a refusal (\"%.300s\"), not the requested content", a->refusal);
	if (!strcmp(a->finish, "length"))
		return xasprintf("it was cut off at the limit of %d tokens; be more concise", c->max_tokens);
	if (!a->content || !*a->content) return xstrdup("it was empty");
	return c->sp->check(c, a->content);
}

static void feedback(struct chat *c, const struct answer *a, const char *problem)
{
	char *msg = xasprintf("Your previous answer was invalid: %s. %s", problem, c->sp->again);

	if (a->content && *a->content && strcmp(a->finish, "length")) {
		size_t n = strlen(a->content) > ECHO_MAX ? ECHO_MAX : strlen(a->content);
		char *echo;
		while (n > 0 && ((unsigned char)a->content[n] & 0xc0) == 0x80)
			n--; /* never cut a UTF-8 sequence in half */
		echo = xasprintf("%.*s", (int)n, a->content);
		prompt_add_message(c->messages, "assistant", echo);
		free(echo);
	}
	prompt_add_message(c->messages, "user", msg);
	free(msg);
}

static enum stage_rc chat_run(struct chat *c)
{
	char *problem = NULL;

	for (int attempt = 0; attempt <= c->fixes; attempt++) {
		struct answer a;
		enum stage_rc rc = chat_send(c, &a);
		if (rc != STAGE_OK) {
			free(problem);
			return rc;
		}
		free(problem);
		problem = NULL;
		if (!strcmp(a.finish, "content_filter"))
			rc = stage_fail(c->ctx, STAGE_FAIL,
					"%s: the answer of model %s was stopped by the "
					"provider's content filter; change the idea or the prompt",
					c->sp->stage, c->model);
		else if (!(problem = answer_problem(c, &a)))
			rc = c->sp->write(c);
		if (problem) {
			stage_log(c->ctx, "warn", "%s: answer %d of model %s is invalid: %s", c->sp->stage, attempt + 1,
				  c->model, problem);
			if (!a.broken) /* the model never saw a garbled envelope */
				feedback(c, &a, problem);
			if (!strcmp(a.finish, "length"))
				c->max_tokens = c->max_tokens * 2 > c->tokens_cap ? c->tokens_cap : c->max_tokens * 2;
		}
		free(a.content), free(a.refusal);
		if (!problem) return rc;
	}
	stage_fail(c->ctx, STAGE_FAIL,
		   "%s: no valid answer from model %s after %d attempt%s; the last "
		   "one was invalid: %s",
		   c->sp->stage, c->model, c->fixes + 1, c->fixes ? "s" : "", problem);
	free(problem);
	return STAGE_FAIL;
}

/* ---- checks ------------------------------------------------------------------- */

static char *json_problem(struct chat *c, const char *content)
{
	cJSON *doc = NULL;
	char *p = prompt_json_problem(content, c->schema, &doc);

	if (!p) {
		cJSON_Delete(c->doc);
		c->doc = doc;
	}
	return p;
}

static int is_blank(const char *s)
{
	return !s || !*(s + strspn(s, " \t\r\n"));
}

static char *plan_check(struct chat *c, const char *content)
{
	char *p = json_problem(c, content);

	if (!p && cJSON_GetArraySize(json_get(c->doc, "sections")) < 1)
		p = xstrdup("\"sections\" is empty; plan at least one section");
	if (!p && is_blank(json_str(c->doc, "hook", NULL))) p = xstrdup("\"hook\" is empty");
	return p;
}

static char *meta_check(struct chat *c, const char *content)
{
	char *p = json_problem(c, content), *t;

	if (p) return p;
	t = clean_meta(json_str(c->doc, "final_title", ""), 0);
	if (!*t)
		p = xstrdup("\"final_title\" is empty");
	else if (is_blank(json_str(c->doc, "description", NULL)))
		p = xstrdup("\"description\" is empty");
	free(t);
	return p;
}

/* A line that is an [AVATAR] or [BROLL...] marker (as src/script.c reads them). */
static int has_marker(const char *text)
{
	for (const char *p = text; *p;) {
		const char *e = strchrnul(p, '\n'), *q = p + strspn(p, " \t");
		char name[16];
		size_t n = 0;
		if (*q == '[' && memchr(q, ']', (size_t)(e - q)))
			for (q++; q < e && *q != ']' && *q != ':' && n + 1 < sizeof name; q++)
				if (isalpha((unsigned char)*q)) name[n++] = (char)toupper((unsigned char)*q);
		name[n] = 0;
		if (!strcmp(name, "AVATAR") || !strcmp(name, "BROLL")) return 1;
		p = *e ? e + 1 : e;
	}
	return 0;
}

/* A script with [AVATAR]/[BROLL: ...] markers, as a channel's own template
 * may still ask for; takes text. */
static char *marker_check(struct chat *c, char *text)
{
	struct script s;
	size_t n;

	script_parse(text, &s);
	n = s.n;
	script_free(&s);
	if (!n) {
		free(text);
		return xstrdup("it has no narration; write the spoken text under each marker");
	}
	free(c->text), c->text = text;
	return NULL;
}

/* Prose instead of the JSON asked for: small local models often ignore the
 * format, and asking them again rarely helps, so the prose becomes the
 * narration, shared out over the plan's sections. */
static char *prose_check(struct chat *c, const char *text)
{
	char *path = path_in(c->ctx, "plan.json"), *out, *p;
	cJSON *plan = json_load_file(path, FILE_MAX);
	int n, min = prompt_target_words(prompt_target_minutes(c->ctx, plan)) * 3 / 10;

	if (!(p = prompt_script_from_prose(text, plan, min, &out, &n))) {
		stage_log(c->ctx, "warn",
			  "scripting: model %s answered in prose, not the JSON script it "
			  "was asked for; script.md has its words as one voice-over segment per plan "
			  "section (%d), shown with the plan's b-roll suggestions",
			  c->model, n);
		free(c->text), c->text = out;
		c->prose = 1;
	}
	cJSON_Delete(plan);
	free(path);
	return p;
}

/* An object, or an array of anything but a marker ("[AVATAR]"): meant as JSON. */
static int looks_json(const char *text)
{
	const char *next;

	if (!text[0]) return 0; /* an answer of only spaces: text + 1 is past the end (tests/fuzz/regress/openai) */
	next = text + 1 + strspn(text + 1, " \t\r\n");
	return text[0] == '{' || (text[0] == '[' && !isalpha((unsigned char)*next));
}

/* The JSON script (the schema's), a marker script, or prose. */
static char *script_check(struct chat *c, const char *content)
{
	char *text = prompt_strip_fence(content), *p, *out;

	if (!looks_json(text) && has_marker(text)) return marker_check(c, text);
	if (!looks_json(text))
		p = prose_check(c, text);
	else if (!(p = json_problem(c, text)) && !(p = prompt_script_from_json(c->doc, &out)))
		free(c->text), c->text = out;
	free(text);
	return p;
}

/* ---- outputs ------------------------------------------------------------------- */

static enum stage_rc write_json(struct chat *c, const char *name, const char *type, cJSON *j)
{
	char *path = path_in(c->ctx, name);
	enum stage_rc rc = STAGE_OK;

	if (json_write_file(path, j) < 0)
		rc = stage_fail(c->ctx, STAGE_RETRY, "cannot write %s: %s", path, err_msg());
	else
		stage_output(c->ctx, type, name, "application/json", -1);
	free(path);
	return rc;
}

static enum stage_rc plan_write(struct chat *c)
{
	cJSON *o = cJSON_CreateObject(), *it;
	double min = prompt_target_minutes(c->ctx, NULL);
	enum stage_rc rc;

	cJSON_AddStringToObject(o, "generator", "openai");
	cJSON_AddStringToObject(o, "model", c->model);
	cJSON_AddStringToObject(o, "topic", json_str(c->ctx->idea, "topic", ""));
	cJSON_ArrayForEach (it, json_get(c->schema, "properties"))
		cJSON_AddItemToObject(o, it->string, cJSON_DetachItemFromObjectCaseSensitive(c->doc, it->string));
	cJSON_AddNumberToObject(o, "target_length_minutes", min);
	cJSON_AddNumberToObject(o, "target_words", prompt_target_words(min));
	if (c->ctx->reviewer_notes) cJSON_AddStringToObject(o, "reviewer_notes", c->ctx->reviewer_notes);
	cJSON_AddNumberToObject(o, "revision", prompt_plan_revision(c->ctx));
	rc = write_json(c, "plan.json", "plan", o);
	cJSON_Delete(o);
	return rc;
}

/* YouTube counts a tag with a space as if quoted, plus a comma. */
static void tags_add(cJSON *out, const cJSON *in)
{
	const cJSON *it, *o;
	size_t total = 0;

	cJSON_ArrayForEach (it, in) {
		char *t = clean_meta(it->valuestring, 0), *s = t + strspn(t, "# ");
		size_t cost = strlen(s) + 1 + (strchr(s, ' ') ? 2 : 0);
		int dup = 0;
		cJSON_ArrayForEach (o, out) dup |= !strcasecmp(o->valuestring, s);
		if (*s && !dup && strlen(s) <= 100 && cJSON_GetArraySize(out) < TAGS_MAX &&
		    total + cost <= TAGS_MAX_CHARS) {
			cJSON_AddItemToArray(out, cJSON_CreateString(s));
			total += cost;
		}
		free(t);
	}
}

static enum stage_rc meta_write(struct chat *c)
{
	cJSON *o = cJSON_CreateObject();
	char *title = clean_meta(json_str(c->doc, "final_title", ""), 0);
	char *desc = clean_meta(json_str(c->doc, "description", ""), 1);
	char *thumb = clean_meta(json_str(c->doc, "thumbnail_prompt", ""), 0);
	size_t n = strlen(title);
	enum stage_rc rc;

	utf8_cut_words(title, TITLE_MAX_CHARS);
	if (strlen(title) < n) stage_log(c->ctx, "info", "metadata: title cut to 100 characters: %s", title);
	if ((n = strlen(desc)) > DESCRIPTION_MAX_BYTES) {
		n = DESCRIPTION_MAX_BYTES;
		while (n > 0 && ((unsigned char)desc[n] & 0xc0) == 0x80) n--; /* never cut a UTF-8 sequence in half */
		desc[n] = 0;
	}
	cJSON_AddStringToObject(o, "final_title", title);
	cJSON_AddStringToObject(o, "description", desc);
	tags_add(cJSON_AddArrayToObject(o, "tags"), json_get(c->doc, "tags"));
	cJSON_AddStringToObject(o, "thumbnail_prompt", thumb);
	cJSON_AddStringToObject(o, "generator", "openai");
	cJSON_AddStringToObject(o, "model", c->model);
	rc = write_json(c, "metadata.json", "metadata", o);
	cJSON_Delete(o);
	free(title), free(desc), free(thumb);
	return rc;
}

/* script.md: the title line, a comment saying who wrote it, the script. */
static enum stage_rc script_write(struct chat *c)
{
	struct sbuf b = { 0 };
	const char *body = c->text + strspn(c->text, " \t\r\n"), *nl;
	char *path = path_in(c->ctx, "script.md"),
	     *topic = clean_meta(json_str(c->ctx->idea, "topic", "Untitled episode"), 0);
	char *plan = path_in(c->ctx, "plan.json"), *notes = NULL;
	cJSON *pj = fsio_exists(plan) ? json_load_file(plan, FILE_MAX) : NULL;
	enum stage_rc rc = STAGE_OK;

	if (body[0] == '#' && body[1] == ' ') {
		nl = strchrnul(body, '\n');
		sb_add(&b, body, (size_t)(nl - body));
		body = *nl ? nl + 1 : nl;
	} else {
		sb_printf(&b, "# %s", *topic ? topic : "Untitled episode");
	}
	sb_printf(&b,
		  "\n<!-- Written by openai model %s from plan.json (revision %d). "
		  "Edit freely before review. -->\n",
		  c->model, (int)json_num(pj, "revision", 1));
	if (c->prose)
		sb_puts(&b,
			"<!-- The model answered in prose, not the JSON script: its words are shared "
			"out over the plan's sections, one b-roll segment each. Check the cuts. -->\n");
	if (c->ctx->reviewer_notes && *(notes = clean_meta(c->ctx->reviewer_notes, 0)))
		sb_printf(&b, "<!-- Reviewer notes addressed in this version: %s -->\n", notes);
	sb_printf(&b, "%s%s\n", *body == '\n' ? "" : "\n", body);
	if (fsio_write_atomic_str(path, b.s) < 0)
		rc = stage_fail(c->ctx, STAGE_RETRY, "cannot write %s: %s", path, err_msg());
	else
		stage_output(c->ctx, "script", "script.md", "text/markdown", -1);
	cJSON_Delete(pj);
	sb_free(&b);
	free(path), free(topic), free(plan), free(notes);
	return rc;
}

/* ---- the stages ------------------------------------------------------------------ */

static const struct spec spec_planning = { "planning", "Answer again with only the JSON.", plan_check, plan_write };
static const struct spec spec_scripting = { "scripting", "Answer again with only the JSON object.", script_check,
					    script_write };
static const struct spec spec_metadata = { "metadata", "Answer again with only the JSON.", meta_check, meta_write };

/* Scripting writes from the plan: it must be there and be a JSON object. */
static int plan_ok(struct stage_ctx *ctx)
{
	char *path = path_in(ctx, "plan.json");
	cJSON *plan = json_load_file(path, FILE_MAX);
	int ok = cJSON_IsObject(plan);

	if (plan && !ok) err_set("%s is not a JSON object", path);
	cJSON_Delete(plan);
	free(path);
	return ok;
}

static enum stage_rc openai_run(struct stage_ctx *ctx, const struct spec *sp)
{
	struct chat c = { .ctx = ctx, .sp = sp };
	enum stage_rc rc;

	if (sp == &spec_scripting && !plan_ok(ctx))
		return stage_fail(ctx, STAGE_FAIL,
				  "%s; run planning again (acog-batch retry %s "
				  "--from planning)",
				  err_msg(), ctx->episode_id);
	c.schema = prompt_schema(sp->stage) ? cJSON_Parse(prompt_schema(sp->stage)) : NULL;
	if (opts_load(&c) < 0 || key_load(&c) < 0 || !(c.messages = prompt_messages(ctx)))
		rc = stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	else
		rc = chat_run(&c);
	if (rc == STAGE_OK)
		stage_log(ctx, "info", "%s: openai model %s, %d call%s, %.0f tokens, %.4f USD%s", sp->stage, c.model,
			  c.calls, c.calls == 1 ? "" : "s", c.tokens, c.usd, c.local ? " (local server)" : "");
	cJSON_Delete(c.schema), cJSON_Delete(c.messages), cJSON_Delete(c.doc);
	free(c.url), free(c.auth), free(c.text), free(c.base);
	return rc;
}

enum stage_rc prov_planning_openai(struct stage_ctx *ctx)
{
	return openai_run(ctx, &spec_planning);
}

enum stage_rc prov_scripting_openai(struct stage_ctx *ctx)
{
	return openai_run(ctx, &spec_scripting);
}

enum stage_rc prov_metadata_openai(struct stage_ctx *ctx)
{
	return openai_run(ctx, &spec_metadata);
}
