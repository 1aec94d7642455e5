/*
 * stage_child.c - the stage child: a fresh process (`acog-batch __stage`,
 * started by worker.c with execve) so nothing of the daemon's memory, SQLite
 * handles or descriptors survives into it.  Its protocol:
 *   fd 0  one JSON document, the stage's whole input (stage_input_json());
 *   fd 3  the report pipe: exactly one JSON line {"type":"result", "rc",
 *         "provider", "error", "retry_after", "hold", "outputs", "costs",
 *         "input_hash", "cached"} written just before it exits.
 * It first looks for a cached result (cache.c), else runs the provider.  Its
 * only database access is stagedb.c, on connections of its own.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void send_line(int fd, cJSON *o)
{
	char *s = json_print(o), *line = xasprintf("%s\n", s);
	if (write(fd, line, strlen(line)) < 0) _exit(EXIT_IOERR);
	free(line);
	free(s);
}

static void send_result(int fd, struct stage_ctx *ctx, enum stage_rc rc, const char *key)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "result");
	cJSON_AddNumberToObject(o, "rc", rc);
	cJSON_AddStringToObject(o, "provider", json_str(ctx->provider, "name", "?"));
	if (ctx->error[0]) cJSON_AddStringToObject(o, "error", ctx->error);
	if (ctx->retry_after > 0) cJSON_AddNumberToObject(o, "retry_after", ctx->retry_after);
	cJSON_AddItemToObject(o, "outputs", ctx->outputs ? ctx->outputs : cJSON_CreateArray());
	cJSON_AddItemToObject(o, "costs", ctx->costs ? ctx->costs : cJSON_CreateArray());
	if (key) cJSON_AddStringToObject(o, "input_hash", key);
	if (rc == STAGE_HOLD) {
		cJSON *h = cJSON_AddObjectToObject(o, "hold");
		cJSON_AddStringToObject(h, "kind", ctx->hold_kind);
		cJSON_AddNumberToObject(h, "until", ctx->hold_until);
		cJSON_AddBoolToObject(h, "channel", ctx->hold_channel);
	}
	send_line(fd, o);
	cJSON_Delete(o);
}

static void run_stage(struct stage_ctx *ctx, int fd)
{
	provider_fn fn;
	enum stage_rc rc;
	char key[65];
	cJSON *hit;

	if (chdir(ctx->episode_dir) < 0) {
		stage_fail(ctx, STAGE_FAIL, "cannot enter %s: %s", ctx->episode_dir, strerror(errno));
		send_result(fd, ctx, STAGE_FAIL, NULL);
		_exit(0);
	}
	cache_key(ctx, key);
	if ((hit = cache_lookup(ctx, key)) != NULL) {
		stage_log(ctx, "info", "inputs unchanged since job %s: its result is reused, no provider call",
			  json_str(hit, "cached_from", "?"));
		cJSON_AddStringToObject(hit, "input_hash", key);
		cJSON_AddBoolToObject(hit, "cached", 1);
		send_line(fd, hit);
		_exit(0);
	}
	fn = provider_lookup(ctx->stage, json_str(ctx->provider, "name", ""));
	if (!fn)
		rc = stage_fail(ctx, STAGE_FAIL, "no provider '%s' for stage %s", json_str(ctx->provider, "name", ""),
				ctx->stage);
	else
		rc = fn(ctx);
	if (rc == STAGE_OK) cache_seal(ctx);
	if (rc == STAGE_FAIL) recover_marks_spent(ctx); /* a person's retry asks afresh */
	send_result(fd, ctx, rc, key);
	_exit(0);
}

/* stage_ctx's input fields under the names the JSON documents use: the
 * stage input (all rows, in this order) and the command provider's request
 * (prov_command.c, through stage_ctx_put) are both written from it. */
enum ctx_kind { CTX_STR, CTX_JSON, CTX_INT };
static const struct ctx_field {
	const char *key;
	size_t off;
	enum ctx_kind kind;
	int dflt; /* CTX_INT: when the input leaves it out */
		  /* clang-format off: a table keeps one row per line */
} ctx_fields[] = {
#define F(name, kind, dflt) \
	{ \
#name, offsetof(struct stage_ctx, name), kind, dflt \
	}
	F(root, CTX_STR, 0),    F(episode_id, CTX_STR, 0), F(episode_dir, CTX_STR, 0),    F(channel_dir, CTX_STR, 0),
	F(stage, CTX_STR, 0),   F(job_id, CTX_STR, 0),     F(reviewer_notes, CTX_STR, 0), F(channel, CTX_JSON, 0),
	F(global, CTX_JSON, 0), F(provider, CTX_JSON, 0),  F(idea, CTX_JSON, 0),          F(state, CTX_JSON, 0),
	F(attempt, CTX_INT, 1), F(timeout_s, CTX_INT, 0),
#undef F
	{ NULL, 0, CTX_STR, 0 }
};
/* clang-format on */

