/*
 * media.c - helpers shared by the offline media providers (prov_espeak.c,
 * prov_avatar.c, prov_broll.c, prov_assembly.c, and the cloud ones): video
 * settings from channel.yaml, running ffmpeg/ffprobe/espeak-ng and checking
 * what they wrote, filter-graph escaping,
 * timeline.json, and the commit of a finished media file.
 *
 * Invariants:
 *  - children run only through proc_run() with an argument vector, never a
 *    shell; user text reaches ffmpeg only through files (drawtext textfile=)
 *    or through media_filter_escape();
 *  - every ffmpeg output is written under the temporary name of fsio.c
 *    (".<name>.<pid>.tmp.<ext>") in the folder of its final name, and appears under the final name only
 *    through media_commit() (fsio_commit: fsync file, rename, fsync
 *    folder), so a crash never leaves a half-written clip where a reader
 *    would take it;
 *  - a run succeeds only when the file it was to write is there, not empty
 *    and (media) readable by ffprobe: tools can exit 0 having written
 *    nothing (ffmpeg seeking past the end of its input does);
 *  - media_write_scratch() files are dot-names private to one stage run;
 *    they are not durable and their name says so.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#define TIMELINE_MAX (16 * 1024 * 1024)
#define TIMELINE_MAX_S (24.0 * 3600) /* seconds; no video is longer, and frame counts stay in range */
#define CLIP_PRESET "ultrafast"
#define CLIP_CRF_MAX 18

/* The only way a media file a tool wrote reaches its final name: through
 * the one durable commit (fsio_commit), replacing an earlier version. */
int media_commit(const char *tmp, const char *final)
{
	int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) return err_set_errno("cannot open %s to commit it", tmp);
	return fsio_commit(fd, tmp, final, FSIO_REPLACE);
}

static const char *const presets[] = { "ultrafast", "superfast", "veryfast", "faster",  "fast", "medium",
				       "slow",      "slower",    "veryslow", "placebo", NULL };
const char *const media_short_names[] = {
	[MEDIA_SHORT_HOLD] = "hold", [MEDIA_SHORT_LOOP] = "loop", [MEDIA_SHORT_STILL] = "still", NULL
};

static int word_index(const char *const *list, const char *w)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(w, list[i]) == 0) return i;
	return -1;
}

/* video.* from channel.yaml with the documented defaults. */
int media_frame_get(const cJSON *ch, struct media_frame *f)
{
	int vertical = json_bool(ch, "video.vertical", 0);
	double w = json_num(ch, "video.width", vertical ? 1080 : 1920);
	double h = json_num(ch, "video.height", vertical ? 1920 : 1080);
	double fps = json_num(ch, "video.fps", 25), crf = json_num(ch, "video.crf", 23);
	const char *sc = json_str(ch, "video.short_clip", "hold");

	f->preset = json_str(ch, "video.preset", "veryfast");
	f->burn = json_bool(ch, "video.burn_subtitles", 1);
	if (w < 16 || w > 7680 || h < 16 || h > 7680 || w != floor(w) || h != floor(h) || ((int)w | (int)h) & 1)
		return err_set("channel.yaml video.width/height %gx%g: use even whole numbers "
			       "between 16 and 7680",
			       w, h);
	if (fps < 1 || fps > 120 || fps != floor(fps))
		return err_set("channel.yaml video.fps %g: use a whole number from 1 to 120", fps);
	if (crf < 0 || crf > 51) return err_set("channel.yaml video.crf %g: use 0 to 51 (23 is the default)", crf);
	if (word_index(presets, f->preset) < 0)
		return err_set("channel.yaml video.preset \"%s\" is not an x264 preset "
			       "(ultrafast ... veryslow; default veryfast)",
			       f->preset);
	if (word_index(media_short_names, sc) < 0)
		return err_set("channel.yaml video.short_clip \"%s\": use hold (keep the clip's last "
			       "frame, the default), loop (play it again) or still (show the title card)",
			       sc);
	f->short_clip = (enum media_short)word_index(media_short_names, sc);
	f->w = (int)w;
	f->h = (int)h;
	f->fps = (int)fps;
	f->crf = (int)crf;
	return 0;
}

static void argv_push(struct media_argv *a, char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* Appends one argument, formatted; the vector stays NULL-terminated. */
void media_argv_add(struct media_argv *a, const char *fmt, ...)
{
	struct sbuf b = { 0 };
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(&b, fmt, ap);
	va_end(ap);
	argv_push(a, b.s);
}

/* Appends an option and its formatted value: two arguments. */
void media_argv_opt(struct media_argv *a, const char *opt, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) abort();
	va_end(ap);
	argv_push(a, xstrdup(opt));
	argv_push(a, s);
}

