/*
 * state.c - the one state machine.  Every change of an episode's state, and
 * of the job that runs its stage, is a row of state_rules below (the model
 * is s6-supervise's state x event table: a cell that is not listed is
 * refused).  state_apply applies one event inside the caller's short
 * transaction: a compare-and-set update of the episode (UPDATE ... WHERE
 * id = ? AND state = ? AND stage = ?: exactly one row, or nothing and an
 * error), the job's own transition (job_rules, compare-and-set too), a new
 * job when the episode enters a work stage, and one audit_logs row.  What
 * the transition means outside the database (the ticket's move, the
 * held/<ticket>.reason or failed/<ticket>.error note, the retry time on the
 * ticket's mtime, an alert) is returned as flags and done by state_after
 * once the transaction committed; start-up reconciliation repairs a crash in
 * between (spool_sync_ticket also writes a missing note).
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where each state keeps the ticket and what the seed's episodes.status
 * says; NULL means the stage's own folder and the stage's ep_status. */
static const struct state_def {
	const char *name;  /* episodes.state */
	const char *label; /* what `status` prints */
	const char *location;
	const char *status;
	/* clang-format off: a table keeps one row per line */
} states[ST_COUNT] = {
	[ST_NEW] = { "new", "new", NULL, "idea" },
	[ST_QUEUED] = { "queued", "queued", NULL, NULL },
	[ST_RUNNING] = { "running", "running", NULL, NULL },
	[ST_AWAITING] = { "awaiting", "awaiting-approval", NULL, NULL },
	[ST_HELD] = { "held", "held", "held", NULL },
	[ST_FAILED] = { "failed", "failed", "failed", "failed" },
	[ST_CANCELLED] = { "cancelled", "cancelled", "held", "cancelled" },
	[ST_PUBLISHED] = { "published", "published", "published", "published" },
};
/* clang-format on */

/* What an event writes besides the state: last_error (and the episode's
 * retry count), the hold kind it stands for, and why it may be refused. */
enum { LE_KEEP, LE_SET, LE_CLEAR };
static const struct event_def {
	const char *name;      /* audit_logs.action */
	const char *refusal;   /* said when the episode's state does not allow it */
	const char *hold_kind; /* the kind it puts on a held ticket (NULL: the caller's) */
	int last_error;
	/* a table keeps one row per line */
	/* clang-format off */
} events[EV_COUNT] = {
#define COMPLETE { "complete", "its stage is not running", NULL, LE_CLEAR }
#define APPROVE { "approve", "it is not waiting for approval", NULL, LE_KEEP }
	[EV_INGEST] = { "create", "it exists already", NULL, LE_KEEP },
	[EV_START] = { "start", "it is not queued", NULL, LE_KEEP },
	[EV_DONE] = COMPLETE, [EV_DONE_GATE] = COMPLETE, [EV_DONE_LAST] = COMPLETE,
	[EV_DEFER] = { "defer", "its stage is not running", NULL, LE_SET },
	[EV_FAIL] = { "fail", "its stage is not queued or running", NULL, LE_SET },
	[EV_HOLD] = { "hold", "its stage is not queued or running", NULL, LE_KEEP },
	[EV_RELEASE] = { "release", "it is not held", NULL, LE_KEEP },
	[EV_APPROVE] = APPROVE, [EV_APPROVE_GATE] = APPROVE, [EV_APPROVE_LAST] = APPROVE,
	[EV_REJECT] = { "reject", "it is not waiting for a review", "rejected", LE_KEEP },
	[EV_REWIND] = { "reject", "it is not waiting for a review", NULL, LE_KEEP },
	[EV_RESUME] = { "retry", "it is not failed, held or cancelled; nothing to retry", NULL, LE_KEEP },
	[EV_CANCEL] = { "cancel", "there is nothing to cancel", "cancelled", LE_KEEP },
	[EV_REQUEUE] = { "requeue", "its stage is not running", NULL, LE_KEEP },
	[EV_PAUSE] = { "pause", "only a queued or running episode can be paused", "user", LE_KEEP },
	[EV_UNPAUSE] = { "resume", "it is not paused", NULL, LE_KEEP },
	[EV_RESTORE] = { "restore", "it is not waiting at a gate, failed, held or cancelled (pause it first)", NULL,
			 LE_KEEP },
#undef COMPLETE
#undef APPROVE
};
/* clang-format on */

