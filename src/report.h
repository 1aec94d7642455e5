/*
 * report.h - the static review pages (report_*.c), shared by their files
 * only.  The pages are plain HTML files opened from disk: inline CSS, no
 * script, no network; every text escaped; every link relative, so the
 * report folder works when copied along with the root.  Every figure taken
 * from the database is marked with where it came from (data-t table, data-k
 * row id, data-c column expression, data-f format), and every figure taken
 * from a file of the episode folder with data-file and data-j (a JSON path),
 * so a test can compare each one with its source.
 */
#ifndef ACOG_REPORT_H
#define ACOG_REPORT_H
#include "daemon.h"

/* Where the pages go and how they reach the root's files. */
struct report_ctx {
	sqlite3 *db;
	const char *root; /* absolute */
	char *out;        /* absolute report folder */
	char *to_root;    /* relative path from out/episodes/ to the root, ends with '/' */
};
MUST_USE int report_ctx_open(struct report_ctx *r, sqlite3 *db, const char *root, const char *out);
void report_ctx_close(struct report_ctx *r);

/* ---- report_html.c: escaping, page frame, marked figures, commit ------- */
enum report_fmt { RF_TEXT, RF_USD, RF_NUM, RF_SECS };
struct report_col {
	const char *label;
	const char *expr; /* a column of the table, or an expression over its columns */
	enum report_fmt fmt;
};
void html_esc(struct sbuf *b, const char *s);    /* text and attribute values */
void html_url(struct sbuf *b, const char *path); /* a relative path, percent-encoded */
void html_tag(struct sbuf *b, const char *tag, const char *cls, const char *text); /* <tag class>text</tag> */
void html_begin(struct sbuf *b, const char *title, const char *css_extra);
void html_end(struct sbuf *b);
/* A database figure: <tag data-t data-k data-c data-f>value</tag>; value NULL prints an em dash. */
void html_fig(struct sbuf *b, const char *tag, const char *table, const char *key, const char *expr,
	      enum report_fmt fmt, const char *value);
/* A figure from a JSON file of the episode folder, printed with fmt. */
void html_file_fig(struct sbuf *b, const char *tag, const char *file, const char *jpath, const cJSON *v,
		   enum report_fmt fmt);
void html_value(struct sbuf *b, enum report_fmt fmt, const char *value); /* formatted, escaped */
/* A table of the rows of `table` matching `where` (one ? bound to id), one marked cell per column. */
void html_table(struct sbuf *b, sqlite3 *db, const char *table, const struct report_col *cols, const char *where,
		const char *id);
void html_cost_total(struct sbuf *b, sqlite3 *db, const char *tag, const char *episode_id);
MUST_USE int html_commit(const char *path, const struct sbuf *b);

/* ---- report_diff.c: what changed between two versions ----------------- */
/* A line diff of a and b as <pre> with <del>/<ins> lines. */
void report_diff(struct sbuf *b, const char *a, const char *bb);

/* ---- report_review.c: what the reviewer acts on ---------------------- */
/* The approve and reject commands and decision files, while at a gate. */
void report_decision(struct report_ctx *r, struct sbuf *b, const struct episode *e);
/* What the last re-run changed in the plan, script and metadata (episode_versions). */
void report_changes(struct report_ctx *r, struct sbuf *b, const struct episode *e);

/* ---- report_episode.c / report_index.c: the pages --------------------- */
MUST_USE int report_episode_page(struct report_ctx *r, const char *episode_id);
MUST_USE int report_index_page(struct report_ctx *r);
#endif
