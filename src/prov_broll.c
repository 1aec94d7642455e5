/*
 * prov_broll.c - broll stage, offline: per b-roll segment of timeline.json
 * a clip, broll/seg-NN.mp4 (exactly the segment's frames, H.264,
 * frame-sized, no audio), or for generated b-roll a recipe,
 * broll/seg-NN.json, that assembly renders into the final encode
 * (broll_gen.c: a synthetic picture is encoded once, in final.mp4).
 *
 *  generated: an ffmpeg lavfi source (gradients, mandelbrot, life, cellauto;
 *             a different one per segment, seeded from the description so a
 *             re-run gives the same picture) with the description drawn on it.
 *  library:   the clip of <channel>/library/ whose name words and optional
 *             sidecar tags (<clip>.txt or <clip-without-extension>.txt) share
 *             the most words with the description; ties go to the first name
 *             in byte order.  Looped or cut to length, scaled and padded.  An
 *             empty library falls back to generated, and says so in the log.
 *             A still (png, jpg, webp) becomes a slow pan or zoom (zoompan),
 *             the move chosen from a hash of the segment's index and
 *             description, so a re-run gives the same clip.  The folder
 *             (option dir, default library) and every file used must be
 *             inside the channel folder, through symbolic links too.
 *
 * Invariants: clips appear only through media_commit(), recipes only
 * through a durable atomic write; a segment has a clip or a recipe, not
 * both (the one written last removes the other); text reaches drawtext only
 * through a scratch file (textfile=, expansion=none); clips and recipes of
 * segments that are no longer b-roll are removed from broll/.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIDECAR_MAX (64 * 1024)
#define ZOOM "1.15" /* how far a still's move zooms in */

/* clang-format off: a table keeps one row per line */
const struct provider_opt library_opts[] = {
	{ "dir", OPT_PATH, "library", 0, 0, NULL,
	  "folder of clips (mp4, mov, ...) and stills (png, jpg), relative to the channel folder and inside it" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* A still's moves for zoompan (on: the frame number, duration: the clip's frames):
 * zoom, x and y expressions on a canvas twice the frame's size. */
static const struct {
	const char *name, *z, *x, *y;
} moves[] = {
	{ "zoom in", "1+(" ZOOM "-1)*on/duration", "iw/2-(iw/zoom/2)", "ih/2-(ih/zoom/2)" },
	{ "zoom out", ZOOM "-(" ZOOM "-1)*on/duration", "iw/2-(iw/zoom/2)", "ih/2-(ih/zoom/2)" },
	{ "pan right", ZOOM, "(iw-iw/zoom)*on/duration", "ih/2-(ih/zoom/2)" },
	{ "pan left", ZOOM, "(iw-iw/zoom)*(1-on/duration)", "ih/2-(ih/zoom/2)" },
};
/* clang-format on */
#define WORD_MAX 48

struct clip {
	char *name, *path;
	char **words;
	size_t nwords;
	int image;
};
struct library {
	struct clip *c;
	size_t n;
};

/* ---- generated --------------------------------------------------------- */

static uint32_t hash32(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* A generated segment is a recipe (broll_gen.c) that assembly renders into
 * the final encode, not a clip: its frames are encoded once.  An earlier
 * run's clip of the segment is removed first (assembly prefers a clip), and
 * the recipe's durable write makes that removal durable too (same folder). */
enum stage_rc broll_gen_segment(struct stage_ctx *ctx, const struct media_frame *f, const struct media_seg *s, int nth)
{
	const char *desc = s->desc ? s->desc : "";
	int size = (f->w < f->h ? f->w : f->h) / 14, cols = f->w * 10 / (size * 6);
	struct broll_recipe r = { .kind = nth % BROLL_KINDS, .seed = hash32(desc) ^ (uint32_t)s->index };
	char *path = broll_recipe_path(s->index), *clip = xasprintf("broll/seg-%02d.mp4", s->index);
	enum stage_rc rc = STAGE_OK;

	r.text = media_wrap(desc, cols > 8 ? cols - 4 : 4, 4);
	if (unlink(clip) < 0 && errno != ENOENT)
		rc = stage_fail(ctx, STAGE_RETRY, "cannot remove the earlier clip %s: %s", clip, strerror(errno));
	else if (broll_recipe_save(path, &r) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	else
		stage_output(ctx, "b_roll", path, "application/json", media_seg_frames(s, f->fps) * 1000L / f->fps);
	broll_recipe_free(&r);
	free(clip);
	free(path);
	return rc;
}

/* ---- library ------------------------------------------------------------ */

static const char *ext_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	return dot && dot != name ? dot + 1 : "";
}

static int ext_in(const char *ext, const char *const *list)
{
	for (; *list; list++)
		if (strcasecmp(ext, *list) == 0) return 1;
	return 0;
}

static int is_stop_word(const char *w)
{
	static const char *const stop[] = { "a",   "an", "the",  "of",   "on",   "in",   "at",   "to",  "for",
					    "and", "or", "with", "by",   "from", "into", "over", "is",  "are",
					    "its", "it", "this", "that", "as",   "be",   "up",   "out", NULL };
	for (size_t i = 0; stop[i]; i++)
		if (strcmp(w, stop[i]) == 0) return 1;
	return 0;
}

static int words_has(char *const *v, size_t n, const char *w)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], w) == 0) return 1;
	return 0;
}

