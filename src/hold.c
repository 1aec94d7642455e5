/*
 * hold.c - holds that wait for a time or a person.  A held episode's ticket
 * is in spool/held/ with its reason beside it (state.c); a channel-wide hold
 * (table channel_holds) stops one stage of one channel: an upload quota or
 * cap spent, a token to re-authorise, the day's budget spent.  Before a job
 * starts, hold_gate holds its episode with the channel hold's kind and
 * reason instead of starting it.  The daemon's timerfd is armed for the next
 * release (hold_next_release); at that time, or when a reload shows a raised
 * budget, hold_release_due lifts what is due and the episodes go back to
 * their stage's queue with their job (and its provider state) as it was.
 * A hold without a time waits for a person (`retry`, `auth`).
 */
#include "daemon.h"
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int channel_hold_set(sqlite3 *db, const char *channel_db_id, const char *stage, const char *kind,
			    const char *reason, double until)
{
	char at[32];
	if (until > 0) time_iso(until, at);
	return db_exec(db,
		       "INSERT INTO channel_holds (channel_id, stage, kind, reason, until) VALUES (?,?,?,?,?)"
		       " ON CONFLICT (channel_id, stage, kind) DO UPDATE SET reason = excluded.reason,"
		       " until = excluded.until",
		       "sssss", channel_db_id, stage, kind, reason, until > 0 ? at : NULL);
}

