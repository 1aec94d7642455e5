/*
 * status_youtube.c - the YouTube lines under `status`, and the token-age
 * test the daemon's alert shares: for every channel that publishes with the
 * youtube provider, the quota left today (the Pacific-day ledger quota.c
 * keeps) and a warning when its refresh token is old enough to die soon (a
 * Testing-mode OAuth app's tokens live 7 days; warn from token_warn_days).
 */
#include "daemon.h"
#include "youtube.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double youtube_token_old(const char *root, const cJSON *provider, const char *channel)
{
	char *path = oauth_token_file(root, provider, channel);
	double age = oauth_token_age_days(path);
	free(path);
	return age >= json_num(provider, "token_warn_days", 5) ? age : -1;
}

void youtube_token_alert(const struct config *c, const struct channel *ch, const cJSON *provider,
			 const char *episode_id)
{
	char key[160];
	double age;
	if (strcmp(json_str(provider, "name", ""), "youtube")) return;
	snprintf(key, sizeof key, "youtube_token_age:%s", ch->id);
	if ((age = youtube_token_old(c->root, provider, ch->id)) >= 0 && budget_warn_once(key))
		alert_send(c, "youtube_token_age", episode_id,
			   "the YouTube refresh token of channel %s is %.0f days old (a Testing-mode app's tokens die "
			   "after 7): publish the OAuth consent screen, then run acog-batch auth youtube %s",
			   ch->id, age, ch->id);
}

/* 12345 -> "12,345" (never below zero: a bucket marked spent can overshoot). */
static void thousands(int n, char *out, size_t len)
{
	char digits[24];
	size_t k = 0, nd = (size_t)snprintf(digits, sizeof digits, "%d", n < 0 ? 0 : n);
	for (size_t i = 0; i < nd && k + 2 < len; i++) {
		if (i && (nd - i) % 3 == 0) out[k++] = ',';
		out[k++] = digits[i];
	}
	out[k] = '\0';
}

/* Units of a quota bucket a channel (slug) used on day (the Pacific day quota.c keeps). */
int quota_used_today(sqlite3 *db, const char *channel, const char *bucket, const char *day)
{
	sqlite3_stmt *st =
		db_prep(db,
			"SELECT q.units_used FROM youtube_quota_usage q JOIN channels c ON c.id = q.channel_id"
			" WHERE c.slug = ? AND q.bucket = ? AND q.date = ?",
			"sss", channel, bucket, day);
	int used = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return used;
}

static void print_quota(sqlite3 *db, const cJSON *global, const char *channel)
{
	static const char *const buckets[] = { "default", "upload" };
	char day[11], left[2][16], limit[2][16];
	quota_pacific_day(quota_now(), day);
	for (int i = 0; i < 2; i++) {
		int max = quota_limit(global, buckets[i]);
		thousands(max - quota_used_today(db, channel, buckets[i], day), left[i], sizeof left[i]);
		thousands(max, limit[i], sizeof limit[i]);
	}
	printf("channel %s: YouTube quota left today (Pacific %s): %s of %s units, %s of %s uploads\n", channel, day,
	       left[0], limit[0], left[1], limit[1]);
}

void status_youtube(sqlite3 *db, const char *root)
{
	struct config c;
	if (config_load(&c, root) < 0) {
		config_free(&c);
		return; /* doctor names what is wrong with the configuration */
	}
	for (size_t i = 0; i < c.nch; i++) {
		cJSON *p = config_provider(&c.ch[i], "upload");
		if (!strcmp(json_str(p, "name", ""), "youtube")) {
			double age = youtube_token_old(c.root, p, c.ch[i].id);
			print_quota(db, c.global, c.ch[i].id);
			if (age >= 0)
				printf("channel %s: YouTube refresh token is %.0f days old (a Testing-mode app's tokens die "
				       "after 7): publish the OAuth consent screen, then run acog-batch auth youtube %s\n",
				       c.ch[i].id, age, c.ch[i].id);
		}
		cJSON_Delete(p);
	}
	config_free(&c);
}