/* Lower-case words (letters, digits, any non-ASCII byte), a plural 's'
 * dropped so "rockets" finds "rocket", stop words skipped, each once. */
static void words_add(char ***v, size_t *n, const char *text)
{
	char w[WORD_MAX];
	size_t len;

	while (*text) {
		for (len = 0; isalnum((unsigned char)*text) || (*text & 0x80); text++)
			if (len + 1 < sizeof w) w[len++] = (char)tolower((unsigned char)*text);
		w[len] = 0;
		if (len > 3 && w[len - 1] == 's' && w[len - 2] != 's') w[--len] = 0;
		if (*text) text++;
		if (!len || is_stop_word(w) || words_has(*v, *n, w)) continue;
		*v = xrealloc(*v, (*n + 1) * sizeof **v);
		(*v)[(*n)++] = xstrdup(w);
	}
}

static void words_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) free(v[i]);
	free(v);
}

/* Name words plus the words of <name>.txt and <stem>.txt, when present. */
static void clip_words(struct clip *c, const char *dir)
{
	char *stem = xstrdup(c->name), *dot = strrchr(stem, '.');
	char *side[2];
	if (dot) *dot = 0;
	words_add(&c->words, &c->nwords, stem);
	side[0] = xasprintf("%s/%s.txt", dir, c->name);
	side[1] = xasprintf("%s/%s.txt", dir, stem);
	for (int i = 0; i < 2; i++) {
		char *tags = fsio_read(side[i], SIDECAR_MAX, NULL);
		if (tags) words_add(&c->words, &c->nwords, tags);
		free(tags);
		free(side[i]);
	}
	free(stem);
}

static const char *const video_ext[] = { "mp4", "mov", "mkv", "webm", "m4v", "avi", NULL };
static const char *const image_ext[] = { "png", "jpg", "jpeg", "webp", NULL };

static int media_name(const char *name)
{
	const char *ext = ext_of(name);
	return name[0] != '.' && (ext_in(ext, video_ext) || ext_in(ext, image_ext));
}

/* Scans <channel>/library/ for video and image files (not dot-names), in
 * name order. */
static void library_load(const char *dir, struct library *lib)
{
	char **names;
	int n = fsio_list(dir, &names, media_name);
	struct stat st;

	memset(lib, 0, sizeof *lib);
	for (int i = 0; i < n; i++) {
		struct clip c = { .path = xasprintf("%s/%s", dir, names[i]) };
		char *real = realpath(c.path, NULL);
		int ok = real && chanfile_inside(dir, real) && stat(real, &st) == 0 && S_ISREG(st.st_mode) &&
			st.st_size > 0;
		free(real);
		if (!ok) { /* a link out of the folder, or not a file with something in it */
			free(c.path);
			continue;
		}
		c.name = xstrdup(names[i]);
		c.image = ext_in(ext_of(names[i]), image_ext);
		clip_words(&c, dir);
		lib->c = xrealloc(lib->c, (lib->n + 1) * sizeof *lib->c);
		lib->c[lib->n++] = c;
	}
	fsio_list_free(names, n);
}

static void library_free(struct library *lib)
{
	for (size_t i = 0; i < lib->n; i++) {
		free(lib->c[i].name);
		free(lib->c[i].path);
		words_free(lib->c[i].words, lib->c[i].nwords);
	}
	free(lib->c);
}

/* The best-scoring clip; the list is sorted, so the first best wins ties. */
static const struct clip *library_pick(const struct library *lib, const char *desc, int *score)
{
	char **want = NULL;
	size_t nwant = 0, best = 0;
	int best_score = -1;

	words_add(&want, &nwant, desc ? desc : "");
	for (size_t i = 0; i < lib->n; i++) {
		int sc = 0;
		for (size_t j = 0; j < nwant; j++) sc += words_has(lib->c[i].words, lib->c[i].nwords, want[j]);
		if (sc > best_score) {
			best_score = sc;
			best = i;
		}
	}
	words_free(want, nwant);
	*score = best_score;
	return &lib->c[best];
}

/* The zoompan chain for a still: fitted to the frame, enlarged twice (the
 * move goes in half pixels and does not judder), then one of moves[]. */
