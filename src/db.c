/*
 * db.c - the SQLite database (acog.db, WAL mode): opening, applying the
 * compiled-in schema, migrations, and prepared statements with bound
 * parameters (the only way SQL is run).  Transactions are short: callers
 * never keep one open across a network call or a child process.
 */
#include "daemon.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

/* Migrations from version N to N+1; index 0 upgrades 1 -> 2.  Existing rows
 * keep working: each migration fills what it adds from what was there. */
/* clang-format off: a table keeps one row per line */
static const char *const migrations[] = {
	/* 1 -> 2: the provider-state store; async job ids move into it */
	"CREATE TABLE provider_state (episode_id TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,"
	" stage TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
	" updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
	" PRIMARY KEY (episode_id, stage, key));"
	" INSERT OR REPLACE INTO provider_state (episode_id, stage, key, value)"
	" SELECT j.episode_id, j.stage, e.key, e.value FROM jobs j, json_each(j.provider_job_id) e"
	" WHERE j.provider_job_id IS NOT NULL AND json_valid(j.provider_job_id) AND j.status IN ('queued','running')",
	/* 2 -> 3: the episode's state and hold kind become columns (they were
	 * read from status, gate_pending, location and a 'budget:' prefix), and
	 * channel-wide holds get a table; budget holds become channel holds. */
	"ALTER TABLE episodes ADD COLUMN state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ("
	" 'new', 'queued', 'running', 'awaiting', 'held', 'failed', 'cancelled', 'published'));"
	" ALTER TABLE episodes ADD COLUMN hold_kind TEXT CHECK (hold_kind IS NULL OR hold_kind IN ("
	" 'budget', 'quota', 'upload_limit', 'auth', 'user', 'cancelled', 'rejected'));"
	" CREATE INDEX idx_episodes_state ON episodes(state);"
	" CREATE TABLE channel_holds (channel_id TEXT NOT NULL REFERENCES channels(id), stage TEXT NOT NULL,"
	" kind TEXT NOT NULL CHECK (kind IN ('budget', 'quota', 'upload_limit', 'auth', 'user')),"
	" reason TEXT NOT NULL, until TEXT,"
	" created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
	" PRIMARY KEY (channel_id, stage, kind));"
	" UPDATE episodes SET state = CASE"
	"  WHEN status IN ('published', 'failed', 'cancelled') THEN status"
	"  WHEN gate_pending IS NOT NULL THEN 'awaiting'"
	"  WHEN location = 'held' THEN 'held'"
	"  WHEN EXISTS (SELECT 1 FROM jobs j WHERE j.episode_id = episodes.id AND j.status = 'running') THEN 'running'"
	"  ELSE 'queued' END;"
	" UPDATE episodes SET hold_kind = CASE"
	"  WHEN state = 'cancelled' AND hold_reason LIKE 'rejected%' THEN 'rejected'"
	"  WHEN state = 'cancelled' THEN 'cancelled'"
	"  WHEN hold_reason LIKE 'budget:%' THEN 'budget' ELSE 'user' END"
	" WHERE state IN ('held', 'cancelled');"
	" INSERT OR IGNORE INTO channel_holds (channel_id, stage, kind, reason, until)"
	" SELECT channel_id, '*', 'budget', hold_reason, MAX(hold_until) FROM episodes"
	" WHERE state = 'held' AND hold_kind = 'budget' GROUP BY channel_id",
	/* 3 -> 4: the publishing slot (schedule.c) */
	"ALTER TABLE episodes ADD COLUMN scheduled_at TEXT;"
	" CREATE INDEX idx_episodes_scheduled ON episodes(channel_id, scheduled_at) WHERE scheduled_at IS NOT NULL",
	/* 4 -> 5: trend intake (pulse.c) keys events and records what became of them, */
	"ALTER TABLE pulse_events ADD COLUMN source_file TEXT;"
	" ALTER TABLE pulse_events ADD COLUMN outcome TEXT;"
	" CREATE UNIQUE INDEX idx_pulse_events_key ON pulse_events(source, source_id);"
	/* and series and follow-ups (ingest.c, context.c) */
	" ALTER TABLE episodes ADD COLUMN series TEXT;"
	" ALTER TABLE episodes ADD COLUMN series_number INTEGER;"
	" ALTER TABLE episodes ADD COLUMN follows_id TEXT REFERENCES episodes(id) ON DELETE SET NULL;"
	" CREATE INDEX idx_episodes_series ON episodes(channel_id, series, series_number) WHERE series IS NOT NULL",
	/* 5 -> 6: flat cost as history grows (issue 12): indexes for every
	 * per-event query, and the daemon's clean-stop mark (spool.c) */
	"CREATE INDEX idx_episodes_ingest_pending ON episodes(ingest_done, source_name) WHERE ingest_done = 0;"
	" CREATE INDEX idx_episodes_queue ON episodes(channel_id, priority DESC, created_at) WHERE state = 'queued';"
	" CREATE INDEX idx_episodes_hold_until ON episodes(hold_until) WHERE state = 'held';"
	" CREATE INDEX idx_episodes_updated_at ON episodes(updated_at);"
	" CREATE INDEX idx_cost_entries_channel_time ON cost_entries(channel_id, created_at);"
	" CREATE INDEX idx_audit_logs_entity_id ON audit_logs(entity_id);"
	" CREATE TABLE daemon_marks (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
	/* 6 -> 7: CPU per stage transition (issue 12).  episodes and jobs are
	 * rebuilt (SQLite's 12-step table change: create, copy, drop, rename,
	 * indexes; foreign keys off around it and checked before the commit,
	 * migrate()) so that their enum CHECKs, and the partial index on status,
	 * are chains of comparisons: an IN list of more than two values made
	 * SQLite build a temporary b-tree on every insert and update.  Their
	 * updated_at triggers go with the old tables: the statements set it. */
	"CREATE TABLE episodes_v7 (id TEXT PRIMARY KEY, channel_id TEXT NOT NULL REFERENCES channels(id)"
	" ON DELETE RESTRICT, pulse_event_id TEXT REFERENCES pulse_events(id) ON DELETE SET NULL, title"
	" TEXT CHECK (title IS NULL OR length(title) <= 500), slug TEXT CHECK (slug IS NULL OR"
	" length(slug) <= 200), status TEXT NOT NULL DEFAULT 'idea' CHECK (status = 'idea' OR status ="
	" 'planning' OR status = 'scripting' OR status = 'script_review' OR status = 'metadata' OR status"
	" = 'audio' OR status = 'avatar' OR status = 'broll' OR status = 'assembly' OR status = 'ready'"
	" OR status = 'publishing' OR status = 'published' OR status = 'failed' OR status = 'cancelled'),"
	" idea_source TEXT NOT NULL DEFAULT 'manual' CHECK (idea_source = 'manual' OR idea_source ="
	" 'pulse' OR idea_source = 'series' OR idea_source = 'followup' OR idea_source = 'repurpose'),"
	" idea TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(idea)), plan TEXT NOT NULL DEFAULT '{}' CHECK"
	" (json_valid(plan)), script TEXT, script_metadata TEXT NOT NULL DEFAULT '{}' CHECK"
	" (json_valid(script_metadata)), metadata TEXT NOT NULL DEFAULT '{}' CHECK"
	" (json_valid(metadata)), pipeline_state TEXT NOT NULL DEFAULT '{}' CHECK"
	" (json_valid(pipeline_state)), published_url TEXT CHECK (published_url IS NULL OR"
	" length(published_url) <= 500), published_at TEXT, priority INTEGER NOT NULL DEFAULT 0,"
	" retry_count INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at TEXT NOT NULL DEFAULT"
	" (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), updated_at TEXT NOT NULL DEFAULT"
	" (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), deleted_at TEXT, ticket TEXT NOT NULL UNIQUE, location"
	" TEXT NOT NULL, stage TEXT NOT NULL, gate_pending TEXT CHECK (gate_pending IS NULL OR"
	" gate_pending IN ('script_review', 'review')), hold_reason TEXT, hold_until TEXT, review_notes"
	" TEXT, idempotency_key TEXT, content_hash TEXT NOT NULL, source_name TEXT NOT NULL, ingest_done"
	" INTEGER NOT NULL DEFAULT 0 CHECK (ingest_done IN (0, 1)), state TEXT NOT NULL DEFAULT 'new'"
	" CHECK (state = 'new' OR state = 'queued' OR state = 'running' OR state = 'awaiting' OR state ="
	" 'held' OR state = 'failed' OR state = 'cancelled' OR state = 'published'), hold_kind TEXT CHECK"
	" (hold_kind IS NULL OR hold_kind = 'budget' OR hold_kind = 'quota' OR hold_kind = 'upload_limit'"
	" OR hold_kind = 'auth' OR hold_kind = 'user' OR hold_kind = 'cancelled' OR hold_kind ="
	" 'rejected'), scheduled_at TEXT, series TEXT, series_number INTEGER, follows_id TEXT REFERENCES"
	" episodes(id) ON DELETE SET NULL); INSERT INTO episodes_v7 (id, channel_id, pulse_event_id,"
	" title, slug, status, idea_source, idea, plan, script, script_metadata, metadata,"
	" pipeline_state, published_url, published_at, priority, retry_count, last_error, created_at,"
	" updated_at, deleted_at, ticket, location, stage, gate_pending, hold_reason, hold_until,"
	" review_notes, idempotency_key, content_hash, source_name, ingest_done, state, hold_kind,"
	" scheduled_at, series, series_number, follows_id) SELECT id, channel_id, pulse_event_id, title,"
	" slug, status, idea_source, idea, plan, script, script_metadata, metadata, pipeline_state,"
	" published_url, published_at, priority, retry_count, last_error, created_at, updated_at,"
	" deleted_at, ticket, location, stage, gate_pending, hold_reason, hold_until, review_notes,"
	" idempotency_key, content_hash, source_name, ingest_done, state, hold_kind, scheduled_at,"
	" series, series_number, follows_id FROM episodes; DROP TABLE episodes; ALTER TABLE episodes_v7"
	" RENAME TO episodes; CREATE INDEX idx_episodes_scheduled ON episodes(channel_id, scheduled_at)"
	" WHERE scheduled_at IS NOT NULL; CREATE INDEX idx_episodes_series ON episodes(channel_id,"
	" series, series_number) WHERE series IS NOT NULL; CREATE INDEX idx_episodes_channel_id ON"
	" episodes(channel_id) WHERE deleted_at IS NULL; CREATE INDEX idx_episodes_status ON"
	" episodes(status) WHERE deleted_at IS NULL; CREATE INDEX idx_episodes_channel_status ON"
	" episodes(channel_id, status) WHERE deleted_at IS NULL; CREATE INDEX idx_episodes_created_at ON"
	" episodes(created_at DESC) WHERE deleted_at IS NULL; CREATE INDEX idx_episodes_pulse_event ON"
	" episodes(pulse_event_id) WHERE pulse_event_id IS NOT NULL AND deleted_at IS NULL; CREATE INDEX"
	" idx_episodes_priority ON episodes(priority DESC, created_at ASC) WHERE (status = 'idea' OR"
	" status = 'planning' OR status = 'scripting' OR status = 'script_review' OR status = 'audio' OR"
	" status = 'avatar' OR status = 'broll' OR status = 'assembly') AND deleted_at IS NULL; CREATE"
	" UNIQUE INDEX idx_episodes_slug_per_channel ON episodes(channel_id, slug) WHERE deleted_at IS"
	" NULL AND slug IS NOT NULL; CREATE UNIQUE INDEX idx_episodes_idempotency ON episodes(channel_id,"
	" idempotency_key) WHERE idempotency_key IS NOT NULL AND deleted_at IS NULL; CREATE UNIQUE INDEX"
	" idx_episodes_content ON episodes(channel_id, content_hash) WHERE deleted_at IS NULL; CREATE"
	" INDEX idx_episodes_state ON episodes(state); CREATE INDEX idx_episodes_ingest_pending ON"
	" episodes(ingest_done, source_name) WHERE ingest_done = 0; CREATE INDEX idx_episodes_queue ON"
	" episodes(channel_id, priority DESC, created_at) WHERE state = 'queued'; CREATE INDEX"
	" idx_episodes_hold_until ON episodes(hold_until) WHERE state = 'held'; CREATE INDEX"
	" idx_episodes_updated_at ON episodes(updated_at); CREATE TABLE jobs_v7 (id TEXT PRIMARY KEY,"
	" episode_id TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE, stage TEXT NOT NULL CHECK"
	" (stage = 'planning' OR stage = 'scripting' OR stage = 'script_review' OR stage = 'metadata' OR"
	" stage = 'audio' OR stage = 'avatar' OR stage = 'broll' OR stage = 'assembly' OR stage ="
	" 'upload'), status TEXT NOT NULL DEFAULT 'queued' CHECK (status = 'queued' OR status = 'running'"
	" OR status = 'completed' OR status = 'failed' OR status = 'cancelled'), celery_task_id TEXT,"
	" input_params TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(input_params)), result TEXT CHECK"
	" (result IS NULL OR json_valid(result)), error_message TEXT, started_at TEXT, completed_at TEXT,"
	" retry_count INTEGER NOT NULL DEFAULT 0, max_retries INTEGER NOT NULL DEFAULT 3, cost_usd REAL,"
	" tokens_used INTEGER, created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
	" updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), next_attempt_at TEXT,"
	" provider TEXT, provider_job_id TEXT, input_hash TEXT, cached INTEGER NOT NULL DEFAULT 0 CHECK"
	" (cached IN (0, 1))); INSERT INTO jobs_v7 (id, episode_id, stage, status, celery_task_id,"
	" input_params, result, error_message, started_at, completed_at, retry_count, max_retries,"
	" cost_usd, tokens_used, created_at, updated_at, next_attempt_at, provider, provider_job_id,"
	" input_hash, cached) SELECT id, episode_id, stage, status, celery_task_id, input_params, result,"
	" error_message, started_at, completed_at, retry_count, max_retries, cost_usd, tokens_used,"
	" created_at, updated_at, next_attempt_at, provider, provider_job_id, input_hash, cached FROM"
	" jobs; DROP TABLE jobs; ALTER TABLE jobs_v7 RENAME TO jobs; CREATE INDEX idx_jobs_episode_id ON"
	" jobs(episode_id); CREATE INDEX idx_jobs_status ON jobs(status) WHERE status IN ('queued',"
	" 'running'); CREATE INDEX idx_jobs_episode_stage ON jobs(episode_id, stage); CREATE INDEX"
	" idx_jobs_celery_task ON jobs(celery_task_id) WHERE celery_task_id IS NOT NULL; CREATE INDEX"
	" idx_jobs_created_at ON jobs(created_at DESC); CREATE UNIQUE INDEX idx_jobs_one_active ON"
	" jobs(episode_id) WHERE status IN ('queued', 'running'); CREATE INDEX idx_jobs_next_attempt ON"
	" jobs(next_attempt_at) WHERE status = 'queued'",
	/* 7 -> 8: fewer pages per idea and per transition (issue 12): updated_at
	 * changes on every transition, so its index is written twice on each
	 * (its old key's leaf and the right edge); start-up only asks it about
	 * finished episodes (the others it takes by state), which rarely move. */
	"DROP INDEX idx_episodes_updated_at;"
	" CREATE INDEX idx_episodes_finished_updated ON episodes(updated_at)"
	" WHERE state = 'failed' OR state = 'cancelled' OR state = 'published';"
	/* and two indexes whose key is the prefix of another's (same WHERE),
	 * which serves every lookup they did */
	" DROP INDEX idx_jobs_episode_id;"
	" DROP INDEX idx_episodes_channel_id",
	NULL
};
/* clang-format on */
#define SCHEMA_VERSION 8

