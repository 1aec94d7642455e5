/* Unit tests: quota.c's Pacific day and reset (the US DST rule), youtube_meta.c's limits. */
#include "youtube.h"
#include "tap.h"
#include <stdlib.h>
#include <string.h>

static double at(const char *iso)
{
	return time_parse_iso(iso);
}

static cJSON *meta(const char *title, const char *desc, int ntags)
{
	cJSON *m = cJSON_CreateObject(), *tags = cJSON_AddArrayToObject(m, "tags");
	cJSON_AddStringToObject(m, "final_title", title);
	cJSON_AddStringToObject(m, "description", desc);
	for (int i = 0; i < ntags; i++) cJSON_AddItemToArray(tags, cJSON_CreateString("abcdefghi"));
	return m;
}

int main(void)
{
	char day[11], *big = malloc(5001);
	struct stage_ctx ctx = { 0 };
	cJSON *prov = cJSON_CreateObject(), *m, *r;
	struct yt_job job = { .ctx = &ctx, .marker = "ep-1" };

	quota_pacific_day(at("2026-01-15T07:59:59.000Z"), day);
	ok(!strcmp(day, "2026-01-14"), "PST: 07:59 UTC is still the day before (%s)", day);
	quota_pacific_day(at("2026-01-15T08:00:00.000Z"), day);
	ok(!strcmp(day, "2026-01-15"), "PST: 08:00 UTC is Pacific midnight (%s)", day);
	quota_pacific_day(at("2026-07-15T07:00:00.000Z"), day);
	ok(!strcmp(day, "2026-07-15"), "PDT: 07:00 UTC is Pacific midnight (%s)", day);
	ok(quota_next_reset(at("2026-01-15T12:00:00.000Z")) == at("2026-01-16T08:00:00.000Z"), "PST reset");
	ok(quota_next_reset(at("2026-07-15T12:00:00.000Z")) == at("2026-07-16T07:00:00.000Z"), "PDT reset");
	/* 2026-03-08 is the second Sunday of March: the reset after that day's start is at 07:00 UTC */
	ok(quota_next_reset(at("2026-03-08T12:00:00.000Z")) == at("2026-03-09T07:00:00.000Z"),
	   "reset after DST starts");
	ok(quota_next_reset(at("2026-11-01T12:00:00.000Z")) == at("2026-11-02T08:00:00.000Z"), "reset after DST ends");

	ctx.provider = prov;
	job.meta = m = meta("A fine title", "text", 3);
	r = yt_meta_resource(&job);
	ok(r && !strcmp(json_str(r, "status.privacyStatus", ""), "private"), "privacy private by default");
	ok(r && cJSON_IsFalse(json_get(r, "status.selfDeclaredMadeForKids")), "made for kids always sent (false)");
	ok(r && cJSON_IsTrue(json_get(r, "status.containsSyntheticMedia")), "synthetic media always sent (true)");
	ok(r && strstr(json_str(r, "snippet.description", ""), "[acog:ep-1]"), "marker in the description");
	cJSON_Delete(r), cJSON_Delete(m);
	job.meta = m = meta("t<b>", "text", 0);
	ok(!yt_meta_resource(&job) && strstr(err_msg(), "<"), "title with < refused: %s", err_msg());
	cJSON_Delete(m);
	memset(big, 'x', 5000), big[5000] = 0;
	job.meta = m = meta("t", big, 0);
	ok(!yt_meta_resource(&job) && strstr(err_msg(), "5000"), "description over 5000 bytes refused");
	cJSON_Delete(m);
	job.meta = m = meta("t", "d", 50); /* 50 * 9 + 49 commas = 499 */
	r = yt_meta_resource(&job);
	ok(r != NULL, "tags of 499 characters accepted");
	cJSON_Delete(r), cJSON_Delete(m);
	job.meta = m = meta("t", "d", 51);
	ok(!yt_meta_resource(&job) && strstr(err_msg(), "500"), "tags over 500 characters refused");
	cJSON_Delete(m);
	cJSON_Delete(prov);
	free(big);
	return tap_done();
}
