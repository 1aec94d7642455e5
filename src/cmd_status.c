/*
 * cmd_status.c - read-only reports: status, show, costs.  They read the
 * database (WAL lets them run beside the daemon) and print either aligned
 * text for people or JSON for scripts.  An episode's state is the state
 * machine's (episodes.state, named by state.c), never rebuilt here.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sqlite3 *open_ro(struct cli *a, const char *what)
{
	sqlite3 *db = db_open(a->root, 0);
	if (!db) fprintf(stderr, "acog-batch %s: %s\n", what, err_msg());
	return db;
}

static void age_text(const char *created, char *out, size_t n)
{
	double s = time_now() - time_parse_iso(created);
	if (s < 120)
		snprintf(out, n, "%ds", (int)s);
	else if (s < 7200)
		snprintf(out, n, "%dm", (int)(s / 60));
	else if (s < 172800)
		snprintf(out, n, "%dh", (int)(s / 3600));
	else
		snprintf(out, n, "%dd", (int)(s / 86400));
}

/* One row as an object keyed by column name (NULL columns left out). */
static cJSON *row_object(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < sqlite3_column_count(st); i++) {
		const char *k = sqlite3_column_name(st, i);
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL: break;
		case SQLITE_INTEGER:
		case SQLITE_FLOAT: cJSON_AddNumberToObject(o, k, sqlite3_column_double(st, i)); break;
		default: cJSON_AddStringToObject(o, k, (const char *)sqlite3_column_text(st, i));
		}
	}
	return o;
}

/* A JSON array streamed one element at a time: "[" before the first (i = 0),
 * "," between; the caller closes it with status_json_end.  Takes o. */
static void json_item(cJSON *o, int i)
{
	char *s = json_print(o);
	printf("%s\n%s", i ? "," : "[", s);
	free(s);
	cJSON_Delete(o);
}

void status_json_row(sqlite3_stmt *st, int i)
{
	json_item(row_object(st), i);
}

void status_json_end(int n)
{
	printf("%s]\n", n ? "\n" : "[");
}

/* Runs a query (with one bound id, or none) and turns every row into an
 * object keyed by column name. */
static cJSON *rows(sqlite3 *db, const char *sql, const char *id)
{
	cJSON *arr = cJSON_CreateArray();
	sqlite3_stmt *st = db_prep(db, sql, id ? "s" : NULL, id);
	while (st && sqlite3_step(st) == SQLITE_ROW) cJSON_AddItemToArray(arr, row_object(st));
	sqlite3_finalize(st);
	return arr;
}

/* The state machine names the state (state.c); a queued job that waits for
 * its retry time says when. */
static void state_text(const cJSON *o, char *out, size_t n)
{
	const char *state = json_str(o, "state", ""), *next = json_str(o, "next_attempt_at", NULL);
	if (!strcmp(state, "queued") && next && time_parse_iso(next) > time_now())
		snprintf(out, n, "retry-at-%.8s", next + 11);
	else
		snprintf(out, n, "%s", state_label(state));
}

/* The filters, bound by number: ?1 channel, ?2 stage, ?3 state, ?4 since, ?5 all. */
#define STATUS_WHERE \
	" WHERE e.deleted_at IS NULL AND (?1 = '' OR c.slug = ?1) AND (?2 = '' OR e.stage = ?2)" \
	" AND (?4 = '' OR e.created_at >= ?4)"
/* Which episodes: one state (its index), the active ones (the index too:
 * what is unfinished stays small however long the history), or all. */
#define STATUS_ONE " AND e.state = ?3 AND ?5 = ?5"
#define STATUS_ACTIVE \
	" AND e.state IN ('new', 'queued', 'running', 'awaiting', 'held', 'failed') AND ?3 = ?3 AND ?5 = ?5"