static int schema_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	int v = 0;
	if (sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL) != SQLITE_OK) return 0;
	if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* What an SQLite result code means to the person who ran the command: busy
 * and locked are worth another try (75), a full or failing disk is I/O (74),
 * anything else unexpected is a bug (70). */
/* clang-format off: a table keeps one row per line */
static const struct {
	int rc;
	enum err_kind kind;
} sqlite_kinds[] = {
	{ SQLITE_BUSY, ERR_TEMPFAIL },   { SQLITE_LOCKED, ERR_TEMPFAIL }, { SQLITE_IOERR, ERR_IOERR },
	{ SQLITE_FULL, ERR_IOERR },      { SQLITE_CORRUPT, ERR_DATAERR }, { SQLITE_NOTADB, ERR_DATAERR },
	{ SQLITE_READONLY, ERR_NOPERM }, { SQLITE_PERM, ERR_NOPERM },     { SQLITE_CANTOPEN, ERR_CANTCREAT },
	{ SQLITE_NOMEM, ERR_SOFTWARE },
};
/* clang-format on */

static enum err_kind kind_of(int rc)
{
	for (size_t i = 0; i < sizeof sqlite_kinds / sizeof sqlite_kinds[0]; i++)
		if (sqlite_kinds[i].rc == (rc & 0xff)) return sqlite_kinds[i].kind;
	return ERR_SOFTWARE;
}