/* Appends constant words split at single spaces.  For literal option lists
 * written in this code only: never pass user text or paths here. */
void media_argv_words(struct media_argv *a, const char *words)
{
	for (const char *p = words, *sp; *p; p = sp + (*sp == ' ')) {
		size_t n = (size_t)((sp = strchrnul(p, ' ')) - p);
		char *w = xmalloc(n + 1);
		memcpy(w, p, n);
		w[n] = 0;
		if (n)
			argv_push(a, w);
		else
			free(w);
	}
}

void media_argv_free(struct media_argv *a)
{
	for (size_t i = 0; i < a->n; i++) free(a->v[i]);
	free(a->v);
	a->v = NULL;
	a->n = a->cap = 0;
}

/* The last lines of a child's stderr, on one line, for an error message. */
static void stderr_tail(FILE *fp, char *out, size_t outsz)
{
	char buf[700];
	long end;
	size_t n, o = 0;

	out[0] = 0;
	if (!fp || fseek(fp, 0, SEEK_END) < 0 || (end = ftell(fp)) <= 0) return;
	if (fseek(fp, end > (long)sizeof buf - 1 ? end - (long)sizeof buf + 1 : 0, SEEK_SET) < 0) return;
	n = fread(buf, 1, sizeof buf - 1, fp);
	buf[n] = 0;
	for (char *p = buf; *p && o + 4 < outsz; p++) {
		if (*p == '\n' || *p == '\r') {
			if (o > 0 && out[o - 1] != ' ') {
				memcpy(out + o, " | ", 3);
				o += 3;
			}
		} else if ((unsigned char)*p >= 0x20) {
			out[o++] = *p;
		}
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '|')) o--;
	out[o] = 0;
}

/* What a tool was asked to write, found in its argument vector: ffmpeg's
 * output is its last argument (every caller puts it there), espeak-ng's the
 * value of -w.  probe: ffprobe must be able to read it as media. */
struct tool_output {
	const char *tool, *opt;
	int probe;
};
/* clang-format off: a table keeps one row per line */
static const struct tool_output tool_outputs[] = {
	{ "ffmpeg", NULL, 1 }, { "espeak-ng", "-w", 0 }, /* its WAV is parsed by the caller at once */
};
/* clang-format on */

/* Output formats with no container for ffprobe to recognise (-f after the last -i). */
static const char *const raw_formats[] = { "s16le", "s16be", "f32le", "u8", "mulaw", "alaw", "rawvideo", NULL };

/* The file a->v[0] was asked to write, or NULL when we do not know. */
static const char *run_output(const struct media_argv *a, int *probe)
{
	const char *tool = strrchr(a->v[0], '/') ? strrchr(a->v[0], '/') + 1 : a->v[0], *fmt = NULL;

	for (size_t t = 0; t < sizeof tool_outputs / sizeof *tool_outputs; t++) {
		const struct tool_output *o = &tool_outputs[t];
		if (strcmp(tool, o->tool) != 0 || a->n < 2) continue;
		for (size_t i = 1; i + 1 < a->n; i++) {
			if (strcmp(a->v[i], "-i") == 0)
				fmt = NULL;
			else if (strcmp(a->v[i], "-f") == 0)
				fmt = a->v[i + 1];
			if (o->opt && strcmp(a->v[i], o->opt) == 0) {
				*probe = o->probe;
				return a->v[i + 1];
			}
		}
		*probe = o->probe && !(fmt && word_index(raw_formats, fmt) >= 0);
		return o->opt ? NULL : a->v[a->n - 1];
	}
	return NULL;
}

/* Exists, is not empty, and (probe) ffprobe finds pictures of some width or
 * sound of some sample rate in it (a damaged PNG still has a stream, of
 * width 0). */
static int output_ok(const char *path, int probe)
{
	struct stat st;
	char *v, *line, *save = NULL;
	int ok = 0;

	if (stat(path, &st) < 0) return err_set("%s was not written", path);
	if (!S_ISREG(st.st_mode) || st.st_size == 0) return err_set("%s is empty", path);
	if (!probe) return 0;
	if (!(v = media_probe(path, NULL, "stream=width,sample_rate"))) return -1;
	for (line = strtok_r(v, "\n", &save); line && !ok; line = strtok_r(NULL, "\n", &save)) ok = atof(line) > 0;
	free(v);
	return ok ? 0 : err_set("ffprobe finds no picture or sound in %s (damaged?)", path);
}

