/* Unit tests: the production state machine (state.c) driven on a real
 * SQLite database made from schema.sql in a temporary root: every (state,
 * event) pair either moves to the expected state with its side effects
 * (job, audit row, ticket, reason/error note) or is refused and changes
 * nothing; the job table; compare-and-set; lifting a channel hold; backoff
 * and the stage table. */
#define _GNU_SOURCE
#include "daemon.h"
#include "provider.h"
#include "tap.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The table as this test expects it, written out independently of state.c. */
#define T (FX_AUDIT | FX_TICKET)
/* clang-format off: a table keeps one row per line */
static const struct {
	enum ep_state from;
	enum ep_event ev;
	enum ep_state to;
	unsigned fx;
} expect[] = {
	{ ST_NEW, EV_INGEST, ST_QUEUED, T | FX_NEWJOB },
	{ ST_QUEUED, EV_START, ST_RUNNING, FX_AUDIT },
	{ ST_QUEUED, EV_FAIL, ST_FAILED, T | FX_ERROR | FX_ALERT },
	{ ST_QUEUED, EV_HOLD, ST_HELD, T | FX_REASON | FX_ALERT },
	{ ST_QUEUED, EV_CANCEL, ST_CANCELLED, T | FX_REASON },
	{ ST_RUNNING, EV_DONE, ST_QUEUED, T | FX_NEWJOB },
	{ ST_RUNNING, EV_DONE_GATE, ST_AWAITING, T },
	{ ST_RUNNING, EV_DONE_LAST, ST_PUBLISHED, T },
	{ ST_RUNNING, EV_DEFER, ST_QUEUED, FX_AUDIT | FX_MTIME },
	{ ST_RUNNING, EV_FAIL, ST_FAILED, T | FX_ERROR | FX_ALERT },
	{ ST_RUNNING, EV_HOLD, ST_HELD, T | FX_REASON | FX_ALERT },
	{ ST_RUNNING, EV_CANCEL, ST_CANCELLED, T | FX_REASON },
	{ ST_RUNNING, EV_REQUEUE, ST_QUEUED, FX_AUDIT },
	{ ST_QUEUED, EV_PAUSE, ST_HELD, T | FX_REASON },
	{ ST_RUNNING, EV_PAUSE, ST_HELD, T | FX_REASON },
	{ ST_AWAITING, EV_APPROVE, ST_QUEUED, T | FX_NEWJOB },
	{ ST_AWAITING, EV_APPROVE_GATE, ST_AWAITING, T },
	{ ST_AWAITING, EV_APPROVE_LAST, ST_PUBLISHED, T },
	{ ST_AWAITING, EV_REJECT, ST_CANCELLED, T | FX_REASON },
	{ ST_AWAITING, EV_REWIND, ST_QUEUED, T | FX_NEWJOB },
	{ ST_AWAITING, EV_CANCEL, ST_CANCELLED, T | FX_REASON },
	{ ST_AWAITING, EV_RESTORE, ST_QUEUED, T | FX_NEWJOB },
	{ ST_HELD, EV_RELEASE, ST_QUEUED, T },
	{ ST_HELD, EV_UNPAUSE, ST_QUEUED, T },
	{ ST_HELD, EV_RESUME, ST_QUEUED, T | FX_NEWJOB },
	{ ST_HELD, EV_CANCEL, ST_CANCELLED, T | FX_REASON },
	{ ST_HELD, EV_RESTORE, ST_QUEUED, T | FX_NEWJOB },
	{ ST_FAILED, EV_RESUME, ST_QUEUED, T | FX_NEWJOB },
	{ ST_FAILED, EV_CANCEL, ST_CANCELLED, T | FX_REASON },
	{ ST_FAILED, EV_RESTORE, ST_QUEUED, T | FX_NEWJOB },
	{ ST_CANCELLED, EV_RESUME, ST_QUEUED, T | FX_NEWJOB },
	{ ST_CANCELLED, EV_RESTORE, ST_QUEUED, T | FX_NEWJOB },
};
/* clang-format on */
#undef T
#define NEXPECT (sizeof expect / sizeof expect[0])

