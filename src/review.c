/*
 * review.c - human decisions: approve, reject (optionally back to an earlier
 * stage), retry and cancel.  The CLI and decision files dropped beside a
 * ticket (<ticket>.approve, <ticket>.reject) take the same path through
 * here, so both are audited the same way.  Each decision is one transaction
 * followed by a ticket move.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *state_json(const struct episode *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", e->status);
	cJSON_AddStringToObject(o, "stage", e->stage);
	if (e->gate_pending) cJSON_AddStringToObject(o, "gate", e->gate_pending);
	return o;
}

static int decide_commit(sqlite3 *db, struct config *c, struct episode *e, const char *action,
			 const char *actor_type, const char *by, cJSON *old, cJSON *new)
{
	int rc = pipeline_audit(db, e->id, action, actor_type, by, old, new);
	cJSON_Delete(old);
	cJSON_Delete(new);
	if (rc < 0 || db_commit(db) < 0) { db_rollback(db); return -1; }
	return pipeline_sync(db, c, e->id);
}

int review_approve(sqlite3 *db, struct config *c, const char *ref, const char *by, const char *notes)
{
	struct episode e;
	cJSON *old, *new;
	int rc = -1;
	if (!by || !*by) return err_set("approve needs --by NAME (who approves is recorded in the audit log)");
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (!e.gate_pending) {
		err_set("episode %s (%s) is not waiting for approval: it is %s at %s", e.ticket, e.id, e.status, e.stage);
		goto out;
	}
	old = state_json(&e);
	if (db_begin(db) < 0) { cJSON_Delete(old); goto out; }
	new = cJSON_CreateObject();
	cJSON_AddStringToObject(new, "decision", "approved");
	cJSON_AddStringToObject(new, "gate", e.gate_pending);
	if (notes) cJSON_AddStringToObject(new, "notes", notes);
	if (schedule_assign(db, c, e.id) < 0 ||
	    pipeline_enter(db, c, &e, stage_next(stage_find(e.gate_pending))) < 0) {
		db_rollback(db);
		cJSON_Delete(old);
		cJSON_Delete(new);
		goto out;
	}
	rc = decide_commit(db, c, &e, "approve", "user", by, old, new);
	if (rc == 0) log_info(e.id, e.dir, "review.approved", "approved by %s; next: %s", by, e.location);
out:
	episode_free(&e);
	return rc;
}

static int check_target(const struct episode *e, const char *to)
{
	const struct stage_def *s = stage_find(to);
	int gate = stage_index(e->gate_pending);
	if (!s || s->kind != STAGE_WORK || !strcmp(to, "upload"))
		return err_set("--to %s: not a stage that can be re-run (planning, scripting, script_review, metadata,"
			       " audio, avatar, broll, assembly)", to);
	if (stage_index(to) > gate)
		return err_set("--to %s: that stage comes after %s; choose an earlier stage", to, e->gate_pending);
	return 0;
}

int review_reject(sqlite3 *db, struct config *c, const char *ref, const char *by,
		  const char *reason, const char *to)
{
	struct episode e;
	cJSON *old, *new;
	int rc = -1;
	if (!by || !*by) return err_set("reject needs --by NAME (who rejects is recorded in the audit log)");
	if (!reason || !*reason) return err_set("reject needs --reason TEXT; the reason is handed to the re-run");
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (!e.gate_pending) {
		err_set("episode %s (%s) is not waiting for a review: it is %s at %s", e.ticket, e.id, e.status, e.stage);
		goto out;
	}
	if (to && check_target(&e, to) < 0) goto out;
	old = state_json(&e);
	new = cJSON_CreateObject();
	cJSON_AddStringToObject(new, "decision", "rejected");
	cJSON_AddStringToObject(new, "gate", e.gate_pending);
	cJSON_AddStringToObject(new, "reason", reason);
	if (to) cJSON_AddStringToObject(new, "rerun_from", to);
	if (db_begin(db) < 0 ||
	    db_exec(db, "UPDATE episodes SET review_notes = ? WHERE id = ?", "ss", reason, e.id) < 0)
		goto fail;
	if (to) {
		if (pipeline_enter(db, c, &e, stage_find(to)) < 0) goto fail;
	} else {
		char *why = xasprintf("rejected by %s at %s: %s (re-run with `acog-batch retry %s --from STAGE`)",
				      by, e.gate_pending, reason, e.ticket);
		int r = db_exec(db, "UPDATE episodes SET status = 'cancelled', location = 'held', gate_pending = NULL,"
				" hold_reason = ? WHERE id = ?", "ss", why, e.id);
		free(why);
		if (r < 0) goto fail;
	}
	rc = decide_commit(db, c, &e, "reject", "user", by, old, new);
	if (rc == 0) log_info(e.id, e.dir, "review.rejected", "rejected by %s: %s%s%s", by, reason,
			      to ? "; re-running from " : "", to ? to : "");
	goto out;
fail:
	db_rollback(db);
	cJSON_Delete(old);
	cJSON_Delete(new);
out:
	episode_free(&e);
	return rc;
}

int review_retry(sqlite3 *db, struct config *c, const char *ref, const char *from)
{
	struct episode e;
	const struct stage_def *s;
	cJSON *old, *new;
	int rc = -1;
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (strcmp(e.status, "failed") != 0 && strcmp(e.status, "cancelled") != 0) {
		err_set("episode %s is %s at %s, not failed or cancelled; nothing to retry", e.ticket, e.status, e.stage);
		goto out;
	}
	s = stage_find(from ? from : e.stage);
	if (!s || s->kind != STAGE_WORK) {
		err_set("--from %s: not a pipeline stage", from ? from : e.stage);
		goto out;
	}
	old = state_json(&e);
	new = cJSON_CreateObject();
	cJSON_AddStringToObject(new, "from", s->name);
	if (db_begin(db) < 0) { cJSON_Delete(old); cJSON_Delete(new); goto out; }
	if (pipeline_enter(db, c, &e, s) < 0) {
		db_rollback(db);
		cJSON_Delete(old);
		cJSON_Delete(new);
		goto out;
	}
	rc = decide_commit(db, c, &e, "retry", "user", getenv("USER") ? getenv("USER") : "cli", old, new);
	if (rc == 0) log_info(e.id, e.dir, "episode.retry", "queued again from %s", s->name);
out:
	episode_free(&e);
	return rc;
}

int review_cancel(sqlite3 *db, struct config *c, const char *ref)
{
	struct episode e;
	cJSON *old;
	char *why, *name, *p;
	int rc = -1;
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (!strcmp(e.status, "published") || !strcmp(e.status, "cancelled")) {
		err_set("episode %s is already %s", e.ticket, e.status);
		goto out;
	}
	old = state_json(&e);
	why = xasprintf("cancelled at %s; `acog-batch retry %s` resumes it", e.stage, e.ticket);
	if (db_begin(db) < 0 ||
	    db_exec(db, "UPDATE jobs SET status = 'cancelled' WHERE episode_id = ? AND status IN ('queued','running')",
		    "s", e.id) < 0 ||
	    db_exec(db, "UPDATE episodes SET status = 'cancelled', location = 'held', gate_pending = NULL,"
		    " hold_reason = ? WHERE id = ?", "ss", why, e.id) < 0) {
		db_rollback(db);
		cJSON_Delete(old);
		free(why);
		goto out;
	}
	rc = decide_commit(db, c, &e, "cancel", "user", getenv("USER") ? getenv("USER") : "cli", old, NULL);
	name = xasprintf("%s.reason", e.ticket);
	p = spool_path(c->root, "held", name);
	if (rc == 0) fsio_write_atomic_str(p, why);
	free(p);
	free(name);
	free(why);
out:
	episode_free(&e);
	return rc;
}

/* A decision file: JSON {"by","notes"|"reason","to"} or text whose first
 * line is the reviewer's name and the rest the notes or reason. */
