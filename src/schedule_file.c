/*
 * schedule_file.c - schedule.json, the one place an upload provider learns
 * when to publish.  The daemon writes it (through the durable commit) when
 * an episode is approved: the idea's publish_at, or the channel cadence's
 * next free slot.  Format:
 *
 *     {"publish_at": "2026-12-01T14:00:00Z", "source": "idea" | "cadence"}
 *
 * Providers call schedule_file_read: with no schedule.json it falls back to
 * the idea's publish_at (channels without a review gate), and a time that
 * has already passed means "publish at once", which the caller logs;
 * schedule_publish_time does both for a stage.
 */
#include "provider.h"
#include <stdlib.h>
#include <string.h>

int schedule_file_write(const char *episode_dir, const char *publish_at, const char *source)
{
	cJSON *j = cJSON_CreateObject();
	char *path = xasprintf("%s/schedule.json", episode_dir), *text;
	int rc;

	cJSON_AddStringToObject(j, "publish_at", publish_at);
	cJSON_AddStringToObject(j, "source", source);
	text = json_pretty(j);
	rc = fsio_write_atomic_str(path, text);
	free(text);
	free(path);
	cJSON_Delete(j);
	return rc;
}

double schedule_file_read(const char *episode_dir, const cJSON *idea, double now, int *past)
{
	char *path = xasprintf("%s/schedule.json", episode_dir);
	cJSON *j = NULL;
	const char *at;
	double t;

	*past = 0;
	if (fsio_exists(path) && !(j = json_load_file(path, 64 * 1024))) {
		free(path);
		return -1;
	}
	at = j ? json_str(j, "publish_at", NULL) : json_str(idea, "publish_at", NULL);
	t = at ? cadence_parse_instant(at) : 0;
	if (at && t < 0) err_set("%s: publish_at '%.60s' is not an ISO-8601 time", j ? path : "idea.json", at);
	free(path);
	cJSON_Delete(j);
	if (t > 0 && t <= now) {
		*past = 1;
		return 0;
	}
	return t;
}

int schedule_publish_time(struct stage_ctx *ctx, char out[32])
{
	int past;
	double t = schedule_file_read(ctx->episode_dir, ctx->idea, time_now(), &past);

	out[0] = 0;
	if (t < 0) return -1;
	if (past)
		stage_log(ctx, "info", "publish_at %s is already past; publishing at once",
			  json_str(ctx->idea, "publish_at", "(schedule.json)"));
	if (t > 0) cadence_iso(t, out);
	return 0;
}