#define CTX_AT(ctx, f, type) ((type *)((char *)(ctx) + (f)->off))
#define CTX_GET(ctx, f, type) (*(type const *)((const char *)(ctx) + (f)->off))

static void ctx_field_read(struct stage_ctx *ctx, const struct ctx_field *f, const cJSON *in)
{
	if (f->kind == CTX_STR)
		*CTX_AT(ctx, f, const char *) = json_str(in, f->key, NULL);
	else if (f->kind == CTX_JSON)
		*CTX_AT(ctx, f, const cJSON *) = json_get(in, f->key);
	else
		*CTX_AT(ctx, f, int) = (int)json_num(in, f->key, f->dflt);
}

/* An absent string or document is left out, or written as null when nulls is set. */
static void ctx_field_put(cJSON *o, const struct stage_ctx *ctx, const struct ctx_field *f, const char *key, int nulls)
{
	const char *s = f->kind == CTX_STR ? CTX_GET(ctx, f, const char *) : NULL;
	const cJSON *j = f->kind == CTX_JSON ? CTX_GET(ctx, f, const cJSON *) : NULL;

	if (f->kind == CTX_INT)
		cJSON_AddNumberToObject(o, key, CTX_GET(ctx, f, int));
	else if (s)
		cJSON_AddStringToObject(o, key, s);
	else if (j)
		cJSON_AddItemToObject(o, key, cJSON_Duplicate(j, 1));
	else if (nulls)
		cJSON_AddNullToObject(o, key);
}

void stage_ctx_put(cJSON *o, const struct stage_ctx *ctx, const char *field, const char *key)
{
	for (const struct ctx_field *f = ctx_fields; f->key; f++)
		if (strcmp(f->key, field) == 0) ctx_field_put(o, ctx, f, key, 1);
}

static int ctx_from_json(struct stage_ctx *ctx, const cJSON *in)
{
	memset(ctx, 0, sizeof *ctx);
	for (const struct ctx_field *f = ctx_fields; f->key; f++) ctx_field_read(ctx, f, in);
	ctx->http = (struct http_env){ .root = ctx->root,
				       .global = ctx->global,
				       .provider = ctx->provider,
				       .episode_id = ctx->episode_id,
				       .episode_dir = ctx->episode_dir,
				       .stage = ctx->stage };
	if (!ctx->root || !ctx->episode_id || !ctx->episode_dir || !ctx->channel_dir || !ctx->stage || !ctx->job_id ||
	    !cJSON_IsObject(ctx->channel) || !cJSON_IsObject(ctx->global) || !cJSON_IsObject(ctx->provider) ||
	    !cJSON_IsObject(ctx->idea) || !cJSON_IsObject(ctx->state))
		return err_set("__stage: the input on stdin is incomplete (this command is for the daemon only)");
	return 0;
}

cJSON *stage_input_json(const struct stage_ctx *ctx)
{
	cJSON *o = cJSON_CreateObject();
	for (const struct ctx_field *f = ctx_fields; f->key; f++) ctx_field_put(o, ctx, f, f->key, 0);
	cJSON_AddNumberToObject(o, "daemon_pid", getpid()); /* only the daemon builds this */
	return o;
}

int stage_child_main(void)
{
	struct sbuf in = { 0 };
	char buf[65536];
	ssize_t n;
	struct stage_ctx ctx;
	static cJSON *doc; /* ctx points into it until run_stage exits the process: held, not lost (valgrind) */

	/* The report pipe must not leak into the programs the provider starts. */
	if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) return EXIT_USAGE;
	/* Die with the daemon; if it is already gone, do nothing at all. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) return EXIT_OSERR;
	while ((n = read(0, buf, sizeof buf)) > 0) sb_add(&in, buf, (size_t)n);
	doc = in.s ? cJSON_Parse(in.s) : NULL;
	sb_free(&in);
	if (doc && getppid() != (pid_t)json_num(doc, "daemon_pid", -1)) _exit(EXIT_OSERR);
	if (!doc || ctx_from_json(&ctx, doc) < 0) {
		fprintf(stderr, "acog-batch __stage: %s\n", doc ? err_msg() : "stdin is not a JSON stage input");
		return EXIT_USAGE;
	}
	run_stage(&ctx, 3);
	return EXIT_OK; /* not reached: run_stage exits */
}