/* What to do about a busy database, for the messages that can meet one. */
static const char *busy_hint(int rc)
{
	return kind_of(rc) == ERR_TEMPFAIL ? "; another process is writing to the database: try again in a moment" : "";
}

/* How long a statement waits for another process's lock.  Test builds
 * take ACOG_TEST_BUSY_MS, so a lock outlasting it is quick to provoke. */
static int busy_ms(void)
{
#ifdef ACOG_TEST
	const char *v = getenv("ACOG_TEST_BUSY_MS");
	if (v && *v) return atoi(v);
#endif
	return 10000;
}

static int exec_script(sqlite3 *db, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		err_set_kind(kind_of(rc), "%s failed: %s%s", what, msg ? msg : "?", busy_hint(rc));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* The rows whose references point nowhere, which a migration must not
 * leave behind (it runs with foreign keys off): "" when there are none. */
static int broken_references(sqlite3 *db, char *what, size_t size)
{
	sqlite3_stmt *st;
	int rc;
	what[0] = 0;
	if ((rc = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL)) != SQLITE_OK)
		return err_set_kind(kind_of(rc), "checking references failed: %s", sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(what, size, "row %lld of %s refers to a missing row of %s", sqlite3_column_int64(st, 1),
			 (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 2));
	sqlite3_finalize(st);
	return 0;
}

/* One migration, v -> v + 1, in one transaction.  Another process may have
 * done it while this one waited for the lock: then there is nothing to do. */
static int migrate_one(sqlite3 *db, const char *path, int v)
{
	char *sql, broken[256];
	int rc;
	if (exec_script(db, "BEGIN IMMEDIATE", "migrating the database") < 0) return -1;
	if (schema_version(db) != v) return exec_script(db, "COMMIT", "migrating the database");
	sql = xasprintf("%s; UPDATE schema_version SET version = %d", migrations[v - 1], v + 1);
	rc = exec_script(db, sql, "migrating the database");
	free(sql);
	if (rc == 0 && (rc = broken_references(db, broken, sizeof broken)) == 0 && broken[0])
		rc = err_set_kind(ERR_DATAERR,
				  "%s: migrating to schema version %d found %s; nothing was changed: "
				  "`sqlite3 %s 'PRAGMA foreign_key_check'` lists every such row; "
				  "delete or repair them, or restore a backup, and start again",
				  path, v + 1, broken, path);
	if (rc == 0) rc = exec_script(db, "COMMIT", "migrating the database");
	if (rc < 0) db_rollback(db);
	return rc;
}

static int migrate(sqlite3 *db, const char *path)
{
	int v = schema_version(db), rc = 0;
	if (v == 0) {
		if (exec_script(db, "BEGIN IMMEDIATE", "begin") < 0) return -1;
		if (schema_version(db) == 0 && exec_script(db, schema_sql, "applying schema.sql") < 0) {
			db_rollback(db);
			return -1;
		}
		return exec_script(db, "COMMIT", "commit");
	}
	if (v > SCHEMA_VERSION)
		return err_set_kind(ERR_DATAERR,
				    "%s has schema version %d but this acog-batch knows only up to %d; "
				    "use a newer acog-batch",
				    path, v, SCHEMA_VERSION);
	if (v == SCHEMA_VERSION) return 0;
	/* A table rebuilt by a migration is dropped: with foreign keys on, that
	 * would delete or cascade through the rows that refer to it.  The pragma
	 * is a no-op inside a transaction, so it goes around them. */
	if (exec_script(db, "PRAGMA foreign_keys=OFF", "migrating the database") < 0) return -1;
	for (; rc == 0 && v < SCHEMA_VERSION && migrations[v - 1]; v++) rc = migrate_one(db, path, v);
	if (exec_script(db, "PRAGMA foreign_keys=ON", "migrating the database") < 0) return -1;
	return rc;
}

sqlite3 *db_open(const char *root, int create)
{
	char *path = xasprintf("%s/acog.db", root);
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), rc;

	/* SQLite counts every allocation for sqlite3_status() under a global
	 * mutex: about 5 % of the daemon's instructions per stage transition,
	 * for figures nothing reads.  Only possible before its first use (a
	 * later call just fails, harmlessly). */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

	if (!create && !fsio_exists(path)) {
		err_set_kind(ERR_NOINPUT, "no database at %s; run `acog-batch -C %s init` first", path, root);
		goto fail;
	}
	if ((rc = sqlite3_open_v2(path, &db, flags, NULL)) != SQLITE_OK) {
		err_set_kind(kind_of(rc), "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(db, busy_ms());
	if (exec_script(db,
			"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
			"PRAGMA foreign_keys=ON;",
			path) < 0)
		goto fail;
	db_test_hook(db);
	if (migrate(db, path) < 0) goto fail;
	free(path);
	return db;
fail:
	if (db) sqlite3_close(db);
	free(path);
	return NULL;
}

#ifdef ACOG_TEST
/* Every commit, autocommit included, is a durable point (fsio_durable).  A
 * WAL hook replaces SQLite's auto-checkpoint hook, so it checkpoints the
 * same way (PASSIVE at 1000 pages). */
static int wal_durable(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)arg;
	fsio_durable("sqlite commit");
	if (pages >= 1000) sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

/* episodes and jobs have no updated_at trigger (schema.sql): every UPDATE
 * of them sets it, and test builds refuse one that does not (a missed one
 * would hide the change from start-up reconciliation, spool.c).  The
 * authorizer sees each column an UPDATE sets while vprep prepares. */
static struct {
	int on;
	unsigned set, touched; /* bit 0 episodes, bit 1 jobs */
} upd;

static int upd_auth(void *arg, int action, const char *table, const char *column, const char *dbname,
		    const char *trigger)
{
	unsigned bit = !table ? 0 : !strcmp(table, "episodes") ? 1 : !strcmp(table, "jobs") ? 2 : 0;
	(void)arg;
	(void)dbname;
	if (upd.on && action == SQLITE_UPDATE && bit && !trigger) {
		upd.set |= bit;
		if (column && !strcmp(column, "updated_at")) upd.touched |= bit;
	}
	return SQLITE_OK;
}

/* A bug in the code, not in anything a user gave: stop loudly (an error
 * return could be logged and retried, and the statement stays cached). */
static void touch_check(const char *sql)
{
	unsigned miss = upd.set & ~upd.touched;
	upd.on = 0;
	if (!miss) return;
	fprintf(stderr, "acog-batch: bug: an UPDATE of %s without updated_at (add DB_TOUCH): %s\n",
		miss & 1 ? "episodes" : "jobs", sql);
	abort();
}

void db_test_hook(sqlite3 *db)
{
	if (getenv("ACOG_CRASH_COUNT") || getenv("ACOG_CRASH_AFTER")) sqlite3_wal_hook(db, wal_durable, NULL);
	sqlite3_set_authorizer(db, upd_auth, NULL);
}
#endif

/* Checkpoints off the event path, for the daemon's connection.  SQLite's
 * own auto-checkpoint runs inside the commit that takes the WAL past 1000
 * pages: that commit (and the idea or stage end waiting on it) then also
 * waits for those pages to be copied into acog.db and for its fdatasync,
 * 5-7 ms on a database of 100,000 episodes, which was the whole tail of
 * pickup latency.  Here the commit only wakes a thread that checkpoints on
 * its own connection; PASSIVE never blocks a writer, so the next idea's
 * commit goes on meanwhile.  Every commit is durable in the WAL as before
 * (synchronous=FULL); the checkpoint only moves pages into the main file.
 * Idle, the thread sleeps on a condition variable: no system calls.  If it
 * cannot keep up (a checkpoint failing), the commit at ten times the size
 * checkpoints itself, as SQLite would have, so the WAL stays bounded.
 * While an idea waits for its ticket (db_checkpoint_hold) the wake-up waits
 * too: the checkpoint's fdatasync of acog.db then runs beside the ingest's
 * tail (idea.json, the incoming file's removal), not in front of the
 * ticket's own fsync on the same disk. */
#define CKPT_PAGES 1000
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	sqlite3 *db; /* the connection whose commits wake the thread */
	char *path;
	int want, stop, held, pending;
	int last; /* the WAL's frames at the last wake-up (0 after it restarted) */
} ckpt = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *ckpt_thread(void *arg)
{
	sqlite3 *own = NULL;
	(void)arg;
	pthread_mutex_lock(&ckpt.mu);
	for (;;) {
		while (!ckpt.want && !ckpt.stop) pthread_cond_wait(&ckpt.cv, &ckpt.mu);
		if (ckpt.stop) break;
		ckpt.want = 0;
		pthread_mutex_unlock(&ckpt.mu);
		if (!own && sqlite3_open_v2(ckpt.path, &own, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK)
			/* A connection finds the WAL at its first read: until then a checkpoint does nothing. */
			sqlite3_exec(own, "PRAGMA schema_version", NULL, NULL, NULL);
		sqlite3_wal_checkpoint_v2(own, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&ckpt.mu);
	}
	pthread_mutex_unlock(&ckpt.mu);
	sqlite3_close(own);
	return NULL;
}

/* With ckpt.mu held. */
static void ckpt_wake(void)
{
	if (!ckpt.want) pthread_cond_signal(&ckpt.cv); /* else it has not woken yet: once is enough */
	ckpt.want = 1;
	ckpt.pending = 0;
}

/* SQLite's WAL hook, after every commit of the daemon's connection. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	(void)arg;
#ifdef ACOG_TEST
	if (getenv("ACOG_CRASH_COUNT") || getenv("ACOG_CRASH_AFTER")) fsio_durable("sqlite commit");
#endif
	if (pages < ckpt.last) ckpt.last = 0; /* the WAL started again from its beginning */
	if (pages >= 10 * CKPT_PAGES) {
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	} else if (pages - ckpt.last >= CKPT_PAGES) {
		/* Once per CKPT_PAGES new frames: a checkpoint that a commit
		 * overlapped leaves the WAL as long (it starts again only after a
		 * complete one), and waking on every commit then meant a small
		 * checkpoint, and an fdatasync of acog.db, per commit. */
		ckpt.last = pages;
		pthread_mutex_lock(&ckpt.mu);
		if (ckpt.held)
			ckpt.pending = 1;
		else
			ckpt_wake();
		pthread_mutex_unlock(&ckpt.mu);
	}
	return SQLITE_OK;
}

void db_checkpoint_hold(int hold)
{
	if (!ckpt.db) return;
	pthread_mutex_lock(&ckpt.mu);
	ckpt.held = hold;
	if (!hold && ckpt.pending) ckpt_wake();
	pthread_mutex_unlock(&ckpt.mu);
}

void db_checkpoint_aside(sqlite3 *db, const char *root)
{
	if (ckpt.db) return;
	ckpt.path = xasprintf("%s/acog.db", root);
	ckpt.stop = ckpt.want = ckpt.held = ckpt.pending = ckpt.last = 0;
	if (pthread_create(&ckpt.th, NULL, ckpt_thread, NULL) != 0) { /* SQLite's auto-checkpoint stays */
		free(ckpt.path);
		ckpt.path = NULL;
		return;
	}
	ckpt.db = db;
	sqlite3_wal_hook(db, ckpt_hook, NULL); /* replaces the auto-checkpoint (and the test hook) */
}

static void ckpt_stop(sqlite3 *db)
{
	if (!ckpt.db || ckpt.db != db) return;
	pthread_mutex_lock(&ckpt.mu);
	ckpt.stop = 1;
	pthread_cond_signal(&ckpt.cv);
	pthread_mutex_unlock(&ckpt.mu);
	pthread_join(ckpt.th, NULL);
	free(ckpt.path);
	ckpt.path = NULL;
	ckpt.db = NULL;
}

static int cached_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);

