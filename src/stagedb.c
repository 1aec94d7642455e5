/*
 * stagedb.c - the stage child's only way to the database, two small
 * calls on a fresh connection of its own (the daemon's handle is never used
 * after fork), each one short autocommit:
 *   stagedb_state_set  stores a provider's durable state (async job ids,
 *                      upload session URIs, done-marks) before the provider
 *                      waits on anything: it survives SIGKILL of either
 *                      process, and the daemon hands it to every later
 *                      attempt in the stage input;
 *   stagedb_cached_result finds a completed run of the same stage with the
 *                      same input hash (cache.c decides whether to reuse it);
 *   stagedb_quota_use  checks and charges the YouTube quota ledger
 *                      (youtube_quota_usage) in one short transaction.
 * Nothing else in the child includes sqlite3.h.
 */
#include "provider.h"
#include "youtube.h"
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

static sqlite3 *open_db(const char *root, int flags)
{
	char *path = xasprintf("%s/acog.db", root);
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		err_set("cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		db = NULL;
	} else {
		sqlite3_busy_timeout(db, 30000);
		db_test_hook(db); /* test builds: its commits are crash points too */
	}
	free(path);
	return db;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql, const char *const *args, int n)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		err_set("database: %s", sqlite3_errmsg(db));
		return NULL;
	}
	for (int i = 0; i < n; i++) sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
	return st;
}

/* One writing statement on a connection of its own; what names it in errors. */
static int write_one(const char *root, const char *sql, const char *const *args, int n, const char *what)
{
	sqlite3 *db = open_db(root, SQLITE_OPEN_READWRITE);
	sqlite3_stmt *st;
	int rc = -1;
	if (!db) return -1;
	st = prep(db, sql, args, n);
	if (st && sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else if (st)
		err_set("cannot %s: %s", what, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

int stagedb_state_set(const char *root, const char *episode_id, const char *stage, const char *key, const char *value)
{
	const char *args[] = { episode_id, stage, key, value };
	char *what = xasprintf("store provider state %s", key);
	int rc = write_one(root,
			   "INSERT INTO provider_state (episode_id, stage, key, value) VALUES (?, ?, ?, ?)"
			   " ON CONFLICT (episode_id, stage, key) DO UPDATE SET value = excluded.value,"
			   " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
			   args, 4, what);
	free(what);
	return rc;
}

int stagedb_marks_spend(const char *root, const char *episode_id, const char *stage)
{
	const char *args[] = { episode_id, stage };
	return write_one(root,
			 "UPDATE provider_state SET value = '', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
			 " WHERE episode_id = ? AND stage = ? AND value != '' AND " STATE_MARK_GLOBS,
			 args, 2, "clear the paid requests' marks");
}

char *stagedb_cached_result(const char *root, const char *job_id, const char *input_hash, char **from_job)
{
	const char *args[] = { job_id, input_hash };
	sqlite3 *db = open_db(root, SQLITE_OPEN_READONLY);
	sqlite3_stmt *st;
	char *res = NULL;
	*from_job = NULL;
	if (!db) return NULL;
	/* The newest completed run of this job's stage, for this episode, on the same inputs. */
	st = prep(db,
		  "SELECT j.result, j.id FROM jobs j JOIN jobs me ON me.id = ?"
		  " WHERE j.episode_id = me.episode_id AND j.stage = me.stage"
		  " AND j.status = 'completed' AND j.input_hash = ? AND j.result IS NOT NULL"
		  " ORDER BY j.completed_at DESC LIMIT 1",
		  args, 2);
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		res = xstrdup((const char *)sqlite3_column_text(st, 0));
		*from_job = xstrdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return res;
}

/* The ledger row's units used (creating the row), or -1. */
static int quota_row(sqlite3 *db, const char *channel, const char *bucket, const char *day)
{
	const char *args[] = { bucket, day, channel };
	sqlite3_stmt *st;
	int used = -1;
	st = prep(db,
		  "INSERT INTO youtube_quota_usage (id, channel_id, date, bucket)"
		  " SELECT lower(hex(randomblob(16))), c.id, ?2, ?1 FROM channels c WHERE c.slug = ?3"
		  " ON CONFLICT (channel_id, date, bucket) DO NOTHING",
		  args, 3);
	if (st && sqlite3_step(st) == SQLITE_DONE) {
		sqlite3_finalize(st);
		st = prep(db,
			  "SELECT q.units_used FROM youtube_quota_usage q JOIN channels c ON c.id = q.channel_id"
			  " WHERE q.bucket = ?1 AND q.date = ?2 AND c.slug = ?3",
			  args, 3);
		if (st && sqlite3_step(st) == SQLITE_ROW)
			used = sqlite3_column_int(st, 0);
		else if (st)
			err_set("channel %s is not in the database yet; start the daemon once", channel);
	} else if (st) {
		err_set("quota ledger: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	return used;
}

static int quota_add(sqlite3 *db, const char *channel, const char *bucket, const char *day, int units, int limit)
{
	char u[24], l[24];
	snprintf(u, sizeof u, "%d", units);
	snprintf(l, sizeof l, "%d", limit);
	const char *args[] = { bucket, day, channel, u, l };
	sqlite3_stmt *st = prep(db,
				"UPDATE youtube_quota_usage SET units_used = units_used + CAST(?4 AS INTEGER),"
				" daily_limit = CAST(?5 AS INTEGER) WHERE bucket = ?1 AND date = ?2"
				" AND channel_id = (SELECT id FROM channels WHERE slug = ?3)",
				args, 5);
	int rc = st && sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	if (rc < 0 && st) err_set("quota ledger: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int stagedb_quota_use(const char *root, const char *channel, const char *bucket, const char *day, int units, int limit,
		      int force, int *used)
{
	sqlite3 *db = open_db(root, SQLITE_OPEN_READWRITE);
	int rc = -1, have;
	if (!db) return -1;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		err_set("quota ledger: %s", sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	if ((have = quota_row(db, channel, bucket, day)) >= 0) {
		if (force) units = have < limit ? limit - have : 0; /* the server said: spent */
		rc = have + units > limit ? 1 : 0;
		*used = have + units;
		if ((rc == 0 || force) && quota_add(db, channel, bucket, day, units, limit) < 0) rc = -1;
	}
	if (sqlite3_exec(db, rc < 0 ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL) != SQLITE_OK && rc >= 0)
		rc = err_set("quota ledger: cannot commit: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}
