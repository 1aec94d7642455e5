/*
 * caption_band.c - the burned-in captions, drawn only where they change.
 *
 * ffmpeg's subtitles filter has libass render the captions and blends them
 * into every frame: for the karaoke captions.ass (one event per spoken word)
 * that was most of the filter time of the assembly encode, though what libass
 * draws changes only where an event starts or ends.  So the assembly graph
 * gets a caption branch instead: a transparent canvas of the whole frame (so
 * libass lays the text out exactly as on the video), of which select keeps
 * frame 0 and the frames where an event starts or ends; libass draws on
 * those; the band where captions can appear is cropped out, and overlay
 * blends it into every frame of the video, each frame taking the latest
 * caption frame.
 *
 * Why the pixels and the timing are those of the plain filter:
 * - time: the subtitles filter asks libass for (long long)(pts * time_base *
 *   1000) milliseconds, in double, and the concat filter hands it
 *   microsecond timestamps.  The branch's frames get the same timestamps
 *   (settb=AVTB) and frame_ms() computes the same expression, so the frame
 *   selected for an event's start or end is the first one libass draws
 *   differently (25 fps: frame 7 is drawn at 279 ms, not 280).
 * - blending: libass draws on a canvas of the outline colour at alpha 0
 *   (subtitles alpha=1), which overlay blends straight: a glyph's edge is
 *   its outline, which keeps its own colour, so each pixel equals the plain
 *   filter's within rounding.  (overlay's premultiplied mode is off by the
 *   luma offset in ffmpeg 5.1.)
 * - overlay: the caption frames are moved half a frame earlier, so each
 *   video frame takes the caption frame of its own time, whichever way
 *   either timestamp was rounded.  They are made one a frame again first
 *   (fps repeats a frame by reference; trimmed to the video's length, or
 *   overlay would add a frame): with a sparse second input, overlay's
 *   framesync holds the video's frames until the next caption frame comes
 *   (the demo's encode: 1 s more CPU).  framesync still copies each video
 *   frame outside ffmpeg's pools: see malloc_keep() in prov_assembly.c.
 *
 * The file is read strictly, because the speed-up is only right for what
 * this file understands: any line it does not know, a time not in the
 * format, an override tag that could animate or move the text, a cue with
 * markup, more changes than the select expression may hold: the caller is
 * told why and burns with the plain filter instead.
 */
#include "provider.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAX (8 << 20) /* a 10-minute karaoke captions.ass is ~0.25 MB */
#define CHANGES_MAX 4000   /* ~56 KB of expression; the whole graph is one argument (128 KiB at most) */
#define LEAF 8             /* eq() terms summed flat; ffmpeg's parser refuses ~100 */
#define EVENTS_FORMAT "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"

enum sect { S_NONE, S_INFO, S_STYLES, S_EVENTS };
enum srt_state { SRT_NUM, SRT_TIME, SRT_TEXT };

/* How libass lines up a cue's words: greedy wrapping at cols characters, a
 * generous guess of the lines libass makes (see the callers' cols). */
struct wrap {
	int on, cols, col, word, lines;
};

struct parse {
	const char *path;
	int line; /* of the line being read, from 1 */
	const struct media_frame *f;
	long frames;
	int cols, wrap; /* wrap: libass wraps long lines (not WrapStyle 2), at about cols characters */
	enum sect sect;
	int format_seen, styles;
	char style[64];
	enum srt_state srt;
	long long start, end; /* the cue being read */
	struct wrap w;
	long *fr;
	size_t n, cap;
	int lines;
};

static int bad(const struct parse *p, const char *what)
{
	return err_set("%s line %d: %s", p->path, p->line, what);
}

/* The millisecond libass is asked to draw for frame n (see the top). */
static long long frame_ms(long n, int fps)
{
	int64_t us = ((int64_t)n * 1000000 + fps / 2) / fps; /* av_rescale_q: to nearest, halves up */
	return (long long)((double)us * (1.0 / 1000000) * 1000);
}

long caption_band_frame(long long ms, int fps)
{
	long n = (long)(ms * fps / 1000);
	while (n > 0 && frame_ms(n - 1, fps) >= ms) n--;
	while (frame_ms(n, fps) < ms) n++;
	return n;
}