/* BEGIN and COMMIT from the statement cache: sqlite3_exec would parse and
 * prepare them again for every transaction (about 4 % of the instructions
 * of a stage transition). */
static int exec_cached(sqlite3 *db, const char *sql, const char *what)
{
	sqlite3_stmt *st = NULL;
	int rc = cached_prepare(db, sql, &st);
	if (rc == SQLITE_OK) rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) err_set_kind(kind_of(rc), "%s failed: %s%s", what, sqlite3_errmsg(db), busy_hint(rc));
	if (st) db_done(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int db_begin(sqlite3 *db)
{
	return exec_cached(db, "BEGIN IMMEDIATE", "starting a transaction");
}
int db_commit(sqlite3 *db)
{
	return exec_cached(db, "COMMIT", "committing a transaction");
}

void db_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* The statement cache: the daemon runs the same few statements on every
 * event, and preparing one costs far more than running it on an index.  A
 * statement is found by the address of its SQL text (a string literal, so
 * one address per call site) and handed out again once it was reset. */
#define STMT_CACHE 128
static struct {
	sqlite3 *db;
	const char *sql;
	sqlite3_stmt *st;
	int busy; /* handed out and not yet back through db_done */
} stmt_cache[STMT_CACHE];

static size_t cache_slot(sqlite3 *db, const char *sql)
{
	size_t h = ((uintptr_t)sql >> 3 ^ (uintptr_t)db >> 4) % STMT_CACHE;
	for (size_t k = 0; k < STMT_CACHE; k++, h = (h + 1) % STMT_CACHE)
		if (!stmt_cache[h].st || (stmt_cache[h].sql == sql && stmt_cache[h].db == db)) return h;
	return STMT_CACHE; /* full: prepare afresh */
}

#ifdef ACOG_TEST
/* Test builds: ACOG_TEST_PLANS names a file that gets the query plan of
 * every cached (per-event) statement, "sql<TAB>plan line" per line, so a
 * test can prove none of them scans a table that grows with history. */
static void log_plan(sqlite3 *db, const char *sql)
{
	const char *path = getenv("ACOG_TEST_PLANS");
	char *q;
	sqlite3_stmt *st;
	FILE *f;
	if (!path || !(f = fopen(path, "a"))) return;
	q = xasprintf("EXPLAIN QUERY PLAN %s", sql);
	if (sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) fprintf(f, "%s\t%s\n", sql, sqlite3_column_text(st, 3));
		sqlite3_finalize(st);
	}
	free(q);
	fclose(f);
}
#else
#define log_plan(db, sql) ((void)0)
#endif