/* Runs a->v[0] (proc_run looks it up in PATH) and turns any failure into
 * a stage result: a timeout may pass on retry, a failing tool will not.
 * An exit status of 0 is not enough: the file it was to write must be there
 * and readable, or the stage fails naming it (a tool that writes nothing
 * now will write nothing on a retry either). */
enum stage_rc media_run(struct stage_ctx *ctx, struct media_argv *a, const char *what)
{
	struct proc_opts o = { .stderr_fd = -1, .timeout_s = ctx->timeout_s };
	char tail[600];
	int st, timed_out = 0, probe = 0;
	const char *out = run_output(a, &probe);
	FILE *errf;
	enum stage_rc rc = STAGE_OK;

	if (!proc_find(a->v[0]))
		return stage_fail(ctx, STAGE_FAIL,
				  "%s is not installed or not in PATH, needed for %s: "
				  "install it (Debian: apt-get install %s)",
				  a->v[0], what, strcmp(a->v[0], "espeak-ng") == 0 ? "espeak-ng" : "ffmpeg");
	errf = tmpfile(); /* keeps the child's stderr for the error message */
	if (errf) o.stderr_fd = fileno(errf);
	st = proc_run((const char *const *)a->v, &o, &timed_out);
	stderr_tail(errf, tail, sizeof tail);
	if (st < 0)
		rc = stage_fail(ctx, timed_out ? STAGE_RETRY : STAGE_FAIL, "%s for %s: %s%s%s", a->v[0], what,
				err_msg(), tail[0] ? ": " : "", tail);
	else if (st > 0)
		rc = stage_fail(ctx, STAGE_FAIL, "%s failed (exit %d) making %s: %s", a->v[0], st, what,
				tail[0] ? tail : "no message");
	else if (out && output_ok(out, probe) < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "%s exited 0 making %s, but %s%s%s", a->v[0], what, err_msg(),
				tail[0] ? "; it said: " : "", tail);
	if (errf) fclose(errf);
	return rc;
}

/* ffprobe's values of one -show_entries (of the streams sel selects, NULL:
 * all), one a line; malloc'd, never empty.  NULL + err_set when ffprobe
 * cannot read the file or it has no such entry. */
char *media_probe(const char *path, const char *sel, const char *entries)
{
	struct sbuf out = { 0 };
	struct proc_opts o = { .stdout_buf = &out, .stdout_max = 4096, .stderr_fd = -1, .timeout_s = 120 };
	const char *argv[12] = {
		"ffprobe", "-v", "error", "-show_entries", entries, "-of", "default=noprint_wrappers=1:nokey=1"
	};
	size_t n = 7;
	int timed_out = 0, st;

	if (sel) argv[n++] = "-select_streams", argv[n++] = sel;
	argv[n++] = path;
	st = proc_run(argv, &o, &timed_out);
	if (st == 0 && out.s && out.s[strspn(out.s, " \n")]) return out.s;
	if (st < 0)
		err_set("cannot run ffprobe on %s: %s", path, err_msg());
	else
		err_set("ffprobe cannot read %s as media (damaged or not a video/audio/image file?)", path);
	sb_free(&out);
	return NULL;
}

static double seconds_in(const char *v)
{
	char *end;
	double d = v ? strtod(v, &end) : -1;
	return v && end != v && isfinite(d) && d >= 0 ? d : -1;
}

/* ffprobe's idea of a file's duration in seconds; -1 on error. */
double media_duration(const char *path)
{
	char *v = media_probe(path, NULL, "format=duration");
	double d = seconds_in(v);

	if (v && d < 0) err_set("ffprobe found no duration in %s (damaged file?)", path);
	free(v);
	return d;
}

/* How long a clip has pictures: its first video stream's duration (its
 * audio may last longer), else the file's; -1 + err_set without video. */
double media_video_duration(const char *path)
{
	char *v = media_probe(path, "v:0", "stream=duration");
	double d = seconds_in(v);

	if (!v)
		err_set("%s has no video stream that ffprobe can read (damaged, or not a video?)", path);
	else if (d <= 0)
		d = media_duration(path);
	free(v);
	return d;
}

