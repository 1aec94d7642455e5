/*
 * provider.c - the provider registry (one row per stage and provider) and
 * the small API providers use to read their options and report results.  A provider runs in the stage child; everything it
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

/* The registry: stage ("*" = any), name, run, options (own, then shared
 * sets), paid, extra check, flags.  Rows sharing a name share their options
 * and their paid function (tests/unit/test_registry.c checks it). */
#define HTTP_OPTS(own) \
	{ \
		own, http_opts, credential_opts \
	}
/* clang-format off: a table keeps one row per line */
const struct provider_def provider_table[] = {
	{ "planning", "builtin", prov_planning_builtin, { NULL }, NULL, NULL, 0 },
	{ "scripting", "builtin", prov_scripting_builtin, { NULL }, NULL, NULL, 0 },
	{ "script_review", "builtin", prov_script_review_checks, { NULL }, NULL, NULL, 0 },
	{ "metadata", "builtin", prov_metadata_builtin, { NULL }, NULL, NULL, 0 },
	{ "audio", "espeak", prov_audio_espeak, { espeak_opts }, NULL, NULL, 0 },
	{ "audio", "flite", prov_audio_flite, { flite_opts }, NULL, NULL, 0 },
	{ "audio", "festival", prov_audio_festival, { festival_opts }, NULL, NULL, 0 },
	{ "avatar", "none", prov_avatar_none, { NULL }, NULL, NULL, 0 },
	{ "avatar", "still", prov_avatar_still, { still_opts }, NULL, NULL, 0 },
	{ "broll", "generated", prov_broll_generated, { NULL }, NULL, NULL, 0 },
	{ "broll", "library", prov_broll_library, { library_opts }, NULL, NULL, 0 },
	{ "assembly", "ffmpeg", prov_assembly_ffmpeg, { assembly_opts }, NULL, assembly_check, 0 },
	{ "upload", "directory", prov_upload_directory, { directory_opts, publish_opts }, NULL, NULL, 0 },
	{ "upload", "youtube", prov_upload_youtube, { youtube_opts, publish_opts, http_opts }, NULL, NULL, 0 },
	{ "planning", "openai", prov_planning_openai, HTTP_OPTS(openai_opts), cost_paid_unless_local, NULL, 0 },
	{ "scripting", "openai", prov_scripting_openai, HTTP_OPTS(openai_opts), cost_paid_unless_local, NULL, 0 },
	{ "metadata", "openai", prov_metadata_openai, HTTP_OPTS(openai_opts), cost_paid_unless_local, NULL, 0 },
	{ "audio", "elevenlabs", prov_audio_elevenlabs, HTTP_OPTS(elevenlabs_opts), cost_paid_always, NULL, 0 },
	{ "avatar", "heygen", prov_avatar_heygen, HTTP_OPTS(heygen_opts), cost_paid_always, NULL, 0 },
	{ "broll", "runway", prov_broll_runway, HTTP_OPTS(runway_opts), cost_paid_always, NULL, 0 },
	{ "*", "command", prov_command, { command_opts }, NULL, command_check, PROV_NOTES },
	{ NULL, NULL, NULL, { NULL }, NULL, NULL, 0 }
};
/* clang-format on */
#undef HTTP_OPTS

const struct provider_def *provider_find(const char *stage, const char *name)
{
	for (const struct provider_def *p = provider_table; p->stage && name; p++)
		if ((!stage || !strcmp(p->stage, stage) || !strcmp(p->stage, "*")) && !strcmp(p->name, name)) return p;
	return NULL;
}

provider_fn provider_lookup(const char *stage, const char *name)
{
	const struct provider_def *p = provider_find(stage, name);
	return p ? p->run : NULL;
}

const struct provider_def *provider_of(const struct stage_ctx *ctx)
{
	return provider_find(ctx->stage, json_str(ctx->provider, "name", ""));
}

enum stage_rc stage_fail(struct stage_ctx *ctx, enum stage_rc rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
	va_end(ap);
	return rc;
}

enum stage_rc stage_hold(struct stage_ctx *ctx, const char *kind, double until, int channel_wide, const char *fmt, ...)
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

void stage_output(struct stage_ctx *ctx, const char *type, const char *path, const char *mime, long duration_ms)
{
	cJSON *o = cJSON_CreateObject();
	if (!ctx->outputs) ctx->outputs = cJSON_CreateArray();
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddStringToObject(o, "path", path);
	if (mime) cJSON_AddStringToObject(o, "mime", mime);
	if (duration_ms >= 0) cJSON_AddNumberToObject(o, "duration_ms", (double)duration_ms);
	cJSON_AddItemToArray(ctx->outputs, o);
}

void stage_cost(struct stage_ctx *ctx, const char *provider, const char *operation, double units, const char *unit_type,
		double cost_usd)
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

const char *stage_opt_str(const struct stage_ctx *ctx, const char *key)
{
	return provider_opt_str(provider_of(ctx), ctx->provider, key);
}

double stage_opt_num(const struct stage_ctx *ctx, const char *key)
{
	return provider_opt_num(provider_of(ctx), ctx->provider, key);
}