/* The episode table.  T: audited, and the ticket goes where the new state says. */
#define T (FX_AUDIT | FX_TICKET)
/* clang-format off: a table keeps one row per line */
const struct state_rule state_rules[] = {
	{ ST_NEW, EV_INGEST, ST_QUEUED, JOB_EV_NONE, T | FX_NEWJOB },
	{ ST_QUEUED, EV_START, ST_RUNNING, JOB_EV_START, FX_AUDIT },
	{ ST_QUEUED, EV_FAIL, ST_FAILED, JOB_EV_FAIL, T | FX_ERROR | FX_ALERT }, /* it could not start */
	{ ST_QUEUED, EV_HOLD, ST_HELD, JOB_EV_NONE, T | FX_REASON | FX_ALERT },  /* a channel hold, a budget */
	{ ST_QUEUED, EV_CANCEL, ST_CANCELLED, JOB_EV_CANCEL, T | FX_REASON },
	{ ST_RUNNING, EV_DONE, ST_QUEUED, JOB_EV_SUCCEED, T | FX_NEWJOB }, /* on to the next stage */
	{ ST_RUNNING, EV_DONE_GATE, ST_AWAITING, JOB_EV_SUCCEED, T },      /* a person decides next */
	{ ST_RUNNING, EV_DONE_LAST, ST_PUBLISHED, JOB_EV_SUCCEED, T },
	{ ST_RUNNING, EV_DEFER, ST_QUEUED, JOB_EV_RETRY, FX_AUDIT | FX_MTIME }, /* same job, later */
	{ ST_RUNNING, EV_FAIL, ST_FAILED, JOB_EV_FAIL, T | FX_ERROR | FX_ALERT },
	{ ST_RUNNING, EV_HOLD, ST_HELD, JOB_EV_REQUEUE, T | FX_REASON | FX_ALERT }, /* STAGE_HOLD */
	{ ST_RUNNING, EV_CANCEL, ST_CANCELLED, JOB_EV_CANCEL, T | FX_REASON },
	{ ST_RUNNING, EV_REQUEUE, ST_QUEUED, JOB_EV_REQUEUE, FX_AUDIT },  /* the daemon stopped */
	{ ST_QUEUED, EV_PAUSE, ST_HELD, JOB_EV_NONE, T | FX_REASON },     /* `pause`: the job waits as it is */
	{ ST_RUNNING, EV_PAUSE, ST_HELD, JOB_EV_REQUEUE, T | FX_REASON }, /* the child is stopped, the job kept */
	{ ST_AWAITING, EV_APPROVE, ST_QUEUED, JOB_EV_NONE, T | FX_NEWJOB },
	{ ST_AWAITING, EV_APPROVE_GATE, ST_AWAITING, JOB_EV_NONE, T },
	{ ST_AWAITING, EV_APPROVE_LAST, ST_PUBLISHED, JOB_EV_NONE, T },
	{ ST_AWAITING, EV_REJECT, ST_CANCELLED, JOB_EV_NONE, T | FX_REASON },
	{ ST_AWAITING, EV_REWIND, ST_QUEUED, JOB_EV_NONE, T | FX_NEWJOB }, /* reject --to */
	{ ST_AWAITING, EV_CANCEL, ST_CANCELLED, JOB_EV_NONE, T | FX_REASON },
	{ ST_AWAITING, EV_RESTORE, ST_QUEUED, JOB_EV_NONE, T | FX_NEWJOB }, /* versions --restore */
	{ ST_HELD, EV_RELEASE, ST_QUEUED, JOB_EV_NONE, T },                 /* the same job again */
	{ ST_HELD, EV_UNPAUSE, ST_QUEUED, JOB_EV_NONE, T },                 /* `resume`: the same job again */
	{ ST_HELD, EV_RESUME, ST_QUEUED, JOB_EV_CANCEL, T | FX_NEWJOB },    /* retry --from */
	{ ST_HELD, EV_CANCEL, ST_CANCELLED, JOB_EV_CANCEL, T | FX_REASON },
	{ ST_HELD, EV_RESTORE, ST_QUEUED, JOB_EV_CANCEL, T | FX_NEWJOB },
	{ ST_FAILED, EV_RESUME, ST_QUEUED, JOB_EV_NONE, T | FX_NEWJOB },
	{ ST_FAILED, EV_CANCEL, ST_CANCELLED, JOB_EV_NONE, T | FX_REASON },
	{ ST_FAILED, EV_RESTORE, ST_QUEUED, JOB_EV_NONE, T | FX_NEWJOB },
	{ ST_CANCELLED, EV_RESUME, ST_QUEUED, JOB_EV_NONE, T | FX_NEWJOB },
	{ ST_CANCELLED, EV_RESTORE, ST_QUEUED, JOB_EV_NONE, T | FX_NEWJOB },
};
/* clang-format on */
#undef T
const size_t state_rule_count = sizeof state_rules / sizeof state_rules[0];

