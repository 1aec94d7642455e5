/*
 * manage.c - a person manages an accepted episode: edit its priority,
 * publishing time or title; pause and resume it (a user hold that keeps the
 * job, the files and the provider state, unlike cancel); restore a kept
 * plan/script/metadata version and re-run the stages after it.  Every
 * change is audited through the state machine (state_audit, or the audit
 * row of the event it applies), in one short transaction.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *user(void)
{
	return getenv("USER") && *getenv("USER") ? getenv("USER") : "cli";
}

/* ---- edit ----------------------------------------------------------------- */

/* The scheduled time is kept in the column and in schedule.json, which the
 * upload provider reads; the idea's publish_at follows so a later approval
 * keeps it. */
static int edit_publish_at(sqlite3 *db, const struct episode *e, const char *at, cJSON *old, cJSON *new)
{
	sqlite3_stmt *st = db_prep(db, "SELECT scheduled_at FROM episodes WHERE id = ?", "s", e->id);
	char *was = st && sqlite3_step(st) == SQLITE_ROW ? db_col_str(st, 0) : NULL;
	sqlite3_finalize(st);
	cJSON_AddItemToObject(old, "publish_at", was ? cJSON_CreateString(was) : cJSON_CreateNull());
	cJSON_AddStringToObject(new, "publish_at", at);
	free(was);
	if (db_exec(db,
		    "UPDATE episodes SET scheduled_at = ?, idea = json_set(idea, '$.publish_at', ?)," DB_TOUCH
		    " WHERE id = ?",
		    "sss", at, at, e->id) < 0)
		return -1;
	return schedule_file_write(e->dir, at, "edit");
}

/* What an edit asks for, checked before anything is read or written. */
static int edit_check(const struct manage_edit *ed, char at[32])
{
	at[0] = 0;
	if (!ed->has_priority && !ed->publish_at && !ed->title)
		return err_set_kind(ERR_USAGE,
				    "edit: say what to change: --priority P, --publish-at TIME or --title TEXT");
	if (ed->publish_at && time_parse_iso(ed->publish_at) < 0)
		return err_set_kind(ERR_USAGE, "--publish-at '%s' is not an ISO-8601 UTC time (2026-12-01T14:00:00Z)",
				    ed->publish_at);
	if (ed->title && (!*ed->title || strlen(ed->title) > 500 || !utf8_valid(ed->title, strlen(ed->title))))
		return err_set_kind(ERR_USAGE, "--title: give 1 to 500 characters of UTF-8 text");
	if (ed->publish_at) time_iso(time_parse_iso(ed->publish_at), at);
	return 0;
}

/* The changes and their audit row, inside the caller's transaction. */
static int edit_apply(sqlite3 *db, const struct episode *e, const struct manage_edit *ed, const char *at,
		      const struct state_args *a)
{
	cJSON *old = cJSON_CreateObject(), *new = cJSON_CreateObject();
	int rc = 0;
	if (ed->has_priority) {
		cJSON_AddNumberToObject(old, "priority", e->priority);
		cJSON_AddNumberToObject(new, "priority", ed->priority);
		rc = db_exec(db, "UPDATE episodes SET priority = ?," DB_TOUCH " WHERE id = ?", "is", ed->priority,
			     e->id);
	}
	if (rc == 0 && ed->title) {
		cJSON_AddItemToObject(old, "title", e->title ? cJSON_CreateString(e->title) : cJSON_CreateNull());
		cJSON_AddStringToObject(new, "title", ed->title);
		rc = db_exec(db, "UPDATE episodes SET title = ?," DB_TOUCH " WHERE id = ?", "ss", ed->title, e->id);
	}
	if (rc == 0 && at[0]) rc = edit_publish_at(db, e, at, old, new);
	if (rc == 0) rc = state_audit(db, e, "edit", a, old, new);
	cJSON_Delete(old);
	cJSON_Delete(new);
	return rc;
}

