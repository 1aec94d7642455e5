/*
 * metrics.c - the Prometheus text format (for node_exporter's textfile
 * collector): episodes by state and channel, stage runs, failures and
 * retries by stage and provider, stage duration histograms, cost today,
 * budget and YouTube quota left.  One function makes the text from the
 * database and the configuration; `acog-batch metrics` prints it and the
 * daemon keeps acog.yaml's metrics_file up to date with it, through the
 * durable commit, only when the text changed (at most once per loop turn,
 * after something happened: no timer).
 */
#include "daemon.h"
#include "youtube.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A label value escaped as the format wants: backslash, quote, newline. */
static void label(struct sbuf *b, const char *name, const char *v)
{
	sb_printf(b, "%s=\"", name);
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			sb_printf(b, "\\%c", *v);
		else if (*v == '\n')
			sb_puts(b, "\\n");
		else
			sb_add(b, v, 1);
	}
	sb_puts(b, "\"");
}

static void head(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample per row: the first nlabels columns are the labels, the next the value. */
static void samples(struct sbuf *b, sqlite3 *db, const char *name, const char *const *labels, int nlabels,
		    const char *sql)
{
	sqlite3_stmt *st = db_prep(db, sql, NULL);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		sb_printf(b, "%s{", name);
		for (int i = 0; i < nlabels; i++) {
			if (i) sb_puts(b, ",");
			label(b, labels[i], (const char *)sqlite3_column_text(st, i));
		}
		sb_printf(b, "} %.17g\n", sqlite3_column_double(st, nlabels));
	}
	sqlite3_finalize(st);
}

/* clang-format off: a table keeps one row per line */
static const struct counted {
	const char *name, *type, *help, *labels[3];
	int nlabels;
	const char *sql;
} counted[] = {
	{ "acog_episodes",
	  "gauge",
	  "Episodes by channel and state.",
	  { "channel", "state" },
	  2,
	  "SELECT c.slug, e.state, COUNT(*) FROM episodes e JOIN channels c ON c.id = e.channel_id"
	  " WHERE e.deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2" },
	{ "acog_stage_runs_total",
	  "counter",
	  "Stage jobs started, by stage and provider (their retries: acog_stage_retries_total).",
	  { "stage", "provider" },
	  2,
	  "SELECT stage, COALESCE(provider, ''), COUNT(*) FROM jobs WHERE started_at IS NOT NULL GROUP BY 1, 2"
	  " ORDER BY 1, 2" },
	{ "acog_stage_jobs",
	  "gauge",
	  "Stage jobs by stage, provider and status (queued, running, completed, failed, cancelled).",
	  { "stage", "provider", "status" },
	  3,
	  "SELECT stage, COALESCE(provider, ''), status, COUNT(*) FROM jobs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3" },
	{ "acog_stage_failures_total",
	  "counter",
	  "Stage runs that failed, by stage and provider.",
	  { "stage", "provider" },
	  2,
	  "SELECT stage, COALESCE(provider, ''), COUNT(*) FROM jobs WHERE status = 'failed' GROUP BY 1, 2"
	  " ORDER BY 1, 2" },
	{ "acog_stage_retries_total",
	  "counter",
	  "Retries of stage runs, by stage and provider.",
	  { "stage", "provider" },
	  2,
	  "SELECT stage, COALESCE(provider, ''), SUM(retry_count) FROM jobs GROUP BY 1, 2 ORDER BY 1, 2" },
};
/* clang-format on */

static const double buckets[] = { 1, 5, 15, 60, 300, 900, 1800, 3600 };
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

static void histogram_stage(struct sbuf *b, const char *stage, const long *n, long count, double sum)
{
	for (size_t i = 0; i <= NBUCKETS; i++) {
		sb_puts(b, "acog_stage_duration_seconds_bucket{");
		label(b, "stage", stage);
		if (i < NBUCKETS)
			sb_printf(b, ",le=\"%g\"} %ld\n", buckets[i], n[i]);
		else
			sb_printf(b, ",le=\"+Inf\"} %ld\n", count);
	}
	sb_puts(b, "acog_stage_duration_seconds_sum{");
	label(b, "stage", stage);
	sb_printf(b, "} %.17g\nacog_stage_duration_seconds_count{", sum);
	label(b, "stage", stage);
	sb_printf(b, "} %ld\n", count);
}