/* The job table: jobs.status x job event -> jobs.status. */
/* clang-format off: a table keeps one row per line */
static const struct {
	const char *from;
	enum job_event ev;
	const char *to;
} job_rules[] = {
	{ "queued", JOB_EV_START, "running" },
	{ "queued", JOB_EV_CANCEL, "cancelled" },
	{ "queued", JOB_EV_FAIL, "failed" },
	{ "running", JOB_EV_SUCCEED, "completed" },
	{ "running", JOB_EV_RETRY, "queued" },
	{ "running", JOB_EV_FAIL, "failed" },
	{ "running", JOB_EV_CANCEL, "cancelled" },
	{ "running", JOB_EV_REQUEUE, "queued" }, /* the daemon died while it ran; a hold */
};
/* clang-format on */

/* Hold kinds (episodes.hold_kind, channel_holds.kind); schema.sql's CHECKs list the same. */
/* clang-format off: a table keeps one row per line */
static const struct {
	const char *name;
	int stage_may_answer, paid_only;
} hold_kinds[] = {
	{ "budget", 1, 1 },       /* the channel's daily budget is spent: free stages go on */
	{ "quota", 1, 0 },        /* a provider's daily quota is spent */
	{ "upload_limit", 1, 0 }, /* a platform's rolling upload cap */
	{ "auth", 1, 0 },         /* credentials must be renewed by a person */
	{ "user", 1, 0 },         /* anything else a person must see to */
	{ "cancelled", 0, 0 },    /* `cancel` */
	{ "rejected", 0, 0 },     /* `reject` without --to */
};
/* clang-format on */

const struct state_rule *state_rule(enum ep_state from, enum ep_event ev)
{
	for (size_t i = 0; i < state_rule_count; i++)
		if (state_rules[i].from == from && state_rules[i].ev == ev) return &state_rules[i];
	return NULL;
}

const char *job_transition(const char *status, enum job_event ev)
{
	for (size_t i = 0; status && i < sizeof job_rules / sizeof job_rules[0]; i++)
		if (job_rules[i].ev == ev && strcmp(job_rules[i].from, status) == 0) return job_rules[i].to;
	return NULL;
}

const char *state_name(enum ep_state s)
{
	return s < ST_COUNT ? states[s].name : "?";
}
const char *state_event_name(enum ep_event ev)
{
	return ev < EV_COUNT ? events[ev].name : "?";
}

int state_parse(const char *name)
{
	for (int i = 0; name && i < ST_COUNT; i++)
		if (strcmp(states[i].name, name) == 0) return i;
	return -1;
}

const char *state_label(const char *state)
{
	int s = state_parse(state);
	return s < 0 ? "?" : states[s].label;
}

static int hold_kind_index(const char *kind)
{
	for (size_t i = 0; kind && i < sizeof hold_kinds / sizeof hold_kinds[0]; i++)
		if (strcmp(hold_kinds[i].name, kind) == 0) return (int)i;
	return -1;
}

int state_hold_kind_ok(const char *kind)
{
	int i = hold_kind_index(kind);
	return i >= 0 && hold_kinds[i].stage_may_answer;
}

