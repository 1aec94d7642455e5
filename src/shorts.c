/*
 * shorts.c - the 9:16 Shorts cut of an episode, beside the 16:9 video.
 *
 * Asked for by channel.yaml `shorts: {enabled: true, max_seconds: 60}` or by
 * an idea's `shorts: true`.  The assembly encodes it with its own graph
 * (prov_assembly.c) in the tall frame this file computes, cut where this
 * file says; this file checks and commits it as shorts.mp4 and writes
 * shorts_metadata.json for the upload providers.
 *
 * The cut: the first max_seconds (at most 60), ending at a sentence
 * boundary: the end of the last narration cue (timeline.json cues, one per
 * sentence) that ends within the limit, plus a short breath.  Only when no
 * cue ends in time is the cut made at the limit itself.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SHORTS_LIMIT 60.0 /* YouTube's limit for a Short */
#define BREATH 0.3        /* kept after the last sentence */
#define MAX_DRIFT 0.5
#define TITLE_MAX 100
#define TAG " #Shorts"

int shorts_wanted(const struct stage_ctx *ctx)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(ctx->channel, "shorts");
	return json_bool(s, "enabled", 0) || json_bool(ctx->idea, "shorts", 0);
}

/* A repurposed episode asking for the Shorts cut is that cut only: its
 * 16:9 video is the source's, published already, so it is not published again. */
int shorts_only(const struct stage_ctx *ctx)
{
	return json_bool(ctx->idea, "shorts", 0) && !strcmp(json_str(ctx->idea, "idea_source", ""), "repurpose");
}

static double shorts_max(const struct stage_ctx *ctx)
{
	double m = json_num(ctx->channel, "shorts.max_seconds", SHORTS_LIMIT);
	return m > 0 && m < SHORTS_LIMIT ? m : SHORTS_LIMIT;
}

/* 1080x1920 at full size, scaled like the channel's frame (its height is
 * the tall frame's width); a channel already vertical keeps its frame. */
void shorts_frame(const struct media_frame *f, struct media_frame *tall)
{
	*tall = *f;
	if (f->h > f->w) return;
	tall->w = f->h & ~1;
	tall->h = (int)lround(f->h * 16.0 / 9.0) & ~1;
}

/* Where the cut ends, in seconds of the narration. */
double shorts_cut(const struct stage_ctx *ctx, const cJSON *timeline)
{
	double max = shorts_max(ctx), total = json_num(timeline, "duration", max), best = 0;
	const cJSON *c;

	if (total < max) max = total;
	cJSON_ArrayForEach (c, cJSON_GetObjectItemCaseSensitive(timeline, "cues")) {
		double end = json_num(c, "end", -1);
		if (end > best && end + BREATH <= max) best = end;
	}
	return best > 0 ? best + BREATH : max;
}

/* shorts_metadata.json: the title with " #Shorts" (cut to fit 100
 * characters), the description's first paragraph, the same tags. */
static int shorts_metadata(void)
{
	cJSON *m = json_load_file("metadata.json", 1 << 20), *out;
	const char *t, *d;
	char *title, *desc;
	int rc;

	if (!m) return -1;
	t = json_str(m, "final_title", "");
	d = json_str(m, "description", "");
	title = xasprintf("%.*s" TAG, (int)(TITLE_MAX - strlen(TAG)), t);
	desc = xasprintf("%.*s\n\n#Shorts", (int)(strstr(d, "\n\n") ? strstr(d, "\n\n") - d : (long)strlen(d)), d);
	out = cJSON_Duplicate(m, 1);
	cJSON_ReplaceItemInObjectCaseSensitive(out, "final_title", cJSON_CreateString(title));
	cJSON_DeleteItemFromObjectCaseSensitive(out, "description");
	cJSON_AddStringToObject(out, "description", desc);
	cJSON_AddStringToObject(out, "video", "shorts.mp4");
	rc = json_write_file("shorts_metadata.json", out);
	cJSON_Delete(out);
	cJSON_Delete(m);
	free(title);
	free(desc);
	return rc;
}

/* The encoded cut (tmp) checked, committed as shorts.mp4, with its metadata. */
enum stage_rc shorts_commit(struct stage_ctx *ctx, const char *tmp, const struct media_frame *tall, double cut)
{
	double d = media_duration(tmp);
	if (d < 0) return stage_fail(ctx, STAGE_FAIL, "shorts.mp4 was encoded but %s", err_msg());
	if (fabs(d - cut) > MAX_DRIFT || d > SHORTS_LIMIT)
		return stage_fail(ctx, STAGE_FAIL, "shorts.mp4 lasts %.2f s but the cut is %.2f s; run assembly again",
				  d, cut);
	if (media_commit(tmp, "shorts.mp4") < 0 || shorts_metadata() < 0)
		return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	stage_log(ctx, "info", "shorts.mp4: %dx%d, the first %.2f s (ends at a sentence), with shorts_metadata.json",
		  tall->w, tall->h, d);
	return STAGE_OK;
}
