/*
 * provider.c - the provider registry and the small API providers use to
 * report results.  A provider runs in the stage child; everything it
 * reports is collected in its stage_ctx and sent to the daemon as one JSON
 * line at the end, except an async job id, which the child stores in the
 * database itself at once, so it survives a crash of either process.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* stage "*" means the provider serves every stage. */
const struct provider_def provider_table[] = {
	{ "planning", "builtin", prov_planning_builtin },
	{ "scripting", "builtin", prov_scripting_builtin },
	{ "script_review", "builtin", prov_script_review_checks },
	{ "metadata", "builtin", prov_metadata_builtin },
	{ "audio", "espeak", prov_audio_espeak },
	{ "avatar", "none", prov_avatar_none },
	{ "avatar", "still", prov_avatar_still },
	{ "broll", "generated", prov_broll_generated },
	{ "broll", "library", prov_broll_library },
	{ "assembly", "ffmpeg", prov_assembly_ffmpeg },
	{ "upload", "directory", prov_upload_directory },
	{ "upload", "youtube", prov_upload_youtube },
	{ "planning", "openai", prov_planning_openai },
	{ "scripting", "openai", prov_scripting_openai },
	{ "metadata", "openai", prov_metadata_openai },
	{ "audio", "elevenlabs", prov_audio_elevenlabs },
	{ "avatar", "heygen", prov_avatar_heygen },
	{ "broll", "runway", prov_broll_runway },
	{ "*", "command", prov_command },
	{ NULL, NULL, NULL }
};

provider_fn provider_lookup(const char *stage, const char *name)
{
	for (const struct provider_def *p = provider_table; p->stage; p++)
		if ((strcmp(p->stage, stage) == 0 || strcmp(p->stage, "*") == 0) &&
		    strcmp(p->name, name) == 0)
			return p->run;
	return NULL;
}

enum stage_rc stage_fail(struct stage_ctx *ctx, enum stage_rc rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
	va_end(ap);
	return rc;
}

enum stage_rc stage_hold(struct stage_ctx *ctx, const char *kind, double until, int channel_wide,
			 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
	va_end(ap);
	snprintf(ctx->hold_kind, sizeof ctx->hold_kind, "%s", kind);
	ctx->hold_until = until;
	ctx->hold_channel = channel_wide;
	return STAGE_HOLD;
}

void stage_output(struct stage_ctx *ctx, const char *type, const char *path,
		  const char *mime, long duration_ms)
{
	cJSON *o = cJSON_CreateObject();
	if (!ctx->outputs) ctx->outputs = cJSON_CreateArray();
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddStringToObject(o, "path", path);
	if (mime) cJSON_AddStringToObject(o, "mime", mime);
	if (duration_ms >= 0) cJSON_AddNumberToObject(o, "duration_ms", (double)duration_ms);
	cJSON_AddItemToArray(ctx->outputs, o);
}

void stage_cost(struct stage_ctx *ctx, const char *provider, const char *operation,
		double units, const char *unit_type, double cost_usd)
{
	cJSON *o = cJSON_CreateObject();
	if (!ctx->costs) ctx->costs = cJSON_CreateArray();
	cJSON_AddStringToObject(o, "provider", provider);
	cJSON_AddStringToObject(o, "operation", operation);
	cJSON_AddNumberToObject(o, "units", units);
	cJSON_AddStringToObject(o, "unit_type", unit_type);
	cJSON_AddNumberToObject(o, "cost_usd", cost_usd);
	cJSON_AddItemToArray(ctx->costs, o);
}

int stage_state_set(struct stage_ctx *ctx, const char *key, const char *value)
{
	cJSON *st = (cJSON *)ctx->state;
	if (stagedb_state_set(ctx->root, ctx->episode_id, ctx->stage, key, value) < 0) {
		stage_log(ctx, "error", "could not store provider state %s=%s: %s", key, value, err_msg());
		return -1;
	}
	cJSON_DeleteItemFromObjectCaseSensitive(st, key);
	cJSON_AddStringToObject(st, key, value);
	return 0;
}

const char *stage_state_get(const struct stage_ctx *ctx, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(ctx->state, key);
	return cJSON_IsString(j) && j->valuestring[0] ? j->valuestring : NULL;
}

void stage_log(struct stage_ctx *ctx, const char *level, const char *fmt, ...)
{
	va_list ap;
	char *msg, *ev;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) abort();
	va_end(ap);
	ev = xasprintf("stage.%s", ctx->stage);
	log_ev(level, ctx->episode_id, ctx->episode_dir, ev, "%s", msg);
	free(ev);
	free(msg);
}