static void add_frame(struct parse *p, long n)
{
	if (n >= p->frames) return;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 256;
		p->fr = xrealloc(p->fr, p->cap * sizeof *p->fr);
	}
	p->fr[p->n++] = n;
}

/* libass shows an event from start up to, not including, end. */
static void add_event(struct parse *p, long long start, long long end)
{
	if (end <= start) return;
	add_frame(p, caption_band_frame(start, p->f->fps));
	add_frame(p, caption_band_frame(end, p->f->fps));
}

/* min to max decimal digits at *s, as a number; *s moves past them. */
static int digits(const char **s, int min, int max, long long *v)
{
	int k = 0;
	for (*v = 0; k < max && (*s)[k] >= '0' && (*s)[k] <= '9'; k++) *v = *v * 10 + ((*s)[k] - '0');
	*s += k;
	return k >= min ? 0 : -1;
}

/* H:MM:SS.CC (captions.ass) or HH:MM:SS,mmm (subtitles.srt) as milliseconds,
 * as ffmpeg's demuxers compute them; *s moves past it. */
static int parse_time(const char **s, int srt, long long *ms)
{
	long long h, m, sec, frac;
	if (digits(s, srt ? 2 : 1, 3, &h) < 0 || *(*s)++ != ':' || digits(s, 2, 2, &m) < 0 || *(*s)++ != ':' ||
	    digits(s, 2, 2, &sec) < 0 || *(*s)++ != (srt ? ',' : '.') || digits(s, srt ? 3 : 2, srt ? 3 : 2, &frac) < 0)
		return -1;
	*ms = ((h * 60 + m) * 60 + sec) * 1000 + (srt ? frac : frac * 10);
	return 0;
}

static void wrap_word(struct wrap *w)
{
	if (!w->word) return;
	if (w->on && w->col && w->col + 1 + w->word > w->cols) {
		w->lines++;
		w->col = 0;
	}
	if (w->on && w->word > w->cols) { /* libass does not break it; more lines is the generous side */
		w->lines += (w->word - 1) / w->cols;
		w->word = (w->word - 1) % w->cols + 1;
	}
	w->col += (w->col ? 1 : 0) + w->word;
	w->word = 0;
}

static void wrap_break(struct wrap *w)
{
	wrap_word(w);
	w->lines++;
	w->col = 0;
}

static void wrap_char(struct wrap *w, unsigned char c)
{
	if (c == ' ' || c == '\t')
		wrap_word(w);
	else if ((c & 0xc0) != 0x80) /* a code point, not a continuation byte */
		w->word++;
}

/* One override tag (without its backslash): only those that change neither
 * where the text is nor how it changes over time: colours, alpha, bold,
 * italic, underline, strike-out. */
static int tag_ok(const char *t, size_t n)
{
	static const char *const colour[] = { "alpha", "1c", "2c", "3c", "4c", "1a", "2a", "3a", "4a", "c", NULL };
	static const char *const flag[] = { "b", "i", "u", "s", NULL };
	for (int i = 0; colour[i]; i++) {
		size_t k = strlen(colour[i]), h;
		if (n < k || strncmp(t, colour[i], k)) continue;
		if (n == k) return 1;
		if (n < k + 3 || strncmp(t + k, "&H", 2)) return 0;
		h = strspn(t + k + 2, "0123456789abcdefABCDEF");
		h = h > n - k - 2 ? n - k - 2 : h;
		return h >= 1 && h <= 8 && (k + 2 + h == n || (k + 3 + h == n && t[n - 1] == '&'));
	}
	for (int i = 0; flag[i]; i++)
		if (t[0] == flag[i][0]) {
			size_t d = strspn(t + 1, "0123456789");
			return d == n - 1 && d <= 3;
		}
	return 0;
}

/* An override block's text, between its braces. */
static int block_ok(const char *b, size_t n)
{
	const char *end = b + n, *t = memchr(b, '\\', n);
	while (t && t < end) {
		const char *next = memchr(t + 1, '\\', (size_t)(end - t - 1));
		if (!next) next = end;
		if (!tag_ok(t + 1, (size_t)(next - t - 1))) return 0;
		t = next;
	}
	return 1;
}