/* A cached statement when one is free (not being stepped by a caller up
 * the stack), else a fresh one that db_done finalizes. */
static int cached_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	size_t h = cache_slot(db, sql);
	int rc;
	/* An address can be reused by other text (SQL built at run time): compare it. */
	if (h < STMT_CACHE && stmt_cache[h].st && !stmt_cache[h].busy && strcmp(sqlite3_sql(stmt_cache[h].st), sql)) {
		sqlite3_finalize(stmt_cache[h].st);
		stmt_cache[h].st = NULL;
	}
	if (h < STMT_CACHE && stmt_cache[h].st && !stmt_cache[h].busy) {
		stmt_cache[h].busy = 1;
		*st = stmt_cache[h].st;
		return SQLITE_OK;
	}
	if (h == STMT_CACHE || stmt_cache[h].st) return sqlite3_prepare_v2(db, sql, -1, st, NULL);
	rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc == SQLITE_OK) {
		stmt_cache[h].db = db;
		stmt_cache[h].sql = sql;
		stmt_cache[h].st = *st;
		stmt_cache[h].busy = 1;
		log_plan(db, sql);
	}
	return rc;
}

void db_done(sqlite3_stmt *st)
{
	for (size_t i = 0; st && i < STMT_CACHE; i++)
		if (stmt_cache[i].st == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			stmt_cache[i].busy = 0;
			return;
		}
	sqlite3_finalize(st);
}

