/*
 * review.c - human decisions: approve, reject (optionally back to an earlier
 * stage), retry and cancel.  The CLI and decision files dropped beside a
 * ticket (<ticket>.approve, <ticket>.reject) take the same path through
 * here, so both are audited the same way (actor_type user or
 * decision_file).  Each decision is one event of the state machine
 * (state.c): one transaction, then the ticket's move.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cli_user(void)
{
	return getenv("USER") && *getenv("USER") ? getenv("USER") : "cli";
}

static cJSON *decision(const char *what, const char *gate)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "decision", what);
	if (gate) cJSON_AddStringToObject(o, "gate", gate);
	return o;
}

/* One decision: state.c checks it is allowed, applies it and audits it. */
static int decide(sqlite3 *db, struct config *c, struct episode *e, enum ep_event ev, struct state_args *a,
		  cJSON *extra)
{
	int rc;
	a->extra = extra;
	rc = state_do(db, c, e, ev, a);
	cJSON_Delete(extra);
	return rc;
}

static int approve(sqlite3 *db, struct config *c, const char *ref, const char *actor_type, const char *by,
		   const char *notes)
{
	static const enum ep_event ev[] = {
		[ARRIVE_WORK] = EV_APPROVE, [ARRIVE_GATE] = EV_APPROVE_GATE, [ARRIVE_END] = EV_APPROVE_LAST
	};
	struct episode e;
	struct state_args a = { .actor_type = actor_type, .actor = by };
	cJSON *extra;
	enum pipeline_arrival to;
	int rc = -1;
	if (!by || !*by)
		return err_set_kind(ERR_USAGE, "approve needs --by NAME (who approves is recorded in the audit log)");
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (state_check(&e, EV_APPROVE) < 0) goto out;
	to = pipeline_arrive(config_channel(c, e.channel), stage_next(stage_find(e.gate_pending)), &a);
	extra = decision("approved", e.gate_pending);
	if (notes) cJSON_AddStringToObject(extra, "notes", notes);
	/* The publishing slot is taken in its own short transaction first: two
	 * approvals never get the same one, and a kept slot is reused. */
	if (db_begin(db) < 0 || schedule_assign(db, c, e.id) < 0 || db_commit(db) < 0) {
		db_rollback(db);
		cJSON_Delete(extra);
		goto out;
	}
	rc = decide(db, c, &e, ev[to], &a, extra);
	if (rc == 0) log_info(e.id, e.dir, "review.approved", "approved by %s; next: %s", by, e.location);
out:
	episode_free(&e);
	return rc;
}

int review_approve(sqlite3 *db, struct config *c, const char *ref, const char *by, const char *notes)
{
	return approve(db, c, ref, STATE_USER, by, notes);
}

/* reject --to names a stage the table lets a person re-run, before the gate. */
static int check_target(const struct episode *e, const char *to)
{
	const struct stage_def *s = stage_find(to);
	if (!s || s->kind != STAGE_WORK || !s->rerunnable) {
		struct sbuf ok = { 0 };
		for (size_t i = 0; i < stage_count; i++)
			if (stage_table[i].kind == STAGE_WORK && stage_table[i].rerunnable)
				sb_printf(&ok, "%s%s", ok.len ? ", " : "", stage_table[i].name);
		err_set_kind(ERR_DATAERR, "--to %s: not a stage that can be re-run (%s)", to, ok.s ? ok.s : "none");
		sb_free(&ok);
		return -1;
	}
	if (stage_index(to) > stage_index(e->gate_pending))
		return err_set_kind(ERR_DATAERR, "--to %s: that stage comes after %s; choose an earlier stage", to,
				    e->gate_pending);
	return 0;
}

