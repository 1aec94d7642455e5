/*
 * spool.c - tickets and the spool folders.  Each accepted episode has one
 * ticket file living in exactly one folder: the one the database's
 * episodes.location names.  The database is the source of truth; spool_sync
 * puts the ticket where it belongs wherever it is found, so it is safe to
 * call after any crash.  Notes beside them (<ticket>.error, <ticket>.reason)
 * explain failed/ and held/ tickets to a person running `ls`: every ticket in
 * those folders has one (state.c writes it before moving the ticket, and
 * spool_sync_ticket writes a missing one).
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *spool_path(const char *root, const char *dir, const char *name)
{
	return name ? xasprintf("%s/spool/%s/%s", root, dir, name) : xasprintf("%s/spool/%s", root, dir);
}

int spool_init_dirs(const char *root)
{
	for (size_t i = 0; i < stage_count; i++) {
		char *p = spool_path(root, stage_table[i].name, NULL);
		int rc = fsio_mkdirs(p);
		free(p);
		if (rc < 0) return -1;
	}
	for (int i = 0; spool_other_dirs[i]; i++) {
		char *p = spool_path(root, spool_other_dirs[i], NULL);
		int rc = fsio_mkdirs(p);
		free(p);
		if (rc < 0) return -1;
	}
	return 0;
}

/* Every folder a ticket may live in. */
static const char *ticket_dir(size_t i)
{
	static const char *const extra[] = { "published", "failed", "held" };
	if (i < stage_count) return stage_table[i].name;
	i -= stage_count;
	return i < 3 ? extra[i] : NULL;
}

static char *ticket_json(const struct episode *e)
{
	cJSON *o = cJSON_CreateObject();
	char *s;
	cJSON_AddStringToObject(o, "episode_id", e->id);
	cJSON_AddStringToObject(o, "channel", e->channel);
	cJSON_AddStringToObject(o, "title", e->title ? e->title : "");
	cJSON_AddStringToObject(o, "stage", e->stage);
	cJSON_AddStringToObject(o, "status", e->status);
	cJSON_AddNumberToObject(o, "priority", e->priority);
	if (e->gate_pending) cJSON_AddStringToObject(o, "awaiting_approval", e->gate_pending);
	if (e->hold_kind) cJSON_AddStringToObject(o, "hold_kind", e->hold_kind);
	if (e->hold_reason) cJSON_AddStringToObject(o, "hold_reason", e->hold_reason);
	if (e->hold_until) cJSON_AddStringToObject(o, "hold_until", e->hold_until);
	cJSON_AddStringToObject(o, "episode_dir", e->dir);
	s = json_pretty(o);
	cJSON_Delete(o);
	return s;
}

/* The ticket where e->location says; fresh: it cannot exist yet, so it is
 * not read first. */
static int write_ticket(const char *root, const struct episode *e, int fresh)
{
	char *p = spool_path(root, e->location, e->ticket), *s = ticket_json(e);
	char *old = fresh ? NULL : fsio_read(p, 1 << 20, NULL);
	int rc = old && strcmp(old, s) == 0 ? 0 : fsio_write_atomic_str(p, s);
	free(old);
	free(p);
	free(s);
	return rc;
}

/* Rewrites only when the content changed, so the mtime (the retry schedule)
 * survives a restart's reconciliation. */
int spool_write_ticket(const char *root, const struct episode *e)
{
	return write_ticket(root, e, 0);
}

/* The first ticket of an episode born in this process's last commit: no
 * folder can hold it yet and no note belongs to it (it starts at a stage),
 * so the search spool_sync_ticket makes after a crash (16 lookups) is
 * skipped; a burst of ideas writes one such ticket each. */
int spool_write_new_ticket(const char *root, const struct episode *e)
{
	return write_ticket(root, e, 1);
}

static void drop_sidecar(const char *root, const char *dir, const char *ticket, const char *ext)
{
	char *name = xasprintf("%s.%s", ticket, ext), *p = spool_path(root, dir, name);
	if (fsio_exists(p)) (void)!fsio_unlink_durable(p); /* our own explanation, now stale; harmless if it stays */
	free(name);
	free(p);
}

static char *failed_note(const struct episode *e)
{
	return xasprintf("episode %s (%s) failed at stage %s:\n%s\n\nAfter fixing the cause, run:\n"
			 "  acog-batch retry %s            # re-run %s\n"
			 "  acog-batch retry %s --from STAGE\n",
			 e->id, e->title ? e->title : "", e->stage, e->last_error ? e->last_error : "(no message)",
			 e->ticket, e->stage, e->ticket);
}