static const char *const job_states[] = { "queued", "running", "completed", "failed", "cancelled" };
/* clang-format off: a table keeps one row per line */
static const struct {
	const char *from;
	enum job_event ev;
	const char *to;
} job_expect[] = {
	{ "queued", JOB_EV_START, "running" },     { "queued", JOB_EV_CANCEL, "cancelled" },
	{ "queued", JOB_EV_FAIL, "failed" },       { "running", JOB_EV_SUCCEED, "completed" },
	{ "running", JOB_EV_RETRY, "queued" },     { "running", JOB_EV_FAIL, "failed" },
	{ "running", JOB_EV_CANCEL, "cancelled" }, { "running", JOB_EV_REQUEUE, "queued" },
};
/* clang-format on */

static char root[256];
static struct config cfg;
static sqlite3 *db;

static int expected(enum ep_state from, enum ep_event ev)
{
	for (size_t i = 0; i < NEXPECT; i++)
		if (expect[i].from == from && expect[i].ev == ev) return (int)i;
	return -1;
}

static void setup(void)
{
	char *p;
	snprintf(root, sizeof root, "/tmp/acog-test-state-XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		exit(1);
	}
	p = xasprintf("%s/channels/t", root);
	must(fsio_mkdirs(p));
	free(p);
	p = xasprintf("%s/channels/t/channel.yaml", root);
	must(fsio_write_atomic_str(p, "id: t\nname: Test\ngates: {review: true}\n"));
	free(p);
	log_set_stderr(0);
	if (config_load(&cfg, root) < 0 || spool_init_dirs(root) < 0 || !(db = db_open(root, 1)) ||
	    db_sync_channels(db, &cfg) < 0) {
		fprintf(stderr, "setup: %s\n", err_msg());
		exit(1);
	}
}

static int count(const char *sql, const char *id)
{
	sqlite3_stmt *st = db_prep(db, sql, "s", id);
	int n = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return n;
}

static char *col(const char *sql, const char *id)
{
	sqlite3_stmt *st = db_prep(db, sql, "s", id);
	char *s = st && sqlite3_step(st) == SQLITE_ROW ? db_col_str(st, 0) : NULL;
	sqlite3_finalize(st);
	return s;
}

/* Where each state puts the ticket (what the product promises, README). */
static const char *folder(enum ep_state s, const char *stage)
{
	if (s == ST_HELD || s == ST_CANCELLED) return "held";
	if (s == ST_FAILED) return "failed";
	if (s == ST_PUBLISHED) return "published";
	return stage;
}

/* An episode in state st, with the job that state has (queued or running). */
static void make_episode(enum ep_state st, struct episode *e)
{
	static int n;
	const char *stage = st == ST_AWAITING ? "review" : st == ST_PUBLISHED ? "upload" : "scripting";
	const char *status = st == ST_FAILED ? "failed"
		: st == ST_CANCELLED         ? "cancelled"
		: st == ST_PUBLISHED         ? "published"
					     : stage_find(stage)->ep_status;
	int held = st == ST_HELD || st == ST_CANCELLED;
	char id[37], ticket[64], job[37];
	uuid_new(id);
	snprintf(ticket, sizeof ticket, "t-case-%d", ++n);
	must(db_exec(db,
		     "INSERT INTO episodes (id, channel_id, title, ticket, location, stage, status, state, gate_pending,"
		     " hold_kind, hold_reason, content_hash, source_name, ingest_done) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
		     "sssssssssssss", id, cfg.ch[0].db_id, "A test", ticket, folder(st, stage), stage, status,
		     state_name(st), st == ST_AWAITING ? "review" : NULL, held ? "quota" : NULL,
		     held ? "set up held" : NULL, ticket, ticket));
	if (st == ST_QUEUED || st == ST_HELD || st == ST_RUNNING) {
		must(job_create(db, id, stage, 3, NULL, job));
		if (st == ST_RUNNING)
			must(db_exec(db, "UPDATE jobs SET status = 'running'," DB_TOUCH " WHERE id = ?", "s", job));
	}
	must(episode_load(db, root, id, e));
	must(spool_sync_ticket(root, e));
}