static int reject(sqlite3 *db, struct config *c, const char *ref, const char *actor_type, const char *by,
		  const char *reason, const char *to)
{
	struct episode e;
	struct state_args a = { .actor_type = actor_type, .actor = by, .review_notes = reason };
	cJSON *extra;
	char *why = NULL;
	int rc = -1;
	if (!by || !*by)
		return err_set_kind(ERR_USAGE, "reject needs --by NAME (who rejects is recorded in the audit log)");
	if (!reason || !*reason)
		return err_set_kind(ERR_USAGE, "reject needs --reason TEXT; the reason is handed to the re-run");
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (state_check(&e, EV_REJECT) < 0 || (to && check_target(&e, to) < 0)) goto out;
	extra = decision("rejected", e.gate_pending);
	cJSON_AddStringToObject(extra, "reason", reason);
	if (to) {
		cJSON_AddStringToObject(extra, "rerun_from", to);
		a.stage = stage_find(to);
		a.reason = reason;
	} else {
		a.reason = why = xasprintf("rejected by %s at %s: %s (re-run with `acog-batch retry %s --from STAGE`)",
					   by, e.gate_pending, reason, e.ticket);
	}
	rc = decide(db, c, &e, to ? EV_REWIND : EV_REJECT, &a, extra);
	if (rc == 0)
		log_info(e.id, e.dir, "review.rejected", "rejected by %s: %s%s%s", by, reason,
			 to ? "; re-running from " : "", to ? to : "");
out:
	free(why);
	episode_free(&e);
	return rc;
}

int review_reject(sqlite3 *db, struct config *c, const char *ref, const char *by, const char *reason, const char *to)
{
	return reject(db, c, ref, STATE_USER, by, reason, to);
}

/* The channel hold that keeps e held, if one does: retrying e lifts it. */
static int channel_hold_stage(sqlite3 *db, const struct episode *e, char out[32])
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT stage FROM channel_holds WHERE channel_id = ? AND kind = ?"
				   " AND (stage = ? OR stage = '*')",
				   "sss", e->channel_db_id, e->hold_kind, e->stage);
	int found = st && sqlite3_step(st) == SQLITE_ROW;
	if (found) snprintf(out, 32, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return found;
}

/* A held episode goes back to its stage's queue with its job as it was. */
static int release(sqlite3 *db, struct config *c, struct episode *e)
{
	struct state_args a = { .actor_type = STATE_USER, .actor = cli_user(), .reason = "released by `retry`" };
	char stage[32];
	int rc;
	if (channel_hold_stage(db, e, stage))
		rc = state_release_channel(db, c, e->channel, stage, e->hold_kind, cli_user());
	else
		rc = decide(db, c, e, EV_RELEASE, &a, decision("released", NULL));
	if (rc == 0) log_info(e->id, e->dir, "episode.retry", "released from its hold at %s", e->stage);
	return rc;
}

int review_retry(sqlite3 *db, struct config *c, const char *ref, const char *from)
{
	struct episode e;
	const struct stage_def *s;
	struct state_args a = { .actor_type = STATE_USER, .actor = cli_user() };
	cJSON *extra;
	int rc = -1;
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (state_check(&e, EV_RESUME) < 0) goto out;
	if (!strcmp(e.state, "held") && (!from || !strcmp(from, e.stage))) {
		rc = release(db, c, &e);
		goto out;
	}
	s = stage_find(from ? from : e.stage);
	if (!s || s->kind != STAGE_WORK || (from && strcmp(from, e.stage) && !s->rerunnable)) {
		if (from)
			err_set_kind(ERR_DATAERR, "--from %s: not a stage an episode can be re-run from", from);
		else
			err_set_kind(ERR_DATAERR,
				     "episode %s stopped at %s, which is not a work stage; give --from STAGE", e.ticket,
				     e.stage);
		goto out;
	}
	a.stage = s;
	extra = decision("retry", NULL);
	cJSON_AddStringToObject(extra, "from", s->name);
	rc = decide(db, c, &e, EV_RESUME, &a, extra);
	if (rc == 0) log_info(e.id, e.dir, "episode.retry", "queued again from %s", s->name);
out:
	episode_free(&e);
	return rc;
}