static char *held_note(const struct episode *e)
{
	int stopped = !strcmp(e->state, "cancelled");
	struct sbuf b = { 0 };
	sb_printf(&b, "episode %s (%s) is %s at stage %s (%s):\n%s\n\n", e->id, e->title ? e->title : "",
		  stopped ? "stopped" : "held", e->stage, e->hold_kind ? e->hold_kind : "held",
		  e->hold_reason ? e->hold_reason : "(no reason given)");
	if (e->hold_until) sb_printf(&b, "It resumes by itself at %s.\n", e->hold_until);
	if (stopped)
		sb_printf(&b, "To resume it, run:\n  acog-batch retry %s --from STAGE\n", e->ticket);
	else
		sb_printf(&b, "Once the cause is fixed, `acog-batch retry %s` releases it now.\n", e->ticket);
	return b.s;
}

/* held/<ticket>.reason or failed/<ticket>.error; NULL when the ticket is elsewhere. */
static char *note_path(const char *root, const struct episode *e)
{
	int failed = !strcmp(e->location, "failed");
	char *name, *p;
	if (!failed && strcmp(e->location, "held")) return NULL;
	name = xasprintf("%s.%s", e->ticket, failed ? "error" : "reason");
	p = spool_path(root, e->location, name);
	free(name);
	return p;
}

/* Why the ticket is in held/ or failed/, and what to do about it. */
int spool_write_note(const char *root, const struct episode *e)
{
	char *p = note_path(root, e), *text;
	int rc;
	if (!p) return 0;
	text = !strcmp(e->location, "failed") ? failed_note(e) : held_note(e);
	rc = fsio_write_atomic_str(p, text);
	free(text);
	free(p);
	return rc;
}

static int note_missing(const char *root, const struct episode *e)
{
	char *p = note_path(root, e);
	int missing = p && !fsio_exists(p);
	free(p);
	return missing;
}

int spool_sync_ticket(const char *root, const struct episode *e)
{
	char *dst = spool_path(root, e->location, e->ticket);
	int rc = 0, placed = fsio_exists(dst);

	/* A crash between a commit and its note: the note comes first, as in state_after. */
	if (note_missing(root, e) && spool_write_note(root, e) < 0) rc = -1;
	for (size_t i = 0; ticket_dir(i); i++) {
		const char *d = ticket_dir(i);
		char *src;
		if (strcmp(d, e->location) == 0) continue;
		src = spool_path(root, d, e->ticket);
		if (fsio_exists(src)) {
			if (!placed && fsio_move(src, dst) == 0)
				placed = 1;
			else if (placed)
				(void)!fsio_unlink_durable(
					src); /* a stale copy of our own ticket; the next start retries */
			else
				rc = -1;
		}
		free(src);
		if (strcmp(d, "failed") == 0 && strcmp(e->location, "failed") != 0)
			drop_sidecar(root, d, e->ticket, "error");
		if (strcmp(d, "held") == 0 && strcmp(e->location, "held") != 0)
			drop_sidecar(root, d, e->ticket, "reason");
	}
	free(dst);
	if (rc < 0) return -1;
	return spool_write_ticket(root, e); /* refresh what the ticket says */
}

static int orphan_ticket(sqlite3 *db, const char *root, const char *dir, const char *name)
{
	sqlite3_stmt *st = db_get(db, "SELECT 1 FROM episodes WHERE ticket = ?", "s", name);
	int known;
	char *src, *reason;
	if (!st) return -1;
	known = sqlite3_step(st) == SQLITE_ROW;
	db_done(st);
	if (known) return 0;
	src = spool_path(root, dir, name);
	reason = xasprintf("spool/%s/%s: this ticket has no episode in acog.db (was the database "
			   "restored from an older backup?). To make the episode again, drop its "
			   "idea.json from channels/*/episodes/*/ into spool/incoming/.",
			   dir, name);
	log_warn(NULL, NULL, "spool.orphan", "%s", reason);
	if (spool_reject(root, src, reason) < 0) log_error(NULL, NULL, "spool.reject", "%s", err_msg());
	free(reason);
	free(src);
	return 0;
}

static int sidecar_name(const char *name)
{
	size_t n = strlen(name);
	return (n > 6 && !strcmp(name + n - 6, ".error")) || (n > 7 && !strcmp(name + n - 7, ".reason")) ||
		(n > 8 && !strcmp(name + n - 8, ".approve")) || (n > 7 && !strcmp(name + n - 7, ".reject"));
}

static int ticket_name(const char *name)
{
	return name[0] != '.' && !sidecar_name(name) && !strstr(name, ".tmp");
}

/* The time of the last clean stop, taken (deleted) so a crash from now on
 * means a full reconciliation at the next start; "" when there was none. */
static void take_clean_mark(sqlite3 *db, char since[32])
{
	sqlite3_stmt *st = db_prep(db, "SELECT value FROM daemon_marks WHERE key = 'clean_stop'", NULL);
	since[0] = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW) snprintf(since, 32, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (since[0] && db_exec(db, "DELETE FROM daemon_marks WHERE key = 'clean_stop'", NULL) < 0) since[0] = 0;
}