#define STATUS_ALL " AND ?3 = ?3 AND ?5 = ?5"
#define STATUS_SQL \
	"SELECT e.id, e.ticket, c.slug AS channel, e.status, e.stage, e.state, e.location," \
	" e.hold_kind, e.hold_until, e.created_at, e.title, e.last_error," \
	" (SELECT next_attempt_at FROM jobs j WHERE j.episode_id = e.id AND j.status = 'queued') AS next_attempt_at," \
	" (SELECT COALESCE(SUM(cost_usd), 0) FROM cost_entries k WHERE k.episode_id = e.id) AS cost_usd," \
	" e.scheduled_at, (SELECT value FROM provider_state p WHERE p.episode_id = e.id AND p.stage = 'upload'" \
	" AND p.key = 'yt_progress') AS upload_progress" \
	" FROM episodes e JOIN channels c ON c.id = e.channel_id" STATUS_WHERE
#define STATUS_ORDER " ORDER BY e.created_at, e.id"
/* The count per state ignores --state and --all: it is the whole picture. */
#define COUNT_SQL \
	"SELECT e.state, COUNT(*) FROM episodes e JOIN channels c ON c.id = e.channel_id" STATUS_WHERE STATUS_ALL \
	" GROUP BY e.state"

/* Channel-wide holds (hold.c), under the table. */
static void print_channel_holds(sqlite3 *db)
{
	cJSON *arr = rows(db,
			  "SELECT c.slug AS channel, h.stage, h.kind, h.until, h.reason FROM channel_holds h"
			  " JOIN channels c ON c.id = h.channel_id ORDER BY 1, 2",
			  NULL);
	const cJSON *o;
	cJSON_ArrayForEach (o, arr)
		printf("channel %s: %s held (%s) until %s: %s\n", json_str(o, "channel", "?"),
		       strcmp(json_str(o, "stage", "*"), "*") ? json_str(o, "stage", "?") : "paid work",
		       json_str(o, "kind", "?"), json_str(o, "until", "a person acts"), json_str(o, "reason", ""));
	cJSON_Delete(arr);
}

/* One episode's line; a publishing slot and upload progress when there are. */
static void status_line(const cJSON *o, const char *state, const char *age)
{
	const char *slot = json_str(o, "scheduled_at", NULL), *sent = json_str(o, "upload_progress", NULL);
	printf("%-48s %-10s %-13s %-18s %5s %8.4f", json_str(o, "ticket", ""), json_str(o, "channel", ""),
	       json_str(o, "stage", ""), state, age, json_num(o, "cost_usd", 0));
	if (slot) printf("  publishes %s", slot);
	if (sent) printf("  uploaded %s bytes", sent);
	printf("\n");
}

/* The filters as given, checked: the state by its name or its label. */
struct status_filter {
	const char *channel, *stage, *state;
	char since[32];
	int all;
};

static int filter_parse(const struct cli *a, struct status_filter *f)
{
	const char *st = cli_opt(a, CLI_STATE);
	memset(f, 0, sizeof *f);
	f->channel = cli_has(a, CLI_CHANNEL) ? cli_opt(a, CLI_CHANNEL) : "";
	f->stage = cli_has(a, CLI_STAGE) ? cli_opt(a, CLI_STAGE) : "";
	f->state = "";
	f->all = cli_has(a, CLI_ALL) || cli_has(a, CLI_SINCE) || cli_has(a, CLI_STATE);
	if (*f->stage && !stage_find(f->stage))
		return err_set_kind(ERR_USAGE, "--stage %s: no such stage (see `acog-batch show`)", f->stage);
	for (int i = 0; st && i < ST_COUNT && !*f->state; i++)
		if (!strcmp(st, state_name((enum ep_state)i)) || !strcmp(st, state_label(state_name((enum ep_state)i))))
			f->state = state_name((enum ep_state)i);
	if (st && !*f->state)
		return err_set_kind(ERR_USAGE,
				    "--state %s: use queued, running, awaiting-approval, held, failed, cancelled or "
				    "published",
				    st);
	return cli_has(a, CLI_SINCE) ? cli_since(cli_opt(a, CLI_SINCE), f->since) : 0;
}

