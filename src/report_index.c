/*
 * report_index.c - the report's front page: every episode, by channel and
 * then by the stage it is at (pipeline order), each linking to its page.
 * Episodes waiting for a decision are listed first, above the channels.
 */
#include "report.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct idx_row {
	char *id, *channel, *stage, *state, *title, *ticket, *gate, *created;
};

static void row_link(struct sbuf *b, const struct idx_row *e)
{
	sb_puts(b, "<td><a href=\"episodes/");
	html_url(b, e->id);
	sb_puts(b, ".html\">");
	html_fig(b, "span", "episodes", e->id, "COALESCE(title, ticket)", RF_TEXT, e->title);
	sb_puts(b, "</a></td>");
}

static void row_html(struct report_ctx *r, struct sbuf *b, const struct idx_row *e)
{
	sb_puts(b, "<tr>");
	row_link(b, e);
	html_fig(b, "td", "episodes", e->id, "state", RF_TEXT, e->state);
	html_fig(b, "td", "episodes", e->id, "gate_pending", RF_TEXT, e->gate);
	html_fig(b, "td", "episodes", e->id, "ticket", RF_TEXT, e->ticket);
	html_fig(b, "td", "episodes", e->id, "created_at", RF_TEXT, e->created);
	html_cost_total(b, r->db, "td", e->id);
	sb_puts(b, "</tr>\n");
}

static void table_open(struct sbuf *b, const char *heading, int count)
{
	sb_puts(b, "<h3>");
	html_esc(b, heading);
	sb_printf(b,
		  " <span class=\"muted\">(%d)</span></h3>\n<div class=\"scroll\"><table><thead><tr><th>title</th>"
		  "<th>state</th><th>awaiting</th><th>ticket</th><th>created</th><th>USD</th></tr></thead><tbody>\n",
		  count);
}

/* Of one channel and at one stage (stage NULL: at none of the table's). */
static int in_group(const struct idx_row *e, const char *channel, const char *stage)
{
	return !strcmp(e->channel, channel) && (stage ? !strcmp(e->stage, stage) : stage_index(e->stage) < 0);
}

static void stage_group(struct report_ctx *r, struct sbuf *b, struct idx_row *v, size_t n, const char *channel,
			const char *stage)
{
	int count = 0;
	for (size_t i = 0; i < n; i++) count += in_group(&v[i], channel, stage);
	if (count == 0) return;
	table_open(b, stage ? stage : "other", count);
	for (size_t i = 0; i < n; i++)
		if (in_group(&v[i], channel, stage)) row_html(r, b, &v[i]);
	sb_puts(b, "</tbody></table></div>\n");
}

static size_t load_rows(sqlite3 *db, struct idx_row **out)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT e.id, c.slug, e.stage, e.state, COALESCE(e.title, e.ticket), e.ticket,"
				   " e.gate_pending, e.created_at FROM episodes e JOIN channels c ON c.id = e.channel_id"
				   " WHERE e.deleted_at IS NULL ORDER BY c.slug, e.created_at, e.id",
				   NULL);
	size_t n = 0, cap = 0;
	*out = NULL;
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) *out = xrealloc(*out, (cap = cap ? cap * 2 : 16) * sizeof **out);
		(*out)[n++] = (struct idx_row){ db_col_str(st, 0), db_col_str(st, 1), db_col_str(st, 2),
						db_col_str(st, 3), db_col_str(st, 4), db_col_str(st, 5),
						db_col_str(st, 6), db_col_str(st, 7) };
	}
	sqlite3_finalize(st);
	return n;
}

static void rows_free(struct idx_row *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char **f[] = { &v[i].id,    &v[i].channel, &v[i].stage, &v[i].state,
			       &v[i].title, &v[i].ticket,  &v[i].gate,  &v[i].created };
		for (size_t k = 0; k < sizeof f / sizeof *f; k++) free(*f[k]);
	}
	free(v);
}

static void awaiting(struct report_ctx *r, struct sbuf *b, struct idx_row *v, size_t n)
{
	int count = 0;
	for (size_t i = 0; i < n; i++) count += v[i].gate != NULL;
	sb_puts(b, "<h2>Awaiting a decision</h2>\n");
	if (count == 0) {
		sb_puts(b, "<p class=\"muted\">Nothing waits at a review gate.</p>\n");
		return;
	}
	table_open(b, "at a gate", count);
	for (size_t i = 0; i < n; i++)
		if (v[i].gate) row_html(r, b, &v[i]);
	sb_puts(b, "</tbody></table></div>\n");
}

int report_index_page(struct report_ctx *r)
{
	struct sbuf b = { 0 };
	struct idx_row *v;
	size_t n = load_rows(r->db, &v);
	char *path;
	int rc;
	html_begin(&b, "acog-batch: episodes", NULL);
	sb_printf(&b, "<h1>Episodes</h1>\n<p class=\"muted\">%zu episode(s) in ", n);
	html_esc(&b, r->root);
	sb_puts(&b, "</p>\n");
	awaiting(r, &b, v, n);
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && !strcmp(v[i].channel, v[i - 1].channel)) continue;
		sb_puts(&b, "<h2>channel ");
		html_esc(&b, v[i].channel);
		sb_puts(&b, "</h2>\n");
		for (size_t s = 0; s < stage_count; s++) stage_group(r, &b, v, n, v[i].channel, stage_table[s].name);
		stage_group(r, &b, v, n, v[i].channel, NULL);
	}
	html_end(&b);
	path = xasprintf("%s/index.html", r->out);
	rc = html_commit(path, &b);
	free(path);
	sb_free(&b);
	rows_free(v, n);
	return rc;
}
