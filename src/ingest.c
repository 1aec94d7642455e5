/*
 * ingest.c - turning files in spool/incoming into episodes or rejections.
 *
 * Crash model: the episode row is committed first with ingest_done = 0;
 * then idea.json and the ticket are written and the incoming file removed;
 * then ingest_done = 1.  A crash anywhere in between is finished at the next
 * start (ingest_finish_pending), so every idea ends as exactly one episode
 * or one rejection, and the user's bytes are kept as idea.json.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <errno.h>
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
		st = db_prep(db,
			     "SELECT ticket, id FROM episodes WHERE channel_id = ? AND idempotency_key = ?"
			     " AND deleted_at IS NULL",
			     "ss", chan_db_id, idea->idempotency_key);
		if (st && sqlite3_step(st) == SQLITE_ROW) {
			snprintf(ticket, n, "%s (episode %s)", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
			*why = "same idempotency_key";
			found = 1;
		}
		sqlite3_finalize(st);
		if (found) return 1;
	}
	st = db_prep(db,
		     "SELECT ticket, id FROM episodes WHERE channel_id = ? AND content_hash = ?"
		     " AND deleted_at IS NULL",
		     "ss", chan_db_id, hash);
	if (st && sqlite3_step(st) == SQLITE_ROW) {
		snprintf(ticket, n, "%s (episode %s)", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
		*why = "same content for the same channel";
		found = 1;
	}
	sqlite3_finalize(st);
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
static int insert_episode(sqlite3 *db, struct config *c, struct channel *ch, const struct idea *idea, const char *name,
			  const char *hash, const char *id, const char *ticket, const struct stage_def *start)
{
	struct state_args a = { .actor_type = STATE_DAEMON, .actor = "ingest", .stage = start };
	char *idea_json = json_print(idea->json), *source = xasprintf("spool/incoming/%s", name);
	int rc = -1;
	a.reason = source;
	if (db_begin(db) < 0) goto out;
	if (db_exec(db,
		    "INSERT INTO episodes (id, channel_id, title, slug, idea_source, idea,"
		    " priority, ticket, location, stage, idempotency_key, content_hash, source_name, pulse_event_id)"
		    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,(SELECT id FROM pulse_events WHERE id = ?))",
		    "ssssssisssssss", id, ch->db_id, idea->topic, ticket, idea->idea_source, idea_json, idea->priority,
		    ticket, stage_table[0].name, stage_table[0].name, idea->idempotency_key, hash, name,
		    json_str(idea->json, "pulse_event_id", "")) == 0 &&
	    state_born(db, c, id, &a) == 0)
		rc = db_commit(db);
out:
	if (rc < 0) db_rollback(db);
	free(source);
	free(idea_json);
	return rc;
}

/* Second half of an ingest; safe to repeat. */
static int finish_ingest(sqlite3 *db, struct config *c, const char *id)
{
	struct episode e;
	char *idea_path, *src = NULL, *name = NULL, *hash = NULL, *idea = NULL;
	sqlite3_stmt *st;
	int rc = -1;

	if (episode_load(db, c->root, id, &e) < 0) return -1;
	st = db_prep(db, "SELECT source_name, content_hash, idea FROM episodes WHERE id = ?", "s", id);
	if (!st || sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		episode_free(&e);
		return -1;
	}
	name = db_col_str(st, 0);
	hash = db_col_str(st, 1);
	idea = db_col_str(st, 2);
	sqlite3_finalize(st);

	idea_path = xasprintf("%s/idea.json", e.dir);
	src = spool_path(c->root, "incoming", name);
	if (fsio_mkdirs(e.dir) < 0) goto out;
	if (!fsio_exists(idea_path)) {
		size_t len;
		char *raw = fsio_read(src, IDEA_MAX_BYTES, &len);
		/* The user's own bytes when we still have them, else the stored copy. */
		if (raw)
			rc = fsio_write_atomic(idea_path, raw, len);
		else
			rc = fsio_write_atomic_str(idea_path, idea);
		free(raw);
		if (rc < 0) goto out;
	}
	if (repurpose_copy(db, c, &e, idea) < 0 || spool_sync_ticket(c->root, &e) < 0) goto out;
	if (fsio_exists(src)) {
		size_t len;
		char *raw = fsio_read(src, IDEA_MAX_BYTES, &len), h[65] = "";
		struct idea parsed;
		if (raw && idea_parse(raw, len, &parsed) == 0) {
			char *canon = json_print(parsed.json);
			hash_hex(canon, strlen(canon), h);
			free(canon);
			cJSON_Delete(parsed.json);
		}
		free(raw);
		if (strcmp(h, hash) == 0 && fsio_unlink_durable(src) < 0) goto out;
	}
	rc = db_exec(db, "UPDATE episodes SET ingest_done = 1 WHERE id = ?", "s", id);
	if (rc == 0)
		log_info(e.id, e.dir, "ingest.accepted", "spool/incoming/%s became episode %s, ticket spool/%s/%s",
			 name, e.id, e.location, e.ticket);
out:
	free(idea_path);
	free(src);
	free(name);
	free(hash);
	free(idea);
	episode_free(&e);
	return rc;
}

static int pending_for(sqlite3 *db, const char *name, const char *hash, char out[37])
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT id FROM episodes WHERE ingest_done = 0 AND source_name = ?"
				   " AND content_hash = ?",
				   "ss", name, hash);
	int found = st && sqlite3_step(st) == SQLITE_ROW;
	if (found) snprintf(out, 37, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return found;
}

static int accept_idea(sqlite3 *db, struct config *c, const char *name, struct idea *idea)
{
	struct channel *ch = config_channel(c, idea->channel);
	const struct stage_def *start = &stage_table[0];
	char hash[65], id[37], ticket[200], dup[300];
	const char *why;
	char *canon;

	if (!ch) return reject_channel(c, name, idea->channel);
	canon = json_print(idea->json);
	hash_hex(canon, strlen(canon), hash);
	free(canon);
	if (pending_for(db, name, hash, id)) return finish_ingest(db, c, id);
	if (find_duplicate(db, ch->db_id, idea, hash, dup, sizeof dup, &why))
		return reject(c, name, "duplicate of ticket %s: %s; nothing new was created", dup, why);
	if (repurpose_check(db, c, ch, idea->json, &start) < 0) return reject(c, name, "%s", err_msg());
	uuid_new(id);
	make_ticket(ch->id, idea->topic, id, ticket, sizeof ticket);
	if (insert_episode(db, c, ch, idea, name, hash, id, ticket, start) < 0) return -1;
	return finish_ingest(db, c, id);
}

int ingest_file(sqlite3 *db, struct config *c, const char *name)
{
	char *path, *text, *why;
	struct idea idea;
	size_t len;
	int rc, gone;

	if (ignored_name(name)) return 1;
	path = spool_path(c->root, "incoming", name);
	text = intake_read(path, &len, &gone);
	free(path);
	if (!text && gone) return 0; /* gone already: the event was stale */
	if (text && idea_parse(text, len, &idea) == 0) {
		free(text);
		rc = accept_idea(db, c, name, &idea);
		cJSON_Delete(idea.json);
		return rc;
	}
	why = xstrdup(err_msg());
	rc = reject(c, name, "%s", why);
	free(why);
	free(text);
	return rc;
}

int ingest_scan(sqlite3 *db, struct config *c)
{
	return spool_scan(db, c, "incoming", wanted_name, ingest_file);
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
		if (finish_ingest(db, c, ids[i]) < 0) log_error(ids[i], NULL, "ingest.finish", "%s", err_msg());
		free(ids[i]);
	}
	free(ids);
	return 0;
}
