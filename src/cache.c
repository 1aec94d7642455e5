/*
 * cache.c - never pay twice.  Each stage run is keyed by a hash of what it
 * depends on: the stage, the provider and its options, the channel settings
 * providers read, the reviewer's notes, and the content of its input files.
 * Before a provider runs, the stage child looks for a completed run of the
 * same stage of the same episode with the same key whose output files are
 * still exactly what that run wrote (their sha256 is in the job result); if
 * there is one, its result is reused and no provider is called.
 */
#include "provider.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each stage reads from the episode folder ("dir/" = every file in it). */
static const struct { const char *stage; const char *inputs[8]; } stage_inputs[] = {
	{ "planning", { "idea.json", NULL } },
	{ "scripting", { "idea.json", "plan.json", NULL } },
	{ "script_review", { "script.md", NULL } },
	{ "metadata", { "plan.json", "script.md", NULL } },
	{ "audio", { "script.md", NULL } },
	{ "avatar", { "timeline.json", "audio.wav", NULL } },
	{ "broll", { "timeline.json", NULL } },
	{ "assembly", { "timeline.json", "audio.wav", "subtitles.srt", "metadata.json", "avatar/", "broll/", NULL } },
	{ "upload", { "final.mp4", "metadata.json", "thumbnail.png", "subtitles.srt", "schedule.json", NULL } },
	{ NULL, { NULL } }
};

static const char *const channel_keys[] = {
	"name", "persona", "style_guide", "voice_profile", "avatar_profile", "video", "niche", NULL
};

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files of a folder in name order, so the key does not depend on readdir. */
static void hash_dir(struct sha256 *s, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	while (d && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') continue;
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	if (d) closedir(d);
	if (n) qsort(names, n, sizeof *names, name_cmp);
	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s%s", dir, names[i]);
		sha256_update(s, names[i], strlen(names[i]) + 1);
		sha256_file_update(s, p);
		free(p);
		free(names[i]);
	}
	free(names);
}

static void hash_json(struct sha256 *s, const char *label, const cJSON *j)
{
	char *txt = j ? json_print(j) : xstrdup("null");
	sha256_update(s, label, strlen(label) + 1);
	sha256_update(s, txt, strlen(txt) + 1);
	free(txt);
}

static int notes_matter(const struct stage_ctx *ctx)
{
	return !strcmp(ctx->stage, "planning") || !strcmp(ctx->stage, "scripting") ||
	       !strcmp(ctx->stage, "metadata") || !strcmp(json_str(ctx->provider, "name", ""), "command");
}

void cache_key(const struct stage_ctx *ctx, char out[65])
{
	struct sha256 s;
	size_t i;
	sha256_init(&s);
	sha256_update(&s, ctx->stage, strlen(ctx->stage) + 1);
	hash_json(&s, "provider", ctx->provider);
	for (i = 0; channel_keys[i]; i++) hash_json(&s, channel_keys[i], json_get(ctx->channel, channel_keys[i]));
	/* Notes change only what the writing stages (and external commands) produce, so
	 * a re-run from metadata does not pay for the same narration again. */
	if (notes_matter(ctx)) {
		const char *notes = ctx->reviewer_notes ? ctx->reviewer_notes : "";
		sha256_update(&s, notes, strlen(notes) + 1);
	}
	{	/* a channel's own prompt template changes what a writing stage produces */
		char *tpl = xasprintf("%s/prompts/%s.txt", ctx->channel_dir, ctx->stage);
		if (notes_matter(ctx) && fsio_exists(tpl)) sha256_file_update(&s, tpl);
		free(tpl);
	}
	for (i = 0; stage_inputs[i].stage && strcmp(stage_inputs[i].stage, ctx->stage); i++)
		;
	for (int k = 0; stage_inputs[i].stage && stage_inputs[i].inputs[k]; k++) {
		const char *in = stage_inputs[i].inputs[k];
		sha256_update(&s, in, strlen(in) + 1);
		if (in[strlen(in) - 1] == '/') hash_dir(&s, in);
		else if (fsio_exists(in)) sha256_file_update(&s, in);
	}
	sha256_final(&s, out);
}

static int file_hash(const char *path, char out[65])
{
	struct sha256 s;
	sha256_init(&s);
	if (sha256_file_update(&s, path) < 0) return -1;
	sha256_final(&s, out);
	return 0;
}

/* Records what each output file holds, so a later reuse can be verified. */
void cache_seal(struct stage_ctx *ctx)
{
	cJSON *o;
	cJSON_ArrayForEach(o, ctx->outputs) {
		char h[65];
		if (file_hash(json_str(o, "path", ""), h) == 0) {
			cJSON_DeleteItemFromObject(o, "sha256");
			cJSON_AddStringToObject(o, "sha256", h);
		}
	}
}

static int outputs_intact(const cJSON *result)
{
	const cJSON *o;
	cJSON_ArrayForEach(o, json_get(result, "outputs")) {
		char h[65];
		const char *want = json_str(o, "sha256", NULL);
		if (!want || file_hash(json_str(o, "path", ""), h) < 0 || strcmp(h, want) != 0) return 0;
	}
	return 1;
}

/* Returns a copy of the reusable earlier result, or NULL. */
cJSON *cache_lookup(const struct stage_ctx *ctx, const char *key)
{
	char *from = NULL, *text = stagedb_cached_result(ctx->root, ctx->job_id, key, &from);
	cJSON *hit = text ? cJSON_Parse(text) : NULL;
	if (hit && outputs_intact(hit)) {
		cJSON_DeleteItemFromObject(hit, "costs");
		cJSON_AddItemToObject(hit, "costs", cJSON_CreateArray());
		cJSON_DeleteItemFromObject(hit, "cached_from");
		cJSON_AddStringToObject(hit, "cached_from", from);
	} else {
		cJSON_Delete(hit);
		hit = NULL;
	}
	free(text);
	free(from);
	return hit;
}
