/*
 * quota.c - the YouTube quota ledger: per channel, per Pacific-time day,
 * per bucket.  Since June 2026 videos.insert has its own daily bucket
 * ("upload", 100 calls) and every other method shares 10,000 units
 * ("default").  Costs and limits come from acog.yaml youtube_quota (the
 * documented defaults below).  Every call is charged before it is made;
 * when not enough is left the stage holds until Pacific midnight, when the
 * daemon's timer releases it.  The ledger row is checked and updated in
 * one short transaction (stagedb_quota_use), never across the call.
 *
 * Pacific time follows the US rule (PST -8 h; PDT -7 h from the second
 * Sunday of March, 02:00, to the first Sunday of November, 02:00), so no
 * time zone database is needed in the static binary.
 *
 * Tests: a binary built with -DACOG_TEST (the sanitizer build) adds
 * ACOG_TEST_CLOCK_OFFSET seconds to this module's clock, so a test can put
 * "now" a few seconds before Pacific midnight; hold times are converted
 * back to the real clock the daemon's timer uses.
 */
#define _GNU_SOURCE
#include "youtube.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct quota_method {
	const char *name, *bucket;
	int cost;
};
/* clang-format off: a table keeps one row per line */
static const struct quota_method quota_methods[] = { { "videos_insert", "upload", 1 },
						     { "thumbnails_set", "default", 50 },
						     { "playlist_items_insert", "default", 50 },
						     { "captions_insert", "default", 400 },
						     { "videos_list", "default", 1 },
						     { "channels_list", "default", 1 },
						     { "playlist_items_list", "default", 1 },
						     { "captions_list", "default", 50 },
						     { NULL, NULL, 0 } };
/* clang-format on */
/* clang-format off: a table keeps one row per line */
static const struct {
	const char *bucket, *key;
	int limit;
} quota_limits[] = { { "upload", "uploads_per_day", 100 }, { "default", "units_per_day", 10000 }, { NULL, NULL, 0 } };
/* clang-format on */

static double test_offset(void)
{
#ifdef ACOG_TEST
	const char *v = getenv("ACOG_TEST_CLOCK_OFFSET");
	return v ? strtod(v, NULL) : 0;
#else
	return 0;
#endif
}

double quota_now(void)
{
	return time_now() + test_offset();
}

/* 0:00 UTC of the n-th Sunday (n = 1, 2) of month mon (0-11) of year y. */
static time_t nth_sunday(int y, int mon, int n)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon, .tm_mday = 1 };
	time_t first = timegm(&tm);
	struct tm g;
	gmtime_r(&first, &g);
	return first + (time_t)(((7 - g.tm_wday) % 7) + 7 * (n - 1)) * 86400;
}

/* Seconds to add to UTC for Pacific time at t. */
static double pacific_offset(double t)
{
	time_t s = (time_t)t;
	struct tm g;
	gmtime_r(&s, &g);
	time_t start = nth_sunday(g.tm_year + 1900, 2, 2) + 10 * 3600; /* 02:00 PST */
	time_t end = nth_sunday(g.tm_year + 1900, 10, 1) + 9 * 3600;   /* 02:00 PDT */
	return (s >= start && s < end ? -7 : -8) * 3600.0;
}

void quota_pacific_day(double t, char out[11])
{
	time_t local = (time_t)floor(t + pacific_offset(t));
	struct tm g;
	gmtime_r(&local, &g);
	strftime(out, 11, "%Y-%m-%d", &g);
}

double quota_next_reset(double t)
{
	double local = t + pacific_offset(t);
	double next = floor(local / 86400) * 86400 + 86400;
	double guess = next - pacific_offset(t);
	return next - pacific_offset(guess);
}

static const struct quota_method *method_of(const char *name)
{
	for (const struct quota_method *m = quota_methods; m->name; m++)
		if (!strcmp(m->name, name)) return m;
	return NULL;
}

int quota_limit(const cJSON *global, const char *bucket)
{
	char path[64];
	for (int i = 0; quota_limits[i].bucket; i++)
		if (!strcmp(quota_limits[i].bucket, bucket)) {
			snprintf(path, sizeof path, "youtube_quota.%s", quota_limits[i].key);
			return (int)json_num(global, path, quota_limits[i].limit);
		}
	return 0;
}

static int cost_of(const cJSON *global, const struct quota_method *m)
{
	char path[80];
	snprintf(path, sizeof path, "youtube_quota.cost.%s", m->name);
	return (int)json_num(global, path, m->cost);
}

static enum stage_rc hold_until_reset(struct stage_ctx *ctx, const char *channel, const char *bucket)
{
	double now = quota_now(), reset = quota_next_reset(now);
	char day[11], when[32];
	quota_pacific_day(now, day);
	time_iso(reset - test_offset(), when);
	return stage_hold(ctx, "quota", reset - test_offset(), 1,
			  "YouTube quota of channel %s spent for %s (bucket %s); resumes by itself at Pacific "
			  "midnight (%s); raise youtube_quota in acog.yaml only if Google granted more",
			  channel, day, bucket, when);
}

static enum stage_rc charge(struct stage_ctx *ctx, const char *channel, const char *method, int force)
{
	const struct quota_method *m = method_of(method);
	int limit, cost, used = 0, rc;
	char day[11];
	if (!m) return stage_fail(ctx, STAGE_FAIL, "internal: unknown YouTube method %s", method);
	limit = quota_limit(ctx->global, m->bucket);
	cost = force ? limit : cost_of(ctx->global, m);
	quota_pacific_day(quota_now(), day);
	rc = stagedb_quota_use(ctx->root, channel, m->bucket, day, cost, limit, force, &used);
	if (rc < 0) return stage_fail(ctx, STAGE_RETRY, "quota ledger: %s", err_msg());
	if (rc > 0 || force) return hold_until_reset(ctx, channel, m->bucket);
	double warn = json_num(ctx->global, "youtube_quota.warn_percent", 80) / 100.0 * limit;
	if (used >= warn && used - cost < warn)
		stage_log(ctx, "warn", "YouTube quota of channel %s: %d of %d %s used today (Pacific %s)", channel,
			  used, limit, m->bucket, day);
	return STAGE_OK;
}

enum stage_rc quota_take(struct stage_ctx *ctx, const char *channel, const char *method)
{
	return charge(ctx, channel, method, 0);
}

enum stage_rc quota_spent(struct stage_ctx *ctx, const char *channel, const char *method)
{
	return charge(ctx, channel, method, 1);
}
