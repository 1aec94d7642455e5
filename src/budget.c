/*
 * budget.c - daily budgets in the daemon.  Before a paid stage starts, the
 * channel's spend since midnight UTC is compared with budget_daily_usd: at
 * 80 % a warning (once per channel and day), at 100 % the episode is held
 * (ticket in spool/held/ with the reason beside it) until the next UTC day
 * or until a reload shows a raised budget; then it resumes by itself.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void utc_midnight(char out[32], int days_ahead)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday += days_ahead;
	time_iso((double)timegm(&tm), out);
}

double cost_spent_today(sqlite3 *db, const char *channel_db_id)
{
	char since[32];
	sqlite3_stmt *st;
	double v = 0;
	utc_midnight(since, 0);
	st = db_prep(db, "SELECT COALESCE(SUM(cost_usd), 0) FROM cost_entries WHERE channel_id = ? AND created_at >= ?",
		     "ss", channel_db_id, since);
	if (st && sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
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

void cost_next_day(char out[32]) { utc_midnight(out, 1); }

static char warned[64][160];   /* "<channel>@<day>" already warned */

static int warn_once(const char *channel)
{
	char key[160], day[32];
	time_iso(time_now(), day);
	snprintf(key, sizeof key, "%s@%.10s", channel, day);
	for (int i = 0; i < 64; i++)
		if (!strcmp(warned[i], key)) return 0;
	memmove(warned[1], warned[0], sizeof warned - sizeof warned[0]);
	snprintf(warned[0], sizeof warned[0], "%s", key);
	return 1;
}

static void hold(sqlite3 *db, struct config *c, struct episode *e, double spent, double budget)
{
	char until[32], *why, *name, *p;
	cost_next_day(until);
	why = xasprintf("budget: channel %s spent $%.4f of its $%g daily budget; paid work resumes at %s "
			"or when budget_daily_usd is raised (then `kill -HUP` the daemon)", e->channel, spent, budget, until);
	if (db_exec(db, "UPDATE episodes SET location = 'held', hold_reason = ?, hold_until = ? WHERE id = ?",
		    "sss", why, until, e->id) < 0) {
		log_error(e->id, e->dir, "budget.hold", "%s", err_msg());
		free(why);
		return;
	}
	snprintf(e->location, sizeof e->location, "held");
	free(e->hold_reason);
	e->hold_reason = xstrdup(why);
	spool_sync_ticket(c->root, e);
	name = xasprintf("%s.reason", e->ticket);
	p = spool_path(c->root, "held", name);
	fsio_write_atomic_str(p, why);
	log_warn(e->id, e->dir, "budget.hold", "%s", why);
	alert_send(c, "budget_hold", e->id, "%s", why);
	free(p);
	free(name);
	free(why);
}

int budget_gate(sqlite3 *db, struct config *c, const struct job_ref *j)
{
	struct episode e;
	struct channel *ch;
	cJSON *prov;
	double spent, budget;
	int state, held = 0;
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return 0;
	ch = config_channel(c, e.channel);
	prov = ch ? config_provider(ch, j->stage) : NULL;
	if (ch && cost_is_paid(prov)) {
		state = cost_budget_state(db, ch, &spent, &budget);
		if (state == 1 && warn_once(ch->id)) {
			log_warn(e.id, e.dir, "budget.warning", "channel %s has spent $%.4f, %.0f%% of its $%g daily budget",
				 ch->id, spent, 100 * spent / budget, budget);
			alert_send(c, "budget_warning", e.id, "channel %s has spent $%.4f, %.0f%% of its $%g daily budget",
				   ch->id, spent, 100 * spent / budget, budget);
		}
		if (state == 2) { hold(db, c, &e, spent, budget); held = 1; }
	}
	cJSON_Delete(prov);
	episode_free(&e);
	return held;
}

/* Releases budget holds whose day is over or whose budget now allows work. */
void budget_release(sqlite3 *db, struct config *c)
{
	char now[32];
	sqlite3_stmt *st = db_prep(db, "SELECT id, hold_until FROM episodes WHERE hold_reason LIKE 'budget:%'", NULL);
	time_iso(time_now(), now);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		struct episode e;
		struct channel *ch;
		double spent, budget;
		const char *until = (const char *)sqlite3_column_text(st, 1);
		if (episode_load(db, c->root, (const char *)sqlite3_column_text(st, 0), &e) < 0) continue;
		ch = config_channel(c, e.channel);
		if (ch && ((until && strcmp(until, now) <= 0) || cost_budget_state(db, ch, &spent, &budget) < 2) &&
		    db_exec(db, "UPDATE episodes SET location = stage, hold_reason = NULL, hold_until = NULL WHERE id = ?",
			    "s", e.id) == 0) {
			snprintf(e.location, sizeof e.location, "%s", e.stage);
			spool_sync_ticket(c->root, &e);
			log_info(e.id, e.dir, "budget.released", "budget allows paid work again; back in spool/%s", e.stage);
		}
		episode_free(&e);
	}
	sqlite3_finalize(st);
}

double budget_next_release(sqlite3 *db)
{
	sqlite3_stmt *st = db_prep(db, "SELECT MIN(hold_until) FROM episodes WHERE hold_reason LIKE 'budget:%'", NULL);
	double t = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		t = time_parse_iso((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return t > 0 ? t : 0;
}