int state_hold_paid_only(const char *kind)
{
	int i = hold_kind_index(kind);
	return i >= 0 && hold_kinds[i].paid_only;
}

int state_check(const struct episode *e, enum ep_event ev)
{
	int s = state_parse(e->state);
	if (s >= 0 && state_rule((enum ep_state)s, ev)) return 0;
	return err_set_kind(ERR_DATAERR, "episode %s (%s) is %s at %s; %s", e->ticket, e->id, state_label(e->state),
			    e->stage, events[ev].refusal);
}

/* ---- applying a rule ------------------------------------------------------ */

/* The episode's columns after the transition. */
struct cols {
	const char *state, *status, *stage, *location, *gate, *hold_kind, *hold_reason;
	char hold_until[32];
};

static int next_cols(const struct episode *e, const struct state_rule *r, const struct state_args *a, struct cols *n)
{
	const struct state_def *d = &states[r->to];
	const struct stage_def *s = a->stage ? a->stage : stage_find(e->stage);
	int held;
	memset(n, 0, sizeof *n);
	n->state = d->name;
	n->stage = s ? s->name : e->stage;
	n->status = d->status ? d->status : s ? s->ep_status : e->status;
	n->location = d->location ? d->location : n->stage;
	if (r->to == ST_AWAITING && !(n->gate = a->gate))
		return err_set("episode %s: %s needs the gate that waits", e->ticket, events[r->ev].name);
	held = strcmp(n->location, "held") == 0;
	n->hold_kind = !held              ? NULL
		: events[r->ev].hold_kind ? events[r->ev].hold_kind
		: a->hold_kind            ? a->hold_kind
					  : "user";
	n->hold_reason = held ? (a->reason ? a->reason : "held") : NULL;
	if (held && hold_kind_index(n->hold_kind) < 0)
		return err_set("episode %s: '%s' is not a kind of hold", e->ticket, n->hold_kind);
	if (held && r->ev == EV_HOLD && a->hold_until > 0) time_iso(a->hold_until, n->hold_until);
	return 0;
}

/* The compare-and-set: nothing changes unless the episode is still where e says. */
static int cas_episode(sqlite3 *db, const struct episode *e, const struct cols *n)
{
	if (db_exec(db,
		    "UPDATE episodes SET state = ?, status = ?, stage = ?, location = ?, gate_pending = ?,"
		    " hold_kind = ?, hold_reason = ?, hold_until = ?," DB_TOUCH
		    " WHERE id = ? AND state = ? AND stage = ?",
		    "sssssssssss", n->state, n->status, n->stage, n->location, n->gate, n->hold_kind, n->hold_reason,
		    n->hold_until[0] ? n->hold_until : NULL, e->id, e->state, e->stage) < 0)
		return -1;
	if (sqlite3_changes(db) != 1)
		return err_set_kind(ERR_TEMPFAIL,
				    "episode %s changed meanwhile (it is no longer %s at %s); nothing was done: "
				    "look again with `acog-batch show %s`",
				    e->ticket, state_label(e->state), e->stage, e->ticket);
	return 0;
}

/* The episode's active job: the daemon's (a->job) or the one queued or running. */
static int active_job(sqlite3 *db, const struct episode *e, const struct state_args *a, char id[37], char status[16])
{
	sqlite3_stmt *st = a->job
		? db_get(db, "SELECT id, status FROM jobs WHERE id = ? AND episode_id = ?", "ss", a->job->id, e->id)
		: db_get(db, "SELECT id, status FROM jobs WHERE episode_id = ? AND status IN ('queued', 'running')",
			 "s", e->id);
	id[0] = status[0] = 0;
	if (!st) return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(id, 37, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(status, 16, "%s", (const char *)sqlite3_column_text(st, 1));
	}
	db_done(st);
	return 0;
}