static int apply_file(sqlite3 *db, struct config *c, const char *ticket, int approve, const char *text)
{
	cJSON *j = cJSON_Parse(text);
	char *by = NULL, *rest = NULL;
	int rc;
	if (cJSON_IsObject(j)) {
		by = xstrdup(json_str(j, "by", ""));
		rest = xstrdup(json_str(j, approve ? "notes" : "reason", ""));
	} else {
		const char *nl = strchr(text, '\n');
		by = nl ? strndup(text, (size_t)(nl - text)) : xstrdup(text);
		rest = xstrdup(nl ? nl + 1 : "");
		for (size_t n = strlen(rest); n && (rest[n - 1] == '\n' || rest[n - 1] == ' '); n--) rest[n - 1] = 0;
	}
	if (approve) rc = review_approve(db, c, ticket, by, *rest ? rest : NULL);
	else rc = review_reject(db, c, ticket, by, rest, cJSON_IsObject(j) ? json_str(j, "to", NULL) : NULL);
	free(by);
	free(rest);
	cJSON_Delete(j);
	return rc;
}

int review_file(sqlite3 *db, struct config *c, const char *dir, const char *name)
{
	size_t n = strlen(name);
	int approve = n > 8 && !strcmp(name + n - 8, ".approve");
	int reject = n > 7 && !strcmp(name + n - 7, ".reject");
	char *src, *ticket, *text;
	int rc;
	if ((!approve && !reject) || name[0] == '.') return 1;
	ticket = strndup(name, n - (approve ? 8 : 7));
	src = spool_path(c->root, dir, name);
	text = fsio_read(src, 64 * 1024, NULL);
	rc = text ? apply_file(db, c, ticket, approve, text) : -1;
	if (rc == 0) {
		struct episode e;
		if (episode_resolve(db, c->root, ticket, &e) == 0) {
			char ts[32], *dst;
			time_iso(time_now(), ts);
			dst = xasprintf("%s/reviews/%s-%s", e.dir, ts, name);
			{
				char *rd = xasprintf("%s/reviews", e.dir);
				fsio_mkdirs(rd);
				free(rd);
			}
			if (fsio_move(src, dst) < 0) log_error(e.id, e.dir, "review.file", "%s", err_msg());
			free(dst);
			episode_free(&e);
		}
	} else {
		char *why = xasprintf("spool/%s/%s: %s", dir, name, err_msg());
		log_warn(NULL, NULL, "review.file_rejected", "%s", why);
		spool_reject(c->root, src, why);
		free(why);
	}
	free(text);
	free(src);
	free(ticket);
	return rc;
}

int review_scan(sqlite3 *db, struct config *c)
{
	static const char *const gates[] = { "review", "script_review" };
	for (int g = 0; g < 2; g++) {
		char *dp = spool_path(c->root, gates[g], NULL);
		DIR *d = opendir(dp);
		struct dirent *de;
		char **names = NULL;
		size_t n = 0;
		free(dp);
		while (d && (de = readdir(d)) != NULL) {
			names = xrealloc(names, (n + 1) * sizeof *names);
			names[n++] = xstrdup(de->d_name);
		}
		if (d) closedir(d);
		for (size_t i = 0; i < n; i++) {
			review_file(db, c, gates[g], names[i]);
			free(names[i]);
		}
		free(names);
	}
	return 0;
}
