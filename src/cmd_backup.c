/*
 * cmd_backup.c - `backup DEST`: a consistent copy of a root while its daemon
 * runs; `restore [SRC]`: a root made from such a copy (or from any copy of a
 * root, rsync -a included) reconciled so that it carries on, on any path.
 *
 * Why the order: the database is the record of what happened (an episode's
 * state, the ids of paid jobs, upload sessions); files are durable work.
 * Every paid submission is stored in the database before it is sent, and
 * every stage's outputs are on disk before its completion is committed.  So
 * a copy is consistent when no commit lands between the database snapshot
 * and the end of the file copy.  backup therefore
 *   1. mirrors the root into DEST twice without locks (the bulk: media);
 *   2. takes the database's write lock (BEGIN IMMEDIATE: the daemon and the
 *      stage children wait for it, as for any writer, up to their busy
 *      timeouts), copies the database with the online backup API, mirrors
 *      again (now only what changed since step 1), and releases the lock.
 * Work a stage child did during step 2 has no database record in the copy,
 * exactly as after a crash at the moment of the snapshot: start-up requeues
 * the stage, and the providers' own resume (clips on disk with their .req,
 * stored upload sessions) keeps it from being paid twice.
 *
 * The mirror copies what differs by type, size or mtime (mtimes are kept),
 * removes from DEST what the root no longer has (a ticket that moved), and
 * keeps modes, so DEST is a plain tree: an rsync source, and incremental
 * when backed up into again.  DEST/.acog-backup-incomplete exists until
 * the copy is whole; restore refuses a copy that has it.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INCOMPLETE ".acog-backup-incomplete"
#define LOCKED_MAX_S 8.0 /* under the daemon's 10 s busy timeout (db.c) */

struct mirror {
	const char *src, *dst; /* roots */
	double deadline;       /* 0: none; else give up (time_now) after it */
	long copied, same, removed, skipped;
	long long bytes;
};

/* The root's own files that are not copied as files: the database (copied
 * through SQLite) and the daemon's lock. */
static int own_name(const char *rel)
{
	static const char *const names[] = { "acog.db",   "acog.db-wal", "acog.db-shm", "acog.db-journal",
					     "acog.lock", INCOMPLETE,    NULL };
	for (int i = 0; names[i]; i++)
		if (!strcmp(rel, names[i])) return 1;
	return 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return (a->st_mode & S_IFMT) == (b->st_mode & S_IFMT) && a->st_size == b->st_size &&
		a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
		(a->st_mode & 07777) == (b->st_mode & 07777);
}

