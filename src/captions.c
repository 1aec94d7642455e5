/*
 * captions.c - the burned-in captions: captions.ass, built from words.json
 * (timeline.json's cues, timed by syllable share, when the audio provider
 * wrote none) in the channel's style (channel.yaml captions:).
 *
 * Words are laid out in pages of at most `lines` lines (2 at most); a page
 * ends at a sentence's end, a pause or when full.  While a page is shown,
 * one event per word state: from the moment a word starts to the moment
 * the next one starts, the page with that word in the highlight colour.
 * So the highlight follows the voice exactly as words.json times it (to the
 * centisecond of the ASS format).  The plain subtitles.srt stays the
 * sidecar; this file is only burned in.
 *
 * captions: {font, size, color, highlight, outline, position, lines}
 */
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_PAUSE 0.6 /* a pause this long between words starts a new page */
#define PAGE_HOLD 0.4  /* a page stays this long after its last word, if nothing follows */
#define WORDS_MAX (16 << 20)

struct cap_style {
	const char *font, *position;
	char color[16], highlight[16], outline[16]; /* &HBBGGRR */
	int size, lines, align, cols;
};

/* "#RRGGBB" (or without '#') to ASS's &HBBGGRR (the style adds the alpha byte). */
static int colour(const cJSON *ch, const char *key, const char *def, char out[16])
{
	const char *v = json_str(ch, key, def), *h = *v == '#' ? v + 1 : v;

	if (strlen(h) != 6 || strspn(h, "0123456789abcdefABCDEF") != 6)
		return err_set("%s \"%s\": use a colour like #FFD400", key, v);
	snprintf(out, 16, "&H%.2s%.2s%.2s", h + 4, h + 2, h);
	return 0;
}

static int style_get(const cJSON *ch, const struct media_frame *f, struct cap_style *s)
{
	static const char *const pos[] = { "bottom", "middle", "top", NULL };
	static const int align[] = { 2, 5, 8 };
	int side = f->w < f->h ? f->w : f->h, idx;

	s->font = json_str(ch, "captions.font", "DejaVu Sans");
	s->position = json_str(ch, "captions.position", "bottom");
	s->size = (int)json_num(ch, "captions.size", side / 14);
	s->lines = (int)json_num(ch, "captions.lines", 2);
	if (!*s->font || strlen(s->font) > 64 || strpbrk(s->font, ",{}\\\n"))
		return err_set("captions.font \"%s\": give a font family name "
			       "(no commas), e.g. DejaVu Sans",
			       s->font);
	if (s->size < 8 || s->size > f->h / 4)
		return err_set("captions.size %d: use 8 to %d pixels for this frame", s->size, f->h / 4);
	if (s->lines < 1 || s->lines > 2) return err_set("captions.lines %d: use 1 or 2", s->lines);
	for (idx = 0; pos[idx] && strcmp(pos[idx], s->position); idx++)
		;
	if (!pos[idx]) return err_set("captions.position \"%s\": use bottom, middle or top", s->position);
	s->align = align[idx];
	s->cols = (int)(f->w * 0.9 / (s->size * 0.56)); /* DejaVu Sans averages ~0.56 em a character */
	if (s->cols < 8) s->cols = 8;
	return colour(ch, "captions.color", "#FFFFFF", s->color) < 0 ||
			colour(ch, "captions.highlight", "#FFD400", s->highlight) < 0 ||
			colour(ch, "captions.outline", "#000000", s->outline) < 0
		? -1
		: 0;
}

int captions_check(const cJSON *channel)
{
	struct media_frame f;
	struct cap_style s;

	return media_frame_get(channel, &f) < 0 ? 0 : style_get(channel, &f, &s); /* a bad video: its own message */
}

/* words.json, else timeline.json's cues with estimated word times. */
static int words_load(struct media_words *ws)
{
	const char *path = fsio_exists("words.json") ? "words.json" : "timeline.json";
	cJSON *doc = json_load_file(path, WORDS_MAX), *e;
	int is_words = path[0] == 'w';

	if (!doc) return fsio_exists(path) ? -1 : 0;
	cJSON_ArrayForEach (e, json_get(doc, is_words ? "words" : "cues")) {
		const char *t = json_str(e, is_words ? "word" : "text", NULL);
		double s = json_num(e, "start", NAN), en = json_num(e, "end", NAN);
		if (!t || !(s >= 0) || !(en >= s)) {
			cJSON_Delete(doc);
			return err_set("%s: an entry without text or with bad start/end times; "
				       "re-run the audio stage",
				       path);
		}
		if (is_words)
			words_place(ws, t, (int)json_num(e, "segment", 1) - 1, &s, &en, 1, s, en);
		else
			words_estimate(ws, t, 0, s, en);
	}
	cJSON_Delete(doc);
	return ws->n > 0;
}