/* Before closing: the cache's statements of this connection go. */
static void cache_drop(sqlite3 *db)
{
	for (size_t i = 0; i < STMT_CACHE; i++)
		if (stmt_cache[i].db == db) {
			sqlite3_finalize(stmt_cache[i].st);
			memset(&stmt_cache[i], 0, sizeof stmt_cache[i]);
		}
	/* Open addressing: re-insert the others so their probe chains stay whole. */
	for (size_t i = 0; i < STMT_CACHE; i++)
		if (stmt_cache[i].st) {
			typeof(stmt_cache[0]) e = stmt_cache[i];
			memset(&stmt_cache[i], 0, sizeof e);
			stmt_cache[cache_slot(e.db, e.sql)] = e;
		}
}

void db_close(sqlite3 *db)
{
	if (!db) return;
	ckpt_stop(db); /* first: the main connection is then the last to close (and checkpoints) */
	cache_drop(db);
	sqlite3_close(db);
}

static sqlite3_stmt *vprep(sqlite3 *db, int cache, const char *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *st;
	int i = 1, prc;
#ifdef ACOG_TEST
	upd.on = 1;
	upd.set = upd.touched = 0;
#endif
	prc = cache ? cached_prepare(db, sql, &st) : sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (prc != SQLITE_OK) {
		err_set_kind(kind_of(prc), "database error: %s (in: %.60s)", sqlite3_errmsg(db), sql);
		return NULL;
	}
#ifdef ACOG_TEST
	touch_check(sql);
#endif
	/* A type string that does not match the statement is a bug; refusing it
	 * beats binding garbage or leaving a parameter NULL. */
	if ((int)strlen(fmt ? fmt : "") != sqlite3_bind_parameter_count(st)) {
		err_set_kind(ERR_SOFTWARE, "bug: %zu parameter type(s) \"%s\" for a statement with %d (in: %.60s)",
			     strlen(fmt ? fmt : ""), fmt ? fmt : "", sqlite3_bind_parameter_count(st), sql);
		db_done(st);
		return NULL;
	}
	for (const char *f = fmt ? fmt : ""; *f; f++, i++) {
		int rc = SQLITE_OK;
		switch (*f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			rc = s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
			break;
		}
		case 'i': rc = sqlite3_bind_int(st, i, va_arg(ap, int)); break;
		case 'I': rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t)); break;
		case 'd': rc = sqlite3_bind_double(st, i, va_arg(ap, double)); break;
		default: rc = SQLITE_MISUSE;
		}
		if (rc != SQLITE_OK) {
			err_set_kind(ERR_SOFTWARE, "database error binding parameter %d: %s", i, sqlite3_errmsg(db));
			db_done(st);
			return NULL;
		}
	}
	return st;
}

