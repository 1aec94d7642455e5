/*
 * fsck_db.c - the checks that start from the database: each episode's
 * ticket is in exactly one spool folder, the one episodes.location names,
 * with its held/failed note and its idea.json; each live asset row names a
 * complete file of the recorded size and hash; no stage of an episode
 * completed twice without a person asking for the re-run; every cost row
 * belongs to a job.  Each query is its own short read transaction, so the
 * checker runs beside a working daemon.
 */
#define _GNU_SOURCE
#include "fsck.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fsck_add(struct fsck *f, const char *kind, const char *file, enum fsck_status st, const char *fmt, ...)
{
	static const char *const names[] = { "open", "repaired", "note" };
	cJSON *o = cJSON_CreateObject();
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) abort();
	va_end(ap);
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddStringToObject(o, "file", file);
	cJSON_AddStringToObject(o, "status", names[st]);
	cJSON_AddStringToObject(o, "message", msg);
	cJSON_AddItemToArray(f->findings, o);
	if (st == FSCK_OPEN) f->problems++;
	if (st == FSCK_REPAIRED) f->repaired++;
	if (st == FSCK_NOTE) f->notes++;
	free(msg);
}

/* Where a ticket may live: every stage folder, then published, failed, held. */
static const char *ticket_folder(size_t i)
{
	static const char *const extra[] = { "published", "failed", "held" };
	if (i < stage_count) return stage_table[i].name;
	return i - stage_count < 3 ? extra[i - stage_count] : NULL;
}

enum { T_MISSING = 1, T_ELSEWHERE = 2, T_COPY = 4, T_NOTE = 8 };

/* What is wrong with e's ticket: T_* bits; *other names a folder holding a
 * copy outside its location. */
static unsigned ticket_faults(const char *root, const struct episode *e, const char **other)
{
	unsigned bad = 0;
	int here, copies = 0;
	char *p = spool_path(root, e->location, e->ticket);
	here = fsio_exists(p);
	free(p);
	*other = NULL;
	for (size_t i = 0; ticket_folder(i); i++) {
		if (!strcmp(ticket_folder(i), e->location)) continue;
		p = spool_path(root, ticket_folder(i), e->ticket);
		if (fsio_exists(p)) {
			copies++;
			*other = ticket_folder(i);
		}
		free(p);
	}
	if (!here) bad |= copies ? T_ELSEWHERE : T_MISSING;
	if (here && copies) bad |= T_COPY;
	if (!strcmp(e->location, "held") || !strcmp(e->location, "failed")) {
		char *n = xasprintf("%s/spool/%s/%s.%s", root, e->location, e->ticket,
				    strcmp(e->location, "held") ? "error" : "reason");
		if (!fsio_exists(n)) bad |= T_NOTE;
		free(n);
	}
	return bad;
}

static void report_ticket(struct fsck *f, const struct episode *e, unsigned bad, const char *other, int st)
{
	const char *fix = st == FSCK_REPAIRED ? "repaired: " : "";
	const char *how = st == FSCK_REPAIRED ? "" : "; `acog-batch fsck --repair` (or the daemon's next start) ";
	if (bad & T_MISSING)
		fsck_add(f, "ticket_missing", e->location, st, "%sspool/%s/%s: ticket of episode %s is missing%s%s",
			 fix, e->location, e->ticket, e->id, how, *how ? "writes it again" : "");
	if (bad & T_ELSEWHERE)
		fsck_add(f, "ticket_wrong_folder", other, st,
			 "%sspool/%s/%s: ticket in the wrong folder; the database puts episode %s in spool/%s/%s%s%s",
			 fix, other, e->ticket, e->id, e->location, e->ticket, how, *how ? "moves it there" : "");
	if (bad & T_COPY)
		fsck_add(f, "ticket_duplicate", other, st,
			 "%sspool/%s/%s: a second copy of the ticket of episode %s, which belongs in spool/%s/%s%s%s",
			 fix, other, e->ticket, e->id, e->location, e->ticket, how,
			 *how ? "removes this stale copy" : "");
	if (bad & T_NOTE)
		fsck_add(f, "note_missing", e->location, st,
			 "%sspool/%s/%s.%s: the note saying why episode %s is %s is missing%s%s", fix, e->location,
			 e->ticket, strcmp(e->location, "held") ? "error" : "reason", e->id, e->location, how,
			 *how ? "writes it again" : "");
}

