/*
 * bundle_import.c - a verified bundle becomes an episode of this machine,
 * queued at the upload stage, so it is published by the channel's upload
 * provider exactly as a locally made episode is (the same code path, the
 * same provider-state store, the same "never twice" rules).
 *
 * Idempotency: the episode keeps the bundle's episode id.  If this
 * database already has that id, nothing is imported again, so running
 * `upload` twice, or again after a crash, never makes a second video.  The
 * files are copied into the episode folder first (replacing leftovers of a
 * crashed run), then one short transaction inserts the row, enters the
 * upload stage and writes the audit row.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 and a description in out when the id is already known here. */
static int already_known(sqlite3 *db, const char *id, char *out, size_t n)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT status, location, COALESCE(published_url, '') FROM episodes"
				   " WHERE id = ?",
				   "s", id);
	int found = st && sqlite3_step(st) == SQLITE_ROW;

	if (found)
		snprintf(out, n, "episode %s is already on this machine (%s, spool/%s%s%s)", id,
			 sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
			 *sqlite3_column_text(st, 2) ? ", " : "", sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
	return found;
}

/* What stands for the idea of an imported episode (idea.json and episodes.idea). */
static cJSON *import_idea(const char *bundle, const cJSON *m)
{
	cJSON *idea = cJSON_CreateObject();
	const char *at = json_str(m, "publish_at", NULL);

	cJSON_AddStringToObject(idea, "channel", json_str(m, "channel", ""));
	cJSON_AddStringToObject(idea, "topic", json_str(m, "title", "(bundle)"));
	cJSON_AddStringToObject(idea, "imported_from", bundle);
	if (at) cJSON_AddStringToObject(idea, "publish_at", at);
	return idea;
}

/* The listed files (settings.json stays in the bundle), idea.json, schedule.json. */
static int copy_in(const char *bundle, const char *dir, const cJSON *m, const cJSON *idea)
{
	const cJSON *f;
	const char *at = json_str(m, "publish_at", NULL);
	int rc = fsio_mkdirs(dir);

	cJSON_ArrayForEach (f, cJSON_GetObjectItem(m, "files")) {
		const char *name = json_str(f, "name", "");
		char *from = xasprintf("%s/%s", bundle, name), *to = xasprintf("%s/%s", dir, name);
		if (rc == 0 && strcmp(name, "settings.json"))
			rc = bundle_copy_file(from, to, json_str(f, "sha256", ""));
		free(from), free(to);
	}
	if (rc == 0) {
		char *p = xasprintf("%s/idea.json", dir);
		rc = json_write_file(p, idea);
		free(p);
	}
	if (rc == 0 && at) rc = schedule_file_write(dir, at, "bundle");
	return rc;
}

static int insert_row(sqlite3 *db, struct config *c, const struct channel *ch, const cJSON *m, const char *hash,
		      const char *bundle, const cJSON *idea)
{
	const char *id = json_str(m, "episode_id", ""), *title = json_str(m, "title", "");
	char ticket[200], slug[48], *src, *idea_json = json_print(idea);
	struct state_args a = { .actor_type = STATE_USER, .actor = "upload", .stage = stage_find("upload") };
	cJSON *nv = cJSON_CreateObject();
	int rc = -1;

	slugify(title, slug, sizeof slug);
	snprintf(ticket, sizeof ticket, "%s-%s-%.8s", ch->id, slug, id);
	src = xasprintf("bundle:%s", bundle);
	cJSON_AddStringToObject(nv, "source", src);
	a.reason = src;
	a.extra = nv;
	if (db_begin(db) < 0) goto out;
	/* Born 'new'; the state machine's first event queues it at the upload
	 * stage with its job and audit row, in the same transaction. */
	if (db_exec(db,
		    "INSERT INTO episodes (id, channel_id, title, status, idea, ticket, location, stage,"
		    " content_hash, source_name, ingest_done, scheduled_at) VALUES (?,?,?,'publishing',?,?,"
		    "'upload','upload',?,?,1,?)",
		    "ssssssss", id, ch->db_id, title, idea_json, ticket, hash, src,
		    json_str(m, "publish_at", NULL)) == 0 &&
	    state_born(db, c, id, &a) == 0)
		rc = db_commit(db);
	if (rc < 0) db_rollback(db);
out:
	cJSON_Delete(nv);
	free(idea_json);
	free(src);
	return rc;
}

int bundle_import(sqlite3 *db, struct config *c, const char *bundle, const cJSON *m, const char *manifest_sha,
		  char *msg, size_t n)
{
	const char *id = json_str(m, "episode_id", ""), *chan = json_str(m, "channel", "");
	struct channel *ch = config_channel(c, chan);
	struct episode e;
	cJSON *idea;
	char *dir;
	int rc;

	if (already_known(db, id, msg, n)) return 1;
	if (!ch)
		return err_set("%s: its channel '%s' is not set up on this machine; create channels/%s/channel.yaml "
			       "with providers.upload (youtube) and run upload again",
			       bundle, chan, chan);
	dir = episode_dir(c->root, ch->id, id);
	idea = import_idea(bundle, m);
	rc = copy_in(bundle, dir, m, idea);
	if (rc == 0) rc = insert_row(db, c, ch, m, manifest_sha, bundle, idea);
	if (rc == 0 && episode_load(db, c->root, id, &e) == 0) {
		rc = spool_sync_ticket(c->root, &e);
		episode_free(&e);
	}
	if (rc == 0) {
		log_info(id, dir, "bundle.imported", "bundle %s queued for upload on channel %s", bundle, ch->id);
		snprintf(msg, n, "episode %s (channel %s) is queued at the upload stage", id, ch->id);
	}
	cJSON_Delete(idea);
	free(dir);
	return rc;
}
