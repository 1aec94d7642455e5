/*
 * cmd_review.c - approve, reject, retry and cancel from the command line.
 * Each changes the database in one transaction, moves the ticket, and wakes
 * a running daemon (SIGUSR1) so it acts at once.
 */
#include "daemon.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Each step's unspecified failure has its own exit code; a failure with a
 * kind (no such episode, database busy...) exits with that kind's code. */
int cmd_with_db(struct cli *a, const char *what, cmd_db_fn fn)
{
	struct config c = { 0 };
	sqlite3 *db;
	int rc = -1, otherwise = EXIT_NOINPUT;
	if (!(db = db_open(a->root, 0))) goto out;
	otherwise = EXIT_CONFIG;
	if (config_load(&c, a->root) < 0) goto out;
	otherwise = EXIT_SOFTWARE;
	if (db_sync_channels(db, &c) < 0) goto out;
	log_set_stderr(0);
	/* review.c raises a decision that does not fit the episode's state (not
	 * at a gate, already published) as an unspecified error: bad data. */
	otherwise = EXIT_DATAERR;
	rc = fn(db, &c, a, cli_arg(a, 0)); /* main.c made sure there is an episode */
	if (rc == 0) daemon_wake(a->root);
out:
	if (rc < 0) fprintf(stderr, "acog-batch %s: %s\n", what, err_msg());
	config_free(&c);
	db_close(db);
	return rc < 0 ? err_exit(otherwise) : EXIT_OK;
}

static int do_approve(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	int rc = review_approve(db, c, ep, cli_opt(a, CLI_BY), cli_opt(a, CLI_NOTES));
	if (rc == 0) printf("approved %s\n", ep);
	return rc;
}

static int do_reject(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	const char *to = cli_opt(a, CLI_TO);
	int rc = review_reject(db, c, ep, cli_opt(a, CLI_BY), cli_opt(a, CLI_REASON), to);
	if (rc == 0) printf(to ? "rejected %s; re-running from %s\n" : "rejected %s%s; held\n", ep, to ? to : "");
	return rc;
}

/* rc, after saying what was done when it was. */
int cmd_said(int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (rc == 0) vprintf(fmt, ap);
	va_end(ap);
	return rc;
}

static int do_retry(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	return cmd_said(review_retry(db, c, ep, cli_opt(a, CLI_FROM)), "queued %s again\n", ep);
}

static int do_cancel(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	(void)a;
	return cmd_said(review_cancel(db, c, ep), "cancelled %s; its ticket is in spool/held/\n", ep);
}

CMD_WITH_DB(approve, do_approve)
CMD_WITH_DB(reject, do_reject)
CMD_WITH_DB(retry, do_retry)
CMD_WITH_DB(cancel, do_cancel)