static char *still_move(const struct media_frame *f, const struct media_seg *s, long frames, const char **name)
{
	char *desc = xasprintf("%d %s", s->index, s->desc ? s->desc : "");
	size_t m = hash32(desc) % (sizeof moves / sizeof moves[0]);
	char *out = xasprintf("scale=%d:%d:force_original_aspect_ratio=decrease,pad=%d:%d:(ow-iw)/2:(oh-ih)/2,"
			      "setsar=1,scale=%d:%d,format=yuv420p,zoompan=z='%s':x='%s':y='%s':d=%ld:s=%dx%d:fps=%d",
			      f->w, f->h, f->w, f->h, 2 * f->w, 2 * f->h, moves[m].z, moves[m].x, moves[m].y, frames,
			      f->w, f->h, f->fps);
	*name = moves[m].name;
	free(desc);
	return out;
}

static enum stage_rc library_clip(struct stage_ctx *ctx, const struct media_frame *f, const struct clip *c,
				  const struct media_seg *s, const char *final)
{
	struct media_argv in = { 0 };
	long frames = media_seg_frames(s, f->fps);
	const char *move = NULL;
	char *filter = c->image ? still_move(f, s, frames, &move)
				: xasprintf("fps=%d,scale=%d:%d:force_original_aspect_ratio=decrease,"
					    "pad=%d:%d:(ow-iw)/2:(oh-ih)/2,setsar=1",
					    f->fps, f->w, f->h, f->w, f->h);
	enum stage_rc rc;

	/* a clip loops forever and -frames:v cuts it; a still is one frame zoompan repeats */
	if (!c->image) media_argv_opt(&in, "-stream_loop", "-1");
	media_argv_opt(&in, "-i", "%s", c->path);
	if (move) stage_log(ctx, "info", "%s: still %s, %s over %ld frames", final, c->name, move, frames);
	rc = media_make_clip(ctx, f, &in, filter, frames, final, "b_roll");
	if (rc != STAGE_OK) {
		char *why = xstrdup(ctx->error);
		rc = stage_fail(ctx, rc, "library file %s is unusable (replace or remove it): %s", c->path, why);
		free(why);
	} else { /* an earlier generated run's recipe of this segment */
		char *recipe = broll_recipe_path(s->index);
		if (unlink(recipe) < 0 && errno != ENOENT)
			rc = stage_fail(ctx, STAGE_RETRY, "cannot remove %s: %s", recipe, strerror(errno));
		free(recipe);
	}
	media_argv_free(&in);
	free(filter);
	return rc;
}

/* ---- both --------------------------------------------------------------- */

static enum stage_rc broll_all(struct stage_ctx *ctx, const struct library *lib)
{
	struct media_frame f;
	struct media_timeline t;
	enum stage_rc rc = STAGE_OK;
	int nth = 0, score;

	if (media_frame_get(ctx->channel, &f) < 0 || media_timeline_load(&t) < 0)
		return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	if (fsio_mkdirs("broll") < 0 || media_prune_clips("broll", &t, 1) < 0) {
		media_timeline_free(&t);
		return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	}
	for (size_t i = 0; i < t.n && rc == STAGE_OK; i++) {
		const struct media_seg *s = &t.seg[i];
		char *final;
		if (!s->broll || media_seg_frames(s, f.fps) <= 0) continue;
		final = xasprintf("broll/seg-%02d.mp4", s->index);
		if (lib && lib->n) {
			const struct clip *c = library_pick(lib, s->desc, &score);
			stage_log(ctx, "info", "%s \"%s\": library/%s (score %d)", final, s->desc ? s->desc : "",
				  c->name, score);
			rc = library_clip(ctx, &f, c, s, final);
		} else {
			rc = broll_gen_segment(ctx, &f, s, nth);
		}
		nth++;
		free(final);
	}
	media_timeline_free(&t);
	return rc;
}

enum stage_rc prov_broll_generated(struct stage_ctx *ctx)
{
	return broll_all(ctx, NULL);
}

/* The library folder, resolved inside the channel folder: NULL with
 * ctx->error set when it leads outside, NULL without when it is missing. */
static char *library_dir(struct stage_ctx *ctx, const char *rel)
{
	char *raw = xasprintf("%s/%s", ctx->channel_dir, rel), *dir = NULL;
	if (fsio_exists(raw) && !(dir = chanfile_path(ctx->channel_dir, rel, "providers.broll.dir")))
		(void)stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	free(raw);
	return dir;
}

enum stage_rc prov_broll_library(struct stage_ctx *ctx)
{
	struct library lib = { 0 };
	const char *rel = stage_opt_str(ctx, "dir");
	char *dir = library_dir(ctx, rel);
	enum stage_rc rc;

	if (!dir && ctx->error[0]) return STAGE_FAIL;
	if (dir) library_load(dir, &lib);
	if (!lib.n)
		stage_log(ctx, "warn",
			  "library %s/%s has no clips or stills (mp4, mov, mkv, webm, m4v, avi, png, "
			  "jpg); using generated b-roll",
			  ctx->channel_dir, rel);
	rc = broll_all(ctx, &lib);
	library_free(&lib);
	free(dir);
	return rc;
}