/* One line of captions.ass text: its characters and breaks into w. */
static int ass_text(const struct parse *p, const char *t, struct wrap *w)
{
	for (; *t; t++) {
		if (*t == '{') {
			const char *close = strchr(t, '}');
			if (!close) return bad(p, "an override block '{' without its '}'");
			if (memchr(t + 1, '{', (size_t)(close - t - 1)) || !block_ok(t + 1, (size_t)(close - t - 1)))
				return bad(p,
					   "an override tag other than a colour, bold, italic, underline or "
					   "strike-out (it could move or animate the text)");
			t = close;
		} else if (*t == '\\' && (t[1] == 'N' || (t[1] == 'n' && !p->wrap))) {
			wrap_break(w);
			t++;
		} else if (*t == '\\' && (t[1] == 'n' || t[1] == 'h')) {
			wrap_char(w, t[1] == 'n' ? ' ' : 'h');
			t++;
		} else {
			wrap_char(w, (unsigned char)*t);
		}
	}
	return 0;
}

static void lines_seen(struct parse *p, struct wrap *w)
{
	wrap_word(w);
	if (w->lines > p->lines) p->lines = w->lines;
}

static int srt_end(struct parse *p)
{
	lines_seen(p, &p->w);
	add_event(p, p->start, p->end);
	p->srt = SRT_NUM;
	return 0;
}

/* A field of 1 to 4 zeros: a margin the event does not override. */
static int zero_field(const char *s, size_t n)
{
	return n >= 1 && n <= 4 && strspn(s, "0") >= n;
}

/* Dialogue: Layer,Start,End,Style,Name,MarginL,MarginR,MarginV,Effect,Text */
static int ass_dialogue(struct parse *p, const char *s)
{
	const char *f[10];
	size_t len[9];
	long long layer, start, end;
	struct wrap w = { p->wrap, p->cols, 0, 0, 1 };

	for (int k = 0; k < 9; k++) {
		const char *c = strchr(s, ',');
		if (!c) return bad(p, "a Dialogue line with fewer than ten fields");
		f[k] = s;
		len[k] = (size_t)(c - s);
		s = c + 1;
	}
	f[9] = s;
	if (digits(&f[0], 1, 9, &layer) < 0 || f[0] != f[1] - 1) return bad(p, "a Dialogue layer that is not a number");
	if (parse_time(&f[1], 0, &start) < 0 || f[1] != f[2] - 1 || parse_time(&f[2], 0, &end) < 0 || f[2] != f[3] - 1)
		return bad(p, "a Dialogue start or end time not in the form H:MM:SS.CC");
	if (len[3] != strlen(p->style) || strncmp(f[3], p->style, len[3]))
		return bad(p, "a Dialogue line in a style other than the file's one style");
	if (!zero_field(f[5], len[5]) || !zero_field(f[6], len[6]) || !zero_field(f[7], len[7]) || len[8])
		return bad(p, "a Dialogue line with its own margins or an effect");
	if (ass_text(p, f[9], &w) < 0) return -1;
	lines_seen(p, &w);
	add_event(p, start, end);
	return 0;
}

/* [Script Info] Key: value; the layout's size and wrapping are checked. */
static int ass_info(struct parse *p, const char *l)
{
	const char *v = strchr(l, ':');
	long long n;
	int w = !strncmp(l, "WrapStyle:", 10), x = !strncmp(l, "PlayResX:", 9), y = !strncmp(l, "PlayResY:", 9);
	if (!v) return bad(p, "a [Script Info] line that is not \"Key: value\"");
	if (!w && !x && !y) return 0;
	for (v++; *v == ' '; v++)
		;
	if (digits(&v, 1, 5, &n) < 0 || *v) return bad(p, "a WrapStyle or PlayRes that is not a number");
	if (w) p->wrap = n != 2;
	if ((x && n != p->f->w) || (y && n != p->f->h))
		return bad(p, "a PlayResX/PlayResY other than the frame's size");
	return 0;
}

static int ass_style(struct parse *p, const char *l)
{
	const char *comma;
	if (!strncmp(l, "Format:", 7)) return 0;
	if (strncmp(l, "Style: ", 7) || !(comma = strchr(l + 7, ',')) || comma - (l + 7) >= (long)sizeof p->style)
		return bad(p, "a [V4+ Styles] line that is neither Format: nor Style: NAME,...");
	if (p->styles++) return bad(p, "a second style (the band is laid out for one)");
	snprintf(p->style, sizeof p->style, "%.*s", (int)(comma - (l + 7)), l + 7);
	return 0;
}