/* Owner (when root), mode and times of st on path (a file or folder). */
static int keep_attrs(const char *path, const struct stat *st)
{
	struct timespec t[2] = { st->st_atim, st->st_mtim };
	if (geteuid() == 0 && lchown(path, st->st_uid, st->st_gid) < 0)
		return err_set_errno("cannot set the owner of %s", path);
	if (chmod(path, st->st_mode & 07777) < 0) return err_set_errno("cannot set the mode of %s", path);
	if (utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set_errno("cannot set the times of %s", path);
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int remove_tree(const char *path)
{
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return err_set_errno("cannot remove %s", path);
	return 0;
}

static int copy_link(const char *from, const char *to)
{
	char target[ACOG_PATH_MAX];
	ssize_t n = readlink(from, target, sizeof target - 1);
	if (n < 0) return errno == ENOENT ? 0 : err_set_errno("cannot read the link %s", from);
	target[n] = 0;
	if (remove_tree(to) < 0) return -1;
	if (symlink(target, to) < 0) return err_set_errno("cannot create the link %s", to);
	return 0;
}

static int mirror_dir(struct mirror *m, const char *rel);

/* One entry of the root at rel (a path inside it, "" for the root itself). */
static int mirror_entry(struct mirror *m, const char *rel, const char *from, const char *to)
{
	struct stat s, d;
	int have = lstat(to, &d) == 0;

	if (lstat(from, &s) < 0) return errno == ENOENT ? 0 : err_set_errno("cannot read %s", from);
	if (S_ISDIR(s.st_mode)) {
		if (have && !S_ISDIR(d.st_mode) && remove_tree(to) < 0) return -1;
		if ((!have || !S_ISDIR(d.st_mode)) && mkdir(to, 0700) < 0 && errno != EEXIST)
			return err_set_errno("cannot create folder %s", to);
		if (mirror_dir(m, rel) < 0) return -1;
		return keep_attrs(to, &s);
	}
	if (have && same_file(&s, &d)) {
		m->same++;
		return 0;
	}
	if (S_ISLNK(s.st_mode)) {
		m->copied++;
		return copy_link(from, to);
	}
	if (!S_ISREG(s.st_mode) || fsio_tmp_pid(strrchr(from, '/') + 1) > 0) { /* FIFOs, sockets; live temporaries */
		m->skipped++;
		return 0;
	}
	if (have && S_ISDIR(d.st_mode) && remove_tree(to) < 0) return -1;
	long long n = fsio_copy(from, to, FSIO_REPLACE, NULL);
	if (n < 0) return errno == ENOENT ? 0 : -1; /* gone meanwhile: a ticket that moved */
	m->copied++, m->bytes += n;
	return keep_attrs(to, &s);
}

/* DEST's entries the root no longer has (a ticket that moved on). */
static int prune(struct mirror *m, const char *rel)
{
	char *dp = rel[0] ? xasprintf("%s/%s", m->dst, rel) : xstrdup(m->dst), **names;
	int n = fsio_list(dp, &names, NULL), rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		char *r = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
		char *from = xasprintf("%s/%s", m->src, r), *to = xasprintf("%s/%s", m->dst, r);
		struct stat st;
		if (!own_name(r) && lstat(from, &st) < 0 && errno == ENOENT) {
			rc = remove_tree(to);
			m->removed++;
		}
		free(r), free(from), free(to);
	}
	fsio_list_free(names, n);
	free(dp);
	return rc;
}

static int mirror_dir(struct mirror *m, const char *rel)
{
	char *dp = rel[0] ? xasprintf("%s/%s", m->src, rel) : xstrdup(m->src), **names;
	int n = fsio_list(dp, &names, NULL), rc = 0;

	if (n < 0) rc = errno == ENOENT ? 0 : err_set_errno("cannot read folder %s", dp);
	for (int i = 0; i < n && rc == 0; i++) {
		char *r = rel[0] ? xasprintf("%s/%s", rel, names[i]) : xstrdup(names[i]);
		char *from = xasprintf("%s/%s", m->src, r), *to = xasprintf("%s/%s", m->dst, r);
		if (!own_name(r)) rc = mirror_entry(m, r, from, to);
		if (rc == 0 && m->deadline && time_now() > m->deadline)
			rc = err_set("the root changed too much while it was copied; run backup again (it copies "
				     "only what changed)");
		free(r), free(from), free(to);
	}
	fsio_list_free(names, n);
	free(dp);
	if (rc == 0) rc = prune(m, rel);
	return rc;
}

static int mirror_tree(struct mirror *m)
{
	char *to = xstrdup(m->dst);
	int rc = fsio_mkdirs(m->dst) < 0 ? -1 : mirror_dir(m, "");
	if (rc == 0) rc = fsio_fsync_dir(to);
	free(to);
	return rc;
}

/* ---- the database ------------------------------------------------------- */

/* The whole database into path (replaced), through the online backup API. */
static int db_copy(sqlite3 *src, const char *path)
{
	char *tmp = xasprintf("%s.backup-tmp", path), *wal = xasprintf("%s-wal", path);
	char *shm = xasprintf("%s-shm", path);
	sqlite3 *dst = NULL;
	sqlite3_backup *b;
	int rc = -1;

	unlink(tmp);
	if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    !(b = sqlite3_backup_init(dst, "main", src, "main"))) {
		err_set("cannot copy the database to %s: %s", tmp, dst ? sqlite3_errmsg(dst) : "out of memory");
		goto out;
	}
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_OK)
		;
	rc = sqlite3_backup_finish(b) == SQLITE_OK && rc == SQLITE_DONE ? 0 : -1;
	if (rc < 0) err_set("cannot copy the database to %s: %s", tmp, sqlite3_errmsg(dst));
out:
	if (sqlite3_close(dst) != SQLITE_OK && rc == 0) rc = err_set("cannot close %s", tmp);
	unlink(wal), unlink(shm); /* an older copy's, if any: they would not match */
	if (rc == 0 && rename(tmp, path) < 0) rc = err_set_errno("cannot rename %s to %s", tmp, path);
	if (rc < 0) unlink(tmp);
	free(tmp), free(wal), free(shm);
	return rc;
}