static sqlite3_stmt *status_query(sqlite3 *db, const char *sql, const struct status_filter *f)
{
	return db_prep(db, sql, "ssssi", f->channel, f->stage, f->state, f->since, f->all);
}

/* "episodes: 7 (2 queued, 1 running, 4 published)" in the state machine's order. */
static void print_counts(sqlite3 *db, const struct status_filter *f)
{
	sqlite3_stmt *st = status_query(db, COUNT_SQL, f);
	long n[ST_COUNT] = { 0 }, total = 0;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		int s = state_parse((const char *)sqlite3_column_text(st, 0));
		if (s >= 0) n[s] = sqlite3_column_int64(st, 1), total += n[s];
	}
	sqlite3_finalize(st);
	printf("episodes: %ld", total);
	for (int s = 0, k = 0; s < ST_COUNT; s++)
		if (n[s]) printf("%s%ld %s", k++ ? ", " : " (", n[s], state_label(state_name((enum ep_state)s)));
	printf("%s\n", total ? ")" : "");
}

/* One row at a time: nothing is built for the whole answer. */
static int status_rows(sqlite3 *db, const struct status_filter *f, int json)
{
	static const char *const sql[] = { STATUS_SQL STATUS_ACTIVE STATUS_ORDER, STATUS_SQL STATUS_ALL STATUS_ORDER,
					   STATUS_SQL STATUS_ONE STATUS_ORDER };
	sqlite3_stmt *st = status_query(db, sql[*f->state ? 2 : f->all ? 1 : 0], f);
	int n = 0;
	if (!st) return -1;
	if (!json) printf("%-48s %-10s %-13s %-18s %5s %8s\n", "TICKET", "CHANNEL", "STAGE", "STATE", "AGE", "COST");
	for (; sqlite3_step(st) == SQLITE_ROW; n++) {
		cJSON *o = row_object(st);
		char state[40], age[16];
		state_text(o, state, sizeof state);
		if (json) {
			cJSON_ReplaceItemInObject(o, "state", cJSON_CreateString(state));
			json_item(o, n);
			continue;
		}
		age_text(json_str(o, "created_at", ""), age, sizeof age);
		status_line(o, state, age);
		cJSON_Delete(o);
	}
	if (json) status_json_end(n);
	sqlite3_finalize(st);
	return 0;
}

/* The whole report once (also each redraw of --watch). */
int status_print(sqlite3 *db, const char *root, const struct cli *a)
{
	struct status_filter f;
	int json = cli_has(a, CLI_JSON);
	if (filter_parse(a, &f) < 0) return -1;
	if (!json) print_counts(db, &f);
	if (status_rows(db, &f, json) < 0) return -1;
	if (!json) {
		print_channel_holds(db);
		status_youtube(db, root);
	}
	return fflush(stdout) == 0 ? 0 : err_set_errno("cannot write the status");
}

int cmd_status(struct cli *a)
{
	sqlite3 *db = open_ro(a, "status");
	int rc;
	if (!db) return err_exit(EXIT_NOINPUT);
	if (cli_has(a, CLI_WATCH) && cli_has(a, CLI_JSON))
		rc = err_set_kind(ERR_USAGE, "--watch draws for people; it does not go with --json");
	else
		rc = cli_has(a, CLI_WATCH) ? status_watch(db, a) : status_print(db, a->root, a);
	if (rc < 0) fprintf(stderr, "acog-batch status: %s\n", err_msg());
	db_close(db);
	return rc < 0 ? err_exit(EXIT_SOFTWARE) : EXIT_OK;
}

static void print_rows(const char *title, const cJSON *arr, const char *const *cols)
{
	const cJSON *o;
	printf("\n%s:\n", title);
	if (cJSON_GetArraySize(arr) == 0) printf("  (none)\n");
	cJSON_ArrayForEach (o, arr) {
		printf(" ");
		for (int i = 0; cols[i]; i++) {
			const cJSON *v = cJSON_GetObjectItem(o, cols[i]);
			if (cJSON_IsString(v))
				printf(" %s=%s", cols[i], v->valuestring);
			else if (cJSON_IsNumber(v))
				printf(" %s=%g", cols[i], v->valuedouble);
		}
		printf("\n");
	}
}