static void ass_time(struct sbuf *b, double t)
{
	long cs = lround(t * 100);
	sb_printf(b, "%ld:%02ld:%02ld.%02ld", cs / 360000, cs / 6000 % 60, cs / 100 % 60, cs % 100);
}

/* A word as ASS text: braces and backslashes would start override tags. */
static void ass_word(struct sbuf *b, const char *w)
{
	for (; *w; w++) sb_printf(b, "%c", *w == '{' ? '(' : *w == '}' ? ')' : *w == '\\' ? '/' : *w);
}

static int sentence_end(const char *w)
{
	size_t n = strlen(w);
	while (n && strchr("\"')]", w[n - 1])) n--;
	return n && strchr(".!?", w[n - 1]);
}

/* Words from first that fit one page (at least one); where each line breaks. */
static size_t page_len(const struct media_words *ws, size_t first, const struct cap_style *s, size_t *brk)
{
	size_t i = first;
	int line = 0, col = 0;

	for (*brk = (size_t)-1; i < ws->n; i++) {
		int len = (int)strlen(ws->w[i].text);
		if (i > first && (ws->w[i].start - ws->w[i - 1].end > PAGE_PAUSE || sentence_end(ws->w[i - 1].text)))
			break;
		if (col && col + 1 + len > s->cols) {
			if (++line >= s->lines) break;
			*brk = i;
			col = 0;
		}
		col += (col ? 1 : 0) + len;
	}
	return i - first;
}

static void page_events(struct sbuf *b, const struct media_words *ws, size_t first, size_t n, size_t brk,
			double page_end, const struct cap_style *s)
{
	for (size_t k = first; k < first + n; k++) {
		double end = k + 1 < first + n ? ws->w[k + 1].start : page_end;
		if (end <= ws->w[k].start) continue;
		sb_puts(b, "Dialogue: 0,");
		ass_time(b, ws->w[k].start);
		sb_puts(b, ",");
		ass_time(b, end);
		sb_puts(b, ",Caption,,0,0,0,,");
		for (size_t i = first; i < first + n; i++) {
			sb_puts(b, i == first ? "" : i == brk ? "\\N" : " ");
			if (i == k) sb_printf(b, "{\\c%s&}", s->highlight);
			ass_word(b, ws->w[i].text);
			if (i == k) sb_printf(b, "{\\c%s&}", s->color);
		}
		sb_puts(b, "\n");
	}
}

static void header(struct sbuf *b, const struct media_frame *f, const struct cap_style *s)
{
	sb_printf(b,
		  "[Script Info]\nScriptType: v4.00+\nPlayResX: %d\nPlayResY: %d\nWrapStyle: 2\n"
		  "ScaledBorderAndShadow: yes\n\n[V4+ Styles]\n"
		  "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
		  "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
		  "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
		  "Style: Caption,%s,%d,&H00%s,&H00%s,&H00%s,&H80000000,1,0,0,0,100,100,0,0,1,%.1f,0,%d,%d,%d,%d,1\n\n"
		  "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n",
		  f->w, f->h, s->font, s->size, s->color + 2, s->color + 2, s->outline + 2, fmax(1, s->size / 16.0),
		  s->align, f->w / 20, f->w / 20, f->h / 12); /* captions_band() tells caption_band.c the same */
}

/* The geometry header() writes, for caption_band.c: lines between the
 * left and right margins (w/20 each), at a generous 0.75 em a character
 * (bold DejaVu Sans averages ~0.6), should libass ever wrap them (WrapStyle
 * 2: it does not). */
int captions_band(const cJSON *channel, const struct media_frame *f, struct caption_band *b)
{
	struct cap_style s;
	if (style_get(channel, f, &s) < 0) return -1;
	b->align = s.align;
	b->size = s.size;
	b->margin_v = f->h / 12;
	b->outline = fmax(1, s.size / 16.0);
	b->cols = (int)((f->w - 2 * (f->w / 20)) / (0.75 * s.size));
	snprintf(b->canvas, sizeof b->canvas, "0x%.2s%.2s%.2s", s.outline + 6, s.outline + 4, s.outline + 2);
	return 0;
}

int captions_ass_write(const cJSON *channel, const struct media_frame *f, const char *path)
{
	struct cap_style s;
	struct media_words ws = { 0 };
	struct sbuf b = { 0 };
	int rc = style_get(channel, f, &s);

	if (rc == 0) rc = words_load(&ws);
	if (rc > 0) {
		header(&b, f, &s);
		for (size_t i = 0, n, brk; i < ws.n; i += n) {
			double next;
			n = page_len(&ws, i, &s, &brk);
			next = i + n < ws.n ? ws.w[i + n].start : INFINITY;
			page_events(&b, &ws, i, n, brk, fmin(ws.w[i + n - 1].end + PAGE_HOLD, next), &s);
		}
		rc = fsio_write_atomic(path, b.s, b.len) < 0 ? -1 : 1;
	}
	sb_free(&b);
	words_clear(&ws);
	return rc;
}