/* Step 2: under the write lock, the database, then what changed.  The lock
 * is held by one connection (BEGIN IMMEDIATE: no other writer can commit)
 * and the pages are read through another: the backup API refuses a source
 * connection inside a write transaction, and in WAL mode a reader sees the
 * last commit, which no one can now follow. */
static int locked_copy(const char *root, struct mirror *m)
{
	sqlite3 *lock = db_open(root, 0), *db = lock ? db_open(root, 0) : NULL;
	char *dbdst = xasprintf("%s/acog.db", m->dst);
	double t0 = time_now();
	int rc = -1;

	if (db && db_exec(lock, "BEGIN IMMEDIATE", NULL) == 0) {
		m->deadline = t0 + LOCKED_MAX_S;
		rc = db_copy(db, dbdst) == 0 && mirror_tree(m) == 0 ? 0 : -1;
		db_rollback(lock); /* nothing was written: releases the lock */
	}
	if (rc == 0)
		printf("backup: the database and %ld changed file(s) copied under the database lock (%.2f s)\n",
		       m->copied, time_now() - t0);
	db_close(db);
	db_close(lock);
	free(dbdst);
	return rc;
}

static int same_or_inside(const char *a, const char *b)
{
	size_t n = strlen(a);
	return !strncmp(a, b, n) && (b[n] == '/' || b[n] == 0);
}

/* Entries in dir (0 when it is empty or missing): the mirror removes what
 * its source lacks, so it only ever writes into an empty folder or an
 * earlier copy. */
static int entries(const char *dir)
{
	char **names;
	int n = fsio_list(dir, &names, NULL);
	fsio_list_free(names, n);
	return n < 0 ? 0 : n;
}

static int earlier_backup(const char *dir)
{
	char *db = xasprintf("%s/acog.db", dir), *mk = xasprintf("%s/%s", dir, INCOMPLETE);
	int yes = fsio_exists(db) || fsio_exists(mk);
	free(db), free(mk);
	return yes;
}

/* DEST, absolute; refused when it overlaps the root. */
static char *backup_dest(const char *root, const char *arg)
{
	char *dest, *real;
	if (fsio_mkdirs(arg) < 0) return NULL;
	if (!(real = realpath(arg, NULL))) {
		err_set_errno("cannot resolve %s", arg);
		return NULL;
	}
	dest = real;
	if (same_or_inside(root, dest) || same_or_inside(dest, root))
		err_set("%s overlaps the root %s; back up to a folder outside it", dest, root);
	else if (entries(dest) && !earlier_backup(dest))
		err_set("%s is not empty and holds no acog-batch backup; back up to a new or empty folder "
			"(a backup removes what the root does not have)",
			dest);
	else
		return dest;
	free(dest);
	return NULL;
}

static int marker(const char *dir, int set)
{
	char *p = xasprintf("%s/%s", dir, INCOMPLETE);
	int rc = set ? fsio_write_atomic_str(p, "an acog-batch backup is being written here; not usable yet\n")
		     : fsio_unlink_durable(p);
	free(p);
	return rc;
}

int cmd_backup(struct cli *a)
{
	char *dest = backup_dest(a->root, cli_arg(a, 0));
	struct mirror m = { .src = a->root };
	double t0 = time_now();
	int rc = -1;

	if (!dest) goto out;
	m.dst = dest;
	if (marker(dest, 1) < 0 || mirror_tree(&m) < 0) goto out;
	printf("backup: %ld file(s) copied (%lld bytes), %ld unchanged\n", m.copied, m.bytes, m.same);
	m.copied = m.same = 0;
	if (mirror_tree(&m) < 0 || locked_copy(a->root, &m) < 0 || marker(dest, 0) < 0) goto out;
	printf("backup: %s is a consistent copy of %s (%.1f s); restore it with `acog-batch -C NEWROOT restore %s`\n",
	       dest, a->root, time_now() - t0, dest);
	rc = 0;
out:
	if (rc < 0) fprintf(stderr, "acog-batch backup: %s\n", err_msg());
	free(dest);
	return rc < 0 ? err_exit(EXIT_CANTCREAT) : EXIT_OK;
}

/* ---- restore ---------------------------------------------------------------- */