/* While an upload runs (or after one was cut off): the "SENT/TOTAL" bytes the
 * server holds, as the youtube provider recorded them. */
static void add_upload_progress(sqlite3 *db, cJSON *o, const char *id)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT value FROM provider_state WHERE episode_id = ? AND stage = 'upload'"
				   " AND key = 'yt_progress'",
				   "s", id);
	if (st && sqlite3_step(st) == SQLITE_ROW)
		cJSON_AddStringToObject(o, "upload_progress", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

int cmd_show(struct cli *a)
{
	sqlite3 *db = open_ro(a, "show");
	struct episode e;
	cJSON *o;
	const char *ref = cli_arg(a, 0); /* main.c made sure there is one */
	static const char *const jc[] = {
		"stage",        "status",          "provider", "retry_count",   "cached", "started_at",
		"completed_at", "next_attempt_at", "cost_usd", "error_message", NULL
	};
	static const char *const ac[] = { "type", "uri", "mime_type", "file_size_bytes", "duration_ms", NULL };
	static const char *const cc[] = {
		"provider", "operation_type", "units_consumed", "unit_type", "cost_usd", NULL
	};
	static const char *const rc[] = { "created_at", "action", "actor_id", "new_values", NULL };
	static const char *const hc[] = {
		"created_at", "action", "actor_type", "actor_id", "from", "to", "stage", NULL
	};
	if (!db) return err_exit(EXIT_NOINPUT);
	if (episode_resolve(db, a->root, ref, &e) < 0) {
		fprintf(stderr, "acog-batch show: %s\n", err_msg());
		db_close(db);
		return err_exit(EXIT_NOINPUT);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", e.id);
	cJSON_AddStringToObject(o, "ticket", e.ticket);
	cJSON_AddStringToObject(o, "channel", e.channel);
	cJSON_AddStringToObject(o, "title", e.title ? e.title : "");
	cJSON_AddStringToObject(o, "status", e.status);
	cJSON_AddStringToObject(o, "state", state_label(e.state));
	cJSON_AddStringToObject(o, "stage", e.stage);
	cJSON_AddStringToObject(o, "spool", e.location);
	if (e.gate_pending) cJSON_AddStringToObject(o, "awaiting_approval", e.gate_pending);
	if (e.hold_kind) cJSON_AddStringToObject(o, "hold_kind", e.hold_kind);
	if (e.hold_reason) cJSON_AddStringToObject(o, "hold_reason", e.hold_reason);
	if (e.hold_until) cJSON_AddStringToObject(o, "hold_until", e.hold_until);
	cJSON_AddStringToObject(o, "episode_dir", e.dir);
	add_upload_progress(db, o, e.id);
	cJSON_AddItemToObject(o, "schedule",
			      rows(db,
				   "SELECT scheduled_at FROM episodes WHERE id = ?"
				   " AND scheduled_at IS NOT NULL",
				   e.id));
	cJSON_AddItemToObject(o, "jobs", rows(db, "SELECT * FROM jobs WHERE episode_id = ? ORDER BY created_at", e.id));
	cJSON_AddItemToObject(o, "assets",
			      rows(db,
				   "SELECT * FROM assets WHERE episode_id = ? AND deleted_at IS NULL"
				   " ORDER BY created_at",
				   e.id));
	cJSON_AddItemToObject(o, "costs",
			      rows(db, "SELECT * FROM cost_entries WHERE episode_id = ? ORDER BY created_at", e.id));
	cJSON_AddItemToObject(o, "reviews",
			      rows(db,
				   "SELECT * FROM audit_logs WHERE entity_id = ? AND actor_type <> 'daemon'"
				   " ORDER BY rowid",
				   e.id));
	/* Every transition of the state machine, in order. */
	cJSON_AddItemToObject(
		o, "history",
		rows(db,
		     "SELECT created_at, action, actor_type, actor_id,"
		     " json_extract(old_values, '$.state') AS \"from\", json_extract(new_values, '$.state') AS \"to\","
		     " json_extract(new_values, '$.stage') AS stage, json_extract(new_values, '$.why') AS why"
		     " FROM audit_logs WHERE entity_id = ? ORDER BY rowid",
		     e.id));
	cJSON_AddItemToObject(o, "versions",
			      rows(db,
				   "SELECT version_type, version_number, changed_by, change_reason,"
				   " created_at FROM episode_versions WHERE episode_id = ? ORDER BY created_at",
				   e.id));
	qa_show_json(o, e.dir);
	if (cli_has(a, CLI_JSON)) {
		char *s = json_pretty(o);
		fputs(s, stdout);
		free(s);
	} else {
		printf("episode  %s\nticket   %s\nchannel  %s\ntitle    %s\nstate    %s (status %s, stage %s, spool/%s)%s%s\n"
		       "folder   %s\n",
		       e.id, e.ticket, e.channel, e.title ? e.title : "", state_label(e.state), e.status, e.stage,
		       e.location, e.gate_pending ? " awaiting approval at " : "", e.gate_pending ? e.gate_pending : "",
		       e.dir);
		if (e.hold_reason)
			printf("held     %s (%s%s%s)\n", e.hold_reason, e.hold_kind ? e.hold_kind : "?",
			       e.hold_until ? ", until " : "", e.hold_until ? e.hold_until : "");
		if (cJSON_GetArraySize(cJSON_GetObjectItem(o, "schedule")))
			printf("publish  %s\n",
			       json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "schedule"), 0), "scheduled_at", ""));
		if (cJSON_GetObjectItem(o, "upload_progress"))
			printf("upload   uploaded %s bytes\n", json_str(o, "upload_progress", ""));
		qa_show_print(e.dir);
		print_rows("jobs", cJSON_GetObjectItem(o, "jobs"), jc);
		print_rows("assets", cJSON_GetObjectItem(o, "assets"), ac);
		print_rows("costs", cJSON_GetObjectItem(o, "costs"), cc);
		print_rows("reviews", cJSON_GetObjectItem(o, "reviews"), rc);
		print_rows("history", cJSON_GetObjectItem(o, "history"), hc);
	}
	cJSON_Delete(o);
	episode_free(&e);
	db_close(db);
	return EXIT_OK;
}

