/*
 * cmd_manage.c - the operator's commands on an accepted episode: edit,
 * pause, resume, versions (list, --diff, --restore) and audit.  The
 * changes are manage.c's; this file parses, prints and wakes the daemon.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --since: an ISO-8601 time, or an age (30s, 15m, 2h, 7d) before now. */
int cli_since(const char *s, char out[32])
{
	static const struct {
		char unit;
		double seconds;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	char *end;
	double n = strtod(s, &end);
	if (time_parse_iso(s) >= 0) {
		time_iso(time_parse_iso(s), out);
		return 0;
	}
	for (size_t i = 0; end != s && n >= 0 && i < sizeof units / sizeof units[0]; i++)
		if (end[0] == units[i].unit && !end[1]) {
			time_iso(time_now() - n * units[i].seconds, out);
			return 0;
		}
	return err_set_kind(ERR_USAGE, "--since '%s': give an ISO-8601 UTC time or an age like 30m, 2h, 7d", s);
}

static int do_edit(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	struct manage_edit ed = { .has_priority = cli_has(a, CLI_PRIORITY),
				  .priority = (int)cli_num(a, CLI_PRIORITY, 0),
				  .publish_at = cli_opt(a, CLI_PUBLISH_AT),
				  .title = cli_opt(a, CLI_TITLE) };
	int rc = manage_edit(db, c, ep, &ed);
	if (rc == 0) printf("edited %s\n", ep);
	return rc;
}
CMD_WITH_DB(edit, do_edit)

static int do_pause(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	(void)a;
	return cmd_said(manage_pause(db, c, ep),
			"paused %s; its ticket is in spool/held/ (`acog-batch resume %s` goes on)\n", ep, ep);
}
CMD_WITH_DB(pause, do_pause)

static int do_resume(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	(void)a;
	return cmd_said(manage_resume(db, c, ep), "resumed %s\n", ep);
}
CMD_WITH_DB(resume, do_resume)

/* ---- versions ---------------------------------------------------------------- */

static int versions_list(sqlite3 *db, const struct episode *e, int json)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT version_type AS type, version_number AS version, changed_by,"
				   " change_reason, created_at, length(content) AS bytes FROM episode_versions"
				   " WHERE episode_id = ? ORDER BY version_type, version_number",
				   "s", e->id);
	int n = 0;
	if (!st) return -1;
	if (!json) printf("%-14s %-20s %-12s %s\n", "VERSION", "CREATED", "BY", "REASON");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (json) {
			status_json_row(st, n++);
			continue;
		}
		printf("%s:%-*d %-20.19s %-12s %s\n", (const char *)sqlite3_column_text(st, 0),
		       (int)(13 - sqlite3_column_bytes(st, 0)), sqlite3_column_int(st, 1),
		       (const char *)sqlite3_column_text(st, 4), (const char *)sqlite3_column_text(st, 2),
		       sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "");
	}
	if (json) printf("%s]\n", n ? "\n" : "[");
	sqlite3_finalize(st);
	return 0;
}

static int versions_diff(sqlite3 *db, const struct episode *e, const char *from, const char *to)
{
	struct manage_version va, vb;
	struct sbuf out = { 0 };
	char *ta, *tb, *na, *nb;
	int rc;
	if (!to) return err_set_kind(ERR_USAGE, "--diff A B: name the second version too");
	if (manage_version_get(db, e->id, from, &va) < 0) return -1;
	if (manage_version_get(db, e->id, to, &vb) < 0) {
		free(va.content);
		return -1;
	}
	ta = manage_version_text(&va), tb = manage_version_text(&vb);
	na = xasprintf("%s:%d", va.type, va.number), nb = xasprintf("%s:%d", vb.type, vb.number);
	rc = diff_unified(na, ta, nb, tb, &out);
	if (rc == 0 && out.s) fputs(out.s, stdout);
	sb_free(&out);
	free(ta), free(tb), free(na), free(nb), free(va.content), free(vb.content);
	return rc;
}

static int do_versions(sqlite3 *db, struct config *c, struct cli *a, const char *ep)
{
	struct episode e;
	int rc;
	if (cli_has(a, CLI_RESTORE)) {
		rc = manage_restore(db, c, ep, cli_opt(a, CLI_RESTORE));
		if (rc == 0) printf("restored %s of %s; the stages after it run again\n", cli_opt(a, CLI_RESTORE), ep);
		return rc;
	}
	if (!cli_has(a, CLI_DIFF) && cli_arg(a, 1))
		return err_set_kind(ERR_USAGE, "unexpected argument '%s'", cli_arg(a, 1));
	if (episode_resolve(db, c->root, ep, &e) < 0) return -1;
	if (cli_has(a, CLI_DIFF))
		rc = versions_diff(db, &e, cli_opt(a, CLI_DIFF), cli_arg(a, 1));
	else
		rc = versions_list(db, &e, cli_has(a, CLI_JSON));
	episode_free(&e);
	return rc;
}

CMD_WITH_DB(versions, do_versions)

/* ---- audit --------------------------------------------------------------------- */

static void audit_line(sqlite3_stmt *st)
{
	const char *s[8];
	for (int i = 0; i < 8; i++) s[i] = sqlite3_column_text(st, i) ? (const char *)sqlite3_column_text(st, i) : "";
	printf("%-24s %-40.40s %-10s %s:%-12s %s%s%s\n", s[0], *s[1] ? s[1] : s[2], s[3], s[4], s[5], s[6],
	       *s[7] ? " <- " : "", s[7]);
}

int cmd_audit(struct cli *a)
{
	sqlite3 *db = db_open(a->root, 0);
	const char *ep = cli_arg(a, 0);
	char since[32] = "", id[37] = "";
	sqlite3_stmt *st = NULL;
	int json = cli_has(a, CLI_JSON), n = 0, rc = -1;
	struct episode e;
	if (!db) goto out;
	if (cli_has(a, CLI_SINCE) && cli_since(cli_opt(a, CLI_SINCE), since) < 0) goto out;
	if (ep && episode_resolve(db, a->root, ep, &e) < 0) goto out;
	if (ep) snprintf(id, sizeof id, "%s", e.id), episode_free(&e);
	st = db_prep(db,
		     "SELECT l.created_at, e.ticket, l.entity_id, l.action, l.actor_type, l.actor_id,"
		     " l.new_values, l.old_values FROM audit_logs l LEFT JOIN episodes e ON e.id = l.entity_id"
		     " AND l.entity_type = 'episode' WHERE (? = '' OR l.entity_id = ?) AND (? = '' OR l.created_at >= ?)"
		     " ORDER BY l.created_at, l.rowid",
		     "ssss", id, id, since, since);
	if (!st) goto out;
	if (!json) printf("%-24s %-40s %-10s %-18s %s\n", "TIME", "EPISODE", "ACTION", "ACTOR", "CHANGE");
	while (sqlite3_step(st) == SQLITE_ROW) json ? status_json_row(st, n++) : audit_line(st);
	if (json) printf("%s]\n", n ? "\n" : "[");
	rc = 0;
out:
	if (rc < 0) fprintf(stderr, "acog-batch audit: %s\n", err_msg());
	sqlite3_finalize(st);
	db_close(db);
	return rc < 0 ? err_exit(db ? EXIT_DATAERR : EXIT_NOINPUT) : EXIT_OK;
}
