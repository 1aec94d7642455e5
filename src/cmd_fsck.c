/*
 * cmd_fsck.c - `acog-batch fsck [--repair] [--json]`: checks the promises
 * the daemon makes about a root (every idea is one episode or one
 * rejection, database and spool agree, assets are complete, nothing done or
 * paid twice, notes beside held/failed/rejected files, no stray
 * temporaries) and says, per finding, which file and what to do.  Read-only
 * unless --repair, which fixes only what is safe (a ticket put where the
 * database says, a note written again, our own temporary removed) and never
 * deletes what a user gave us.  It runs beside a working daemon: every query
 * is a short read transaction, a ticket seen out of place is looked at
 * again before it is reported, the assets of episodes at work are left
 * alone, and tickets are not moved (the daemon's start does that).  Exit status 0: consistent (or all repaired);
 * EX_DATAERR: something is still wrong.
 */
#define _GNU_SOURCE
#include "fsck.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

/* Whether a daemon holds acog.lock, and when the last one started (the
 * lock file is rewritten with its pid at every start). */
static void daemon_probe(struct fsck *f)
{
	char *p = xasprintf("%s/acog.lock", f->root);
	struct stat st;
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(p);
	if (fd < 0) return;
	if (fstat(fd, &st) == 0) f->daemon_start = (double)st.st_mtime;
	f->daemon_running = flock(fd, LOCK_SH | LOCK_NB) < 0;
	close(fd); /* also drops our shared lock at once */
}

static void print_text(const struct fsck *f)
{
	const cJSON *o;
	cJSON_ArrayForEach (o, f->findings) printf("%s: %s\n", json_str(o, "status", ""), json_str(o, "message", ""));
	printf("fsck %s: %d problem%s, %d repaired, %d note%s%s\n", f->root, f->problems, f->problems == 1 ? "" : "s",
	       f->repaired, f->notes, f->notes == 1 ? "" : "s", f->problems ? "" : " - consistent");
}

static void print_json(const struct fsck *f)
{
	cJSON *o = cJSON_CreateObject();
	char *s;
	cJSON_AddStringToObject(o, "root", f->root);
	cJSON_AddBoolToObject(o, "consistent", f->problems == 0);
	cJSON_AddBoolToObject(o, "daemon_running", f->daemon_running);
	cJSON_AddNumberToObject(o, "problems", f->problems);
	cJSON_AddNumberToObject(o, "repaired", f->repaired);
	cJSON_AddNumberToObject(o, "notes", f->notes);
	cJSON_AddItemReferenceToObject(o, "findings", f->findings);
	s = json_pretty(o);
	fputs(s, stdout);
	free(s);
	cJSON_Delete(o);
}

int cmd_fsck(struct cli *a)
{
	struct fsck f = { .root = a->root, .repair = cli_has(a, CLI_REPAIR) };
	if (!(f.db = db_open(a->root, 0))) {
		fprintf(stderr, "acog-batch fsck: %s\n", err_msg());
		return err_exit(EX_SOFTWARE);
	}
	f.findings = cJSON_CreateArray();
	daemon_probe(&f);
	fsck_episodes(&f); /* first: a repair here may clear a duplicate the spool scan would see */
	fsck_spool(&f);
	fsck_assets(&f);
	fsck_jobs(&f);
	fsck_temps(&f);
	if (cli_has(a, CLI_JSON))
		print_json(&f);
	else
		print_text(&f);
	db_close(f.db);
	cJSON_Delete(f.findings);
	return f.problems ? EX_DATAERR : 0;
}
