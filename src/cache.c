/*
 * cache.c - never pay twice.  Each stage run is keyed by a hash of what it
 * depends on: the stage, the provider and its options, the channel settings
 * providers read, the reviewer's notes, and the content of its input files.
 * Before a provider runs, the stage child looks for a completed run of the
 * same stage of the same episode with the same key whose output files are
 * still exactly what that run wrote (their sha256 is in the job result); if
 * there is one, its result is reused and no provider is called.  What a
 * stage reads and whether notes matter come from its stage table row.
 */
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const channel_keys[] = { "name",           "persona", "style_guide", "voice_profile",
					    "avatar_profile", "video",   "niche",       NULL };

/* Files of a folder in name order, so the key does not depend on readdir. */
static void hash_dir(struct hash *h, const char *dir)
{
	char **names;
	int n = fsio_list(dir, &names, NULL);
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s%s", dir, names[i]);
		hash_update(h, names[i], strlen(names[i]) + 1);
		(void)!hash_file_update(h, p); /* unreadable: hashed as absent; the stage reports it */
		free(p);
	}
	fsio_list_free(names, n);
}

static void hash_json(struct hash *s, const char *label, const cJSON *j)
{
	char *txt = j ? json_print(j) : xstrdup("null");
	hash_update(s, label, strlen(label) + 1);
	hash_update(s, txt, strlen(txt) + 1);
	free(txt);
}

/* The stage row says whether notes change its result; a provider flagged
 * PROV_NOTES (an external command) gets them whatever the stage. */
static int notes_matter(const struct stage_ctx *ctx, const struct stage_def *s)
{
	const struct provider_def *p = provider_of(ctx);
	return (s && s->notes_matter) || (p && (p->flags & PROV_NOTES));
}

/* The stage's inputs, by name and content ("dir/": every file in it). */
static void hash_inputs(struct hash *h, const struct stage_def *s)
{
	for (size_t k = 0; s && k < sizeof s->inputs / sizeof s->inputs[0] && s->inputs[k]; k++) {
		const char *in = s->inputs[k];
		hash_update(h, in, strlen(in) + 1);
		if (in[strlen(in) - 1] == '/')
			hash_dir(h, in);
		else if (fsio_exists(in))
			(void)!hash_file_update(h, in); /* as above */
	}
}

void cache_key(const struct stage_ctx *ctx, char out[65])
{
	const struct stage_def *st = stage_find(ctx->stage);
	int notes = notes_matter(ctx, st);
	struct hash s;
	size_t i;
	hash_init(&s);
	hash_update(&s, ctx->stage, strlen(ctx->stage) + 1);
	hash_json(&s, "provider", ctx->provider);
	for (i = 0; channel_keys[i]; i++) hash_json(&s, channel_keys[i], json_get(ctx->channel, channel_keys[i]));
	/* Notes change only what the writing stages (and external commands) produce, so
	 * a re-run from metadata does not pay for the same narration again. */
	if (notes) {
		const char *text = ctx->reviewer_notes ? ctx->reviewer_notes : "";
		hash_update(&s, text, strlen(text) + 1);
	}
	{ /* a channel's own prompt template changes what a writing stage produces */
		char *tpl = xasprintf("%s/prompts/%s.txt", ctx->channel_dir, ctx->stage);
		if (notes && fsio_exists(tpl)) (void)!hash_file_update(&s, tpl); /* as above */
		free(tpl);
	}
	hash_inputs(&s, st);
	hash_final_hex(&s, out);
}

/* Records what each output file holds, so a later reuse can be verified. */
void cache_seal(struct stage_ctx *ctx)
{
	cJSON *o;
	cJSON_ArrayForEach (o, ctx->outputs) {
		char h[65];
		if (hash_file(json_str(o, "path", ""), h) == 0) {
			cJSON_DeleteItemFromObject(o, "sha256");
			cJSON_AddStringToObject(o, "sha256", h);
		}
	}
}

static int outputs_intact(const cJSON *result)
{
	const cJSON *o;
	cJSON_ArrayForEach (o, json_get(result, "outputs")) {
		char h[65];
		const char *want = json_str(o, "sha256", NULL);
		if (!want || hash_file(json_str(o, "path", ""), h) < 0 || strcmp(h, want) != 0) return 0;
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
