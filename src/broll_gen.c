/*
 * broll_gen.c - generated b-roll as a recipe (issue 12: each frame is
 * encoded once).  The "generated" b-roll provider (prov_broll.c) decides
 * which lavfi source a segment shows, its seed and the wrapped description,
 * and writes that to broll/seg-NN.json; assembly (prov_assembly.c) renders
 * the recipe straight into the final encode.  A synthetic clip costs more to
 * encode and decode again than to make, and a second generation of H.264
 * would lose detail for nothing.
 *
 * Invariants: a recipe holds data only, never filter text: the source and
 * the filter chain are rebuilt here from checked values, so a file in
 * broll/ cannot put arbitrary filters (movie=, file names) into ffmpeg; the
 * description reaches drawtext only through a textfile= scratch file
 * (expansion=none).  Recipes are written durably (fsio_write_atomic_str).
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECIPE_MAX (64 * 1024)
#define TEXT_MAX 4096

/* clang-format off: a table keeps one row per line */
static const uint32_t palette[][2] = {
	{ 0x1d3557, 0xe63946 }, { 0x264653, 0xe9c46a }, { 0x3a0ca3, 0x4cc9f0 }, { 0x2b2d42, 0xef8354 },
	{ 0x003049, 0xfcbf49 }, { 0x432371, 0xfaae7b }, { 0x004b23, 0x9ef01a }, { 0x22223b, 0xc9ada7 },
};
/* clang-format on */

/* The recipe's file: broll/seg-NN.json. */
char *broll_recipe_path(int index)
{
	return xasprintf("broll/seg-%02d.json", index);
}

/* A lavfi source at a quarter of the frame (cheap), and how to enlarge it.
 * It moves at half the video's frame rate (assembly's fps repeats each
 * frame): these slow backgrounds look the same, their chain (enlarging,
 * the description, the box) runs for half the frames, and x264 codes a
 * repeated frame as skipped blocks.  Gradients turn and the Mandelbrot
 * zoom advances per frame, so their speed is doubled to keep it per
 * second; life and the automaton simply evolve at half the pace. */
char *broll_gen_source(const struct media_frame *f, const struct broll_recipe *r, const char **scale)
{
	int w = f->w / 4 & ~1, h = f->h / 4 & ~1;
	uint32_t seed = r->seed, c0 = palette[seed % 8][0], c1 = palette[seed % 8][1];

	*scale = r->kind >= 2 ? "neighbor" : "bilinear";
	switch (r->kind) {
	case 0:
		return xasprintf("gradients=s=%dx%d:r=%d/2:c0=0x%06x:c1=0x%06x:speed=0.03:seed=%u", w, h, f->fps, c0,
				 c1, seed);
	case 1:
		return xasprintf("mandelbrot=s=%dx%d:r=%d/2:start_scale=%g:end_pts=200", w, h, f->fps,
				 2.0 + (seed % 100) / 50.0);
	case 2:
		return xasprintf("life=s=%dx%d:r=%d/2:mold=10:ratio=0.15:seed=%u:"
				 "life_color=0x%06x:death_color=0x%06x:mold_color=0x101830",
				 w / 2, h / 2, f->fps, seed, c1, c0);
	default:
		return xasprintf("cellauto=s=%dx%d:r=%d/2:rule=%d:random_fill_ratio=0.5:"
				 "seed=%u:scroll=1",
				 w / 2, h / 2, f->fps, (int[]){ 30, 90, 110, 150, 182 }[seed % 5], seed);
	}
}

/* Darkens the picture a little and draws the description in a box.  The
 * darkening is done before enlarging: a full-frame translucent drawbox at
 * 1080p cost more CPU than the clip's encode (16 times fewer pixels here,
 * the same picture); yuv420p before enlarging for the same reason. */
char *broll_gen_filter(const struct media_frame *f, const char *scale, const char *font, const char *textfile)
{
	int size = (f->w < f->h ? f->w : f->h) / 14;
	char *ef = media_filter_escape(font), *et = media_filter_escape(textfile);
	char *out = xasprintf("format=yuv420p,drawbox=c=black@0.25:t=fill,scale=%d:%d:flags=%s,setsar=1,"
			      "drawtext=fontfile=%s:textfile=%s:expansion=none:fontcolor=white:"
			      "fontsize=%d:line_spacing=%d:box=1:boxcolor=black@0.55:boxborderw=%d:"
			      "x=(w-text_w)/2:y=(h-text_h)/2",
			      f->w, f->h, scale, ef, et, size, size / 3, size / 2);
	free(ef);
	free(et);
	return out;
}

/* Writes the recipe durably at path (replacing an earlier one). */
int broll_recipe_save(const char *path, const struct broll_recipe *r)
{
	cJSON *j;
	int rc;
	if (r->text && strlen(r->text) > TEXT_MAX)
		return err_set("%s: the b-roll text is %zu bytes, more than the %d a frame can show; "
			       "shorten the [BROLL: ...] description in the script",
			       path, strlen(r->text), TEXT_MAX);
	j = cJSON_CreateObject();
	cJSON_AddNumberToObject(j, "kind", r->kind);
	cJSON_AddNumberToObject(j, "seed", r->seed);
	cJSON_AddStringToObject(j, "text", r->text ? r->text : "");
	rc = json_write_file(path, j);
	cJSON_Delete(j);
	return rc;
}

/* Reads and checks a recipe; r->text is malloc'd (broll_recipe_free). */
int broll_recipe_load(const char *path, struct broll_recipe *r)
{
	cJSON *j = json_load_file(path, RECIPE_MAX);
	double kind = json_num(j, "kind", -1), seed = json_num(j, "seed", -1);
	const char *text = json_str(j, "text", NULL);
	int rc = 0;

	memset(r, 0, sizeof *r);
	if (!j)
		rc = -1;
	else if (!(kind >= 0 && kind < BROLL_KINDS && kind == floor(kind)) ||
		 !(seed >= 0 && seed <= UINT32_MAX && seed == floor(seed)) || !text || strlen(text) > TEXT_MAX)
		rc = err_set("%s is not a b-roll recipe (kind 0-%d, seed, text of at most %d bytes)", path,
			     BROLL_KINDS - 1, TEXT_MAX);
	if (rc == 0) {
		r->kind = (int)kind;
		r->seed = (uint32_t)seed;
		r->text = xstrdup(text);
	}
	cJSON_Delete(j);
	return rc;
}

void broll_recipe_free(struct broll_recipe *r)
{
	free(r->text);
	r->text = NULL;
}
