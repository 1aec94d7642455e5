/*
 * cmd_doctor.c - `doctor`: checks what the daemon depends on and says, for
 * each problem, what to do.  Read-only: it repairs nothing itself.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "provider.h"
#include "youtube.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

static int failures;

static void report(int ok, const char *what, const char *fix)
{
	printf("%s  %s%s%s\n", ok ? "ok  " : "FAIL", what, ok ? "" : "\n      -> ", ok ? "" : fix);
	if (!ok) failures++;
}

static void check_tool(const char *name, const char *flag, const char *pkg)
{
	const char *p = proc_find(name);
	char what[128], fix[160];
	int ok = 0;
	if (p) {
		const char *argv[] = { p, flag, NULL };
		struct proc_opts o = { .stderr_fd = -1, .timeout_s = 20 };
		int to = 0;
		ok = proc_run(argv, &o, &to) == 0;
	}
	snprintf(what, sizeof what, "%s %s", name, p ? (ok ? "works" : "is present but does not run") : "is missing");
	snprintf(fix, sizeof fix, "install it: apt-get install %s", pkg);
	report(ok, what, fix);
}

static void check_credentials(const char *root)
{
	char *dp = xasprintf("%s/credentials", root), **names;
	int bad = 0, n = fsio_list(dp, &names, NULL);
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s", dp, names[i]);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0077)) {
			char *what = xasprintf("credential file %s is mode %04o, readable by others", p,
					       st.st_mode & 07777);
			char *fix = xasprintf("chmod 600 %s", p);
			report(0, what, fix);
			free(what);
			free(fix);
			bad = 1;
		}
		free(p);
	}
	fsio_list_free(names, n);
	if (!bad) report(1, "credential files are mode 0600", "");
	free(dp);
}

static void check_disk(const char *root, const cJSON *global)
{
	struct statvfs sv;
	double need = json_num(global, "doctor.min_free_mb", 1024);
	double free_mb = statvfs(root, &sv) == 0 ? (double)sv.f_bavail * sv.f_frsize / 1048576.0 : 0;
	char what[128];
	snprintf(what, sizeof what, "free disk space under the root: %.0f MiB (need %.0f)", free_mb, need);
	report(free_mb >= need, what, "free space or move the root: every video stage writes hundreds of MiB");
}

/* /proc files report size 0, so they are read with stdio, not fsio_read. */
static long read_long(const char *path)
{
	FILE *f = fopen(path, "re");
	long v = -1;
	if (f && fscanf(f, "%ld", &v) != 1) v = -1;
	if (f) fclose(f);
	return v;
}

static void check_inotify(const cJSON *global)
{
	long w = read_long("/proc/sys/fs/inotify/max_user_watches");
	long i = read_long("/proc/sys/fs/inotify/max_user_instances");
	long q = read_long("/proc/sys/fs/inotify/max_queued_events");
	char what[160];
	snprintf(what, sizeof what, "inotify limits: watches %ld, instances %ld, queued events %ld", w, i, q);
	report(w >= json_num(global, "doctor.min_inotify_watches", 64) && i >= 4 &&
		       q >= json_num(global, "doctor.min_inotify_queue", 1024),
	       what, "raise them: sysctl fs.inotify.max_user_instances=128 fs.inotify.max_queued_events=16384");
}

static void check_db(const char *root, struct config *c)
{
	sqlite3 *db = db_open(root, 0);
	sqlite3_stmt *st;
	int ok = 0, missing = 0;
	if (!db) {
		report(0, "database opens", err_msg());
		return;
	}
	st = db_prep(db, "PRAGMA integrity_check", NULL);
	ok = st && sqlite3_step(st) == SQLITE_ROW && !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	report(ok, "database integrity (PRAGMA integrity_check)",
	       "restore acog.db from a backup made with `sqlite3 acog.db \".backup FILE\"`, then start the daemon");
	st = db_prep(db, "SELECT ticket, location FROM episodes WHERE ingest_done = 1 AND deleted_at IS NULL", NULL);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		char *p = spool_path(c->root, (const char *)sqlite3_column_text(st, 1),
				     (const char *)sqlite3_column_text(st, 0));
		if (!fsio_exists(p)) {
			printf("      missing ticket: %s\n", p);
			missing++;
		}
		free(p);
	}
	sqlite3_finalize(st);
	report(missing == 0, "spool and database agree (every ticket where the database says)",
	       "start the daemon (`acog-batch run`): start-up puts every ticket back where it belongs");
	db_close(db);
}