int cmd_costs(struct cli *a)
{
	sqlite3 *db = open_ro(a, "costs");
	cJSON *arr;
	const cJSON *o;
	double total = 0;
	if (!db) return err_exit(EXIT_NOINPUT);
	arr = rows(db,
		   "SELECT c.slug AS channel, substr(k.created_at, 1, 10) AS day, k.provider AS provider,"
		   " COUNT(*) AS calls, SUM(k.units_consumed) AS units, SUM(k.cost_usd) AS cost_usd"
		   " FROM cost_entries k LEFT JOIN channels c ON c.id = k.channel_id"
		   " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
		   NULL);
	if (cli_has(a, CLI_JSON)) {
		char *s = json_pretty(arr);
		fputs(s, stdout);
		free(s);
	} else {
		printf("%-16s %-10s %-12s %6s %12s %10s\n", "CHANNEL", "DAY", "PROVIDER", "CALLS", "UNITS", "USD");
		cJSON_ArrayForEach (o, arr) {
			printf("%-16s %-10s %-12s %6d %12.0f %10.4f\n", json_str(o, "channel", "?"),
			       json_str(o, "day", ""), json_str(o, "provider", ""), (int)json_num(o, "calls", 0),
			       json_num(o, "units", 0), json_num(o, "cost_usd", 0));
			total += json_num(o, "cost_usd", 0);
		}
		printf("%-16s %-10s %-12s %6s %12s %10.4f\n", "total", "", "", "", "", total);
	}
	cJSON_Delete(arr);
	db_close(db);
	return EXIT_OK;
}
