/*
 * script.c - parse script.md into segments, and narration into sentences.
 *
 * Format (forgiving on purpose: people and language models both write it):
 *   # Title                     optional, the first line that says anything
 *   [AVATAR]                    starts an on-camera segment
 *   [BROLL: description]        starts a b-roll segment
 *   [VOICEOVER]                 narration follows; the current visual stays
 *   ## heading, <!-- comment --> never narrated
 * Marker names are case-insensitive and whitespace-tolerant ("[ b-roll :x ]"
 * works); text after a marker on the same line is narration.  Narration
 * before any marker becomes an avatar segment.  A segment with no narration
 * is dropped, so "[BROLL: x]\n[VOICEOVER]\ntext" is one b-roll segment.
 *
 * Invariants: every segment in the result has non-empty text with single
 * spaces between words; broll is non-NULL (possibly "") exactly for
 * SEG_BROLL.  Nothing here touches files: the callers read script.md.
 */
#define _GNU_SOURCE
#include "base.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum marker { MK_NONE, MK_AVATAR, MK_BROLL, MK_VOICEOVER, MK_OTHER };

/* A segment being built, before it is known to have narration. */
struct seg_build {
	int open;
	enum seg_visual visual;
	char *broll;
	struct sbuf text;
};

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Copy of text with every <!-- ... --> removed; an unterminated comment
 * hides the rest, as it would in a markdown viewer. */
static char *strip_comments(const char *text)
{
	struct sbuf b = { 0 };
	const char *p = text, *c, *e;

	while ((c = strstr(p, "<!--")) != NULL) {
		sb_add(&b, p, (size_t)(c - p));
		if (!(e = strstr(c + 4, "-->"))) return b.s ? b.s : xstrdup("");
		p = e + 3;
	}
	sb_puts(&b, p);
	return b.s ? b.s : xstrdup("");
}

/* Trim in place; returns the start. */
static char *trim(char *s)
{
	size_t n;

	while (is_space(*s)) s++;
	n = strlen(s);
	while (n > 0 && is_space(s[n - 1])) s[--n] = 0;
	return s;
}

/* Recognise "[NAME]" or "[NAME: arg]" at the start of a trimmed line.  The
 * name is compared with spaces, '-' and '_' removed, so B-ROLL and b roll
 * match too.  *arg and *rest point into the line (arg is NUL-terminated);
 * the line is left untouched when it is not a marker. */
static enum marker parse_marker(char *line, char **arg, char **rest)
{
	char name[32], *close, *colon, *p;
	size_t n = 0;

	*arg = *rest = NULL;
	if (line[0] != '[' || !(close = strchr(line, ']'))) return MK_NONE;
	colon = memchr(line, ':', (size_t)(close - line));
	for (p = line + 1; p < (colon ? colon : close); p++) {
		if (is_space(*p) || *p == '-' || *p == '_') continue;
		if (!isalpha((unsigned char)*p) || n + 1 >= sizeof name)
			return MK_NONE; /* "[1] a footnote" is narration */
		name[n++] = (char)toupper((unsigned char)*p);
	}
	if (n == 0) return MK_NONE;
	name[n] = 0;
	*close = 0;
	*arg = colon ? trim(colon + 1) : close; /* close now holds "" */
	*rest = close + 1;
	if (!strcmp(name, "AVATAR")) return MK_AVATAR;
	if (!strcmp(name, "BROLL")) return MK_BROLL;
	if (!strcmp(name, "VOICEOVER") || !strcmp(name, "VO")) return MK_VOICEOVER;
	return MK_OTHER;
}

/* Append narration, collapsing whitespace and dropping markdown emphasis
 * asterisks, which a speech engine would otherwise read out. */
static void add_words(struct sbuf *b, const char *s)
{
	int pending_space = b->len > 0;

	for (; *s; s++) {
		if (is_space(*s) || *s == '*') {
			pending_space = pending_space || is_space(*s);
			continue;
		}
		if (pending_space && b->len > 0) sb_add(b, " ", 1);
		pending_space = 0;
		sb_add(b, s, 1);
	}
}

static void seg_flush(struct seg_build *sb, struct script *out)
{
	struct segment *sg;

	if (sb->open && sb->text.len > 0) {
		out->seg = xrealloc(out->seg, (out->n + 1) * sizeof *out->seg);
		sg = &out->seg[out->n++];
		sg->visual = sb->visual;
		sg->broll = sb->broll;
		sg->text = sb->text.s;
		sb->broll = NULL;
		sb->text = (struct sbuf){ 0 };
	}
	free(sb->broll);
	sb_free(&sb->text);
	*sb = (struct seg_build){ 0 };
}

static void seg_start(struct seg_build *sb, struct script *out, enum seg_visual v, const char *broll)
{
	seg_flush(sb, out);
	sb->open = 1;
	sb->visual = v;
	sb->broll = v == SEG_BROLL ? xstrdup(broll ? broll : "") : NULL;
}

