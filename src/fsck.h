/*
 * fsck.h - the invariant checker (`acog-batch fsck`): one record of findings
 * that the checks (fsck_db.c: what the database says against the files;
 * fsck_files.c: what the files say against the database) fill in and
 * cmd_fsck.c prints.
 */
#ifndef ACOG_FSCK_H
#define ACOG_FSCK_H
#include "daemon.h"

struct fsck {
	const char *root;
	sqlite3 *db;
	int repair;          /* --repair: fix what is safe to fix */
	int daemon_running;  /* acog.lock is held: tickets may be moving */
	double daemon_start; /* mtime of acog.lock: the last daemon's start, 0 when never started */
	cJSON *findings;     /* [{kind, file, message, status}] */
	int problems, repaired, notes;
};

/* What became of a finding: still there, fixed by --repair, or only a note
 * (a state the daemon's next start finishes by itself; not a problem). */
enum fsck_status { FSCK_OPEN, FSCK_REPAIRED, FSCK_NOTE };

/* One finding: kind (a short identifier), the file it is about (relative
 * to the root), and a message saying what is wrong and what to do. */
void fsck_add(struct fsck *f, const char *kind, const char *file, enum fsck_status st, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

void fsck_episodes(struct fsck *f); /* fsck_db.c: tickets, notes, idea.json */
void fsck_assets(struct fsck *f);
void fsck_jobs(struct fsck *f);  /* jobs completed twice, cost rows without a job */
void fsck_spool(struct fsck *f); /* fsck_files.c: orphan tickets, rejections without .error */
void fsck_temps(struct fsck *f); /* stray temporaries */
#endif
