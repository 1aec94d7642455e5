/*
 * report_review.c - the part of the review page a reviewer acts on: the
 * exact commands and decision-file names for the gate the episode waits
 * at, and what changed since the previous version of its plan, script and
 * metadata (every version is kept in episode_versions; after a reject the
 * re-run adds the next one).
 */
#include "report.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A shell word: as is when it is plain, else in single quotes. */
static void shell_word(struct sbuf *b, const char *s)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@") == strlen(s)) {
		html_esc(b, s);
		return;
	}
	sb_puts(b, "&#39;");
	for (; *s; s++) {
		if (*s == '\'')
			sb_puts(b, "&#39;\\&#39;&#39;");
		else
			html_esc(b, (char[]){ *s, 0 });
	}
	sb_puts(b, "&#39;");
}

static void command_line(struct sbuf *b, const struct report_ctx *r, const char *verb, const char *ticket,
			 const char *rest)
{
	sb_puts(b, "<pre class=\"cmd\">acog-batch -C ");
	shell_word(b, r->root);
	sb_printf(b, " %s ", verb);
	shell_word(b, ticket);
	sb_printf(b, " %s</pre>\n", rest);
}

void report_decision(struct report_ctx *r, struct sbuf *b, const struct episode *e)
{
	char *stages;
	if (!e->gate_pending) return;
	stages = stage_rerunnable_names();
	sb_puts(b, "<h2 id=\"decide\">Decide</h2>\n<p>Approve (it moves on):</p>\n");
	command_line(b, r, "approve", e->ticket, "--by YOUR-NAME --notes &#39;looks good&#39;");
	sb_puts(b,
		"<p>Reject and re-run from a stage with your reason (or leave out <code>--to</code> to hold it):</p>\n");
	command_line(b, r, "reject", e->ticket, "--by YOUR-NAME --reason &#39;what to change&#39; --to STAGE");
	sb_puts(b, "<p class=\"muted\">STAGE: ");
	html_esc(b, stages);
	sb_puts(b,
		"</p>\n<p>Or drop a decision file beside the ticket (first line: your name, the rest: notes or "
		"the reason; or JSON <code>{\"by\",\"notes\"}</code> / <code>{\"by\",\"reason\",\"to\"}</code>):</p>\n"
		"<pre class=\"files\">");
	for (int i = 0; i < 2; i++) {
		sb_puts(b, "spool/");
		html_esc(b, e->gate_pending);
		sb_puts(b, "/");
		html_esc(b, e->ticket);
		sb_puts(b, i ? ".reject" : ".approve\n");
	}
	sb_puts(b, "</pre>\n");
	free(stages);
}

/* The version's text as it is compared: the script itself, or the JSON indented. */
static char *version_text(const char *type, const char *content)
{
	cJSON *j = cJSON_Parse(content);
	char *s = strcmp(type, "script") == 0 ? xstrdup(json_str(j, "text", "")) : j ? json_pretty(j) : xstrdup("");
	cJSON_Delete(j);
	return s;
}

static void change_of(struct report_ctx *r, struct sbuf *b, const char *id, const char *type, int *shown)
{
	sqlite3_stmt *st = db_prep(r->db,
				   "SELECT version_number, content, id, change_reason FROM episode_versions"
				   " WHERE episode_id = ? AND version_type = ? ORDER BY version_number DESC LIMIT 2",
				   "ss", id, type);
	char *text[2] = { NULL, NULL }, *reason = NULL, *key = NULL;
	int n = 0, number = 0;
	while (st && n < 2 && sqlite3_step(st) == SQLITE_ROW) {
		if (n == 0) {
			number = sqlite3_column_int(st, 0);
			key = db_col_str(st, 2);
			reason = db_col_str(st, 3);
		}
		text[n++] = version_text(type, (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	if (n == 2) {
		sb_printf(b, "<h3>%s: version %d against %d</h3>\n<p>why: ", type, number - 1, number);
		html_fig(b, "span", "episode_versions", key, "change_reason", RF_TEXT, reason);
		sb_puts(b, "</p>\n");
		report_diff(b, text[1], text[0]);
		(*shown)++;
	}
	free(text[0]);
	free(text[1]);
	free(reason);
	free(key);
}

void report_changes(struct report_ctx *r, struct sbuf *b, const struct episode *e)
{
	static const char *const types[] = { "plan", "script", "metadata" };
	int shown = 0;
	sb_puts(b, "<h2>Changes since the previous version</h2>\n");
	for (size_t i = 0; i < sizeof types / sizeof *types; i++) change_of(r, b, e->id, types[i], &shown);
	if (!shown) sb_puts(b, "<p class=\"muted\">First version: nothing to compare.</p>\n");
}