/* Completed runs' wall time, cumulative buckets per stage. */
static void durations(struct sbuf *b, sqlite3 *db)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT stage, (julianday(completed_at) - julianday(started_at)) * 86400 FROM jobs"
				   " WHERE status = 'completed' AND started_at IS NOT NULL AND completed_at IS NOT NULL"
				   " ORDER BY stage",
				   NULL);
	char stage[32] = "";
	long n[NBUCKETS] = { 0 }, count = 0;
	double sum = 0;
	head(b, "acog_stage_duration_seconds", "histogram", "Wall time of completed stage runs.");
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		double d = sqlite3_column_double(st, 1);
		if (strcmp(stage, (const char *)sqlite3_column_text(st, 0))) {
			if (count) histogram_stage(b, stage, n, count, sum);
			snprintf(stage, sizeof stage, "%s", (const char *)sqlite3_column_text(st, 0));
			memset(n, 0, sizeof n), count = 0, sum = 0;
		}
		for (size_t i = 0; i < NBUCKETS; i++) n[i] += d <= buckets[i];
		count++, sum += d;
	}
	if (count) histogram_stage(b, stage, n, count, sum);
	sqlite3_finalize(st);
}

static void channel_sample(struct sbuf *b, const char *name, const char *channel, const char *extra_label,
			   const char *extra, double v)
{
	sb_printf(b, "%s{", name);
	label(b, "channel", channel);
	if (extra_label) sb_puts(b, ","), label(b, extra_label, extra);
	sb_printf(b, "} %.17g\n", v);
}

/* Money spent today and the budget left, per channel. */
static void money(struct sbuf *b, sqlite3 *db, const struct config *c)
{
	head(b, "acog_cost_today_usd", "gauge", "Money spent today (UTC), by channel.");
	for (size_t i = 0; i < c->nch; i++)
		channel_sample(b, "acog_cost_today_usd", c->ch[i].id, NULL, NULL, cost_spent_today(db, c->ch[i].db_id));
	head(b, "acog_budget_left_usd", "gauge", "Daily budget left today, by channel with a budget_daily_usd.");
	for (size_t i = 0; i < c->nch; i++) {
		double spent, budget;
		(void)!cost_budget_state(db, &c->ch[i], &spent, &budget); /* only the figures are wanted */
		if (budget > 0)
			channel_sample(b, "acog_budget_left_usd", c->ch[i].id, NULL, NULL,
				       budget > spent ? budget - spent : 0);
	}
}

/* YouTube quota left today (the Pacific day quota.c keeps), per youtube channel and bucket. */
static void quota(struct sbuf *b, sqlite3 *db, const struct config *c)
{
	static const char *const qb[] = { "default", "upload" };
	char day[11];
	quota_pacific_day(quota_now(), day);
	head(b, "acog_youtube_quota_left", "gauge", "YouTube API quota left today, by channel and bucket.");
	for (size_t i = 0; i < c->nch; i++) {
		cJSON *p = config_provider(&c->ch[i], "upload");
		for (int k = 0; k < 2 && !strcmp(json_str(p, "name", ""), "youtube"); k++) {
			int left = quota_limit(c->global, qb[k]) - quota_used_today(db, c->ch[i].id, qb[k], day);
			channel_sample(b, "acog_youtube_quota_left", c->ch[i].id, "bucket", qb[k], left < 0 ? 0 : left);
		}
		cJSON_Delete(p);
	}
}

void metrics_text(sqlite3 *db, const struct config *c, struct sbuf *b)
{
	for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
		head(b, counted[i].name, counted[i].type, counted[i].help);
		samples(b, db, counted[i].name, counted[i].labels, counted[i].nlabels, counted[i].sql);
	}
	durations(b, db);
	money(b, db, c);
	quota(b, db, c);
}

/* acog.yaml's metrics_file: absolute, or relative to the root; NULL when off. */
char *metrics_path(const struct config *c)
{
	const char *p = json_str(c->global, "metrics_file", NULL);
	if (!p || !*p) return NULL;
	return p[0] == '/' ? xstrdup(p) : xasprintf("%s/%s", c->root, p);
}

int metrics_write(sqlite3 *db, const struct config *c, char **last)
{
	struct sbuf b = { 0 };
	char *path = metrics_path(c);
	int rc = 0;
	if (!path) return 0;
	metrics_text(db, c, &b);
	if (!*last || strcmp(*last, b.s)) {
		rc = fsio_write_atomic_str(path, b.s);
		free(*last);
		*last = rc == 0 ? xstrdup(b.s) : NULL;
	}
	sb_free(&b);
	free(path);
	return rc;
}

int cmd_metrics(struct cli *a)
{
	struct config c = { 0 };
	struct sbuf b = { 0 };
	sqlite3 *db = db_open(a->root, 0);
	int rc = EXIT_OK;
	if (!db || config_load(&c, a->root) < 0) {
		fprintf(stderr, "acog-batch metrics: %s\n", err_msg());
		rc = err_exit(db ? EXIT_CONFIG : EXIT_NOINPUT);
	} else {
		metrics_text(db, &c, &b);
		fputs(b.s, stdout);
	}
	sb_free(&b);
	config_free(&c);
	db_close(db);
	return rc;
}
