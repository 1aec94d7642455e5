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
	if (!fn) rc = stage_fail(ctx, STAGE_FAIL, "no provider '%s' for stage %s",
				 json_str(ctx->provider, "name", ""), ctx->stage);
	else rc = fn(ctx);
	if (rc == STAGE_OK) cache_seal(ctx);
	send_result(fd, ctx, rc, key);
	_exit(0);
}

/* The input document's keys are stage_ctx's field names. */
static int ctx_from_json(struct stage_ctx *ctx, const cJSON *in)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->root = json_str(in, "root", NULL);
	ctx->episode_id = json_str(in, "episode_id", NULL);
	ctx->episode_dir = json_str(in, "episode_dir", NULL);
	ctx->channel_dir = json_str(in, "channel_dir", NULL);
	ctx->stage = json_str(in, "stage", NULL);
	ctx->job_id = json_str(in, "job_id", NULL);
	ctx->reviewer_notes = json_str(in, "reviewer_notes", NULL);
	ctx->channel = json_get(in, "channel");
	ctx->global = json_get(in, "global");
	ctx->provider = json_get(in, "provider");
	ctx->idea = json_get(in, "idea");
	ctx->state = json_get(in, "state");
	ctx->attempt = (int)json_num(in, "attempt", 1);
	ctx->timeout_s = (int)json_num(in, "timeout_s", 0);
	ctx->http = (struct http_env){ .root = ctx->root, .global = ctx->global, .provider = ctx->provider,
				       .episode_id = ctx->episode_id, .episode_dir = ctx->episode_dir,
				       .stage = ctx->stage };
	if (!ctx->root || !ctx->episode_id || !ctx->episode_dir || !ctx->channel_dir || !ctx->stage ||
	    !ctx->job_id || !cJSON_IsObject(ctx->channel) || !cJSON_IsObject(ctx->global) ||
	    !cJSON_IsObject(ctx->provider) || !cJSON_IsObject(ctx->idea) || !cJSON_IsObject(ctx->state))
		return err_set("__stage: the input on stdin is incomplete (this command is for the daemon only)");
	return 0;
}

cJSON *stage_input_json(const struct stage_ctx *ctx)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "root", ctx->root);
	cJSON_AddStringToObject(o, "episode_id", ctx->episode_id);
	cJSON_AddStringToObject(o, "episode_dir", ctx->episode_dir);
	cJSON_AddStringToObject(o, "channel_dir", ctx->channel_dir);
	cJSON_AddStringToObject(o, "stage", ctx->stage);
	cJSON_AddStringToObject(o, "job_id", ctx->job_id);
	if (ctx->reviewer_notes) cJSON_AddStringToObject(o, "reviewer_notes", ctx->reviewer_notes);
	cJSON_AddItemToObject(o, "channel", cJSON_Duplicate(ctx->channel, 1));
	cJSON_AddItemToObject(o, "global", cJSON_Duplicate(ctx->global, 1));
	cJSON_AddItemToObject(o, "provider", cJSON_Duplicate(ctx->provider, 1));
	cJSON_AddItemToObject(o, "idea", cJSON_Duplicate(ctx->idea, 1));
	cJSON_AddItemToObject(o, "state", cJSON_Duplicate(ctx->state, 1));
	cJSON_AddNumberToObject(o, "attempt", ctx->attempt);
	cJSON_AddNumberToObject(o, "timeout_s", ctx->timeout_s);
	return o;
}

int stage_child_main(void)
{
	struct sbuf in = { 0 };
	char buf[65536];
	ssize_t n;
	struct stage_ctx ctx;
	cJSON *doc;

	/* The report pipe must not leak into the programs the provider starts. */
	if (fcntl(3, F_SETFD, FD_CLOEXEC) < 0) return EXIT_USAGE;
	while ((n = read(0, buf, sizeof buf)) > 0) sb_add(&in, buf, (size_t)n);
	doc = in.s ? cJSON_Parse(in.s) : NULL;
	sb_free(&in);
	if (!doc || ctx_from_json(&ctx, doc) < 0) {
		fprintf(stderr, "acog-batch __stage: %s\n", doc ? err_msg() : "stdin is not a JSON stage input");
		return EXIT_USAGE;
	}
	run_stage(&ctx, 3);
	return EXIT_OK;   /* not reached: run_stage exits */
}
