/*
 * fsck_files.c - the checks that start from the files: a ticket in a spool
 * folder whose episode the database does not know; a file in
 * spool/rejected/ without the .error note saying why; a temporary
 * (".<name>.<pid>.tmp", fsio.c) whose process is gone and which is older
 * than the daemon's last start, so that start's cleaner (tmpclean.c) should
 * have removed it.  Repairs never delete what a user gave us: an orphan
 * ticket is moved to spool/rejected/ with a note, a missing note is
 * written, and only our own temporaries are removed.
 */
#include "fsck.h"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);
	return n > k && !strcmp(s + n - k, suf);
}

/* A ticket's name: not a dot-name, not a note or decision file beside one. */
static int ticket_like(const char *name)
{
	return name[0] != '.' && !has_suffix(name, ".error") && !has_suffix(name, ".reason") &&
		!has_suffix(name, ".approve") && !has_suffix(name, ".reject") && !strstr(name, ".tmp");
}

static void orphan_ticket(struct fsck *f, const char *dir, const char *name)
{
	sqlite3_stmt *st = db_prep(f->db, "SELECT 1 FROM episodes WHERE ticket = ?", "s", name);
	char *p, *why;
	int known = st && sqlite3_step(st) == SQLITE_ROW, fixed = 0;
	sqlite3_finalize(st);
	if (known || !st) return;
	p = spool_path(f->root, dir, name);
	why = xasprintf("spool/%s/%s: this ticket has no episode in acog.db (was the database restored from an "
			"older backup?); to make the episode again, drop its idea.json into spool/incoming/",
			dir, name);
	if (f->repair && fsio_exists(p)) fixed = spool_reject(f->root, p, why) == 0;
	fsck_add(f, "ticket_orphan", name, fixed ? FSCK_REPAIRED : FSCK_OPEN, "%s%s%s", fixed ? "repaired: " : "", why,
		 fixed ? " (moved to spool/rejected/)" : "; --repair moves it to spool/rejected/ with a note");
	free(why);
	free(p);
}

static void rejected_note(struct fsck *f, const char *name)
{
	char *p = xasprintf("%s/spool/rejected/%s.error", f->root, name);
	int fixed = 0;
	if (fsio_exists(p)) {
		free(p);
		return;
	}
	if (f->repair)
		fixed = fsio_write_atomic_str(p,
					      "This file was rejected, but the reason was lost (the note was "
					      "rewritten by `acog-batch fsck --repair`). Check it, fix it and drop it "
					      "into spool/incoming/ again.\n") == 0;
	fsck_add(f, "note_missing", name, fixed ? FSCK_REPAIRED : FSCK_OPEN,
		 "%sspool/rejected/%s.error: the note saying why spool/rejected/%s was rejected is missing%s",
		 fixed ? "repaired: " : "", name, name,
		 fixed ? "" : "; --repair writes a note saying the reason was lost");
	free(p);
}

static int plain_name(const char *name)
{
	return name[0] != '.' && !has_suffix(name, ".error");
}

void fsck_spool(struct fsck *f)
{
	static const char *const extra[] = { "published", "failed", "held", NULL };
	char **names, *dir;
	int n;
	for (size_t i = 0; i < stage_count + 3; i++) {
		const char *d = i < stage_count ? stage_table[i].name : extra[i - stage_count];
		dir = spool_path(f->root, d, NULL);
		n = fsio_list(dir, &names, ticket_like);
		for (int k = 0; k < n; k++) orphan_ticket(f, d, names[k]);
		fsio_list_free(names, n);
		free(dir);
	}
	dir = spool_path(f->root, "rejected", NULL);
	n = fsio_list(dir, &names, plain_name);
	for (int k = 0; k < n; k++) rejected_note(f, names[k]);
	fsio_list_free(names, n);
	free(dir);
}

/* ---- temporaries ------------------------------------------------------- */

static void stray_temp(struct fsck *f, const char *path, const char *name)
{
	long pid = fsio_tmp_pid(name);
	struct stat st;
	int fixed = 0;
	if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH || lstat(path, &st) < 0) return;
	if (f->daemon_start > 0 && (double)st.st_mtime >= f->daemon_start) return; /* the next start's to clean */
	if (f->repair) fixed = fsio_discard(path) == 0;
	fsck_add(f, "temp_stray", path + strlen(f->root) + 1, fixed ? FSCK_REPAIRED : FSCK_OPEN,
		 "%s%s: a temporary left by process %ld, which is gone, older than the daemon's start%s",
		 fixed ? "repaired: " : "", path + strlen(f->root) + 1, pid,
		 fixed ? " (removed)" : "; --repair (or the daemon's next start) removes it");
}

static int any_name(const char *name)
{
	return name[0] != '.' || fsio_tmp_pid(name) > 0;
}

/* The temporaries in dir and, depth levels down, in its real folders
 * (never through a symbolic link).  skip_user: leave incoming/ and tmp/,
 * the user's folders, alone. */
static void walk_temps(struct fsck *f, const char *dir, int depth, int skip_user)
{
	char **names;
	int n = fsio_list(dir, &names, any_name);
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s", dir, names[i]);
		struct stat st;
		int user = skip_user && (!strcmp(names[i], "incoming") || !strcmp(names[i], "tmp"));
		if (fsio_tmp_pid(names[i]) > 0)
			stray_temp(f, p, names[i]);
		else if (depth > 0 && !user && lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			walk_temps(f, p, depth - 1, 0);
		free(p);
	}
	fsio_list_free(names, n);
}

void fsck_temps(struct fsck *f)
{
	char *spool = xasprintf("%s/spool", f->root), *channels = xasprintf("%s/channels", f->root);
	walk_temps(f, spool, 1, 1);
	walk_temps(f, channels, 4, 0);
	free(channels);
	free(spool);
}