static int ass_event(struct parse *p, const char *l)
{
	if (!strncmp(l, "Comment:", 8)) return 0;
	if (!strcmp(l, EVENTS_FORMAT)) {
		p->format_seen = 1;
		return 0;
	}
	if (strncmp(l, "Dialogue: ", 10))
		return bad(p, "an [Events] line that is neither Format:, Dialogue: nor Comment:");
	if (!p->format_seen || !p->styles)
		return bad(p, "a Dialogue line before the style and the events' Format line");
	return ass_dialogue(p, l + 10);
}

static int ass_line(struct parse *p, const char *l)
{
	static const char *const sects[] = {
		[S_INFO] = "[Script Info]", [S_STYLES] = "[V4+ Styles]", [S_EVENTS] = "[Events]"
	};
	if (!*l || *l == ';') return 0;
	if (*l == '[') {
		for (int s = S_INFO; s <= S_EVENTS; s++)
			if (!strcmp(l, sects[s])) {
				p->sect = (enum sect)s;
				return 0;
			}
		return bad(p, "a section other than [Script Info], [V4+ Styles] and [Events]");
	}
	switch (p->sect) {
	case S_INFO: return ass_info(p, l);
	case S_STYLES: return ass_style(p, l);
	case S_EVENTS: return ass_event(p, l);
	default: return bad(p, "a line before the first section");
	}
}

/* subtitles.srt, a line at a time: a cue's number, its times, its text
 * lines up to a blank line. */
static int srt_line(struct parse *p, const char *l)
{
	long long num;
	const char *t = l;

	switch (p->srt) {
	case SRT_NUM:
		if (!*l) return 0;
		if (digits(&t, 1, 9, &num) < 0 || *t) return bad(p, "a cue that does not start with its number");
		p->srt = SRT_TIME;
		return 0;
	case SRT_TIME:
		if (parse_time(&t, 1, &p->start) < 0 || strncmp(t, " --> ", 5) ||
		    (t += 5, parse_time(&t, 1, &p->end) < 0) || *t)
			return bad(p, "a cue time line not in the form HH:MM:SS,mmm --> HH:MM:SS,mmm");
		p->w = (struct wrap){ 1, p->cols, 0, 0, 0 };
		p->srt = SRT_TEXT;
		return 0;
	default:
		if (!*l) return srt_end(p);
		if (strpbrk(l, "<{\\"))
			return bad(p, "a cue with markup (<...>, {...} or \\), which could move the text");
		if (strstr(l, " --> ")) return bad(p, "a time line inside a cue's text (a blank line missing?)");
		if (p->w.lines++) p->w.col = 0;
		for (; *t; t++) wrap_char(&p->w, (unsigned char)*t);
		wrap_word(&p->w);
		return 0;
	}
}

/* The next line from *pos, its '\n' (and a '\r' before it) cut; NULL at the end. */
static char *next_line(char *buf, size_t len, size_t *pos)
{
	char *l = buf + *pos, *nl;
	if (*pos >= len) return NULL;
	nl = memchr(l, '\n', len - *pos);
	*pos = nl ? (size_t)(nl - buf) + 1 : len;
	if (nl)
		*nl = 0;
	else
		nl = buf + len;
	if (nl > l && nl[-1] == '\r') nl[-1] = 0;
	return l;
}

