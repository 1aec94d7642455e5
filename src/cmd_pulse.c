/*
 * cmd_pulse.c - `acog-batch pulse [--json]`: the trend events the daemon
 * took from spool/pulse/, newest first, with what each channel's rules made
 * of them and the episodes they became.  Rows are printed as they are read
 * (JSON too, one array element at a time), so memory does not grow with the
 * number of events.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>

#define PULSE_SQL \
	"SELECT p.id, p.created_at, p.source, p.source_id, json_extract(p.payload, '$.title'), p.source_url," \
	" p.topic_tags, p.relevance_score, p.event_timestamp, p.source_file, p.is_processed, p.matched_channels," \
	" p.outcome, (SELECT json_group_array(json_object('id', e.id, 'ticket', e.ticket, 'state', e.state))" \
	" FROM episodes e WHERE e.pulse_event_id = p.id)" \
	" FROM pulse_events p WHERE p.deleted_at IS NULL ORDER BY p.created_at DESC, p.id"

static const char *text(sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);
	return s ? (const char *)s : "";
}

static cJSON *json_col(sqlite3_stmt *st, int col)
{
	cJSON *j = sqlite3_column_type(st, col) == SQLITE_NULL ? NULL : cJSON_Parse(text(st, col));
	return j ? j : cJSON_CreateNull();
}

static void add_str(cJSON *o, const char *k, sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddStringToObject(o, k, text(st, col));
}

static void print_json_row(sqlite3_stmt *st, int first)
{
	cJSON *o = cJSON_CreateObject();
	char *s;
	add_str(o, "id", st, 0);
	add_str(o, "received_at", st, 1);
	add_str(o, "source", st, 2);
	add_str(o, "source_id", st, 3);
	add_str(o, "title", st, 4);
	add_str(o, "url", st, 5);
	cJSON_AddItemToObject(o, "topic_tags", json_col(st, 6));
	if (sqlite3_column_type(st, 7) == SQLITE_NULL)
		cJSON_AddNullToObject(o, "relevance_score");
	else
		cJSON_AddNumberToObject(o, "relevance_score", sqlite3_column_double(st, 7));
	add_str(o, "published_at", st, 8);
	add_str(o, "file", st, 9);
	cJSON_AddBoolToObject(o, "processed", sqlite3_column_int(st, 10));
	cJSON_AddItemToObject(o, "matched_channels", json_col(st, 11));
	add_str(o, "outcome", st, 12);
	cJSON_AddItemToObject(o, "episodes", json_col(st, 13));
	s = json_print(o);
	printf("%s%s", first ? "[\n" : ",\n", s);
	free(s);
	cJSON_Delete(o);
}

static void print_text_row(sqlite3_stmt *st)
{
	char score[16] = "-";
	if (sqlite3_column_type(st, 7) != SQLITE_NULL)
		snprintf(score, sizeof score, "%.2f", sqlite3_column_double(st, 7));
	printf("%-8.8s  %-19.19s  %-12.12s  %5s  %-40.40s  %s\n", text(st, 0), text(st, 1), text(st, 2), score,
	       text(st, 4), sqlite3_column_int(st, 10) ? text(st, 12) : "(not decided yet)");
}

int cmd_pulse(struct cli *a)
{
	sqlite3 *db = db_open(a->root, 0);
	sqlite3_stmt *st;
	int json = cli_has(a, CLI_JSON), n = 0;
	if (!db) {
		fprintf(stderr, "acog-batch pulse: %s\n", err_msg());
		return err_exit(EXIT_NOINPUT);
	}
	if (!(st = db_prep(db, PULSE_SQL, NULL))) {
		fprintf(stderr, "acog-batch pulse: %s\n", err_msg());
		db_close(db);
		return err_exit(EXIT_SOFTWARE);
	}
	if (!json)
		printf("%-8s  %-19s  %-12s  %5s  %-40s  %s\n", "EVENT", "RECEIVED", "SOURCE", "SCORE", "TITLE",
		       "OUTCOME");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (json)
			print_json_row(st, n == 0);
		else
			print_text_row(st);
		n++;
	}
	if (json) puts(n ? "\n]" : "[]");
	sqlite3_finalize(st);
	db_close(db);
	return EXIT_OK;
}
