/*
 * report_episode.c - one episode's review page: what the reviewer watches
 * (video, thumbnail), reads (title, description, tags, the script with each
 * segment's timing), checks (the QA report, costs, the job timeline) and
 * does (report_review.c: what changed since the last version, the approve
 * and reject commands).  Database figures carry their source (report.h).
 */
#include "report.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPISODE_FIG(b, tag, e, expr, value) html_fig(b, tag, "episodes", (e)->id, expr, RF_TEXT, value)

/* A file of the episode folder, as the page links to it; NULL when absent. */
static char *episode_file(const struct report_ctx *r, const struct episode *e, const char *name)
{
	char *abs = xasprintf("%s/%s", e->dir, name), *rel = NULL;
	if (fsio_exists(abs)) rel = xasprintf("%schannels/%s/episodes/%s/%s", r->to_root, e->channel, e->id, name);
	free(abs);
	return rel;
}

static void section_head(struct sbuf *b, const struct episode *e)
{
	sb_puts(b, "<p><a href=\"../index.html\">&larr; all episodes</a></p>\n<h1>");
	EPISODE_FIG(b, "span", e, "title", e->title ? e->title : e->ticket);
	sb_puts(b, "</h1>\n<p>channel ");
	html_tag(b, "strong", NULL, e->channel);
	sb_puts(b, " &middot; ticket <code>");
	html_esc(b, e->ticket);
	sb_puts(b, "</code> &middot; state ");
	EPISODE_FIG(b, "strong", e, "state", e->state);
	sb_puts(b, " at ");
	EPISODE_FIG(b, "strong", e, "stage", e->stage);
	if (e->gate_pending) {
		sb_puts(b, " &middot; <span class=\"warn\">awaiting approval at ");
		EPISODE_FIG(b, "span", e, "gate_pending", e->gate_pending);
		sb_puts(b, "</span>");
	}
	sb_puts(b, "</p>\n");
	if (e->last_error) {
		sb_puts(b, "<p class=\"fail\">last error: ");
		EPISODE_FIG(b, "span", e, "last_error", e->last_error);
		sb_puts(b, "</p>\n");
	}
}

static void section_media(struct report_ctx *r, struct sbuf *b, const struct episode *e)
{
	char *video = episode_file(r, e, "final.mp4"), *thumb = episode_file(r, e, "thumbnail.png");
	sb_puts(b, "<h2>Video</h2>\n");
	if (video) {
		sb_puts(b, "<video id=\"video\" controls preload=\"metadata\" playsinline src=\"");
		html_url(b, video);
		if (thumb) sb_puts(b, "\" poster=\"");
		if (thumb) html_url(b, thumb);
		sb_puts(b, "\"></video>\n");
	} else
		sb_puts(b, "<p class=\"muted\">No video yet (final.mp4 is made by the assembly stage).</p>\n");
	if (thumb) {
		sb_puts(b, "<h2>Thumbnail</h2>\n<img id=\"thumbnail\" class=\"thumb\" alt=\"thumbnail\" src=\"");
		html_url(b, thumb);
		sb_puts(b, "\">\n");
	}
	free(video);
	free(thumb);
}

/* Title, description and tags as the upload will send them (episodes.metadata). */
static void section_metadata(struct report_ctx *r, struct sbuf *b, const struct episode *e)
{
	sqlite3_stmt *st = db_prep(r->db, "SELECT metadata FROM episodes WHERE id = ?", "s", e->id);
	cJSON *m = st && sqlite3_step(st) == SQLITE_ROW ? cJSON_Parse((const char *)sqlite3_column_text(st, 0)) : NULL;
	const cJSON *tag;
	int i = 0;
	sqlite3_finalize(st);
	sb_puts(b, "<h2>Title, description, tags</h2>\n<p><strong>");
	EPISODE_FIG(b, "span", e, "json_extract(metadata, '$.final_title')", json_str(m, "final_title", NULL));
	sb_puts(b, "</strong></p>\n");
	EPISODE_FIG(b, "pre", e, "json_extract(metadata, '$.description')", json_str(m, "description", NULL));
	sb_puts(b, "\n<p class=\"tags\">");
	cJSON_ArrayForEach (tag, json_get(m, "tags")) {
		char expr[64];
		snprintf(expr, sizeof expr, "json_extract(metadata, '$.tags[%d]')", i++);
		EPISODE_FIG(b, "span", e, expr, cJSON_IsString(tag) ? tag->valuestring : NULL);
	}
	if (i == 0) sb_puts(b, "<span class=\"muted\">no tags</span>");
	sb_puts(b, "</p>\n");
	cJSON_Delete(m);
}