static int job_step(sqlite3 *db, const struct episode *e, enum job_event jev, const struct state_args *a,
		    cJSON *audit_new)
{
	char id[37], from[16];
	const char *to;
	cJSON *j;
	if (jev == JOB_EV_NONE) return 0;
	if (active_job(db, e, a, id, from) < 0) return -1;
	if (!id[0] && jev == JOB_EV_CANCEL) return 0; /* nothing was queued or running */
	if (!id[0]) return err_set("episode %s has no queued or running job", e->ticket);
	if (!(to = job_transition(from, jev)))
		return err_set("job %s of episode %s is %s; it cannot change that way", id, e->ticket, from);
	if (job_record(db, id, from, to, jev, a) < 0) return -1;
	if (sqlite3_changes(db) != 1) return err_set("job %s of episode %s changed meanwhile", id, e->ticket);
	j = cJSON_AddObjectToObject(audit_new, "job");
	cJSON_AddStringToObject(j, "id", id);
	cJSON_AddStringToObject(j, "from", from);
	cJSON_AddStringToObject(j, "to", to);
	return 0;
}

/* A work stage entered: its job, with a clean provider state unless the
 * stage's state belongs to the whole episode (an upload's video id); keys
 * named STATE_KEY_EPISODE... outlive the job either way, and keep_marks
 * (a person's retry of the stage that failed) keeps the paid requests'
 * marks too (STATE_MARK_GLOBS: what a provider that failed the stage
 * itself spent is cleared already, recover.c). */
static int new_job(sqlite3 *db, struct config *c, const struct episode *e, const char *stage, int keep_marks)
{
	const struct stage_def *s = stage_find(stage);
	struct channel *ch = config_channel(c, e->channel);
	char id[37];
	if (!s || s->kind != STAGE_WORK) return err_set("episode %s: %s is not a work stage", e->ticket, stage);
	if (!ch) return err_set("channel %s is not loaded; fix channels/%s/channel.yaml", e->channel, e->channel);
	if (s->scope == SCOPE_JOB &&
	    db_exec(db,
		    "DELETE FROM provider_state WHERE episode_id = ? AND stage = ? AND key NOT GLOB '" STATE_KEY_EPISODE
		    "*' AND NOT (? AND " STATE_MARK_GLOBS ")",
		    "ssi", e->id, s->name, keep_marks) < 0)
		return -1;
	return job_create(db, e->id, s->name, config_max_retries(c, ch), NULL, id);
}

static int record_outcome(sqlite3 *db, const struct episode *e, enum ep_event ev, const struct state_args *a)
{
	int rc = 0;
	if (events[ev].last_error == LE_SET)
		rc = db_exec(db,
			     "UPDATE episodes SET last_error = ?, retry_count = retry_count + ?," DB_TOUCH
			     " WHERE id = ?",
			     "sis", a->reason, ev == EV_DEFER && a->count_attempt ? 1 : 0, e->id);
	else if (events[ev].last_error == LE_CLEAR)
		rc = db_exec(db,
			     "UPDATE episodes SET last_error = NULL," DB_TOUCH
			     " WHERE id = ? AND last_error IS NOT NULL",
			     "s", e->id);
	if (rc == 0 && a->review_notes)
		rc = db_exec(db, "UPDATE episodes SET review_notes = ?," DB_TOUCH " WHERE id = ?", "ss",
			     a->review_notes, e->id);
	return rc;
}

static cJSON *state_json(const char *state, const char *stage, const char *status, const char *gate)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "state", state);
	cJSON_AddStringToObject(o, "stage", stage);
	cJSON_AddStringToObject(o, "status", status);
	if (gate) cJSON_AddStringToObject(o, "gate", gate);
	return o;
}

static cJSON *new_values(const struct cols *n, const struct state_args *a)
{
	cJSON *o = state_json(n->state, n->stage, n->status, n->gate);
	const cJSON *x;
	if (n->hold_kind) cJSON_AddStringToObject(o, "hold_kind", n->hold_kind);
	if (n->hold_until[0]) cJSON_AddStringToObject(o, "hold_until", n->hold_until);
	if (a->reason) cJSON_AddStringToObject(o, "why", a->reason);
	cJSON_ArrayForEach (x, a->extra) cJSON_AddItemToObject(o, x->string, cJSON_Duplicate(x, 1));
	return o;
}