/* A problem in a load error starts with the dotted key it is about
 * ("providers.audio (espeak): ..."), after ": " or "; ". */
static int problem_starts(const char *p)
{
	size_t n;
	if ((p[0] != ':' && p[0] != ';') || p[1] != ' ') return 0;
	n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz_");
	return n > 0 && p[2 + n] == '.';
}

/* One FAIL per channel left out (load_errors lines are "id<TAB>message"),
 * each of its problems (an unknown option, a wrong type...) on its own line. */
static void check_channels(const struct config *c)
{
	char what[160];
	for (const char *e = c->load_errors; e && *e;) {
		size_t len = strcspn(e, "\n"), id = strcspn(e, "\t");
		struct sbuf fix = { 0 };
		if (id > len) id = len;
		sb_puts(&fix, "fix ");
		for (const char *p = e + id + (id < len); p < e + len; p++)
			if (problem_starts(p))
				sb_puts(&fix, p[0] == ':' ? ":\n         " : "\n         "), p++;
			else
				sb_add(&fix, p, 1);
		snprintf(what, sizeof what, "channel %.*s loads", (int)id, e);
		report(0, what, fix.s);
		sb_free(&fix);
		e += len + (e[len] == '\n');
	}
	if (!c->load_errors || !*c->load_errors) {
		snprintf(what, sizeof what, "every channel loads (%zu)", c->nch);
		report(1, what, "");
	}
}

/* A YouTube channel needs its refresh token; one of a Testing-mode OAuth
 * app dies after 7 days, so warn from token_warn_days (5). */
static void check_youtube(const struct config *c)
{
	for (size_t i = 0; i < c->nch; i++) {
		const struct channel *ch = &c->ch[i];
		cJSON *p = config_provider(ch, "upload");
		char *path = oauth_token_file(c->root, p, ch->id), *what, *fix;
		double age = oauth_token_age_days(path);
		if (!strcmp(json_str(p, "name", ""), "youtube")) {
			int have = fsio_exists(path), young = age < json_num(p, "token_warn_days", 5);
			what = have && young ? xasprintf("YouTube refresh token of channel %s", ch->id)
				: have
				? xasprintf("YouTube refresh token of channel %s is %.0f days old (a Testing-mode "
					    "app's tokens die after 7)",
					    ch->id, age)
				: xasprintf("channel %s has no YouTube refresh token (%s)", ch->id, path);
			fix = xasprintf("%sacog-batch auth youtube %s",
					have ? "publish the OAuth consent screen, then run " : "run ", ch->id);
			report(have && young, what, fix);
			free(what), free(fix);
		}
		free(path);
		cJSON_Delete(p);
	}
}

int cmd_doctor(struct cli *a)
{
	struct config c;
	failures = 0;
	printf("acog-batch doctor: %s\n", a->root);
	check_tool("ffmpeg", "-version", "ffmpeg");
	check_tool("ffprobe", "-version", "ffmpeg");
	check_tool("espeak-ng", "--version", "espeak-ng");
	{
		const char *font = media_font();
		char *what = xasprintf("a font for titles and subtitles%s%s", font ? ": " : "", font ? font : "");
		report(font != NULL, what, "apt-get install fonts-dejavu-core, or point ACOG_FONT at a .ttf file");
		free(what);
	}
	check_credentials(a->root);
	if (config_load(&c, a->root) < 0) {
		report(0, "acog.yaml loads", err_msg());
		config_free(&c);
		return err_exit(EXIT_CONFIG);
	}
	check_disk(a->root, c.global);
	check_inotify(c.global);
	check_channels(&c);
	check_youtube(&c);
	check_db(a->root, &c);
	config_free(&c);
	printf("%s\n", failures ? "problems found" : "all good");
	return failures ? EXIT_UNAVAILABLE : EXIT_OK;
}
