/*
 * ingest.c - turning files in spool/incoming into episodes or rejections.
 *
 * Crash model: the episode row is committed first with ingest_done = 0
 * (the idea is durable from then on: the row holds it); then the ticket is
 * written (the idea's acknowledgement, as soon as it can be), then
 * idea.json, and the incoming file is removed once idea.json is durable;
 * then ingest_done = 1.  A crash anywhere in between is finished at the next
 * start (ingest_finish_pending), so every idea ends as exactly one episode
 * or one rejection, and the user's bytes are kept as idea.json.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int ignored_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] == '.' || (n >= 4 && strcmp(name + n - 4, ".tmp") == 0);
}

static int wanted_name(const char *name)
{
	return !ignored_name(name);
}

static int reject(struct config *c, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int reject(struct config *c, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *why, *reason, *src = spool_path(c->root, "incoming", name);
	int rc;
	va_start(ap, fmt);
	if (vasprintf(&why, fmt, ap) < 0) abort();
	va_end(ap);
	reason = xasprintf("spool/incoming/%s: %s", name, why);
	log_warn(NULL, NULL, "ingest.rejected", "%s", reason);
	rc = spool_reject(c->root, src, reason);
	if (rc < 0) log_error(NULL, NULL, "ingest.reject_failed", "%s", err_msg());
	free(reason);
	free(why);
	free(src);
	return rc;
}

/* Rejects with the message of the error just set, after prefix. */
static int reject_error(struct config *c, const char *name, const char *prefix)
{
	char *why = xstrdup(err_msg());
	int rc = reject(c, name, "%s%s", prefix, why);
	free(why);
	return rc;
}

static char *known_channels(struct config *c)
{
	struct sbuf b = { 0 };
	for (size_t i = 0; i < c->nch; i++) sb_printf(&b, "%s%s", i ? ", " : "", c->ch[i].id);
	if (!b.s) sb_puts(&b, "(none)");
	return b.s;
}

static int reject_channel(struct config *c, const char *name, const char *ch)
{
	const char *e = c->load_errors;
	size_t n = strlen(ch);
	char *known;
	int rc;
	for (; e && *e; e = strchr(e, '\n') ? strchr(e, '\n') + 1 : "")
		if (strncmp(e, ch, n) == 0 && e[n] == '\t') {
			const char *end = strchr(e, '\n');
			return reject(c, name,
				      "channel: channel '%s' exists but failed to load: %.*s; "
				      "fix its channel.yaml and drop the idea again",
				      ch, (int)(end ? (size_t)(end - e) - n - 1 : strlen(e + n + 1)), e + n + 1);
		}
	known = known_channels(c);
	rc = reject(c, name, "channel: unknown channel '%s' (no channels/%s/channel.yaml); known channels: %s", ch, ch,
		    known);
	free(known);
	return rc;
}

