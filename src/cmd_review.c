/*
 * cmd_review.c - approve, reject, retry and cancel from the command line.
 * Each changes the database in one transaction, moves the ticket, and wakes
 * a running daemon (SIGUSR1) so it acts at once.
 */
#include "daemon.h"
#include <stdio.h>
#include <string.h>

typedef int (*decide_fn)(sqlite3 *, struct config *, struct cli *, const char *ep);

static int with_db(struct cli *a, const char *what, decide_fn fn)
{
	struct config c;
	sqlite3 *db;
	const char *ep = cli_arg(a, 0);
	int rc;
	if (!ep) {
		fprintf(stderr, "acog-batch %s: which episode? give its id, an id prefix or its ticket name\n", what);
		return EXIT_USAGE;
	}
	if (!(db = db_open(a->root, 0))) {
		fprintf(stderr, "acog-batch %s: %s\n", what, err_msg());
		return EXIT_NOINPUT;
	}
	if (config_load(&c, a->root) < 0 || db_sync_channels(db, &c) < 0) {
		fprintf(stderr, "acog-batch %s: %s\n", what, err_msg());
		db_close(db);
		return EXIT_CONFIG;
	}
	log_set_stderr(0);
	rc = fn(db, &c, a, ep);
	if (rc < 0) fprintf(stderr, "acog-batch %s: %s\n", what, err_msg());
	else daemon_wake(a->root);
	config_free(&c);
	db_close(db);
	if (rc < 0) return strstr(err_msg(), "no episode") ? EXIT_NOINPUT : EXIT_DATAERR;
	return EXIT_OK;
}

static int do_approve(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	int rc = review_approve(db, c, ep, cli_flag(a, "--by"), cli_flag(a, "--notes"));
	if (rc == 0) printf("approved %s\n", ep);
	return rc;
}

static int do_reject(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	const char *to = cli_flag(a, "--to");
	int rc = review_reject(db, c, ep, cli_flag(a, "--by"), cli_flag(a, "--reason"), to);
	if (rc == 0) printf(to ? "rejected %s; re-running from %s\n" : "rejected %s%s; held\n", ep, to ? to : "");
	return rc;
}

static int do_retry(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	int rc = review_retry(db, c, ep, cli_flag(a, "--from"));
	if (rc == 0) printf("queued %s again\n", ep);
	return rc;
}

static int do_cancel(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	int rc = review_cancel(db, c, ep);
	(void)a;
	if (rc == 0) printf("cancelled %s; its ticket is in spool/held/\n", ep);
	return rc;
}

int cmd_approve(struct cli *a) { return with_db(a, "approve", do_approve); }
int cmd_reject(struct cli *a) { return with_db(a, "reject", do_reject); }
int cmd_retry(struct cli *a) { return with_db(a, "retry", do_retry); }
int cmd_cancel(struct cli *a) { return with_db(a, "cancel", do_cancel); }
