/*
 * repurpose.c - an idea with idea_source "repurpose" and from: EPISODE (its
 * id, an id prefix of 8+ characters, or its ticket) makes a new episode of
 * the same channel that reuses the source's paid work: plan.json, script.md,
 * metadata.json, the narration (audio.wav, subtitles.srt, timeline.json) and
 * the avatar/ and broll/ clips are hard-linked (copied across file systems)
 * into the new episode folder, and the episode starts at the assembly stage,
 * or at the first stage whose outputs the source does not have.  The idea's
 * own fields choose the cut (shorts: true makes the Shorts cut, shorts.c).
 *
 * Invariants: a from that names no episode, several, or one of another
 * channel rejects the idea with the reason; the copy is repeatable (a file
 * already there is kept), so ingest can finish it again after a crash.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PREFIX_MIN 8

/* What a new cut reuses, in pipeline order of the stages that make them. */
static const char *const reused[] = { "plan.json",     "script.md", "metadata.json", "audio.wav", "subtitles.srt",
				      "timeline.json", "avatar/",   "broll/",        NULL };

static int is_repurpose(const cJSON *idea)
{
	return strcmp(json_str(idea, "idea_source", "manual"), "repurpose") == 0;
}

/* The source episode's id (malloc'd) in the channel, or NULL + err_set. */
static char *source_id(sqlite3 *db, const char *channel_db_id, const char *from)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT e.id, c.slug, e.channel_id = ? FROM episodes e JOIN channels c ON c.id = "
				   "e.channel_id WHERE e.deleted_at IS NULL AND (e.id = ?2 OR e.ticket = ?2 OR "
				   "(length(?2) >= ?3 AND e.id LIKE ?2 || '%')) LIMIT 2",
				   "ssi", channel_db_id, from, PREFIX_MIN);
	char *id = NULL, *other = NULL;
	int n = 0, mine = 0;

	while (st && sqlite3_step(st) == SQLITE_ROW && ++n == 1) {
		id = db_col_str(st, 0);
		other = db_col_str(st, 1);
		mine = sqlite3_column_int(st, 2);
	}
	sqlite3_finalize(st);
	if (n == 1 && mine) {
		free(other);
		return id;
	}
	if (n == 0)
		err_set("from: no episode is \"%s\" (give an episode id, an id prefix of %d+ characters or a "
			"ticket; see acog-batch status)",
			from, PREFIX_MIN);
	else if (n > 1)
		err_set("from: \"%s\" names more than one episode; give more of the id", from);
	else
		err_set("from: episode %s belongs to channel '%s'; a repurpose reuses an episode of its own "
			"channel",
			id, other);
	free(id);
	free(other);
	return NULL;
}

/* The source episode's folder (malloc'd), or NULL + err_set. */
static char *source_dir(sqlite3 *db, struct config *c, const char *channel_db_id, const cJSON *idea)
{
	const char *from = json_str(idea, "from", NULL);
	struct episode e;
	char *id, *dir = NULL;

	if (!from || !*from) {
		err_set("from: idea_source repurpose needs from: the episode to reuse (id, id prefix or ticket)");
		return NULL;
	}
	if (!(id = source_id(db, channel_db_id, from))) return NULL;
	if (episode_load(db, c->root, id, &e) == 0) {
		dir = xstrdup(e.dir);
		episode_free(&e);
	}
	free(id);
	return dir;
}

/* Assembly, unless the source lacks what an earlier stage makes. */
static const struct stage_def *first_missing(const char *src)
{
	for (size_t i = 0; reused[i]; i++) {
		char *p = xasprintf("%s/%s", src, reused[i]);
		int have = fsio_exists(p) || strchr(reused[i], '/'); /* a stage may have made no clips */
		free(p);
		if (!have) return stage_producer(reused[i]);
	}
	return stage_find("assembly");
}

int repurpose_check(sqlite3 *db, struct config *c, const struct channel *ch, const cJSON *idea,
		    const struct stage_def **start)
{
	char *src;
	if (!is_repurpose(idea)) return 0;
	if (!(src = source_dir(db, c, ch->db_id, idea))) return -1;
	*start = first_missing(src);
	free(src);
	return 0;
}

static int keep_plain(const char *name)
{
	return name[0] != '.';
}

/* A hard link where it can, a copy where it cannot; an existing one stays. */
static int reuse_file(const char *from, const char *to)
{
	if (fsio_exists(to) || link(from, to) == 0) return 0;
	if (errno != EXDEV && errno != EPERM) return err_set_errno("cannot link %s to %s", from, to);
	return fsio_copy(from, to, FSIO_NOREPLACE, NULL) < 0 ? -1 : 0;
}

static int reuse_dir(const char *from, const char *to)
{
	char **names;
	int n = fsio_list(from, &names, keep_plain), rc = n < 0 ? 0 : fsio_mkdirs(to);
	for (int i = 0; i < n && rc == 0; i++) {
		char *f = xasprintf("%s/%s", from, names[i]), *t = xasprintf("%s/%s", to, names[i]);
		rc = reuse_file(f, t);
		free(f);
		free(t);
	}
	fsio_list_free(names, n);
	return rc;
}

int repurpose_copy(sqlite3 *db, struct config *c, const struct episode *e, const char *idea_text)
{
	cJSON *idea = cJSON_Parse(idea_text ? idea_text : "");
	char *src = is_repurpose(idea) ? source_dir(db, c, e->channel_db_id, idea) : NULL;
	int rc = is_repurpose(idea) && !src ? -1 : 0;

	for (size_t i = 0; src && reused[i] && rc == 0; i++) {
		size_t n = strlen(reused[i]);
		char *f = xasprintf("%s/%.*s", src, (int)(reused[i][n - 1] == '/' ? n - 1 : n), reused[i]);
		char *t = xasprintf("%s/%.*s", e->dir, (int)(reused[i][n - 1] == '/' ? n - 1 : n), reused[i]);
		if (fsio_exists(f)) rc = reused[i][n - 1] == '/' ? reuse_dir(f, t) : reuse_file(f, t);
		free(f);
		free(t);
	}
	if (src && rc == 0) log_info(e->id, e->dir, "ingest.repurpose", "reused the paid work of %s", src);
	free(src);
	cJSON_Delete(idea);
	return rc;
}