/* A running daemon commits first and moves the ticket after: a fault seen
 * then is believed only if it is still there a moment later. */
static unsigned settled_faults(struct fsck *f, struct episode *e, const char **other)
{
	unsigned bad = ticket_faults(f->root, e, other);
	for (int i = 0; bad && f->daemon_running && i < 5; i++) {
		usleep(200 * 1000);
		episode_free(e);
		if (episode_load(f->db, f->root, e->id, e) < 0) return 0;
		bad = ticket_faults(f->root, e, other);
	}
	return bad;
}

static void check_episode(struct fsck *f, const char *id)
{
	struct episode e;
	const char *other;
	unsigned bad;
	char *idea;
	if (episode_load(f->db, f->root, id, &e) < 0) return;
	bad = settled_faults(f, &e, &other);
	/* Tickets are the daemon's to move while it runs (it reconciles them at start). */
	if (bad && f->repair && !f->daemon_running && spool_sync_ticket(f->root, &e) == 0 &&
	    ticket_faults(f->root, &e, &other) == 0)
		report_ticket(f, &e, bad, other ? other : e.location, FSCK_REPAIRED);
	else if (bad)
		report_ticket(f, &e, bad, other ? other : e.location, FSCK_OPEN);
	idea = xasprintf("%s/idea.json", e.dir);
	if (!fsio_exists(idea))
		fsck_add(f, "idea_missing", idea + strlen(f->root) + 1, FSCK_OPEN,
			 "%s: the idea of episode %s is missing; restore it from a backup", idea + strlen(f->root) + 1,
			 e.id);
	free(idea);
	episode_free(&e);
}

void fsck_episodes(struct fsck *f)
{
	char **ids;
	size_t n = db_strings(f->db, &ids, "SELECT id FROM episodes WHERE ingest_done = 1 AND deleted_at IS NULL",
			      NULL);
	for (size_t i = 0; i < n; i++) check_episode(f, ids[i]);
	db_strings_free(ids, n);
	n = db_strings(f->db, &ids, "SELECT source_name FROM episodes WHERE ingest_done = 0 AND deleted_at IS NULL",
		       NULL);
	for (size_t i = 0; i < n; i++)
		fsck_add(f, "ingest_pending", ids[i], FSCK_NOTE,
			 "%s: accepted but its ingest is unfinished; the daemon finishes it when it (re)starts",
			 ids[i]);
	db_strings_free(ids, n);
}

/* ---- assets ------------------------------------------------------------ */

/* Each live asset, with the sha256 and stage of the latest completed job
 * that reported the file (NULL when none did). */
static const char asset_sql[] =
	"SELECT a.uri, a.file_size_bytes, a.type, e.ticket, e.id,"
	" (SELECT json_extract(o.value, '$.sha256') FROM jobs j, json_each(j.result, '$.outputs') o"
	"  WHERE j.episode_id = a.episode_id AND j.status = 'completed' AND json_extract(o.value, '$.path') = a.name"
	"  ORDER BY j.completed_at DESC LIMIT 1),"
	" (SELECT j.stage FROM jobs j, json_each(j.result, '$.outputs') o"
	"  WHERE j.episode_id = a.episode_id AND j.status = 'completed' AND json_extract(o.value, '$.path') = a.name"
	"  ORDER BY j.completed_at DESC LIMIT 1)"
	" FROM assets a JOIN episodes e ON e.id = a.episode_id WHERE a.deleted_at IS NULL AND e.deleted_at IS NULL"
	" AND NOT (? AND e.state IN ('queued', 'running'))";

struct asset {
	char *uri, *type, *ticket, *episode, *sha, *stage;
	long long size;
};