int manage_edit(sqlite3 *db, struct config *c, const char *ref, const struct manage_edit *ed)
{
	struct state_args a = { .actor_type = STATE_USER, .actor = user() };
	struct episode e;
	char at[32];
	int rc = -1;
	if (edit_check(ed, at) < 0 || episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (!strcmp(e.state, "published") || !strcmp(e.state, "cancelled"))
		err_set_kind(ERR_DATAERR, "episode %s is %s; there is nothing left to edit", e.ticket, e.state);
	else if (db_begin(db) == 0) {
		if (edit_apply(db, &e, ed, at, &a) < 0 || db_commit(db) < 0)
			db_rollback(db);
		else
			rc = 0;
	}
	if (rc == 0) log_info(e.id, e.dir, "episode.edited", "edited by %s", a.actor);
	episode_free(&e);
	return rc;
}

/* ---- pause and resume -------------------------------------------------------- */

int manage_pause(sqlite3 *db, struct config *c, const char *ref)
{
	struct state_args a = { .actor_type = STATE_USER, .actor = user() };
	struct episode e;
	char *why;
	int rc;
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	a.reason = why = xasprintf("paused by %s at %s; `acog-batch resume %s` goes on", a.actor, e.stage, e.ticket);
	rc = state_do(db, c, &e, EV_PAUSE, &a);
	if (rc == 0) log_info(e.id, e.dir, "episode.paused", "%s", why);
	free(why);
	episode_free(&e);
	return rc;
}

int manage_resume(sqlite3 *db, struct config *c, const char *ref)
{
	struct state_args a = { .actor_type = STATE_USER, .actor = user(), .reason = "resumed" };
	struct episode e;
	int rc = -1;
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (!strcmp(e.state, "held") && (!e.hold_kind || strcmp(e.hold_kind, "user")))
		err_set_kind(ERR_DATAERR, "episode %s is held (%s), not paused: %s; `acog-batch retry %s` releases it",
			     e.ticket, e.hold_kind ? e.hold_kind : "?", e.hold_reason ? e.hold_reason : "", e.ticket);
	else if ((rc = state_do(db, c, &e, EV_UNPAUSE, &a)) == 0)
		log_info(e.id, e.dir, "episode.resumed", "resumed by %s at %s", a.actor, e.stage);
	episode_free(&e);
	return rc;
}

/* ---- versions ------------------------------------------------------------------ */

/* "TYPE:N" (plan:2), or "N" when only one type has a version N. */
int manage_version_get(sqlite3 *db, const char *episode_id, const char *spec, struct manage_version *v)
{
	const char *colon = strchr(spec, ':');
	char *end, type[16] = "";
	long n = strtol(colon ? colon + 1 : spec, &end, 10);
	sqlite3_stmt *st;
	int found = 0;
	memset(v, 0, sizeof *v);
	if (colon && (size_t)(colon - spec) < sizeof type)
		snprintf(type, sizeof type, "%.*s", (int)(colon - spec), spec);
	if (*end || n <= 0 || (colon && !type[0]))
		return err_set_kind(ERR_USAGE, "version '%s': write TYPE:N (plan:1, script:2, metadata:1) or N", spec);
	st = db_prep(db,
		     "SELECT version_type, version_number, content FROM episode_versions WHERE episode_id = ?"
		     " AND version_number = ? AND (? = '' OR version_type = ?)",
		     "siss", episode_id, (int)n, type, type);
	while (st && sqlite3_step(st) == SQLITE_ROW && ++found == 1) {
		snprintf(v->type, sizeof v->type, "%s", (const char *)sqlite3_column_text(st, 0));
		v->number = sqlite3_column_int(st, 1);
		v->content = db_col_str(st, 2);
	}
	sqlite3_finalize(st);
	if (found == 1) return 0;
	free(v->content);
	v->content = NULL;
	if (found > 1)
		return err_set_kind(ERR_USAGE,
				    "version %s: several kinds have a version %ld; write plan:%ld, script:%ld...", spec,
				    n, n, n);
	return err_set_kind(ERR_NOINPUT, "no version %s of this episode; `acog-batch versions EPISODE` lists them",
			    spec);
}

/* What a version's file holds: a script's text, or the JSON pretty-printed. */
char *manage_version_text(const struct manage_version *v)
{
	cJSON *j = cJSON_Parse(v->content);
	char *t = !strcmp(v->type, "script") ? xstrdup(json_str(j, "text", "")) : json_pretty(j);
	cJSON_Delete(j);
	return t;
}

/* The version becomes current: its file, the episode's column, and a new
 * version row (history is never rewritten) in the caller's transaction. */
static int restore_rows(sqlite3 *db, const struct episode *e, const struct manage_version *v, const char *text)
{
	static const char *const col[][2] = {
		{ "plan", "UPDATE episodes SET plan = ?," DB_TOUCH " WHERE id = ?" },
		{ "script", "UPDATE episodes SET script = ?," DB_TOUCH " WHERE id = ?" },
		/* the title follows metadata's final_title, as when the stage wrote it (pipeline.c) */
		{ "metadata",
		  "UPDATE episodes SET metadata = ?1, title = COALESCE(json_extract(?1, '$.final_title'), title)," DB_TOUCH
		  " WHERE id = ?2" },
	};
	char id[37], *why = xasprintf("restored from version %d", v->number);
	int rc = -1;
	uuid_new(id);
	for (size_t i = 0; i < sizeof col / sizeof col[0]; i++)
		if (!strcmp(col[i][0], v->type))
			rc = db_exec(db, col[i][1], "ss", strcmp(v->type, "script") ? v->content : text, e->id);
	if (rc == 0)
		rc = db_exec(db,
			     "INSERT INTO episode_versions (id, episode_id, version_type, version_number, content,"
			     " changed_by, change_reason) SELECT ?, ?, ?, COALESCE(MAX(version_number), 0) + 1, ?, ?, ?"
			     " FROM episode_versions WHERE episode_id = ? AND version_type = ?",
			     "ssssssss", id, e->id, v->type, v->content, user(), why, e->id, v->type);
	free(why);
	return rc;
}

static int restore(sqlite3 *db, struct config *c, struct episode *e, const struct manage_version *v)
{
	const struct stage_file *f = stage_output_find(NULL, v->type);
	const struct stage_def *s = f ? stage_next(stage_producer(f->name)) : NULL;
	struct state_args a = { .actor_type = STATE_USER, .actor = user(), .stage = s };
	cJSON *extra = cJSON_CreateObject();
	char *text = manage_version_text(v), *path = f ? xasprintf("%s/%s", e->dir, f->name) : NULL;
	unsigned fx = 0;
	int rc = -1;
	cJSON_AddStringToObject(extra, "restored", v->type);
	cJSON_AddNumberToObject(extra, "version", v->number);
	a.extra = extra;
	a.reason = "a restored version";
	if (!s || s->kind != STAGE_WORK)
		err_set("version type %s has no stage after it to re-run", v->type);
	else if (state_check(e, EV_RESTORE) == 0 && fsio_write_atomic_str(path, text) == 0 && db_begin(db) == 0) {
		if (restore_rows(db, e, v, text) < 0 || state_apply(db, c, e, EV_RESTORE, &a, &fx) < 0 ||
		    db_commit(db) < 0)
			db_rollback(db);
		else
			rc = 0;
	}
	if (rc == 0) state_after(c, e, fx, &a);
	cJSON_Delete(extra);
	free(text);
	free(path);
	return rc;
}

int manage_restore(sqlite3 *db, struct config *c, const char *ref, const char *spec)
{
	struct manage_version v;
	struct episode e;
	int rc = -1;
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (manage_version_get(db, e.id, spec, &v) == 0) {
		rc = restore(db, c, &e, &v);
		if (rc == 0)
			log_info(e.id, e.dir, "episode.restored", "%s version %d restored by %s; re-running from %s",
				 v.type, v.number, user(), e.stage);
		free(v.content);
	}
	episode_free(&e);
	return rc;
}