static void segment_row(struct sbuf *b, const struct segment *s, size_t i, const cJSON *timeline)
{
	char path[64];
	const cJSON *seg = cJSON_GetArrayItem(json_get(timeline, "segments"), (int)i);
	sb_printf(b, "<tr><td>%zu</td><td>%s", i + 1, s->visual == SEG_AVATAR ? "avatar" : "b-roll: ");
	if (s->visual == SEG_BROLL) html_esc(b, s->broll);
	sb_puts(b, "</td>");
	snprintf(path, sizeof path, "segments.%zu.start", i);
	html_file_fig(b, "td", "timeline.json", path, cJSON_GetObjectItem(seg, "start"), RF_SECS);
	snprintf(path, sizeof path, "segments.%zu.end", i);
	html_file_fig(b, "td", "timeline.json", path, cJSON_GetObjectItem(seg, "end"), RF_SECS);
	html_tag(b, "td", NULL, s->text);
	sb_puts(b, "</tr>\n");
}

/* The script's segments (episodes.script) with their timings in the video
 * (timeline.json, written by the assembly stage). */
static void section_script(struct report_ctx *r, struct sbuf *b, const struct episode *e)
{
	sqlite3_stmt *st = db_prep(r->db, "SELECT script FROM episodes WHERE id = ?", "s", e->id);
	char *text = st && sqlite3_step(st) == SQLITE_ROW ? db_col_str(st, 0) : NULL;
	char *tpath = xasprintf("%s/timeline.json", e->dir);
	cJSON *timeline = fsio_exists(tpath) ? json_load_file(tpath, 4 << 20) : NULL;
	struct script sc;
	sqlite3_finalize(st);
	(void)script_parse(text, &sc); /* an unparsable script shows as no segments */
	sb_puts(b, "<h2>Script</h2>\n");
	if (sc.n == 0)
		sb_puts(b, "<p class=\"muted\">No script yet.</p>\n");
	else
		sb_puts(b,
			"<div class=\"scroll\"><table><thead><tr><th>#</th><th>visual</th><th>start s</th>"
			"<th>end s</th><th>narration</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < sc.n; i++) segment_row(b, &sc.seg[i], i, timeline);
	if (sc.n) sb_puts(b, "</tbody></table></div>\n");
	script_free(&sc);
	cJSON_Delete(timeline);
	free(tpath);
	free(text);
}

static void qa_check_row(struct sbuf *b, const cJSON *check, int i)
{
	static const char *const fields[] = { "value", "threshold" };
	const char *status = json_str(check, "status", "?");
	char path[64];
	snprintf(path, sizeof path, "checks.%d.name", i);
	html_file_fig(b, "td", "qa.json", path, cJSON_GetObjectItem(check, "name"), RF_TEXT);
	snprintf(path, sizeof path, "checks.%d.status", i);
	sb_printf(b, "<td class=\"%s\">",
		  strcmp(status, "pass") && strcmp(status, "warn") && strcmp(status, "fail") ? "muted" : status);
	html_file_fig(b, "span", "qa.json", path, cJSON_GetObjectItem(check, "status"), RF_TEXT);
	sb_puts(b, "</td>");
	for (size_t f = 0; f < 2; f++) {
		const cJSON *v = cJSON_GetObjectItem(check, fields[f]);
		snprintf(path, sizeof path, "checks.%d.%s", i, fields[f]);
		html_file_fig(b, "td", "qa.json", path, v, cJSON_IsNumber(v) ? RF_NUM : RF_TEXT);
	}
	html_tag(b, "td", NULL, json_str(check, "unit", ""));
	html_tag(b, "td", NULL, json_str(check, "detail", ""));
}

/* The scalar measurements of qa.json's "measured" (a key with a dot could
 * not be named by data-j, so it is left out). */
static void qa_measured(struct sbuf *b, const cJSON *measured)
{
	const cJSON *m;
	int shown = 0;
	cJSON_ArrayForEach (m, measured) {
		char path[160];
		if (!(cJSON_IsNumber(m) || cJSON_IsString(m)) || strchr(m->string, '.') || strlen(m->string) > 100)
			continue;
		sb_puts(b, shown++ ? ", " : "<p>measured: ");
		html_esc(b, m->string);
		sb_puts(b, " ");
		snprintf(path, sizeof path, "measured.%s", m->string);
		html_file_fig(b, "span", "qa.json", path, m, cJSON_IsNumber(m) ? RF_NUM : RF_TEXT);
	}
	if (shown) sb_puts(b, "</p>\n");
}

/* qa.json beside final.mp4 (written by the assembly stage). */
static void section_qa(struct sbuf *b, const struct episode *e)
{
	char *path = xasprintf("%s/qa.json", e->dir);
	cJSON *qa = fsio_exists(path) ? json_load_file(path, 4 << 20) : NULL;
	const cJSON *check;
	int i = 0;
	sb_puts(b, "<h2>QA</h2>\n");
	if (!qa) {
		sb_printf(b, "<p class=\"muted\" id=\"qa-none\">no QA report%s</p>\n",
			  fsio_exists(path) ? " (qa.json is unreadable)" : "");
		free(path);
		return;
	}
	sb_printf(b, "<p>verdict: <span class=\"%s\">", json_str(qa, "verdict", "muted"));
	html_file_fig(b, "span", "qa.json", "verdict", cJSON_GetObjectItem(qa, "verdict"), RF_TEXT);
	sb_puts(b,
		"</span></p>\n<div class=\"scroll\"><table><thead><tr><th>check</th><th>status</th><th>value</th>"
		"<th>threshold</th><th>unit</th><th>detail</th></tr></thead><tbody>\n");
	cJSON_ArrayForEach (check, json_get(qa, "checks")) {
		sb_puts(b, "<tr>");
		qa_check_row(b, check, i++);
		sb_puts(b, "</tr>\n");
	}
	sb_puts(b, "</tbody></table></div>\n");
	qa_measured(b, json_get(qa, "measured"));
	cJSON_Delete(qa);
	free(path);
}

/* clang-format off: tables keep one row per line */
static const struct report_col cost_cols[] = { { "when", "created_at", RF_TEXT },
					       { "provider", "provider", RF_TEXT },
					       { "operation", "operation_type", RF_TEXT },
					       { "units", "units_consumed", RF_NUM },
					       { "unit", "unit_type", RF_TEXT },
					       { "USD", "cost_usd", RF_USD },
					       { NULL, NULL, 0 } };
static const struct report_col job_cols[] = { { "stage", "stage", RF_TEXT },
					      { "status", "status", RF_TEXT },
					      { "provider", "provider", RF_TEXT },
					      { "started", "started_at", RF_TEXT },
					      { "completed", "completed_at", RF_TEXT },
					      { "seconds", "(julianday(completed_at) - julianday(started_at)) * 86400",
						RF_SECS },
					      { "retries", "retry_count", RF_NUM },
					      { "cached", "cached", RF_NUM },
					      { "USD", "cost_usd", RF_USD },
					      { "error", "error_message", RF_TEXT },
					      { NULL, NULL, 0 } };
static const struct report_col audit_cols[] = { { "when", "created_at", RF_TEXT },
						{ "event", "action", RF_TEXT },
						{ "by", "actor_type || ' ' || COALESCE(actor_id, '')", RF_TEXT },
						{ "from", "json_extract(old_values, '$.state')", RF_TEXT },
						{ "to", "json_extract(new_values, '$.state')", RF_TEXT },
						{ "stage", "json_extract(new_values, '$.stage')", RF_TEXT },
						{ "why", "json_extract(new_values, '$.why')", RF_TEXT },
						{ NULL, NULL, 0 } };
/* clang-format on */

static void section_costs(struct report_ctx *r, struct sbuf *b, const struct episode *e)
{
	sb_puts(b, "<h2>Costs</h2>\n<p>total USD ");
	html_cost_total(b, r->db, "strong", e->id);
	sb_puts(b, "</p>\n");
	html_table(b, r->db, "cost_entries", cost_cols, "episode_id = ? ORDER BY created_at, rowid", e->id);
}

static void section_timeline(struct report_ctx *r, struct sbuf *b, const struct episode *e)
{
	sb_puts(b, "<h2>Jobs</h2>\n");
	html_table(b, r->db, "jobs", job_cols, "episode_id = ? ORDER BY created_at, rowid", e->id);
	sb_puts(b, "<h2>History</h2>\n");
	html_table(b, r->db, "audit_logs", audit_cols, "entity_id = ? ORDER BY rowid", e->id);
}

int report_episode_page(struct report_ctx *r, const char *episode_id)
{
	struct episode e;
	struct sbuf b = { 0 };
	char *path;
	int rc;
	if (episode_load(r->db, r->root, episode_id, &e) < 0) return -1;
	html_begin(&b, e.title ? e.title : e.ticket, NULL);
	section_head(&b, &e);
	section_media(r, &b, &e);
	section_qa(&b, &e);
	report_decision(r, &b, &e);
	section_metadata(r, &b, &e);
	section_script(r, &b, &e);
	report_changes(r, &b, &e);
	section_costs(r, &b, &e);
	section_timeline(r, &b, &e);
	html_end(&b);
	path = xasprintf("%s/episodes/%s.html", r->out, e.id);
	rc = html_commit(path, &b);
	free(path);
	sb_free(&b);
	episode_free(&e);
	return rc;
}