static int parse_text(struct parse *p, char *buf, size_t len, int srt)
{
	size_t pos = strncmp(buf, "\xef\xbb\xbf", 3) ? 0 : 3;
	char *l;
	if (memchr(buf, 0, len) || !utf8_valid(buf, len)) return err_set("%s: not UTF-8 text", p->path);
	for (p->line = 1; (l = next_line(buf, len, &pos)); p->line++) {
		if ((srt ? srt_line(p, l) : ass_line(p, l)) < 0) return -1;
	}
	if (srt && p->srt == SRT_TIME) return bad(p, "a cue number without its time line");
	if (srt && p->srt == SRT_TEXT) return srt_end(p);
	if (!srt && !p->format_seen) return err_set("%s: no [Events] Format line", p->path);
	return 0;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

long caption_band_changes(const char *file, const struct media_frame *f, long frames, int cols, long **out, int *lines)
{
	struct parse p = { .path = file, .f = f, .frames = frames, .cols = cols > 0 ? cols : 1, .wrap = 1 };
	size_t len, n = 0;
	char *buf = fsio_read(file, FILE_MAX, &len);
	int srt = strlen(file) > 4 && !strcmp(file + strlen(file) - 4, ".srt");

	*out = NULL;
	if (!buf || parse_text(&p, buf, len, srt) < 0) {
		free(buf);
		free(p.fr);
		return -1;
	}
	free(buf);
	add_frame(&p, 0);
	qsort(p.fr, p.n, sizeof *p.fr, cmp_long);
	for (size_t i = 0; i < p.n; i++)
		if (!n || p.fr[i] != p.fr[n - 1]) p.fr[n++] = p.fr[i];
	*out = p.fr;
	*lines = p.lines;
	return (long)n;
}

/* select's expression for the frames fr[0..n): a binary search on n down to
 * LEAF frames, whose eq() terms are summed (ffmpeg's if() evaluates only
 * the branch taken, so a frame costs ~log2(n) comparisons). */
static void select_tree(struct sbuf *b, const long *fr, size_t n)
{
	size_t k = n / 2;
	if (n <= LEAF) {
		for (size_t i = 0; i < n; i++) sb_printf(b, "%seq(n,%ld)", i ? "+" : "", fr[i]);
		return;
	}
	sb_printf(b, "if(lt(n,%ld),", fr[k]);
	select_tree(b, fr, k);
	sb_puts(b, ",");
	select_tree(b, fr + k, n - k);
	sb_puts(b, ")");
}

/* The rows where libass can draw b->lines lines of the style (a line is
 * the font size high: libass sizes fonts by their whole height), with a
 * quarter line and twice the outline to spare (DejaVu Sans at 77 px, two
 * lines at the bottom of 1080p: drawn in rows 842-993 of the 804-1021
 * band); even, for the chroma of yuv420p. */
static void band_span(const struct media_frame *f, struct caption_band *b)
{
	double text = (double)b->lines * b->size, pad = b->size / 4.0 + 2 * b->outline + 2;
	int row = (b->align - 1) / 3; /* ASS numpad alignment: 0 bottom, 1 middle, 2 top */
	double top = row == 0 ? f->h - b->margin_v - text : row == 1 ? (f->h - text) / 2 : b->margin_v;
	long y0 = (long)floor(top - pad), y1 = (long)ceil(top + text + pad);

	y0 = y0 < 0 ? 0 : y0 > f->h ? f->h : y0;
	y1 = y1 > f->h ? f->h : y1;
	b->y = (int)(y0 & ~1L);
	b->h = (int)(((y1 + 1) & ~1L) - b->y);
	if (b->h < 2) b->h = 2;
}

char *caption_band_graph(const char *file, const char *args, const struct media_frame *f, long frames, const char *in,
			 struct caption_band *b)
{
	long *fr;
	long n = caption_band_changes(file, f, frames, b->cols, &fr, &b->lines);
	struct sbuf sel = { 0 };
	char *g;

	if (n < 0) return NULL;
	if (n > CHANGES_MAX) {
		free(fr);
		err_set("%s changes on %ld frames, more than the %d a select expression may hold", file, n,
			CHANGES_MAX);
		return NULL;
	}
	select_tree(&sel, fr, (size_t)n);
	free(fr);
	band_span(f, b);
	b->drawn = (size_t)n;
	g = xasprintf("color=c=%s@0:s=%dx%d:r=%d:d=%.6f,format=yuva420p,select='%s',settb=AVTB,"
		      "subtitles=%s:alpha=1,crop=%d:%d:0:%d,fps=%d,trim=end_frame=%ld,settb=AVTB,setpts=PTS-%d[capband];"
		      "[%s][capband]overlay=0:%d:eof_action=repeat:format=yuv420",
		      b->canvas, f->w, f->h, f->fps, (frames + 0.5) / f->fps, sel.s, args, f->w, b->h, b->y, f->fps,
		      frames, 500000 / f->fps, in, b->y);
	sb_free(&sel);
	return g;
}