/* A TrueType font for drawtext: DejaVu Sans, else whatever fc-match says. */
const char *media_font(void)
{
	static char font[ACOG_PATH_MAX];
	struct sbuf out = { 0 };
	struct proc_opts o = { .stdout_buf = &out, .stdout_max = ACOG_PATH_MAX, .stderr_fd = -1, .timeout_s = 30 };
	int timed_out = 0;

	const char *env = getenv("ACOG_FONT"); /* an explicit choice; also how doctor is tested */
	if (font[0]) return font;
	if (env && *env) {
		if (access(env, R_OK) == 0 && strlen(env) < sizeof font) return strcpy(font, env);
		err_set("ACOG_FONT=%s is not a readable font file", env);
		return NULL;
	}
	if (access(DEFAULT_FONT, R_OK) == 0) return strcpy(font, DEFAULT_FONT);
	if (proc_find("fc-match")) {
		const char *argv[] = { "fc-match", "-f", "%{file}", "sans", NULL };
		if (proc_run(argv, &o, &timed_out) == 0 && out.s && out.len < sizeof font && access(out.s, R_OK) == 0)
			strcpy(font, out.s);
	}
	sb_free(&out);
	if (!font[0]) err_set("no font for drawtext: install fonts-dejavu-core");
	return font[0] ? font : NULL;
}

static void escape_into(struct sbuf *b, const char *s, const char *special)
{
	for (; *s; s++) {
		if (strchr(special, *s)) sb_add(b, "\\", 1);
		sb_add(b, s, 1);
	}
}

/* Escapes an option value for use inside a -filter_complex graph: once for
 * the option parser (\ ' :) and once for the graph parser (\ ' [ ] , ;). */
char *media_filter_escape(const char *s)
{
	struct sbuf one = { 0 }, two = { 0 };
	char *out;
	escape_into(&one, s, "\\':");
	escape_into(&two, one.s ? one.s : "", "\\'[],;");
	out = xstrdup(two.s ? two.s : "");
	sb_free(&one);
	sb_free(&two);
	return out;
}

/* Greedy word wrap at cols characters (UTF-8 aware enough: counts lead
 * bytes); at most max_lines lines, the last one ending in "..." if cut. */
char *media_wrap(const char *text, int cols, int max_lines)
{
	struct sbuf b = { 0 };
	int col = 0, lines = 1;
	const char *p = text;

	while (*p) {
		size_t wl = 0;
		int wc = 0;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
		while (p[wl] && !strchr(" \t\n\r", p[wl])) wc += ((p[wl++] & 0xC0) != 0x80);
		if (!wl) break;
		if (col > 0 && col + 1 + wc > cols) {
			if (lines == max_lines) {
				sb_puts(&b, "...");
				break;
			}
			sb_puts(&b, "\n");
			lines++;
			col = 0;
		} else if (col > 0) {
			sb_puts(&b, " ");
			col++;
		}
		sb_add(&b, p, wl);
		col += wc;
		p += wl;
	}
	return b.s ? b.s : xstrdup("");
}

/* A private scratch file for one run (NOT durable: no fsync, no rename). */
int media_write_scratch(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) return err_set_errno("cannot create %s", path);
	if (fsio_write_all(fd, text, strlen(text)) < 0) {
		close(fd);
		return err_set_errno("cannot write %s", path);
	}
	if (close(fd) < 0) return err_set_errno("cannot close %s", path);
	return 0;
}

static int timeline_seg(const cJSON *j, struct media_seg *s, double prev_end)
{
	const char *vis = json_str(j, "visual", "");
	double index = json_num(j, "index", -1);
	s->start = json_num(j, "start", -1);
	s->end = json_num(j, "end", -1);
	s->broll = strcmp(vis, "broll") == 0;
	s->desc = json_str(j, "broll", NULL);
	/* bounded before any conversion: frames are counted in long (tests/fuzz/regress/timeline) */
	if (!(index >= 0 && index <= 9999) || s->start < prev_end - 0.001 || s->end < s->start ||
	    !(s->end <= TIMELINE_MAX_S))
		return err_set("segment %g: bad index or times (%g..%g)", index, s->start, s->end);
	s->index = (int)index;
	if (!s->broll && strcmp(vis, "avatar") != 0)
		return err_set("segment %d: visual \"%s\" is neither avatar nor broll", s->index, vis);
	return 0;
}

/* Loads timeline.json (written by the audio stage) from the cwd. */
int media_timeline_load(struct media_timeline *t)
{
	const cJSON *segs, *j;
	size_t i = 0;
	double prev = 0;

	memset(t, 0, sizeof *t);
	if (!(t->json = json_load_file("timeline.json", TIMELINE_MAX)))
		return err_set("%s; re-run the audio stage to write timeline.json", err_msg());
	segs = cJSON_GetObjectItemCaseSensitive(t->json, "segments");
	t->duration = json_num(t->json, "duration", -1);
	if (!cJSON_IsArray(segs) || !(t->duration > 0 && t->duration <= TIMELINE_MAX_S)) {
		media_timeline_free(t);
		return err_set("timeline.json has no segments or no duration; re-run the audio stage");
	}
	t->n = (size_t)cJSON_GetArraySize(segs);
	t->seg = xcalloc(t->n ? t->n : 1, sizeof *t->seg);
	cJSON_ArrayForEach (j, segs) {
		if (timeline_seg(j, &t->seg[i], prev) < 0) {
			err_set("timeline.json %s; re-run the audio stage", err_msg());
			media_timeline_free(t);
			return -1;
		}
		prev = t->seg[i++].end;
	}
	return 0;
}