sqlite3_stmt *db_stmt(sqlite3 *db, int cache, const char *sql, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *st;
	va_start(ap, fmt);
	st = vprep(db, cache, sql, fmt, ap);
	va_end(ap);
	return st;
}

int db_exec(sqlite3 *db, const char *sql, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *st;
	int rc;
	va_start(ap, fmt);
	st = vprep(db, 1, sql, fmt, ap);
	va_end(ap);
	if (!st) return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		err_set_kind(kind_of(rc), "database error: %s%s", sqlite3_errmsg(db), busy_hint(rc));
		db_done(st);
		return -1;
	}
	db_done(st);
	return 0;
}

char *db_col_str(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	return s ? xstrdup((const char *)s) : NULL;
}

static size_t vstrings(sqlite3 *db, char ***out, const char *sql, const char *fmt, va_list ap)
{
	sqlite3_stmt *st = vprep(db, 1, sql, fmt, ap);
	size_t n = 0;
	*out = NULL;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		*out = xrealloc(*out, (n + 1) * sizeof **out);
		(*out)[n++] = xstrdup(sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
	}
	db_done(st);
	return n;
}

size_t db_strings(sqlite3 *db, char ***out, const char *sql, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	va_start(ap, fmt);
	n = vstrings(db, out, sql, fmt, ap);
	va_end(ap);
	return n;
}