/* A bullet's "- " or "* " is layout, not speech. */
static char *strip_bullet(char *line)
{
	if ((line[0] == '-' || line[0] == '*' || line[0] == '+') && is_space(line[1])) return trim(line + 1);
	return line;
}

static void script_line(char *line, struct seg_build *sb, struct script *out, int *seen_content)
{
	char *arg, *rest;
	enum marker m;

	line = trim(line);
	if (!*line) return;
	if (line[0] == '#') {
		/* Only a first "# Title" is a title; other headings are layout. */
		if (!*seen_content && line[1] != '#' && *trim(line + 1)) out->title = xstrdup(trim(line + 1));
		*seen_content = 1;
		return;
	}
	*seen_content = 1;
	m = parse_marker(line, &arg, &rest);
	if (m == MK_AVATAR)
		seg_start(sb, out, SEG_AVATAR, NULL);
	else if (m == MK_BROLL)
		seg_start(sb, out, SEG_BROLL, arg);
	/* An unknown direction such as [MUSIC] or [laughs] is not spoken,
	 * but text after it on the line is. */
	if (m != MK_NONE) line = trim(rest);
	line = strip_bullet(line);
	if (!*line) return;
	if (!sb->open) seg_start(sb, out, SEG_AVATAR, NULL);
	add_words(&sb->text, line);
}

int script_parse(const char *text, struct script *out)
{
	struct seg_build sb = { 0 };
	char *copy, *line, *save = NULL;
	int seen = 0;

	memset(out, 0, sizeof *out);
	if (!text) return err_set("script_parse: no text");
	copy = strip_comments(text);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		script_line(line, &sb, out, &seen);
	seg_flush(&sb, out);
	free(copy);
	return 0;
}

void script_free(struct script *s)
{
	for (size_t i = 0; s && i < s->n; i++) {
		free(s->seg[i].broll);
		free(s->seg[i].text);
	}
	if (s) {
		free(s->seg);
		free(s->title);
		memset(s, 0, sizeof *s);
	}
}

/* ---- sentences ------------------------------------------------------- */

/* Words after which a full stop does not end a sentence. */
/* clang-format off: a table keeps one row per line */
static const char *const abbrev_never[] = { "mr",  "mrs", "ms",  "dr",  "prof", "st",     "sr",  "jr",
					    "mt",  "vs",  "e.g", "i.e", "cf",   "approx", "fig", "no",
					    "nos", "vol", "ch",  "sec", "ca",   "u.s",    "u.k", NULL };
/* clang-format on */
/* Ambiguous: these end a sentence only when a capital letter follows. */
static const char *const abbrev_maybe[] = { "etc", "inc", "ltd", "co", "al", NULL };

static int in_list(const char *const *list, const char *w, size_t n)
{
	for (; *list; list++)
		if (strlen(*list) == n && !strncasecmp(*list, w, n)) return 1;
	return 0;
}

/* Is the '.' at text[i] the end of an abbreviation or an initial?
 * next points at the first non-space character after the terminator run. */
static int is_abbrev_dot(const char *text, size_t i, const char *next)
{
	size_t start = i;

	while (start > 0 && !is_space(text[start - 1]) && text[start - 1] != '(' && text[start - 1] != '"') start--;
	if (i - start == 1 && isupper((unsigned char)text[start]) && text[start] != 'I')
		return 1; /* an initial, as in "J. R. R. Tolkien"; "I." is a pronoun */
	if (in_list(abbrev_never, text + start, i - start)) return 1;
	return in_list(abbrev_maybe, text + start, i - start) && !isupper((unsigned char)*next);
}

static int is_closer(char c)
{
	return c == '"' || c == '\'' || c == ')' || c == ']';
}

static void push_sentence(char ***out, size_t *n, const char *s, size_t len)
{
	char *copy = strndup(s, len), *t;

	if (!copy) abort();
	t = trim(copy);
	if (!*t) {
		free(copy);
		return;
	}
	memmove(copy, t, strlen(t) + 1);
	*out = xrealloc(*out, (*n + 1) * sizeof **out);
	(*out)[(*n)++] = copy;
}

/* A run of . ! ? (plus closing quotes) ends a sentence when whitespace or
 * the end follows, so 3.5 and "example.com" never split. */
size_t script_sentences(const char *text, char ***out)
{
	size_t n = 0, start = 0, i = 0, j;

	*out = NULL;
	if (!text) return 0;
	while (text[i]) {
		if (text[i] != '.' && text[i] != '!' && text[i] != '?') {
			i++;
			continue;
		}
		for (j = i; text[j] == '.' || text[j] == '!' || text[j] == '?'; j++)
			;
		while (is_closer(text[j])) j++;
		if ((text[j] && !is_space(text[j])) ||
		    (text[i] == '.' && j == i + 1 && is_abbrev_dot(text, i, text + j + strspn(text + j, " \t\r\n")))) {
			i = j;
			continue;
		}
		push_sentence(out, &n, text + start, j - start);
		start = i = j;
	}
	push_sentence(out, &n, text + start, i - start);
	return n;
}