void media_timeline_free(struct media_timeline *t)
{
	cJSON_Delete(t->json);
	free(t->seg);
	memset(t, 0, sizeof *t);
}

/* Frames of a segment, from rounded boundaries so that the clips of all
 * segments add up to the whole timeline without drift. */
long media_seg_frames(const struct media_seg *s, int fps)
{
	return llround(s->end * fps) - llround(s->start * fps);
}

/* One silent H.264 clip of exactly `frames` frames: ffmpeg reads the
 * inputs in `in`, applies `filter`, writes .NAME.<pid>.tmp.mp4, commits it.
 * A clip is an intermediate that assembly decodes once into the final
 * encode, so it is written the cheap way (issue 12): x264 ultrafast (2-3x
 * less CPU than veryfast) at a quality no worse than crf CLIP_CRF_MAX, so
 * the second generation loses nothing a viewer sees; no faststart (nobody
 * streams it). */
enum stage_rc media_make_clip(struct stage_ctx *ctx, const struct media_frame *f, struct media_argv *in,
			      const char *filter, long frames, const char *final, const char *asset_type)
{
	struct media_argv a = { 0 };
	char *tmp = fsio_tmp_name_ext(final, "mp4"); /* the convention of fsio.c; mp4 for ffmpeg */
	enum stage_rc rc;

	media_argv_words(&a, "ffmpeg -nostdin -hide_banner -loglevel error -y");
	for (size_t i = 0; i < in->n; i++) media_argv_add(&a, "%s", in->v[i]);
	media_argv_opt(&a, "-vf", "%s,format=yuv420p", filter);
	media_argv_opt(&a, "-frames:v", "%ld", frames);
	media_argv_opt(&a, "-r", "%d", f->fps);
	media_argv_words(&a, "-an -c:v libx264 -preset " CLIP_PRESET);
	media_argv_opt(&a, "-crf", "%d", f->crf < CLIP_CRF_MAX ? f->crf : CLIP_CRF_MAX);
	media_argv_words(&a, "-f mp4");
	media_argv_add(&a, "%s", tmp);
	rc = media_run(ctx, &a, final);
	if (rc == STAGE_OK && media_commit(tmp, final) < 0) rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	if (rc == STAGE_OK)
		stage_output(ctx, asset_type, final, "video/mp4", frames * 1000L / f->fps);
	else
		unlink(tmp);
	media_argv_free(&a);
	free(tmp);
	return rc;
}

static int clip_wanted(const struct media_timeline *t, int idx, int broll)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->seg[i].index == idx && t->seg[i].broll == broll) return 1;
	return 0;
}

/* What media_prune_clips may remove: crashed temporaries (.seg-*.tmp*),
 * seg-NN.mp4 clips and seg-NN.json b-roll recipes (broll_gen.c). */
static int clip_name(const char *name)
{
	int idx, len = 0, n = (int)strlen(name);
	if (!strncmp(name, ".seg-", 5)) return strstr(name, ".tmp") != NULL;
	return (sscanf(name, "seg-%d.mp4%n", &idx, &len) == 1 && len == n) ||
		(sscanf(name, "seg-%d.json%n", &idx, &len) == 1 && len == n);
}

/* Removes leftovers of earlier runs from a provider's own clip folder:
 * crashed temporaries and seg-NN clips or recipes whose segment is no longer of
 * this kind, so assembly never picks up a stale clip. */
int media_prune_clips(const char *dir, const struct media_timeline *t, int broll)
{
	char **names;
	int idx, removed = 0, n = fsio_list(dir, &names, clip_name);

	if (n < 0) return errno == ENOENT ? 0 : -1;
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s", dir, names[i]);
		int stale = names[i][0] == '.' ||
			(sscanf(names[i], "seg-%d", &idx) == 1 && !clip_wanted(t, idx, broll));
		if (stale && unlink(p) == 0) removed++;
		free(p);
	}
	fsio_list_free(names, n);
	return removed ? fsio_fsync_dir(dir) : 0;
}