/* A copy's ticket without an episode (the copy's database is older than its
 * spool: a plain rsync of a live root): the idea goes back to incoming/ to
 * become an episode again; without its idea.json the ticket stays, and the
 * start-up reconciliation moves it to rejected/ with the reason. */
static int orphan_requeue(sqlite3 *db, const char *root, const char *dir, const char *name, int *n)
{
	sqlite3_stmt *st = db_prep(db, "SELECT 1 FROM episodes WHERE ticket = ?", "s", name);
	char *tp = spool_path(root, dir, name), *text = NULL, *idea = NULL, *in = NULL, *in_name;
	cJSON *t = NULL;
	int known = st && sqlite3_step(st) == SQLITE_ROW, rc = 0;

	sqlite3_finalize(st);
	if (known || !(text = fsio_read(tp, 1 << 20, NULL)) || !(t = cJSON_Parse(text))) goto out;
	if (!path_component_ok(json_str(t, "channel", "")) || !path_component_ok(json_str(t, "episode_id", "")))
		goto out;
	idea = xasprintf("%s/channels/%s/episodes/%s/idea.json", root, json_str(t, "channel", ""),
			 json_str(t, "episode_id", ""));
	in_name = xasprintf("%s.restored.json", name);
	in = spool_path(root, "incoming", in_name);
	free(in_name);
	if (!fsio_exists(idea)) goto out;
	if ((!fsio_exists(in) && fsio_copy(idea, in, FSIO_NOREPLACE, NULL) < 0) || fsio_unlink_durable(tp) < 0) {
		rc = -1;
		goto out;
	}
	printf("restore: spool/%s/%s has no episode in the database copy: its idea.json is queued again as "
	       "spool/incoming/%s.restored.json\n",
	       dir, name, name);
	(*n)++;
out:
	cJSON_Delete(t);
	free(tp), free(text), free(idea), free(in);
	return rc;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n > k && !strcmp(s + n - k, suffix);
}

/* Tickets, not the notes and decision files beside them nor temporaries. */
static int ticket_file(const char *name)
{
	static const char *const notes[] = { ".error", ".reason", ".approve", ".reject", NULL };
	if (name[0] == '.' || strstr(name, ".tmp")) return 0;
	for (int i = 0; notes[i]; i++)
		if (ends_with(name, notes[i])) return 0;
	return 1;
}

static int orphans_requeue(sqlite3 *db, const char *root)
{
	static const char *const extra[] = { "published", "failed", "held" };
	int n = 0, rc = 0;
	for (size_t i = 0; i < stage_count + 3; i++) {
		const char *d = i < stage_count ? stage_table[i].name : extra[i - stage_count];
		char *dp = spool_path(root, d, NULL), **names;
		int k = fsio_list(dp, &names, ticket_file);
		for (int j = 0; j < k; j++)
			if (orphan_requeue(db, root, d, names[j], &n) < 0) rc = -1;
		fsio_list_free(names, k);
		free(dp);
	}
	return rc < 0 ? -1 : n;
}

/* An episode whose folder the copy missed (made after a live copy listed
 * channels/, while its database row was copied later): idea.json again, from
 * the database's own copy of the idea. */
static int ideas_rewrite(sqlite3 *db, const char *root)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT e.id, c.slug, e.idea FROM episodes e JOIN channels c ON c.id = e.channel_id"
				   " WHERE e.ingest_done = 1 AND e.deleted_at IS NULL",
				   NULL);
	int rc = 0;
	while (st && sqlite3_step(st) == SQLITE_ROW && rc == 0) {
		char *dir = episode_dir(root, (const char *)sqlite3_column_text(st, 1),
					(const char *)sqlite3_column_text(st, 0));
		char *idea = xasprintf("%s/idea.json", dir);
		if (!fsio_exists(idea)) {
			rc = fsio_mkdirs(dir) < 0 ||
					fsio_write_atomic_str(idea, (const char *)sqlite3_column_text(st, 2)) < 0
				? -1
				: 0;
			printf("restore: %s was missing; written again from the database\n", idea);
		}
		free(dir), free(idea);
	}
	sqlite3_finalize(st);
	return st ? rc : -1;
}