/* One audit_logs row for the episode; every audited change goes through here. */
int state_audit(sqlite3 *db, const struct episode *e, const char *action, const struct state_args *a, const cJSON *old,
		const cJSON *new)
{
	char id[37], *o = json_print(old), *n = json_print(new);
	int rc;
	uuid_new_ordered(id);
	rc = db_exec(db,
		     "INSERT INTO audit_logs (id, entity_type, entity_id, action, actor_type, actor_id,"
		     " old_values, new_values) VALUES (?, 'episode', ?, ?, ?, ?, ?, ?)",
		     "sssssss", id, e->id, action, a->actor_type ? a->actor_type : STATE_DAEMON,
		     a->actor ? a->actor : "daemon", o, n);
	free(o);
	free(n);
	return rc;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? xstrdup(s) : NULL;
}

/* The in-memory episode follows the row, for state_after and the caller. */
static void update_episode(struct episode *e, const struct cols *n, enum ep_event ev, const struct state_args *a)
{
	snprintf(e->state, sizeof e->state, "%s", n->state);
	snprintf(e->status, sizeof e->status, "%s", n->status);
	snprintf(e->stage, sizeof e->stage, "%s", n->stage);
	snprintf(e->location, sizeof e->location, "%s", n->location);
	set_str(&e->gate_pending, n->gate);
	set_str(&e->hold_kind, n->hold_kind);
	set_str(&e->hold_reason, n->hold_reason);
	set_str(&e->hold_until, n->hold_until[0] ? n->hold_until : NULL);
	if (events[ev].last_error != LE_KEEP)
		set_str(&e->last_error, events[ev].last_error == LE_SET ? a->reason : NULL);
	if (a->review_notes) set_str(&e->review_notes, a->review_notes);
}

int state_apply(sqlite3 *db, struct config *c, struct episode *e, enum ep_event ev, const struct state_args *a,
		unsigned *fx)
{
	const struct state_rule *r;
	struct cols n;
	cJSON *old, *new;
	int rc = -1, keep;
	if (state_check(e, ev) < 0) return -1;
	r = state_rule((enum ep_state)state_parse(e->state), ev);
	if (next_cols(e, r, a, &n) < 0) return -1;
	keep = r->from == ST_FAILED && ev == EV_RESUME && !strcmp(n.stage, e->stage);
	old = state_json(e->state, e->stage, e->status, e->gate_pending);
	new = new_values(&n, a);
	if (cas_episode(db, e, &n) < 0 || job_step(db, e, r->job, a, new) < 0 ||
	    ((r->fx & FX_NEWJOB) && new_job(db, c, e, n.stage, keep) < 0) || record_outcome(db, e, ev, a) < 0 ||
	    ((r->fx & FX_AUDIT) && state_audit(db, e, events[ev].name, a, old, new) < 0))
		goto out;
	update_episode(e, &n, ev, a);
	*fx = r->fx;
	rc = 0;
out:
	cJSON_Delete(old);
	cJSON_Delete(new);
	return rc;
}

/* ---- after the commit -------------------------------------------------------- */

static void alert(struct config *c, const struct episode *e)
{
	if (!strcmp(e->state, "failed")) {
		alert_send(c, "episode_failed", e->id, "episode %s (%s) failed at %s: %s", e->ticket,
			   e->title ? e->title : "", e->stage, e->last_error ? e->last_error : "?");
	} else {
		char *kind = xasprintf("%s_hold", e->hold_kind ? e->hold_kind : "user");
		alert_send(c, kind, e->id, "episode %s held at %s: %s", e->ticket, e->stage,
			   e->hold_reason ? e->hold_reason : "?");
		free(kind);
	}
}

void state_after(struct config *c, const struct episode *e, unsigned fx, const struct state_args *a)
{
	/* The note first: a ticket in held/ or failed/ is never there without it. */
	if ((fx & (FX_REASON | FX_ERROR)) && spool_write_note(c->root, e) < 0)
		log_error(e->id, e->dir, "spool.note", "%s", err_msg());
	if ((fx & FX_TICKET) && spool_sync_ticket(c->root, e) < 0)
		log_error(e->id, e->dir, "spool.ticket", "%s", err_msg());
	if (fx & FX_MTIME) { /* the ticket's mtime shows the schedule, as in Postfix's deferred queue */
		char *p = spool_path(c->root, e->location, e->ticket);
		if (fsio_set_mtime(p, a->retry_at) < 0) log_warn(e->id, e->dir, "spool.mtime", "%s", err_msg());
		free(p);
	}
	if (fx & FX_ALERT) alert(c, e);
}

