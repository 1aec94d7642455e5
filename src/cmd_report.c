/*
 * cmd_report.c - `acog-batch report [--out DIR]`: writes the static review
 * pages of every episode and the index (default under ROOT/report/;
 * report_ctx.c says where, report_episode.c and report_index.c what).
 */
#include "report.h"
#include <stdio.h>
#include <stdlib.h>

int cmd_report(struct cli *a)
{
	sqlite3 *db = db_open(a->root, 0);
	struct report_ctx r;
	char *out = cli_has(a, CLI_OUT) ? xstrdup(cli_opt(a, CLI_OUT)) : xasprintf("%s/report", a->root);
	char **ids = NULL;
	size_t n = 0;
	int rc = -1, otherwise = EXIT_NOINPUT;
	if (!db) goto done;
	otherwise = EXIT_CANTCREAT;
	log_set_stderr(0); /* the CLI says what failed itself */
	if (report_ctx_open(&r, db, a->root, out) < 0) goto done;
	n = db_strings(db, &ids, "SELECT id FROM episodes WHERE deleted_at IS NULL ORDER BY created_at", NULL);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) rc = report_episode_page(&r, ids[i]);
	if (rc == 0) rc = report_index_page(&r);
	if (rc == 0) printf("%s/index.html (%zu episode page(s))\n", r.out, n);
	report_ctx_close(&r);
done:
	if (rc < 0) fprintf(stderr, "acog-batch report: %s\n", err_msg());
	db_strings_free(ids, n);
	db_close(db);
	free(out);
	return rc < 0 ? err_exit(otherwise) : EXIT_OK;
}
