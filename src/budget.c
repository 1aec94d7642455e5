/*
 * budget.c - daily budgets in the daemon.  Before a paid stage starts, the
 * channel's spend since midnight UTC is compared with budget_daily_usd: at
 * 80 % a warning (once per channel and day), at 100 % the stage is held for
 * the whole channel (a channel hold of kind budget, hold.c) until the next
 * UTC day or until a reload shows a raised budget; then it resumes by itself.
 * budget_warn_once also keeps other once-a-day warnings (the YouTube token age).
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double utc_midnight(int days_ahead)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday += days_ahead;
	return (double)timegm(&tm);
}

double cost_spent_today(sqlite3 *db, const char *channel_db_id)
{
	char since[32];
	sqlite3_stmt *st;
	double v = 0;
	time_iso(utc_midnight(0), since);
	st = db_get(db, "SELECT COALESCE(SUM(cost_usd), 0) FROM cost_entries WHERE channel_id = ? AND created_at >= ?",
		    "ss", channel_db_id, since);
	if (st && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
	db_done(st);
	return v;
}

int cost_budget_state(sqlite3 *db, const struct channel *ch, double *spent, double *budget)
{
	*budget = json_num(ch->cfg, "budget_daily_usd", 0);
	*spent = cost_spent_today(db, ch->db_id);
	if (*budget <= 0) return 0;
	if (*spent >= *budget) return 2;
	return *spent >= 0.8 * *budget ? 1 : 0;
}

static char warned[64][160]; /* "<what>@<day>" already warned */

int budget_warn_once(const char *what)
{
	char key[160], day[32];
	time_iso(time_now(), day);
	snprintf(key, sizeof key, "%s@%.10s", what, day);
	for (int i = 0; i < 64; i++)
		if (!strcmp(warned[i], key)) return 0;
	memmove(warned[1], warned[0], sizeof warned - sizeof warned[0]);
	snprintf(warned[0], sizeof warned[0], "%s", key);
	return 1;
}

int budget_spent(sqlite3 *db, struct config *c, const struct channel *ch, const char *episode_id, char **reason,
		 double *until)
{
	double spent, budget;
	char when[32];
	int state = cost_budget_state(db, ch, &spent, &budget);
	if (state == 1 && budget_warn_once(ch->id)) {
		log_warn(episode_id, NULL, "budget.warning",
			 "channel %s has spent $%.4f, %.0f%% of its $%g daily budget", ch->id, spent,
			 100 * spent / budget, budget);
		alert_send(c, "budget_warning", episode_id,
			   "channel %s has spent $%.4f, %.0f%% of its $%g daily budget", ch->id, spent,
			   100 * spent / budget, budget);
	}
	if (state < 2) return 0;
	*until = utc_midnight(1);
	time_iso(*until, when);
	*reason = xasprintf("channel %s spent $%.4f of its $%g daily budget; paid work resumes at %s or when "
			    "budget_daily_usd is raised (then `kill -HUP` the daemon)",
			    ch->id, spent, budget, when);
	return 1;
}
