/*
 * report_html.c - the HTML of the review pages: escaping, the page frame
 * (inline CSS that reads on a phone), figures marked with their source, a
 * table of database rows, and the durable write of a page.
 */
#include "report.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One stylesheet for every page: no fonts or files to fetch. */
static const char css[] =
	"body{font:16px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:64rem;"
	"padding:.75rem;color:#1b1b1b;background:#fafafa}"
	"h1{font-size:1.4rem;margin:.3rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .4rem;border-bottom:1px solid #ccc}"
	"video,img{max-width:100%;height:auto;background:#000}video{width:100%}img.thumb{max-width:min(100%,28rem)}"
	".scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9rem;min-width:100%}"
	"th,td{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top}"
	"th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}"
	"pre,code{font:.85rem/1.35 ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}"
	"pre{background:#f0f0f0;padding:.5rem;border-radius:4px}"
	".pass{color:#0a6b1f;font-weight:600}.warn{color:#8a5a00;font-weight:600}"
	".fail{color:#b00020;font-weight:600}.muted{color:#666}"
	"del{background:#fde2e2;text-decoration:none;display:block}"
	"ins{background:#dcf5dc;text-decoration:none;display:block}"
	".tags span{display:inline-block;background:#e6ecf5;border-radius:3px;padding:0 .35rem;margin:.1rem}"
	"@media (max-width:40rem){body{font-size:15px;padding:.4rem}th,td{padding:.2rem}}";

void html_esc(struct sbuf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': sb_puts(b, "&amp;"); break;
		case '<': sb_puts(b, "&lt;"); break;
		case '>': sb_puts(b, "&gt;"); break;
		case '"': sb_puts(b, "&quot;"); break;
		case '\'': sb_puts(b, "&#39;"); break;
		default: sb_add(b, s, 1);
		}
	}
}

/* Unreserved characters and '/' stay; everything else is %XX, so a root
 * path with spaces, '#' or '?' still names the file. */
void html_url(struct sbuf *b, const char *path)
{
	sb_percent_escape(b, path, "-._~/");
}

void html_tag(struct sbuf *b, const char *tag, const char *cls, const char *text)
{
	sb_printf(b, "<%s", tag);
	if (cls) sb_printf(b, " class=\"%s\"", cls);
	sb_puts(b, ">");
	html_esc(b, text);
	sb_printf(b, "</%s>", tag);
}

void html_begin(struct sbuf *b, const char *title, const char *css_extra)
{
	sb_puts(b,
		"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		"<meta name=\"generator\" content=\"acog-batch report\">\n<title>");
	html_esc(b, title);
	sb_printf(b, "</title>\n<style>%s%s</style>\n</head><body>\n", css, css_extra ? css_extra : "");
}

void html_end(struct sbuf *b)
{
	char now[32];
	time_iso(time_now(), now);
	sb_printf(b, "\n<p class=\"muted\">Written by acog-batch %s at %s.</p>\n</body></html>\n", ACOG_VERSION, now);
}

/* USD to 4 places (a sub-cent token price still shows), seconds to 3. */
void html_value(struct sbuf *b, enum report_fmt fmt, const char *value)
{
	char num[64];
	if (!value) {
		sb_puts(b, "&mdash;");
		return;
	}
	switch (fmt) {
	case RF_USD: snprintf(num, sizeof num, "%.4f", strtod(value, NULL)); break;
	case RF_SECS: snprintf(num, sizeof num, "%.3f", strtod(value, NULL)); break;
	case RF_NUM: snprintf(num, sizeof num, "%g", strtod(value, NULL)); break;
	default: html_esc(b, value); return;
	}
	sb_puts(b, num);
}

static const char *const fmt_names[] = { [RF_TEXT] = "text", [RF_USD] = "usd", [RF_NUM] = "num", [RF_SECS] = "secs" };

/* <tag class data-<k0>="v0" data-<k1>="v1" ... data-f>value</tag>; attrs end with NULL. */
static void fig(struct sbuf *b, const char *tag, enum report_fmt fmt, const char *value, const char *const *attrs)
{
	sb_printf(b, "<%s%s", tag, fmt == RF_TEXT ? "" : " class=\"n\"");
	for (; attrs[0]; attrs += 2) {
		sb_printf(b, " data-%s=\"", attrs[0]);
		html_esc(b, attrs[1]);
		sb_puts(b, "\"");
	}
	sb_printf(b, " data-f=\"%s\">", fmt_names[fmt]);
	html_value(b, fmt, value);
	sb_printf(b, "</%s>", tag);
}

void html_fig(struct sbuf *b, const char *tag, const char *table, const char *key, const char *expr,
	      enum report_fmt fmt, const char *value)
{
	fig(b, tag, fmt, value, (const char *const[]){ "t", table, "k", key ? key : "", "c", expr, NULL });
}

void html_file_fig(struct sbuf *b, const char *tag, const char *file, const char *jpath, const cJSON *v,
		   enum report_fmt fmt)
{
	char num[64];
	const char *text = NULL;
	if (cJSON_IsString(v)) text = v->valuestring;
	if (cJSON_IsNumber(v)) {
		snprintf(num, sizeof num, "%.17g", v->valuedouble);
		text = num;
	}
	fig(b, tag, fmt, text, (const char *const[]){ "file", file, "j", jpath, NULL });
}

static void table_head(struct sbuf *b, const struct report_col *cols)
{
	sb_puts(b, "<div class=\"scroll\"><table><thead><tr>");
	for (const struct report_col *c = cols; c->label; c++) html_tag(b, "th", NULL, c->label);
	sb_puts(b, "</tr></thead><tbody>\n");
}

void html_table(struct sbuf *b, sqlite3 *db, const char *table, const struct report_col *cols, const char *where,
		const char *id)
{
	struct sbuf sql = { 0 };
	sqlite3_stmt *st;
	int ncol = 0, rows = 0;
	sb_puts(&sql, "SELECT id");
	for (const struct report_col *c = cols; c->label; c++, ncol++) sb_printf(&sql, ", %s", c->expr);
	sb_printf(&sql, " FROM %s WHERE %s", table, where);
	st = db_prep(db, sql.s, "s", id);
	table_head(b, cols);
	while (st && sqlite3_step(st) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		sb_puts(b, "<tr>");
		for (int i = 0; i < ncol; i++)
			html_fig(b, "td", table, key, cols[i].expr, cols[i].fmt,
				 (const char *)sqlite3_column_text(st, i + 1));
		sb_puts(b, "</tr>\n");
		rows++;
	}
	if (rows == 0) sb_printf(b, "<tr><td colspan=\"%d\" class=\"muted\">none</td></tr>", ncol);
	sb_puts(b, "</tbody></table></div>\n");
	sqlite3_finalize(st);
	sb_free(&sql);
}

/* An episode's spend: the sum of its cost entries (data-sum, data-episode). */
void html_cost_total(struct sbuf *b, sqlite3 *db, const char *tag, const char *episode_id)
{
	sqlite3_stmt *st = db_prep(db, "SELECT SUM(cost_usd) FROM cost_entries WHERE episode_id = ?", "s", episode_id);
	const char *sum = st && sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
	sb_printf(b, "<%s class=\"n\" data-sum=\"cost_entries.cost_usd\" data-episode=\"", tag);
	html_esc(b, episode_id);
	sb_puts(b, "\">");
	html_value(b, RF_USD, sum ? sum : "0");
	sb_printf(b, "</%s>", tag);
	sqlite3_finalize(st);
}

int html_commit(const char *path, const struct sbuf *b)
{
	return fsio_write_atomic(path, b->s, b->len);
}