int review_cancel(sqlite3 *db, struct config *c, const char *ref)
{
	struct episode e;
	struct state_args a = { .actor_type = STATE_USER, .actor = cli_user() };
	char *why;
	int rc;
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	a.reason = why = xasprintf("cancelled at %s; `acog-batch retry %s` resumes it", e.stage, e.ticket);
	rc = decide(db, c, &e, EV_CANCEL, &a, decision("cancelled", NULL));
	free(why);
	episode_free(&e);
	return rc;
}

/* A decision file: JSON {"by","notes"|"reason","to"} or text whose first
 * line is the reviewer's name and the rest the notes or reason. */
static int apply_file(sqlite3 *db, struct config *c, const char *ticket, int approving, const char *text)
{
	cJSON *j = cJSON_Parse(text);
	char *by = NULL, *rest = NULL;
	int rc;
	if (cJSON_IsObject(j)) {
		by = xstrdup(json_str(j, "by", ""));
		rest = xstrdup(json_str(j, approving ? "notes" : "reason", ""));
	} else {
		const char *nl = strchr(text, '\n');
		by = nl ? strndup(text, (size_t)(nl - text)) : xstrdup(text);
		rest = xstrdup(nl ? nl + 1 : "");
		for (size_t n = strlen(rest); n && (rest[n - 1] == '\n' || rest[n - 1] == ' '); n--) rest[n - 1] = 0;
	}
	if (approving)
		rc = approve(db, c, ticket, STATE_FILE, by, *rest ? rest : NULL);
	else
		rc = reject(db, c, ticket, STATE_FILE, by, rest, cJSON_IsObject(j) ? json_str(j, "to", NULL) : NULL);
	free(by);
	free(rest);
	cJSON_Delete(j);
	return rc;
}

int review_file(sqlite3 *db, struct config *c, const char *dir, const char *name)
{
	size_t n = strlen(name);
	int approving = n > 8 && !strcmp(name + n - 8, ".approve");
	int rejecting = n > 7 && !strcmp(name + n - 7, ".reject");
	char *src, *ticket, *text;
	int rc;
	if ((!approving && !rejecting) || name[0] == '.') return 1;
	ticket = strndup(name, n - (approving ? 8 : 7));
	src = spool_path(c->root, dir, name);
	text = fsio_read(src, 64 * 1024, NULL);
	rc = text ? apply_file(db, c, ticket, approving, text) : -1;
	if (rc == 0) {
		struct episode e;
		if (episode_resolve(db, c->root, ticket, &e) == 0) {
			char ts[32], *dst;
			time_iso(time_now(), ts);
			dst = xasprintf("%s/reviews/%s-%s", e.dir, ts, name);
			{
				char *rd = xasprintf("%s/reviews", e.dir);
				(void)!fsio_mkdirs(rd); /* if it failed, the move below says why */
				free(rd);
			}
			if (fsio_move(src, dst) < 0) log_error(e.id, e.dir, "review.file", "%s", err_msg());
			free(dst);
			episode_free(&e);
		}
	} else {
		char *why = xasprintf("spool/%s/%s: %s", dir, name, err_msg());
		log_warn(NULL, NULL, "review.file_rejected", "%s", why);
		if (spool_reject(c->root, src, why) < 0) log_error(NULL, NULL, "review.file_rejected", "%s", err_msg());
		free(why);
	}
	free(text);
	free(src);
	free(ticket);
	return rc;
}

int review_scan(sqlite3 *db, struct config *c)
{
	const char *gates[8];
	size_t ng = stage_gates(gates, 8);
	for (size_t g = 0; g < ng; g++) {
		char *dp = spool_path(c->root, gates[g], NULL), **names;
		int n = fsio_list(dp, &names, NULL);
		free(dp);
		for (int i = 0; i < n; i++)
			(void)!review_file(db, c, gates[g], names[i]); /* each outcome is logged or rejected */
		fsio_list_free(names, n);
	}
	return 0;
}