/* At a clean stop every ticket is where the database says.  The margin
 * covers a CLI command that committed just before and moves its ticket
 * just after. */
int spool_mark_clean(sqlite3 *db)
{
	char at[32];
	time_iso(time_now() - 2, at);
	return db_exec(db, "INSERT OR REPLACE INTO daemon_marks (key, value) VALUES ('clean_stop', ?)", "s", at);
}

/* Puts every ticket where the database says.  After a clean stop only the
 * unfinished episodes and those changed since (a CLI command while the
 * daemon was down) can be out of place, so start-up costs what is not
 * finished, not the whole history; after a crash, every episode. */
int spool_reconcile(sqlite3 *db, const char *root)
{
	char since[32];
	sqlite3_stmt *st;
	int rc = 0;
	take_clean_mark(db, since);
	st = db_prep(db,
		     "SELECT id FROM episodes WHERE ingest_done = 1 AND deleted_at IS NULL"
		     " AND state IN ('new', 'queued', 'running', 'awaiting', 'held')"
		     " UNION ALL SELECT id FROM episodes INDEXED BY idx_episodes_finished_updated"
		     " WHERE ingest_done = 1 AND deleted_at IS NULL"
		     " AND (state = 'failed' OR state = 'cancelled' OR state = 'published') AND updated_at >= ?",
		     "s", since);
	if (!st) return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct episode e;
		if (episode_load(db, root, (const char *)sqlite3_column_text(st, 0), &e) < 0) {
			rc = -1;
			continue;
		}
		if (spool_sync_ticket(root, &e) < 0) {
			log_error(e.id, e.dir, "spool.reconcile", "%s", err_msg());
			rc = -1;
		}
		episode_free(&e);
	}
	sqlite3_finalize(st);
	for (size_t i = 0; ticket_dir(i); i++) {
		char *dp, **names;
		int n;
		/* Orphans (a database restored from an older backup) in the finished
		 * folders: looked for after a crash, which a restore looks like. */
		if (since[0] && i >= stage_count && strcmp(ticket_dir(i), "held")) continue;
		dp = spool_path(root, ticket_dir(i), NULL);
		n = fsio_list(dp, &names, ticket_name);
		for (int k = 0; k < n; k++) orphan_ticket(db, root, ticket_dir(i), names[k]);
		fsio_list_free(names, n);
		free(dp);
	}
	return rc;
}

/* Hands every file of an input folder (incoming/, pulse/) to take, in name
 * order; one that fails is logged and left for the next scan. */
int spool_scan(sqlite3 *db, struct config *c, const char *dir, int (*wanted)(const char *name),
	       int (*take)(sqlite3 *db, struct config *c, const char *name))
{
	char *dp = spool_path(c->root, dir, NULL), **names;
	int n = fsio_list(dp, &names, wanted), failed = 0;

	free(dp);
	if (n < 0) return err_set_errno("cannot read spool/%s", dir);
	for (int i = 0; i < n; i++)
		if (take(db, c, names[i]) < 0) {
			log_error(NULL, NULL, "spool.scan", "spool/%s/%s: %s (left in place; retried on the next scan)",
				  dir, names[i], err_msg());
			failed++;
		}
	fsio_list_free(names, n);
	return failed ? err_set("%d file(s) could not be taken and stay in spool/%s/", failed, dir) : 0;
}

/* spool/<dir>/<base>, or <base>.N when that is taken. */
static char *free_name(const char *root, const char *dir, const char *src)
{
	const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : src;
	char *dst = NULL;
	for (int n = 0; n < 10000; n++) {
		free(dst);
		dst = n ? xasprintf("%s/spool/%s/%s.%d", root, dir, base, n)
			: xasprintf("%s/spool/%s/%s", root, dir, base);
		if (!fsio_exists(dst)) break;
	}
	return dst;
}

/* Moves src (a path) into spool/<dir>/ under a free name: kept, never deleted. */
int spool_keep(const char *root, const char *src, const char *dir)
{
	char *dst = free_name(root, dir, src);
	int rc = fsio_move(src, dst);
	free(dst);
	return rc;
}

/* Moves src into spool/rejected/ under a free name, after writing the
 * explanation beside it.  The user's file is moved, never deleted. */
int spool_reject(const char *root, const char *src, const char *reason)
{
	char *dst = free_name(root, "rejected", src), *errp = xasprintf("%s.error", dst), *text;
	int rc = -1;

	text = xasprintf("%s\n", reason);
	if (fsio_write_atomic_str(errp, text) == 0) rc = fsio_move(src, dst);
	free(text);
	free(errp);
	free(dst);
	return rc;
}
