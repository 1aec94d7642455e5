/*
 * episode.c - reading episode rows and resolving what a person typed (a
 * UUID, a unique prefix of one, or a ticket name) to one episode.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EP_COLS \
	"e.id, c.slug, e.channel_id, e.ticket, e.status, e.stage, e.location," \
	" e.gate_pending, e.hold_reason, e.review_notes, e.title, e.priority, e.created_at," \
	" e.state, e.hold_kind, e.hold_until, e.last_error"

void episode_free(struct episode *e)
{
	free(e->gate_pending);
	free(e->hold_kind);
	free(e->hold_reason);
	free(e->hold_until);
	free(e->last_error);
	free(e->review_notes);
	free(e->title);
	free(e->dir);
	memset(e, 0, sizeof *e);
}

char *episode_dir(const char *root, const char *channel, const char *id)
{
	return xasprintf("%s/channels/%s/episodes/%s", root, channel, id);
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t n)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	snprintf(dst, n, "%s", s ? (const char *)s : "");
}

static void fill(sqlite3_stmt *st, const char *root, struct episode *e)
{
	memset(e, 0, sizeof *e);
	copy_col(st, 0, e->id, sizeof e->id);
	copy_col(st, 1, e->channel, sizeof e->channel);
	copy_col(st, 2, e->channel_db_id, sizeof e->channel_db_id);
	copy_col(st, 3, e->ticket, sizeof e->ticket);
	copy_col(st, 4, e->status, sizeof e->status);
	copy_col(st, 5, e->stage, sizeof e->stage);
	copy_col(st, 6, e->location, sizeof e->location);
	e->gate_pending = db_col_str(st, 7);
	e->hold_reason = db_col_str(st, 8);
	e->review_notes = db_col_str(st, 9);
	e->title = db_col_str(st, 10);
	e->priority = sqlite3_column_int(st, 11);
	copy_col(st, 12, e->created_at, sizeof e->created_at);
	copy_col(st, 13, e->state, sizeof e->state);
	e->hold_kind = db_col_str(st, 14);
	e->hold_until = db_col_str(st, 15);
	e->last_error = db_col_str(st, 16);
	e->dir = episode_dir(root, e->channel, e->id);
}

int episode_load(sqlite3 *db, const char *root, const char *id, struct episode *e)
{
	sqlite3_stmt *st = db_get(db,
				  "SELECT " EP_COLS " FROM episodes e JOIN channels c"
				  " ON c.id = e.channel_id WHERE e.id = ?",
				  "s", id);
	int rc;
	if (!st) return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) fill(st, root, e);
	db_done(st);
	return rc == SQLITE_ROW ? 0 : err_set_kind(ERR_NOINPUT, "no episode with id %s", id);
}

int episode_resolve(sqlite3 *db, const char *root, const char *ref, struct episode *e)
{
	sqlite3_stmt *st;
	int n = 0;

	if (!ref || !*ref || strlen(ref) > 200)
		return err_set_kind(ERR_USAGE, "give an episode id, id prefix or ticket name");
	/* a prefix as a range of the primary key, not LIKE ('%' and '_' in ref
	 * match only themselves): ids are hex digits and '-', all below '~' */
	st = db_prep(db,
		     "SELECT " EP_COLS " FROM episodes e JOIN channels c ON c.id = e.channel_id"
		     " WHERE e.deleted_at IS NULL AND (e.ticket = ?1 OR (e.id >= lower(?1) AND e.id < lower(?1) || '~'))"
		     " ORDER BY (e.ticket = ?1) DESC LIMIT 2",
		     "s", ref);
	if (!st) return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == 0)
			fill(st, root, e);
		else if (strcmp(e->ticket, ref) != 0) {
			episode_free(e);
			sqlite3_finalize(st);
			return err_set_kind(ERR_DATAERR, "'%s' matches more than one episode; give more of the id",
					    ref);
		}
		n++;
	}
	sqlite3_finalize(st);
	if (n == 0) return err_set_kind(ERR_NOINPUT, "no episode matches '%s' (try `acog-batch status`)", ref);
	return 0;
}