/* Returns 1 and fills who/ticket when the idea duplicates an episode. */
static int find_duplicate(sqlite3 *db, const char *chan_db_id, const struct idea *idea, const char *hash, char *ticket,
			  size_t n, const char **why)
{
	sqlite3_stmt *st;
	int found = 0;
	if (idea->idempotency_key) {
		st = db_get(db,
			    "SELECT ticket, id FROM episodes WHERE channel_id = ? AND idempotency_key = ?"
			    " AND deleted_at IS NULL",
			    "ss", chan_db_id, idea->idempotency_key);
		if (st && sqlite3_step(st) == SQLITE_ROW) {
			snprintf(ticket, n, "%s (episode %s)", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
			*why = "same idempotency_key";
			found = 1;
		}
		db_done(st);
		if (found) return 1;
	}
	st = db_get(db,
		    "SELECT ticket, id FROM episodes WHERE channel_id = ? AND content_hash = ?"
		    " AND deleted_at IS NULL",
		    "ss", chan_db_id, hash);
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		snprintf(ticket, n, "%s (episode %s)", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
		*why = "same content for the same channel";
		found = 1;
	}
	db_done(st);
	return found;
}

static void make_ticket(const char *channel, const char *topic, const char *id, char *out, size_t n)
{
	char slug[48];
	slugify(topic, slug, sizeof slug);
	if (strlen(slug) > 0 && slug[strlen(slug) - 1] == '-') slug[strlen(slug) - 1] = 0;
	snprintf(out, n, "%s-%s-%.8s", channel, slug, id);
}

/* The row is born 'new' and the state machine's first event queues it at
 * the first stage, with its job and audit row, in the same transaction.
 * Its ticket is written by finish_ingest, after idea.json (crash order). */
static int insert_rows(sqlite3 *db, struct config *c, struct channel *ch, const struct idea *idea, const char *name,
		       const char *hash, const char *id, const char *ticket, const char *follows,
		       const struct stage_def *start)
{
	const char *series = json_str(idea->json, "series", NULL);
	struct state_args a = { .actor_type = STATE_DAEMON, .actor = "ingest", .stage = start };
	char *idea_json = json_print(idea->json), *source = xasprintf("spool/incoming/%s", name);
	int rc = -1;
	a.reason = source;
	if (db_exec(db,
		    "INSERT INTO episodes (id, channel_id, title, slug, idea_source, idea,"
		    " priority, ticket, location, stage, idempotency_key, content_hash, source_name, pulse_event_id,"
		    " follows_id, series, series_number)"
		    " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,(SELECT id FROM pulse_events WHERE id = ?14),?15,?16,"
		    " CASE WHEN ?16 IS NOT NULL THEN (SELECT COALESCE(MAX(series_number), 0) + 1 FROM episodes"
		    " WHERE channel_id = ?2 AND series = ?16) END)",
		    "ssssssisssssssss", id, ch->db_id, idea->topic, ticket, idea->idea_source, idea_json,
		    idea->priority, ticket, stage_table[0].name, stage_table[0].name, idea->idempotency_key, hash, name,
		    json_str(idea->json, "pulse_event_id", ""), follows, series) == 0 &&
	    state_born(db, c, id, &a) == 0)
		rc = 0;
	free(source);
	free(idea_json);
	return rc;
}

/* An idea as a group commit read it: its episode, its bytes and the status
 * of the file they came from, so that finishing it need not read and parse
 * the file twice more. */
struct seen {
	char id[37];
	char *raw;
	size_t len;
	struct stat st;
	int fresh;
};

/* An accepted idea between its commit and ingest_done = 1; seen: what the
 * group commit read (NULL when finishing after a crash); fresh: its row was
 * inserted by this process's last commit, so it has no ticket anywhere yet;
 * linked: idea.json is the incoming file itself, under a second name (own:
 * its status). */
struct pend {
	struct episode e;
	char *name, *hash, *idea, *src;
	const struct seen *seen;
	int fresh, linked;
	struct stat own;
};

static void pend_free(struct pend *p)
{
	free(p->name);
	free(p->hash);
	free(p->idea);
	free(p->src);
	episode_free(&p->e);
}

static int pend_load(sqlite3 *db, struct config *c, const char *id, struct pend *p)
{
	sqlite3_stmt *st;
	memset(p, 0, sizeof *p);
	if (episode_load(db, c->root, id, &p->e) < 0) return -1;
	st = db_get(db, "SELECT source_name, content_hash, idea FROM episodes WHERE id = ?", "s", id);
	if (!st || sqlite3_step(st) != SQLITE_ROW) {
		db_done(st);
		episode_free(&p->e);
		memset(p, 0, sizeof *p);
		return -1;
	}
	p->name = db_col_str(st, 0);
	p->hash = db_col_str(st, 1);
	p->idea = db_col_str(st, 2);
	db_done(st);
	p->src = spool_path(c->root, "incoming", p->name);
	return 0;
}

/* The same file, unchanged since it was read: same inode, size and times. */
static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
		a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
		a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* 1 when the incoming file is still there and is this idea: idea.json
 * itself under its other name, or the file the group commit read,
 * unchanged, else one with the same canonical hash. */
static int src_is_ours(const struct pend *p)
{
	size_t len;
	char *raw, h[65] = "";
	struct stat st;
	struct idea parsed;

	if (p->linked) return lstat(p->src, &st) == 0 && st.st_dev == p->own.st_dev && st.st_ino == p->own.st_ino;
	if (p->seen) return lstat(p->src, &st) == 0 && same_file(&st, &p->seen->st);
	raw = fsio_read(p->src, IDEA_MAX_BYTES, &len);
	if (raw && idea_parse(raw, len, &parsed) == 0) {
		char *canon = json_print(parsed.json);
		hash_hex(canon, strlen(canon), h);
		free(canon);
		cJSON_Delete(parsed.json);
	}
	free(raw);
	return strcmp(h, p->hash) == 0;
}

/* idea.json: the user's own bytes while the incoming file is there (a crash
 * of a group commit may have left a copy never synced), else the stored copy.
 * In a group, the incoming file becomes idea.json under a second name where
 * it can: a burst then neither makes an inode per idea nor frees one (on
 * ext4 without a journal, each inode made skips over the ones freed in the
 * last minutes, which made a burst's file creation slower as it went on). */
static int finish_idea_json(struct pend *p)
{
	char *idea_path = xasprintf("%s/idea.json", p->e.dir);
	int rc = 0, ours = src_is_ours(p); /* finish_ticket made the folder */
	if (ours && p->seen && (rc = fsio_link_commit(p->src, idea_path, &p->seen->st, &p->own)) != 0) {
		p->linked = rc > 0;
		rc = rc > 0 ? 0 : -1;
	} else if (ours || !fsio_exists(idea_path)) {
		size_t len = p->seen ? p->seen->len : 0;
		char *raw = !ours ? NULL : p->seen ? p->seen->raw : fsio_read(p->src, IDEA_MAX_BYTES, &len);
		rc = raw ? fsio_write_atomic(idea_path, raw, len) : fsio_write_atomic_str(idea_path, p->idea);
		if (!p->seen) free(raw);
	}
	free(idea_path);
	return rc;
}

/* A repurposed episode's copied assets, then the ticket.  It comes before
 * idea.json: the idea is durable in its committed row already, and the
 * ticket is what the person who dropped the idea waits for (pickup latency
 * is the commit and the ticket's own sync, not the four syncs of both). */
static int finish_ticket(sqlite3 *db, struct config *c, const struct pend *p)
{
	if (fsio_mkdirs(p->e.dir) < 0 || repurpose_copy(db, c, &p->e, p->idea) < 0) return -1;
	return p->fresh ? spool_write_new_ticket(c->root, &p->e) : spool_sync_ticket(c->root, &p->e);
}

/* The incoming file goes, once idea.json (the user's bytes) is durable. */
static int finish_source(const struct pend *p)
{
	return src_is_ours(p) && fsio_unlink_durable(p->src) < 0 ? -1 : 0;
}

static void log_accepted(const struct pend *p)
{
	log_info(p->e.id, p->e.dir, "ingest.accepted", "spool/incoming/%s became episode %s, ticket spool/%s/%s",
		 p->name, p->e.id, p->e.location, p->e.ticket);
}

/* ingest_done = 1 for the ideas whose files are in place.  Losing this
 * commit in a crash only means finishing them again at start-up (which is
 * safe to repeat), so it does not wait for the disk: the next commit with
 * synchronous=FULL makes it durable. */
static int mark_done(sqlite3 *db, char (*ids)[37], const int *ok, int n)
{
	int rc = db_exec(db, "PRAGMA synchronous=NORMAL", NULL);
	if (rc == 0 && (rc = db_begin(db)) == 0) {
		for (int i = 0; rc == 0 && i < n; i++)
			if (ok[i])
				rc = db_exec(db, "UPDATE episodes SET ingest_done = 1," DB_TOUCH " WHERE id = ?", "s",
					     ids[i]);
		rc = rc == 0 ? db_commit(db) : -1;
		if (rc < 0) db_rollback(db);
	}
	if (db_exec(db, "PRAGMA synchronous=FULL", NULL) < 0) rc = -1;
	return rc;
}

/* Second half of an ingest; safe to repeat. */
static int finish_ingest(sqlite3 *db, struct config *c, const char *id, int fresh)
{
	struct pend p;
	int rc;
	if (pend_load(db, c, id, &p) < 0) return -1;
	p.fresh = fresh;
	rc = finish_ticket(db, c, &p);
	db_checkpoint_hold(0); /* the ticket is out: a checkpoint may run beside the rest */
	if (rc == 0 && (finish_idea_json(&p) < 0 || finish_source(&p) < 0)) rc = -1;
	if (rc == 0) {
		char one[1][37];
		snprintf(one[0], sizeof one[0], "%s", id);
		rc = mark_done(db, one, (int[]){ 1 }, 1);
	}
	if (rc == 0) log_accepted(&p);
	pend_free(&p);
	return rc;
}

static int pending_for(sqlite3 *db, const char *name, const char *hash, char out[37])
{
	sqlite3_stmt *st = db_get(db,
				  "SELECT id FROM episodes WHERE ingest_done = 0 AND source_name = ?"
				  " AND content_hash = ?",
				  "ss", name, hash);
	int found = st && sqlite3_step(st) == SQLITE_ROW;
	if (found) snprintf(out, 37, "%s", sqlite3_column_text(st, 0));
	db_done(st);
	return found;
}

/* The episode an idea's `follows` names (id, id prefix or ticket), which
 * must be the same channel's; out stays empty when the idea follows none. */
static int followed(sqlite3 *db, struct config *c, const struct channel *ch, const char *ref, char out[37])
{
	struct episode e;
	int rc = 0;
	if (!ref) return 0;
	if (episode_resolve(db, c->root, ref, &e) < 0) return -1;
	if (strcmp(e.channel, ch->id) != 0)
		rc = err_set("'%s' is episode %s of channel %s, not of %s; follow an episode of the same channel", ref,
			     e.id, e.channel, ch->id);
	else
		snprintf(out, 37, "%s", e.id);
	episode_free(&e);
	return rc;
}

/* The episode rows of an idea, inside the caller's transaction, with id
 * filled when there is an episode to finish: 2 when its row is new, 1 when
 * it was pending from before a crash; 0 when the idea was rejected (unknown
 * channel, duplicate), -1 on error. */
static int admit_idea(sqlite3 *db, struct config *c, const char *name, struct idea *idea, char id[37])
{
	struct channel *ch = config_channel(c, idea->channel);
	const struct stage_def *start = &stage_table[0];
	char hash[65], ticket[200], dup[300], follows[37] = "";
	const char *why;
	char *canon;

	if (!ch) return reject_channel(c, name, idea->channel) < 0 ? -1 : 0;
	canon = json_print(idea->json);
	hash_hex(canon, strlen(canon), hash);
	free(canon);
	if (pending_for(db, name, hash, id)) return 1;
	if (find_duplicate(db, ch->db_id, idea, hash, dup, sizeof dup, &why))
		return reject(c, name, "duplicate of ticket %s: %s; nothing new was created", dup, why) < 0 ? -1 : 0;
	if (followed(db, c, ch, json_str(idea->json, "follows", NULL), follows) < 0)
		return reject_error(c, name, "follows: ") < 0 ? -1 : 0;
	if (repurpose_check(db, c, ch, idea->json, &start) < 0) return reject_error(c, name, "") < 0 ? -1 : 0;
	uuid_new(id);
	make_ticket(ch->id, idea->topic, id, ticket, sizeof ticket);
	return insert_rows(db, c, ch, idea, name, hash, id, ticket, *follows ? follows : NULL, start) < 0 ? -1 : 2;
}

static int accept_idea(sqlite3 *db, struct config *c, const char *name, struct idea *idea)
{
	char id[37];
	int rc;
	if (db_begin(db) < 0) return -1;
	db_checkpoint_hold(1);
	rc = admit_idea(db, c, name, idea, id);
	if (rc < 0 || db_commit(db) < 0) {
		db_rollback(db);
		rc = -1;
	} else if (rc > 0) {
		rc = finish_ingest(db, c, id, rc == 2);
	}
	db_checkpoint_hold(0);
	return rc;
}

/* 1 and idea filled when name is an idea to admit; 0 when there is nothing
 * to do (ignored, gone, or rejected here); -1 on error.  seen (may be NULL)
 * keeps the bytes read and the file's status when it is 1. */
static int read_idea(struct config *c, const char *name, struct idea *idea, struct seen *seen)
{
	char *path, *text;
	size_t len;
	int gone;
	struct stat st;

	if (ignored_name(name)) return 0;
	path = spool_path(c->root, "incoming", name);
	text = intake_read_st(path, &len, &gone, &st);
	free(path);
	if (!text && gone) return 0; /* gone already, or still being written (intake_read) */
	if (!text || idea_parse(text, len, idea) < 0) {
		free(text);
		return reject_error(c, name, "") < 0 ? -1 : 0;
	}
	if (!seen) {
		free(text);
		return 1;
	}
	seen->raw = text;
	seen->len = len;
	seen->st = st;
	return 1;
}

int ingest_file(sqlite3 *db, struct config *c, const char *name)
{
	struct idea idea;
	int rc = read_idea(c, name, &idea, NULL);
	if (rc <= 0) return rc;
	rc = accept_idea(db, c, name, &idea);
	cJSON_Delete(idea.json);
	return rc;
}

/* Group commit, step 1: every idea's rows in one transaction (one fsync of
 * the database), and what finishing each needs read back in it (p; one
 * that could not be read has no name).  Returns how many episodes there
 * are to finish. */
static int admit_batch(sqlite3 *db, struct config *c, char **names, int n, struct seen *seen, struct pend *p)
{
	int k = 0;
	if (db_begin(db) < 0) return -1;
	for (int i = 0; i < n; i++) {
		struct idea idea;
		int rc = read_idea(c, names[i], &idea, &seen[k]);
		if (rc > 0) {
			rc = admit_idea(db, c, names[i], &idea, seen[k].id);
			cJSON_Delete(idea.json);
		}
		if (rc < 0) {
			db_rollback(db);
			return -1;
		}
		seen[k].fresh = rc == 2;
		for (int j = 0; rc > 0 && j < k; j++) /* one file, two events (written, then renamed) */
			if (!strcmp(seen[j].id, seen[k].id)) rc = 0;
		if (rc == 0) {
			free(seen[k].raw);
			seen[k].raw = NULL;
		}
		k += rc > 0;
	}
	for (int j = 0; j < k; j++)
		if (pend_load(db, c, seen[j].id, &p[j]) == 0) {
			p[j].seen = &seen[j];
			p[j].fresh = seen[j].fresh;
		}
	if (db_commit(db) == 0) return k;
	db_rollback(db);
	for (int j = 0; j < k; j++) pend_free(&p[j]);
	return -1;
}

/* Step 2: the ticket and idea.json of each, made durable together; then
 * the removal of the incoming files, durable together; then ingest_done of
 * all in one transaction.  The same order per idea as finish_ingest, so a
 * crash anywhere is finished by ingest_finish_pending. */
static int finish_batch(sqlite3 *db, struct config *c, const struct seen *seen, struct pend *p, int n)
{
	int *ok = xcalloc((size_t)n + 1, sizeof *ok), rc;
	char(*ids)[37] = xcalloc((size_t)n + 1, sizeof *ids);
	fsio_defer_begin();
	for (int i = 0; i < n; i++) {
		snprintf(ids[i], sizeof ids[i], "%s", seen[i].id);
		ok[i] = p[i].name && finish_ticket(db, c, &p[i]) == 0 && finish_idea_json(&p[i]) == 0;
	}
	rc = fsio_defer_end(c->root);
	fsio_defer_begin();
	for (int i = 0; rc == 0 && i < n; i++) ok[i] = ok[i] && finish_source(&p[i]) == 0;
	if (fsio_defer_end(c->root) < 0) rc = -1;
	if (rc == 0) rc = mark_done(db, ids, ok, n);
	for (int i = 0; i < n; i++) {
		if (rc == 0 && ok[i]) log_accepted(&p[i]);
		pend_free(&p[i]);
	}
	if (rc == 0 && n > 1)
		log_info(NULL, NULL, "ingest.group", "%d ideas accepted together (one commit, two syncs)", n);
	free(ok);
	free(ids);
	return rc;
}

/* Ideas that arrived together (an inotify read, a start-up scan) are
 * accepted together; a single one, or a group that fails, one by one.  A
 * single idea keeps its own fsyncs: a syncfs also waits for everything
 * else being written (a stage's video), which only pays for many ideas. */
static int ingest_group(sqlite3 *db, struct config *c, char **names, int n)
{
	struct seen *seen = xcalloc((size_t)n + 1, sizeof *seen);
	struct pend *p = xcalloc((size_t)n + 1, sizeof *p);
	int k = n > 1 ? admit_batch(db, c, names, n, seen, p) : -1, failed = 0;
	if (k > 0 && finish_batch(db, c, seen, p, k) < 0)
		log_error(NULL, NULL, "ingest.error", "finishing %d ideas: %s (finished at the next start)", k,
			  err_msg());
	for (int i = 0; i < n; i++) free(seen[i].raw);
	free(seen);
	free(p);
	if (k >= 0) return 0;
	for (int i = 0; i < n; i++)
		if (ingest_file(db, c, names[i]) < 0) {
			log_error(NULL, NULL, "ingest.error",
				  "spool/incoming/%s: %s (left in place; retried on the next scan)", names[i],
				  err_msg());
			failed++;
		}
	return failed;
}

int ingest_batch(sqlite3 *db, struct config *c, char **names, int n)
{
	int failed = 0;
	for (int i = 0; i < n; i += INGEST_BATCH)
		failed += ingest_group(db, c, names + i, n - i < INGEST_BATCH ? n - i : INGEST_BATCH);
	return failed;
}

int ingest_scan(sqlite3 *db, struct config *c)
{
	char *dp = spool_path(c->root, "incoming", NULL), **names;
	int n = fsio_list(dp, &names, wanted_name), failed;

	free(dp);
	if (n < 0) return err_set_errno("cannot read spool/incoming");
	failed = ingest_batch(db, c, names, n);
	fsio_list_free(names, n);
	return failed ? err_set("%d idea(s) could not be ingested and stay in spool/incoming/", failed) : 0;
}

int ingest_finish_pending(sqlite3 *db, struct config *c)
{
	sqlite3_stmt *st = db_prep(db, "SELECT id FROM episodes WHERE ingest_done = 0", NULL);
	char **ids = NULL;
	size_t n = 0;
	if (!st) return -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		ids = xrealloc(ids, (n + 1) * sizeof *ids);
		ids[n++] = db_col_str(st, 0);
	}
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		if (finish_ingest(db, c, ids[i], 0) < 0) log_error(ids[i], NULL, "ingest.finish", "%s", err_msg());
		free(ids[i]);
	}
	free(ids);
	return 0;
}