static void args_for(enum ep_event ev, struct state_args *a)
{
	memset(a, 0, sizeof *a);
	a->actor_type = STATE_DAEMON;
	a->actor = "unit";
	a->reason = "the test says so";
	switch (ev) {
	case EV_INGEST:
	case EV_REWIND:
	case EV_RESUME:
	case EV_RESTORE: a->stage = stage_find("planning"); break;
	case EV_DONE: a->stage = stage_find("metadata"); break;
	case EV_APPROVE: a->stage = stage_find("upload"); break;
	case EV_DONE_GATE:
	case EV_APPROVE_GATE:
		a->stage = stage_find("review");
		a->gate = "review";
		break;
	case EV_HOLD:
		a->hold_kind = "quota";
		a->hold_until = time_now() + 3600;
		break;
	case EV_DEFER:
		a->retry_at = time_now() + 60;
		a->count_attempt = 1;
		break;
	case EV_START: a->provider = "builtin"; break;
	default: break;
	}
}

static int file_in(const char *dir, const char *name, const char *ext)
{
	char *n = xasprintf("%s%s", name, ext), *p = spool_path(root, dir, n);
	int ok = fsio_exists(p);
	free(n);
	free(p);
	return ok;
}

static void check_allowed(enum ep_state from, enum ep_event ev, int x, struct episode *e, unsigned fx,
			  const char *job_before, int audits)
{
	const char *what = state_event_name(ev);
	const char *stage = e->stage;
	char *job_after = col("SELECT id FROM jobs WHERE episode_id = ? AND status IN ('queued','running')", e->id);
	char *db_state = col("SELECT state FROM episodes WHERE id = ?", e->id);
	char *act = col("SELECT action FROM audit_logs WHERE entity_id = ? ORDER BY rowid DESC LIMIT 1", e->id);
	enum ep_state to = expect[x].to;
	int active = to == ST_QUEUED || to == ST_RUNNING || to == ST_HELD;

	ok(db_state && !strcmp(db_state, state_name(to)) && !strcmp(e->state, db_state) && fx == expect[x].fx,
	   "%s -%s-> %s (fx %#x)", state_name(from), what, db_state ? db_state : "?", fx);
	ok(count("SELECT COUNT(*) FROM audit_logs WHERE entity_id = ?", e->id) == audits + 1 && act &&
		   !strcmp(act, what),
	   "%s -%s->: one audit row, action %s", state_name(from), what, act ? act : "-");
	ok(active ? job_after != NULL : job_after == NULL, "%s -%s->: %s active job", state_name(from), what,
	   active ? "one" : "no");
	if (fx & FX_NEWJOB)
		ok(job_after && (!job_before || strcmp(job_after, job_before)), "%s -%s->: a new job for %s",
		   state_name(from), what, stage);
	else if (active)
		ok(job_after && job_before && !strcmp(job_after, job_before), "%s -%s->: the same job, not re-created",
		   state_name(from), what);
	state_after(&cfg, e, fx, &(struct state_args){ .retry_at = time_now() + 60 });
	ok(!strcmp(e->location, folder(to, stage)) && file_in(e->location, e->ticket, ""),
	   "%s -%s->: ticket in spool/%s", state_name(from), what, e->location);
	ok(file_in("held", e->ticket, ".reason") == !strcmp(e->location, "held") &&
		   file_in("failed", e->ticket, ".error") == !strcmp(e->location, "failed"),
	   "%s -%s->: the note beside the ticket in held/ or failed/ (and none elsewhere)", state_name(from), what);
	free(job_after);
	free(db_state);
	free(act);
}