/* The first column of the first row, malloc'd, or NULL when there is none. */
char *db_first(sqlite3 *db, const char *sql, const char *fmt, ...)
{
	va_list ap;
	sqlite3_stmt *st;
	char *s = NULL;
	va_start(ap, fmt);
	st = vprep(db, 1, sql, fmt, ap);
	va_end(ap);
	if (st && sqlite3_step(st) == SQLITE_ROW) s = db_col_str(st, 0);
	db_done(st);
	return s;
}

/* The first column of the first row as a time (an ISO string), 0 if none. */
double db_time(sqlite3 *db, const char *sql, const char *fmt, ...)
{
	va_list ap;
	char **v;
	double t;
	size_t n;
	va_start(ap, fmt);
	n = vstrings(db, &v, sql, fmt, ap);
	va_end(ap);
	t = n ? time_parse_iso(v[0]) : 0;
	db_strings_free(v, n);
	return t > 0 ? t : 0;
}

void db_strings_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) free(v[i]);
	free(v);
}

static char *cfg_json(const cJSON *cfg, const char *key)
{
	const cJSON *j = json_get(cfg, key);
	return j && cJSON_IsObject(j) ? json_print(j) : xstrdup("{}");
}

/* Channels live in channel.yaml; the table mirrors them (upsert by slug). */
int db_sync_channels(sqlite3 *db, struct config *c)
{
	if (db_begin(db) < 0) return -1;
	for (size_t i = 0; i < c->nch; i++) {
		struct channel *ch = &c->ch[i];
		char *persona = cfg_json(ch->cfg, "persona"), *style = cfg_json(ch->cfg, "style_guide");
		char *avatar = cfg_json(ch->cfg, "avatar_profile"), *voice = cfg_json(ch->cfg, "voice_profile");
		char *platform = cfg_json(ch->cfg, "platform_config");
		char id[37];
		sqlite3_stmt *st;
		int rc;
		uuid_new(id);
		rc = db_exec(db,
			     "INSERT INTO channels (id, name, slug, description, niche, persona, style_guide,"
			     " avatar_profile, voice_profile, cadence, platform_config, is_active)"
			     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(slug) DO UPDATE SET"
			     " name=excluded.name, description=excluded.description, niche=excluded.niche,"
			     " persona=excluded.persona, style_guide=excluded.style_guide,"
			     " avatar_profile=excluded.avatar_profile, voice_profile=excluded.voice_profile,"
			     " cadence=excluded.cadence, platform_config=excluded.platform_config,"
			     " is_active=excluded.is_active, deleted_at=NULL",
			     "sssssssssssi", id, json_str(ch->cfg, "name", ch->id), ch->id,
			     json_str(ch->cfg, "description", NULL), json_str(ch->cfg, "niche", NULL), persona, style,
			     avatar, voice, json_str(ch->cfg, "cadence", NULL), platform,
			     json_bool(ch->cfg, "active", 1));
		free(persona);
		free(style);
		free(avatar);
		free(voice);
		free(platform);
		if (rc < 0) {
			db_rollback(db);
			return -1;
		}
		st = db_prep(db, "SELECT id FROM channels WHERE slug = ?", "s", ch->id);
		if (!st || sqlite3_step(st) != SQLITE_ROW) {
			sqlite3_finalize(st);
			db_rollback(db);
			return err_set("channel %s vanished from the database", ch->id);
		}
		snprintf(ch->db_id, sizeof ch->db_id, "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	return db_commit(db);
}