static int integrity_ok(sqlite3 *db, const char *root)
{
	sqlite3_stmt *st = db_prep(db, "PRAGMA integrity_check", NULL);
	const char *r = st && sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "no answer";
	int ok = r && !strcmp(r, "ok");
	if (!ok)
		err_set("%s/acog.db is damaged (%s): it was copied while being written; copy the root with "
			"`acog-batch backup`, or with rsync while the daemon is stopped",
			root, r ? r : "?");
	sqlite3_finalize(st);
	return ok;
}

/* What the daemon's start-up does, run now so that status tells the truth,
 * after the copy's own repairs. */
static int reconcile(const char *root)
{
	struct config c;
	sqlite3 *db;
	char *shm = xasprintf("%s/acog.db-shm", root);
	int n, rc = -1;

	unlink(shm); /* a live root's shared memory, meaningless in the copy */
	free(shm);
	if (config_load(&c, root) < 0) return -1;
	if ((db = db_open(root, 0)) && integrity_ok(db, root) && db_sync_channels(db, &c) == 0 &&
	    (n = orphans_requeue(db, root)) >= 0 && ideas_rewrite(db, root) == 0 &&
	    pipeline_requeue_running(db, &c) == 0 && ingest_finish_pending(db, &c) == 0 &&
	    spool_reconcile(db, root) == 0) {
		printf("restore: %s reconciled (%d idea(s) queued again); start it with `acog-batch -C %s run`\n", root,
		       n, root);
		rc = 0;
	}
	db_close(db);
	config_free(&c);
	return rc;
}

/* Whether a daemon runs on dir (holds its acog.lock), without creating the lock. */
static int live_root(const char *dir)
{
	char *p = xasprintf("%s/acog.lock", dir);
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), live = 0;
	if (fd >= 0) {
		live = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
		close(fd);
	}
	if (live)
		err_set("a daemon is running on %s; copy it with `acog-batch -C %s backup DEST` and restore that", dir,
			dir);
	free(p);
	return live;
}

/* The database files of a stopped copy, as they are (SQLite replays the WAL). */
static int copy_db_files(const char *src, const char *root)
{
	static const char *const names[] = { "acog.db", "acog.db-wal", NULL };
	int rc = 0;
	for (int i = 0; names[i] && rc == 0; i++) {
		char *from = xasprintf("%s/%s", src, names[i]), *to = xasprintf("%s/%s", root, names[i]);
		if (fsio_exists(from) && fsio_copy(from, to, FSIO_NOREPLACE, NULL) < 0) rc = -1;
		free(from), free(to);
	}
	return rc;
}

/* SRC (a backup, or a stopped root) mirrored into the root, database included. */
static int restore_copy(const char *root, const char *arg)
{
	char *src = realpath(arg, NULL), *p, *db;
	struct mirror m = { .dst = root };
	int rc = -1;

	if (!src) return err_set_errno("cannot resolve %s", arg);
	m.src = src;
	p = xasprintf("%s/%s", src, INCOMPLETE);
	db = xasprintf("%s/acog.db", root);
	if (fsio_exists(p))
		err_set("%s is an unfinished backup (%s exists); run the backup again", src, INCOMPLETE);
	else if (same_or_inside(src, root) || same_or_inside(root, src))
		err_set("%s overlaps the root %s; restore into a folder outside it", src, root);
	else if (fsio_exists(db) || entries(root))
		err_set("%s is not empty; restore into a new or empty folder", root);
	else if (!live_root(src) && mirror_tree(&m) == 0)
		rc = copy_db_files(src, root);
	free(src), free(p), free(db);
	return rc;
}

int cmd_restore(struct cli *a)
{
	char *root = fsio_mkdirs(a->root) == 0 ? realpath(a->root, NULL) : NULL;
	int lock = -1, rc = -1;

	if (!root) {
		if (!fsio_exists(a->root)) err_set_errno("cannot create %s", a->root);
		goto out;
	}
	if (cli_arg(a, 0) && restore_copy(root, cli_arg(a, 0)) < 0) goto out;
	if ((rc = daemon_lock(root, &lock)) != 0) {
		fprintf(stderr, "acog-batch restore: %s\n", err_msg());
		free(root);
		return rc > 0 ? EXIT_TEMPFAIL : err_exit(EXIT_CANTCREAT);
	}
	rc = reconcile(root);
	close(lock);
out:
	if (rc < 0) fprintf(stderr, "acog-batch restore: %s\n", err_msg());
	free(root);
	return rc < 0 ? err_exit(EXIT_DATAERR) : EXIT_OK;
}