static void check_asset(struct fsck *f, const struct asset *a)
{
	char *p = xasprintf("%s/%s", f->root, a->uri), h[65];
	const char *stage = a->stage ? a->stage : a->type;
	char *todo = xasprintf("make it again with `acog-batch retry %s --from %s`, or restore the file from a backup",
			       a->ticket, stage);
	struct stat st;
	if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
		fsck_add(f, "asset_missing", a->uri, FSCK_OPEN, "%s: the %s of episode %s is missing; %s", a->uri,
			 a->type, a->episode, todo);
	else if (a->size >= 0 && st.st_size != a->size)
		fsck_add(f, "asset_size", a->uri, FSCK_OPEN,
			 "%s: %lld bytes, but %lld were recorded (truncated or changed); %s", a->uri,
			 (long long)st.st_size, a->size, todo);
	else if (a->sha && hash_file(p, h) == 0 && strcmp(h, a->sha) != 0)
		fsck_add(f, "asset_hash", a->uri, FSCK_OPEN,
			 "%s: its content is not what stage %s wrote (sha256 differs); %s", a->uri, stage, todo);
	free(todo);
	free(p);
}

void fsck_assets(struct fsck *f)
{
	/* While the daemon runs, a stage at work may be rewriting its files. */
	sqlite3_stmt *st = db_prep(f->db, asset_sql, "i", f->daemon_running);
	struct asset *v = NULL;
	size_t n = 0;
	if (!st) {
		fsck_add(f, "db_error", "acog.db", FSCK_OPEN, "acog.db: cannot list the assets: %s", err_msg());
		return;
	}
	while (sqlite3_step(st) == SQLITE_ROW) { /* read all first: hashing must not hold the read */
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n] = (struct asset){ db_col_str(st, 0),
				       db_col_str(st, 2),
				       db_col_str(st, 3),
				       db_col_str(st, 4),
				       db_col_str(st, 5),
				       db_col_str(st, 6),
				       sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 1) };
		n++;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		check_asset(f, &v[i]);
		free(v[i].uri), free(v[i].type), free(v[i].ticket), free(v[i].episode), free(v[i].sha),
			free(v[i].stage);
	}
	free(v);
}

/* ---- jobs and costs ---------------------------------------------------- */

/* Two completed runs of one stage of one episode with no person's action
 * (reject --to, retry --from, a decision file) between them. */
static const char twice_sql[] =
	"SELECT e.ticket || ': stage ' || a.stage || ' of episode ' || a.episode_id || ' completed twice (jobs '"
	" || a.id || ' and ' || b.id || ') with no re-run asked for between them; check the costs of both and"
	" report this as a bug'"
	" FROM jobs a JOIN jobs b ON b.episode_id = a.episode_id AND b.stage = a.stage AND b.id <> a.id"
	" AND (b.completed_at > a.completed_at OR (b.completed_at = a.completed_at AND b.id > a.id))"
	" JOIN episodes e ON e.id = a.episode_id"
	" WHERE a.status = 'completed' AND b.status = 'completed' AND NOT EXISTS (SELECT 1 FROM audit_logs l"
	" WHERE l.entity_id = a.episode_id AND l.actor_type <> 'daemon' AND l.created_at >= a.completed_at"
	" AND l.created_at <= b.created_at)";

static const char orphan_cost_sql[] =
	"SELECT 'cost row ' || c.id || ' (' || c.provider || ' ' || c.operation_type || ', $' || c.cost_usd"
	" || ') belongs to no job' || CASE WHEN c.job_id IS NULL THEN '' ELSE ' (job ' || c.job_id || ' is gone)'"
	" END || '; it still counts toward the budget: keep it, and report this as a bug'"
	" FROM cost_entries c WHERE c.job_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id)";

static void query_findings(struct fsck *f, const char *kind, const char *sql)
{
	char **v;
	size_t n = db_strings(f->db, &v, sql, NULL);
	for (size_t i = 0; i < n; i++) fsck_add(f, kind, "acog.db", FSCK_OPEN, "acog.db: %s", v[i]);
	db_strings_free(v, n);
}

void fsck_jobs(struct fsck *f)
{
	query_findings(f, "job_completed_twice", twice_sql);
	query_findings(f, "cost_without_job", orphan_cost_sql);
}
