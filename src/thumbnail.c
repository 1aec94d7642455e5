/*
 * thumbnail.c - thumbnail.png for the assembly stage.
 *
 * Layout (computed here, logged, and tested against the pixels): the frame
 * is split into a picture region at the top and a title band at the bottom.
 * The picture (a frame of the channel's avatar clip, which may carry text
 * of its own, such as the placeholder presenter's name) is fitted inside
 * the picture region over a gradient seeded by the title; the band is a
 * semi-opaque dark box across the whole width, and the title is drawn only
 * inside it: wrapped to at most three lines, its font shrunk until it fits.
 * So the title never overlaps any text the picture has.
 *
 * Invariants: thumbnail.png appears only through media_commit(); the title
 * reaches ffmpeg only through a textfile= scratch file.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THUMB_BG "0x14213d"
#define BAND_PCT 38    /* the band's share of the height */
#define MAX_LINES 3    /* of the title */
#define CHAR_EM 0.62   /* a wide average glyph width of DejaVu Sans, in em */
#define LINE_GAP_DIV 4 /* line spacing = size / 4 */

struct thumb_layout {
	int band_y, band_h, margin;
	int size, lines;
	char *text; /* wrapped title */
};

static int count_lines(const char *s)
{
	int n = 1;
	for (; *s; s++) n += *s == '\n';
	return n;
}

static int text_height(int size, int lines)
{
	return lines * size + (lines - 1) * (size / LINE_GAP_DIV);
}

/* The largest font (from a ninth of the height down to a twenty-fourth)
 * at which the title wraps to at most MAX_LINES lines that fit the band;
 * at the smallest, the title is cut to MAX_LINES lines with "...". */
static void layout_title(const struct media_frame *f, const char *title, struct thumb_layout *l)
{
	int min = f->h / 24 > 8 ? f->h / 24 : 8;
	for (l->size = f->h / 9; l->size >= min; l->size = l->size * 9 / 10) {
		int cols = (int)((f->w - 2 * l->margin) / (l->size * CHAR_EM));
		free(l->text);
		l->text = media_wrap(title, cols > 4 ? cols : 4, 99);
		l->lines = count_lines(l->text);
		if (l->lines <= MAX_LINES && text_height(l->size, l->lines) <= l->band_h - 2 * l->margin) return;
		if (l->size * 9 / 10 < min) break;
	}
	free(l->text);
	l->text = media_wrap(title, (int)((f->w - 2 * l->margin) / (l->size * CHAR_EM)), MAX_LINES);
	l->lines = count_lines(l->text);
}

static void thumb_layout(const struct media_frame *f, const char *title, struct thumb_layout *l)
{
	memset(l, 0, sizeof *l);
	l->band_h = f->h * BAND_PCT / 100;
	l->band_y = f->h - l->band_h;
	l->margin = f->h / 30 > 2 ? f->h / 30 : 2;
	layout_title(f, title, l);
}

static uint32_t title_seed(const char *title)
{
	uint32_t seed = 2166136261u; /* FNV-1a */
	for (const char *p = title; *p; p++) seed = (seed ^ (unsigned char)*p) * 16777619u;
	return seed;
}

/* Inputs: 0 the gradient, 1 the picture (when there is a clip). */
static void thumb_inputs(const struct media_frame *f, const struct thumb_spec *t, struct media_argv *a)
{
	uint32_t seed = title_seed(t->title);
	media_argv_words(a, "-f lavfi");
	media_argv_opt(a, "-i", "gradients=s=%dx%d:c0=" THUMB_BG ":c1=0x%06x:seed=%u", f->w, f->h,
		       (seed & 0x7f7f7f) | 0x303030, seed);
	if (!t->clip) return;
	if (t->seek > 0) media_argv_opt(a, "-ss", "%.3f", t->seek);
	media_argv_opt(a, "-i", "%s", t->clip);
}

static char *thumb_graph(const struct media_frame *f, const struct thumb_spec *t, const struct thumb_layout *l,
			 const char *title_file)
{
	char *font = media_filter_escape(t->font), *tf = media_filter_escape(title_file), *pic, *out;
	/* both start at 0: a seeked input keeps its timestamps, and overlay
	 * would pass the background's first frame before the picture's */
	pic = t->clip ? xasprintf("[1:v]setpts=PTS-STARTPTS,scale=%d:%d:force_original_aspect_ratio=decrease,"
				  "setsar=1[pic];[0:v]setpts=PTS-STARTPTS[bg];[bg][pic]overlay=x=(W-w)/2:y=(%d-h)/2,",
				  f->w, l->band_y, l->band_y)
		      : xstrdup("[0:v]");
	out = xasprintf("%sformat=rgb24,drawbox=x=0:y=%d:w=%d:h=%d:c=black@0.62:t=fill,"
			"drawtext=fontfile=%s:textfile=%s:expansion=none:fontcolor=white:fontsize=%d:"
			"line_spacing=%d:x=(w-text_w)/2:y=%d+(%d-text_h)/2[out]",
			pic, l->band_y, f->w, l->band_h, font, tf, l->size, l->size / LINE_GAP_DIV, l->band_y,
			l->band_h);
	free(pic);
	free(font);
	free(tf);
	return out;
}

static void thumb_log(struct stage_ctx *ctx, const struct media_frame *f, const struct thumb_layout *l)
{
	stage_log(ctx, "info",
		  "thumbnail layout: picture 0,0,%d,%d; band 0,%d,%d,%d; title in 0,%d,%d,%d at %d px, %d lines", f->w,
		  l->band_y, l->band_y, f->w, l->band_h, l->band_y + l->margin, f->w, l->band_h - 2 * l->margin,
		  l->size, l->lines);
}

/* Renders the thumbnail to out (a name in the episode folder). */
enum stage_rc thumbnail_make(struct stage_ctx *ctx, const struct media_frame *f, const struct thumb_spec *t,
			     const char *out)
{
	/* scratch names of the temporary convention (fsio.c); png: ffmpeg's format by extension */
	char *title_file = fsio_tmp_name_ext("thumb-title", "txt"), *tmp = fsio_tmp_name_ext(out, "png"), *g;
	struct thumb_layout l;
	struct media_argv a = { 0 };
	enum stage_rc rc;

	thumb_layout(f, t->title, &l);
	if (media_write_scratch(title_file, l.text) < 0) {
		free(l.text);
		free(title_file);
		free(tmp);
		return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	}
	g = thumb_graph(f, t, &l, title_file);
	media_argv_words(&a, "ffmpeg -nostdin -hide_banner -loglevel error -y");
	thumb_inputs(f, t, &a);
	media_argv_opt(&a, "-filter_complex", "%s", g);
	media_argv_words(&a, "-map [out] -frames:v 1 -f image2 -c:v png");
	media_argv_add(&a, "%s", tmp);
	rc = media_run(ctx, &a, out);
	if (rc == STAGE_OK && media_commit(tmp, out) < 0) rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	if (rc == STAGE_OK) thumb_log(ctx, f, &l);
	unlink(tmp);
	unlink(title_file);
	free(tmp);
	free(title_file);
	media_argv_free(&a);
	free(g);
	free(l.text);
	return rc;
}
