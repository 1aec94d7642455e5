/*
 * report_ctx.c - where the review pages go (the report folder, and the
 * relative path from its pages back to the root's files), and
 * report_refresh, which the daemon calls when an episode reaches a gate.
 * Pages only read the database (no transaction is held while files are
 * written) and each page is committed durably on its own (fsio.c), so a
 * reader never sees half a page.
 */
#define _GNU_SOURCE
#include "report.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The relative path from folder `from` to folder `to` (both absolute and
 * resolved), ending with '/' unless empty. */
static char *relative_dir(const char *from, const char *to)
{
	struct sbuf b = { 0 };
	size_t common = 0;
	for (size_t i = 0;; i++) {
		int fend = from[i] == 0 || from[i] == '/', tend = to[i] == 0 || to[i] == '/';
		if (fend && tend) common = i;
		if (from[i] != to[i] || !from[i]) break;
	}
	for (const char *p = from + common; *p; p++)
		if (*p == '/' && p[1]) sb_puts(&b, "../");
	if (to[common] == '/' && to[common + 1]) sb_printf(&b, "%s/", to + common + 1);
	return b.s ? b.s : xstrdup("");
}

static char *resolved(const char *path)
{
	char buf[PATH_MAX];
	if (!realpath(path, buf)) {
		err_set_errno("cannot resolve %s", path);
		return NULL;
	}
	return xstrdup(buf);
}

int report_ctx_open(struct report_ctx *r, sqlite3 *db, const char *root, const char *out)
{
	char *pages = xasprintf("%s/episodes", out), *real_pages = NULL, *real_root = NULL;
	int rc = -1;
	memset(r, 0, sizeof *r);
	if (fsio_mkdirs(pages) < 0 || !(real_pages = resolved(pages)) || !(real_root = resolved(root))) {
		err_set_kind(ERR_CANTCREAT, "cannot make the report folder %s (%s); give a writable --out DIR", out,
			     err_msg());
		goto out;
	}
	/* a page cut off by a crash left its temporary; the one cleaner removes it */
	if (tmpclean_dir(real_pages) < 0 || tmpclean_dir(out) < 0)
		log_warn(NULL, NULL, "report.tmpclean", "%s", err_msg());
	r->db = db;
	r->root = root;
	r->to_root = relative_dir(real_pages, real_root);
	*strrchr(real_pages, '/') = 0; /* the report folder itself */
	r->out = xstrdup(real_pages);
	rc = 0;
out:
	free(pages);
	free(real_pages);
	free(real_root);
	return rc;
}

void report_ctx_close(struct report_ctx *r)
{
	free(r->out);
	free(r->to_root);
	memset(r, 0, sizeof *r);
}

/* The daemon's refresh when an episode reaches a gate: its page and the
 * index under ROOT/report/.  A failure is logged and never stops the
 * pipeline: the page is a view, `acog-batch report` rewrites it. */
void report_refresh(sqlite3 *db, const char *root, const char *episode_id, const char *episode_dir)
{
	struct report_ctx r;
	char *out = xasprintf("%s/report", root);
	if (report_ctx_open(&r, db, root, out) < 0 || report_episode_page(&r, episode_id) < 0 ||
	    report_index_page(&r) < 0)
		log_warn(episode_id, episode_dir, "report.failed", "the review page was not refreshed: %s", err_msg());
	else
		log_info(episode_id, episode_dir, "report.written", "review page %s/episodes/%s.html", r.out,
			 episode_id);
	report_ctx_close(&r);
	free(out);
}
