/*
 * context.c - what an episode's planning is handed about other episodes:
 * for an idea with `series`, the earlier episodes of that series (number,
 * title, the key facts of their plans), and for one with `follows`, the
 * followed episode's plan and metadata.  The daemon writes it as
 * context.json in the episode folder just before the planning stage starts;
 * the planning prompt reads it (prompt.c), and it is one of the stage's
 * inputs, so the cache sees a change in it.
 *
 * Order: the scheduler starts a series episode's planning only after the
 * earlier episodes' planning completed, and a follow-up's only after the
 * followed episode's metadata did (sched.c), so the facts exist by now.
 */
#include "daemon.h"
#include <stdlib.h>
#include <string.h>

#define CONTEXT_MAX_EARLIER 10

static cJSON *episode_json(sqlite3 *db, const char *root, const char *id, const char *file)
{
	struct episode e;
	cJSON *j = NULL;
	if (episode_load(db, root, id, &e) == 0) {
		char *p = xasprintf("%s/%s", e.dir, file);
		j = json_load_file(p, IDEA_MAX_BYTES);
		free(p);
		episode_free(&e);
	}
	return j ? j : cJSON_CreateObject();
}

static cJSON *earlier_episode(sqlite3 *db, const char *root, sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject(),
	      *plan = episode_json(db, root, (const char *)sqlite3_column_text(st, 0), "plan.json");
	const cJSON *facts = json_get(plan, "key_facts");
	cJSON_AddNumberToObject(o, "number", sqlite3_column_int(st, 2));
	cJSON_AddStringToObject(o, "episode", (const char *)sqlite3_column_text(st, 0));
	cJSON_AddStringToObject(o, "title", json_str(plan, "title", (const char *)sqlite3_column_text(st, 1)));
	cJSON_AddItemToObject(o, "key_facts", cJSON_IsArray(facts) ? cJSON_Duplicate(facts, 1) : cJSON_CreateArray());
	cJSON_Delete(plan);
	return o;
}

/* {"name", "number", "earlier": [oldest first]} */
static cJSON *series_part(sqlite3 *db, const char *root, const char *channel, const char *series, int number)
{
	cJSON *s = cJSON_CreateObject(), *earlier = cJSON_CreateArray();
	sqlite3_stmt *st = db_prep(db,
				   "SELECT id, title, series_number FROM (SELECT id, title, series_number FROM episodes"
				   " WHERE channel_id = ? AND series = ? AND series_number < ? AND deleted_at IS NULL"
				   " AND state NOT IN ('failed', 'cancelled') ORDER BY series_number DESC LIMIT ?)"
				   " ORDER BY series_number",
				   "ssii", channel, series, number, CONTEXT_MAX_EARLIER);
	while (st && sqlite3_step(st) == SQLITE_ROW) cJSON_AddItemToArray(earlier, earlier_episode(db, root, st));
	sqlite3_finalize(st);
	cJSON_AddStringToObject(s, "name", series);
	cJSON_AddNumberToObject(s, "number", number);
	cJSON_AddItemToObject(s, "earlier", earlier);
	return s;
}

/* {"episode", "title", "plan", "metadata"} */
static cJSON *follows_part(sqlite3 *db, const char *root, const char *id, const char *title)
{
	cJSON *f = cJSON_CreateObject();
	cJSON_AddStringToObject(f, "episode", id);
	cJSON_AddStringToObject(f, "title", title ? title : "");
	cJSON_AddItemToObject(f, "plan", episode_json(db, root, id, "plan.json"));
	cJSON_AddItemToObject(f, "metadata", episode_json(db, root, id, "metadata.json"));
	return f;
}

int context_write(sqlite3 *db, const char *root, const char *episode_id, const char *episode_dir)
{
	sqlite3_stmt *st =
		db_prep(db,
			"SELECT e.channel_id, e.series, e.series_number, e.follows_id, f.title FROM episodes e"
			" LEFT JOIN episodes f ON f.id = e.follows_id WHERE e.id = ?",
			"s", episode_id);
	cJSON *ctx = cJSON_CreateObject();
	int rc = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			cJSON_AddItemToObject(ctx, "series",
					      series_part(db, root, (const char *)sqlite3_column_text(st, 0),
							  (const char *)sqlite3_column_text(st, 1),
							  sqlite3_column_int(st, 2)));
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			cJSON_AddItemToObject(ctx, "follows",
					      follows_part(db, root, (const char *)sqlite3_column_text(st, 3),
							   (const char *)sqlite3_column_text(st, 4)));
	}
	sqlite3_finalize(st);
	if (cJSON_GetArraySize(ctx) > 0) {
		char *path = xasprintf("%s/context.json", episode_dir), *text = json_pretty(ctx);
		rc = fsio_write_atomic_str(path, text);
		free(text);
		free(path);
	}
	cJSON_Delete(ctx);
	return rc;
}