/* A row just inserted (state 'new') takes its first event, EV_INGEST, in the
 * caller's transaction: ingest and bundle import create episodes this way. */
int state_born(sqlite3 *db, struct config *c, const char *id, const struct state_args *a)
{
	struct episode e;
	unsigned fx;
	int rc;
	if (episode_load(db, c->root, id, &e) < 0) return -1;
	rc = state_apply(db, c, &e, EV_INGEST, a, &fx);
	episode_free(&e);
	return rc;
}

int state_do(sqlite3 *db, struct config *c, struct episode *e, enum ep_event ev, const struct state_args *a)
{
	unsigned fx = 0;
	if (db_begin(db) < 0) return -1;
	if (state_apply(db, c, e, ev, a, &fx) < 0 || db_commit(db) < 0) {
		db_rollback(db);
		return -1;
	}
	state_after(c, e, fx, a);
	return 0;
}

/* ---- lifting a channel-wide hold ----------------------------------------------- */

/* The channel's episodes a hold of (stage, kind) keeps in held/. */
static size_t held_by(sqlite3 *db, struct config *c, const char *channel_db_id, const char *stage, const char *kind,
		      struct episode **out)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT id FROM episodes WHERE channel_id = ? AND state = 'held'"
				   " AND hold_kind = ? AND (? = '*' OR stage = ?) ORDER BY created_at",
				   "ssss", channel_db_id, kind, stage, stage);
	struct episode *v = NULL;
	size_t n = 0;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		v = xrealloc(v, (n + 1) * sizeof *v);
		if (episode_load(db, c->root, (const char *)sqlite3_column_text(st, 0), &v[n]) == 0) n++;
	}
	sqlite3_finalize(st);
	*out = v;
	return n;
}

static int channel_db_id(sqlite3 *db, const char *slug, char out[37])
{
	sqlite3_stmt *st = db_prep(db, "SELECT id FROM channels WHERE slug = ?", "s", slug);
	int found = st && sqlite3_step(st) == SQLITE_ROW;
	if (found) snprintf(out, 37, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return found ? 0 : err_set("no channel %s in the database; see `acog-batch doctor`", slug);
}

int state_release_channel(sqlite3 *db, struct config *c, const char *channel, const char *stage, const char *kind,
			  const char *actor)
{
	int by_daemon = !actor || !strcmp(actor, "daemon");
	struct state_args a = { .actor_type = by_daemon ? STATE_DAEMON : STATE_USER,
				.actor = by_daemon ? "daemon" : actor };
	struct episode *v = NULL;
	size_t n = 0, i;
	unsigned fx = 0;
	char chid[37];
	int rc = -1;
	if (channel_db_id(db, channel, chid) < 0 || db_begin(db) < 0) return -1;
	if (db_exec(db, "DELETE FROM channel_holds WHERE channel_id = ? AND stage = ? AND kind = ?", "sss", chid, stage,
		    kind) < 0)
		goto out;
	n = held_by(db, c, chid, stage, kind, &v);
	for (i = 0; i < n; i++)
		if (state_apply(db, c, &v[i], EV_RELEASE, &a, &fx) < 0) goto out;
	if (db_commit(db) < 0) goto out;
	for (i = 0; i < n; i++) {
		state_after(c, &v[i], fx, &a);
		log_info(v[i].id, v[i].dir, "hold.released",
			 "the %s hold of channel %s at %s was lifted by %s; back in"
			 " spool/%s",
			 kind, channel, stage, a.actor, v[i].location);
	}
	rc = 0;
out:
	if (rc < 0) db_rollback(db);
	for (i = 0; i < n; i++) episode_free(&v[i]);
	free(v);
	return rc;
}