static void check_pair(enum ep_state from, enum ep_event ev)
{
	struct episode e;
	struct state_args a;
	unsigned fx = 0;
	int x = expected(from, ev), audits, rc;
	char *job_before;
	make_episode(from, &e);
	args_for(ev, &a);
	job_before = col("SELECT id FROM jobs WHERE episode_id = ? AND status IN ('queued','running')", e.id);
	audits = count("SELECT COUNT(*) FROM audit_logs WHERE entity_id = ?", e.id);
	must(db_begin(db));
	rc = state_apply(db, &cfg, &e, ev, &a, &fx);
	if (rc == 0)
		must(db_commit(db));
	else
		db_rollback(db);
	if (x < 0) {
		char *st = col("SELECT state FROM episodes WHERE id = ?", e.id);
		ok(rc < 0 && st && !strcmp(st, state_name(from)) && !strcmp(e.state, state_name(from)) &&
			   count("SELECT COUNT(*) FROM audit_logs WHERE entity_id = ?", e.id) == audits,
		   "%s -%s-> refused, nothing changed (%s)", state_name(from), state_event_name(ev), err_msg());
		free(st);
	} else if (rc < 0) {
		ok(0, "%s -%s-> should be allowed: %s", state_name(from), state_event_name(ev), err_msg());
	} else {
		check_allowed(from, ev, x, &e, fx, job_before, audits);
	}
	free(job_before);
	episode_free(&e);
}

static void test_table(void)
{
	for (int s = 0; s < ST_COUNT; s++)
		for (int ev = 0; ev < EV_COUNT; ev++) {
			const struct state_rule *r = state_rule(s, ev);
			int x = expected(s, ev);
			if (x < 0)
				ok(r == NULL, "table: %s x %s refused", state_name(s), state_event_name(ev));
			else
				ok(r && r->to == expect[x].to && r->fx == expect[x].fx, "table: %s x %s -> %s",
				   state_name(s), state_event_name(ev), state_name(expect[x].to));
		}
	ok(state_rule_count == NEXPECT, "the table has %zu rows, the expectation %zu", state_rule_count, NEXPECT);
	for (size_t i = 0; i < state_rule_count; i++) {
		enum ep_state to = state_rules[i].to;
		unsigned fx = state_rules[i].fx;
		ok((fx & FX_AUDIT) && ((to != ST_HELD && to != ST_CANCELLED) || (fx & FX_REASON)) &&
			   (to != ST_FAILED || (fx & FX_ERROR)),
		   "row %s x %s: audited; a held/ or failed/ ticket gets its note", state_name(state_rules[i].from),
		   state_event_name(state_rules[i].ev));
	}
}

static void test_jobs(void)
{
	for (size_t s = 0; s < sizeof job_states / sizeof job_states[0]; s++)
		for (int ev = JOB_EV_START; ev <= JOB_EV_REQUEUE; ev++) {
			const char *want = NULL, *got = job_transition(job_states[s], ev);
			for (size_t i = 0; i < sizeof job_expect / sizeof job_expect[0]; i++)
				if (!strcmp(job_expect[i].from, job_states[s]) &&
				    job_expect[i].ev == (enum job_event)ev)
					want = job_expect[i].to;
			ok(want ? got && !strcmp(got, want) : got == NULL, "job %s x event %d -> %s", job_states[s], ev,
			   want ? want : "refused");
		}
}

/* The compare-and-set: a row changed behind the caller's back is not touched. */
static void test_cas(void)
{
	struct episode e;
	struct state_args a;
	unsigned fx;
	int audits, rc;
	char *st;
	make_episode(ST_QUEUED, &e);
	args_for(EV_START, &a);
	must(db_exec(db, "UPDATE episodes SET state = 'cancelled'," DB_TOUCH " WHERE id = ?", "s", e.id));
	audits = count("SELECT COUNT(*) FROM audit_logs WHERE entity_id = ?", e.id);
	must(db_begin(db));
	rc = state_apply(db, &cfg, &e, EV_START, &a, &fx);
	ok(rc < 0 && strstr(err_msg(), "changed meanwhile"), "stale episode refused: %s", err_msg());
	db_rollback(db);
	st = col("SELECT status FROM jobs WHERE episode_id = ?", e.id);
	ok(st && !strcmp(st, "queued") && count("SELECT COUNT(*) FROM audit_logs WHERE entity_id = ?", e.id) == audits,
	   "its job was not started, no audit row");
	free(st);
	episode_free(&e);
}