int hold_episode(sqlite3 *db, struct config *c, struct episode *e, const struct state_args *a,
		 const char *channel_stage)
{
	unsigned fx = 0;
	if (db_begin(db) < 0) return -1;
	if ((channel_stage &&
	     channel_hold_set(db, e->channel_db_id, channel_stage, a->hold_kind, a->reason, a->hold_until) < 0) ||
	    state_apply(db, c, e, EV_HOLD, a, &fx) < 0 || db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	log_warn(e->id, e->dir, "hold", "held at %s (%s%s%s%s): %s", e->stage, e->hold_kind,
		 channel_stage ? ", the whole channel" : "", e->hold_until ? ", until " : "",
		 e->hold_until ? e->hold_until : "", e->hold_reason);
	state_after(c, e, fx, a);
	return 0;
}

/* The channel hold that stops this stage, if any: its kind, reason and time. */
static int find_hold(sqlite3 *db, const char *channel_db_id, const char *stage, int paid, char **kind, char **reason,
		     double *until)
{
	char now[32];
	sqlite3_stmt *st;
	int found = 0;
	time_iso(time_now(), now);
	st = db_get(db,
		    "SELECT kind, reason, until FROM channel_holds WHERE channel_id = ? AND (stage = ? OR stage = '*')"
		    " AND (until IS NULL OR until > ?) ORDER BY stage = '*'",
		    "sss", channel_db_id, stage, now);
	while (!found && st && sqlite3_step(st) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(st, 0);
		if (!paid && state_hold_paid_only(k)) continue; /* a budget spares free stages */
		*kind = xstrdup(k);
		*reason = db_col_str(st, 1);
		/* time_iso truncates to the millisecond: half of one keeps the hold's own time */
		*until = sqlite3_column_type(st, 2) == SQLITE_NULL
			? 0
			: time_parse_iso((const char *)sqlite3_column_text(st, 2)) + 0.0005;
		found = 1;
	}
	db_done(st);
	return found;
}

int hold_gate(sqlite3 *db, struct config *c, const struct job_ref *j)
{
	struct episode e;
	struct channel *ch;
	struct state_args a = { .actor_type = STATE_DAEMON, .actor = "daemon" };
	char *kind = NULL, *reason = NULL;
	const char *chan_stage = NULL;
	cJSON *prov;
	int paid, held = 0;
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return 0;
	ch = config_channel(c, e.channel);
	prov = ch ? config_provider(ch, j->stage) : NULL;
	paid = ch && cost_is_paid(prov);
	if (find_hold(db, e.channel_db_id, j->stage, paid, &kind, &reason, &a.hold_until)) {
		held = 1;
	} else if (paid && budget_spent(db, c, ch, e.id, &reason, &a.hold_until)) {
		kind = xstrdup("budget");
		chan_stage = "*";
		held = 1;
	}
	a.hold_kind = kind;
	a.reason = reason;
	if (held && hold_episode(db, c, &e, &a, chan_stage) < 0) {
		log_error(e.id, e.dir, "hold", "%s", err_msg());
		held = -1; /* not started either: the daemon looks again at its next event */
	}
	cJSON_Delete(prov);
	free(kind);
	free(reason);
	episode_free(&e);
	return held;
}

/* A budget hold is over once the budget allows paid work again. */
static int budget_allows(sqlite3 *db, struct config *c, const char *slug)
{
	struct channel *ch = config_channel(c, slug);
	double spent, budget;
	return ch && cost_budget_state(db, ch, &spent, &budget) < 2;
}

static void release_channels(sqlite3 *db, struct config *c, const char *now)
{
	sqlite3_stmt *st = db_get(db,
				  "SELECT c.slug, h.stage, h.kind, h.until FROM channel_holds h"
				  " JOIN channels c ON c.id = h.channel_id",
				  NULL);
	struct sbuf due = { 0 }; /* "slug\tstage\tkind\n" lines, released after the scan */
	char *line, *save = NULL;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *slug = (const char *)sqlite3_column_text(st, 0),
			   *kind = (const char *)sqlite3_column_text(st, 2);
		const char *until = (const char *)sqlite3_column_text(st, 3);
		if ((until && strcmp(until, now) <= 0) || (!strcmp(kind, "budget") && budget_allows(db, c, slug)))
			sb_printf(&due, "%s\t%s\t%s\n", slug, sqlite3_column_text(st, 1), kind);
	}
	db_done(st);
	for (line = due.s ? strtok_r(due.s, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *stage = strchr(line, '\t'), *kind;
		*stage++ = 0;
		kind = strchr(stage, '\t');
		*kind++ = 0;
		if (state_release_channel(db, c, line, stage, kind, "daemon") < 0)
			log_error(NULL, NULL, "hold.release", "channel %s: %s", line, err_msg());
	}
	sb_free(&due);
}

void hold_release_due(sqlite3 *db, struct config *c)
{
	struct state_args a = { .actor_type = STATE_DAEMON, .actor = "daemon", .reason = "its hold ended" };
	char now[32], **ids;
	size_t n;
	time_iso(time_now(), now);
	release_channels(db, c, now);
	n = db_strings(db, &ids,
		       "SELECT id FROM episodes INDEXED BY idx_episodes_hold_until WHERE state = 'held'"
		       " AND hold_until IS NOT NULL AND hold_until <= ?",
		       "s", now);
	for (size_t i = 0; i < n; i++) {
		struct episode e;
		if (episode_load(db, c->root, ids[i], &e) < 0) continue;
		if (state_do(db, c, &e, EV_RELEASE, &a) == 0)
			log_info(e.id, e.dir, "hold.released", "its hold ended; back in spool/%s", e.location);
		else
			log_error(e.id, e.dir, "hold.release", "%s", err_msg());
		episode_free(&e);
	}
	db_strings_free(ids, n);
}

/* A release already due that did not happen (an error was logged) is tried
 * again a second later, never in a tight loop. */
double hold_next_release(sqlite3 *db)
{
	double t = db_time(db,
			   "SELECT MIN(t) FROM (SELECT MIN(until) AS t FROM channel_holds"
			   " UNION ALL SELECT MIN(hold_until) FROM episodes INDEXED BY idx_episodes_hold_until"
			   " WHERE state = 'held')",
			   NULL);
	return t > 0 && t < time_now() ? time_now() + 1 : t;
}