/* A channel hold lifted: every episode it held is queued again with its own job. */
static void test_release_channel(void)
{
	struct episode e[2];
	char *jobs[2];
	make_episode(ST_HELD, &e[0]);
	make_episode(ST_HELD, &e[1]);
	must(db_exec(db,
		     "INSERT INTO channel_holds (channel_id, stage, kind, reason) VALUES (?, 'scripting', 'quota', 'q')",
		     "s", cfg.ch[0].db_id));
	for (int i = 0; i < 2; i++)
		jobs[i] = col("SELECT id FROM jobs WHERE episode_id = ? AND status = 'queued'", e[i].id);
	{
		int rc = state_release_channel(db, &cfg, "t", "scripting", "quota", "alice");
		ok(rc == 0, "release channel t%s%s", rc ? ": " : "", rc ? err_msg() : "");
	}
	for (int i = 0; i < 2; i++) {
		char *st = col("SELECT state FROM episodes WHERE id = ?", e[i].id);
		char *job = col("SELECT id FROM jobs WHERE episode_id = ? AND status = 'queued'", e[i].id);
		char *actor = col("SELECT actor_id FROM audit_logs WHERE entity_id = ? ORDER BY rowid DESC LIMIT 1",
				  e[i].id);
		ok(st && !strcmp(st, "queued") && job && jobs[i] && !strcmp(job, jobs[i]) && actor &&
			   !strcmp(actor, "alice"),
		   "episode %d released by alice with its job kept", i);
		ok(file_in("scripting", e[i].ticket, "") && !file_in("held", e[i].ticket, ".reason"),
		   "episode %d: ticket back in spool/scripting, reason note gone", i);
		free(st);
		free(job);
		free(actor);
		free(jobs[i]);
		episode_free(&e[i]);
	}
	ok(count("SELECT COUNT(*) FROM channel_holds WHERE channel_id = ?", cfg.ch[0].db_id) == 0,
	   "the channel hold is gone");
}

static void test_kinds(void)
{
	ok(state_hold_kind_ok("quota") && state_hold_kind_ok("auth") && state_hold_kind_ok("upload_limit") &&
		   !state_hold_kind_ok("cancelled") && !state_hold_kind_ok("nope"),
	   "hold kinds a stage may answer");
	ok(state_hold_paid_only("budget") && !state_hold_paid_only("quota"), "a budget hold spares free stages");
	ok(!strcmp(state_label("awaiting"), "awaiting-approval") && state_parse("held") == ST_HELD &&
		   state_parse("nope") < 0,
	   "state names and labels");
}

int main(void)
{
	setup();
	test_table();
	for (int s = 0; s < ST_COUNT; s++)
		for (int ev = 0; ev < EV_COUNT; ev++) check_pair(s, ev);
	test_jobs();
	test_cas();
	test_release_channel();
	test_kinds();
	ok(!db_prep(db, "SELECT ?", "ss") && strstr(err_msg(), "2 parameter type(s)"),
	   "the binder refuses a type string longer than the statement's parameters: %s", err_msg());
	ok(!db_prep(db, "SELECT ?, ?", "s") && strstr(err_msg(), "with 2"), "and a shorter one: %s", err_msg());
	for (int n = 0; n < 6; n++) {
		double d = job_backoff(n, 2, 60), full = 2.0 * (1 << n) > 60 ? 60 : 2.0 * (1 << n);
		ok(d >= full / 2 && d <= full, "backoff %d = %.2f within [%.1f, %.1f]", n, d, full / 2, full);
	}
	ok(!strcmp(stage_next(stage_find("assembly"))->name, "review"), "assembly then review");
	ok(stage_find("review")->kind == STAGE_GATE, "review is a gate");
	ok(stage_next(stage_find("upload")) == NULL, "upload is last");
	ok(stage_table[0].kind == STAGE_WORK, "the pipeline starts with a work stage (ingest queues it)");
	ok(provider_lookup("audio", "espeak") != NULL && provider_lookup("audio", "still") == NULL, "provider table");
	db_close(db);
	config_free(&cfg);
	{
		const char *argv[] = { "rm", "-rf", root, NULL };
		(void)!proc_run(argv, &(struct proc_opts){ .stderr_fd = -1 },
				NULL); /* its exit status is not the point */
	}
	return tap_done();
}
