/*
 * test_script.c - unit tests for script.c (script_parse, script_sentences),
 * printed as TAP (tap.h).  Exits 1 when any test fails, so `make test` and
 * `prove` both notice.
 */
#include "daemon.h"
#include "provider.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int str_is(const char *got, const char *want)
{
	if (got && want && strcmp(got, want) == 0) return 1;
	if (!got && !want) return 1;
	printf("#   got:  %s\n#   want: %s\n", got ? got : "(null)", want ? want : "(null)");
	return 0;
}

static void t_parse_basic(void)
{
	struct script s;
	const char *md = "# Why is the sky dark?\n\n[AVATAR]\nHello there.\n\n"
			 "[BROLL: stars over a desert]\n[VOICEOVER]\nLook up.\nIt is dark.\n";

	ok(script_parse(md, &s) == 0 && s.n == 2, "hook + broll/voiceover gives two segments");
	ok(str_is(s.title, "Why is the sky dark?"), "first line # is the title");
	ok(s.n == 2 && s.seg[0].visual == SEG_AVATAR && !s.seg[0].broll, "first segment is avatar");
	ok(s.n == 2 && s.seg[1].visual == SEG_BROLL && str_is(s.seg[1].broll, "stars over a desert"),
	   "broll keeps its description");
	ok(s.n == 2 && str_is(s.seg[1].text, "Look up. It is dark."),
	   "lines of one segment are joined with single spaces");
	script_free(&s);
}

static void t_parse_tolerant(void)
{
	struct script s;
	const char *md = "  [ b-roll :  city at night  ]  \n  [voiceOver]\nCity text.\n"
			 "[Avatar] Inline narration after a marker.\n";

	script_parse(md, &s);
	ok(s.n == 2 && s.seg[0].visual == SEG_BROLL && str_is(s.seg[0].broll, "city at night"),
	   "markers are case-insensitive and whitespace/dash tolerant");
	ok(s.n == 2 && str_is(s.seg[1].text, "Inline narration after a marker."),
	   "text after a marker on the same line is narration");
	ok(s.title == NULL, "no title when the script starts with a marker");
	script_free(&s);
}

static void t_parse_skips(void)
{
	struct script s;
	const char *md = "<!-- written from a template -->\n# Title\n<!-- a\nmulti-line\ncomment -->\n"
			 "Before any marker.\n## Section heading\n### deeper\n"
			 "[MUSIC: soft]\nSpoken <!-- not spoken --> words.\n";

	script_parse(md, &s);
	ok(str_is(s.title, "Title"), "title found after a leading comment");
	ok(s.n == 1 && s.seg[0].visual == SEG_AVATAR, "narration before any marker becomes one avatar segment");
	ok(s.n == 1 && str_is(s.seg[0].text, "Before any marker. Spoken words."),
	   "comments, headings and unknown directions are not narrated");
	script_free(&s);
}

static void t_parse_drops_empty(void)
{
	struct script s;
	const char *md = "[AVATAR]\n\n[BROLL: unused]\n[BROLL: used]\n[VOICEOVER]\nText.\n[AVATAR]\n\n";

	script_parse(md, &s);
	ok(s.n == 1 && str_is(s.seg[0].broll, "used"), "segments with no narration are dropped");
	script_free(&s);
	script_parse("[BROLL:]\nNarration.\r\n[BROLL]\r\nMore.\r\n", &s);
	ok(s.n == 2 && str_is(s.seg[0].broll, "") && str_is(s.seg[1].broll, ""),
	   "empty broll descriptions parse as empty strings (review flags them)");
	ok(s.n == 2 && str_is(s.seg[0].text, "Narration."), "CRLF line endings are handled");
	script_free(&s);
	script_parse("# Only a title\n<!-- and a comment\n[AVATAR]\nnever closed", &s);
	ok(s.n == 0, "an unterminated comment hides the rest; no segments");
	script_free(&s);
	script_parse("", &s);
	ok(s.n == 0 && s.title == NULL, "empty text parses to nothing");
	script_free(&s);
}

static void t_parse_markup(void)
{
	struct script s;

	script_parse("[AVATAR]\n- **Bold** point\n* second\n[1] footnote stays.\n", &s);
	ok(s.n == 1 && str_is(s.seg[0].text, "Bold point second [1] footnote stays."),
	   "bullets and emphasis asterisks are stripped, numeric brackets kept");
	script_free(&s);
}

static void free_sentences(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) free(v[i]);
	free(v);
}

/* Split text and compare with the expected sentences joined by '|'. */
static int split_is(const char *text, const char *want)
{
	char **v;
	size_t n = script_sentences(text, &v);
	struct sbuf b = { 0 };
	int r;

	for (size_t i = 0; i < n; i++) {
		if (i) sb_puts(&b, "|");
		sb_puts(&b, v[i]);
	}
	r = str_is(b.s ? b.s : "", want);
	sb_free(&b);
	free_sentences(v, n);
	return r;
}

static void t_sentences(void)
{
	ok(split_is("One.  Two!\nThree? ", "One.|Two!|Three?"),
	   "splits on . ! ? keeping punctuation, trims whitespace");
	ok(split_is("Pi is about 3.14 and e is 2.7. Next.", "Pi is about 3.14 and e is 2.7.|Next."),
	   "decimals do not split");
	ok(split_is("Dr. Chen met Mr. Smith. They talked.", "Dr. Chen met Mr. Smith.|They talked."),
	   "titles like Dr. and Mr. do not split");
	ok(split_is("Use analogies, e.g. stars. i.e. this works.", "Use analogies, e.g. stars.|i.e. this works."),
	   "e.g. and i.e. do not split");
	ok(split_is("Wait... what?! Really.", "Wait...|what?!|Really."), "ellipsis and ?! runs end sentences");
	ok(split_is("He said \"stop.\" Then left.", "He said \"stop.\"|Then left."),
	   "closing quote stays with its sentence");
	ok(split_is("no final punctuation here", "no final punctuation here"),
	   "text without a terminator is one sentence");
	ok(split_is("J. R. R. Tolkien wrote it. See example.com today.",
		    "J. R. R. Tolkien wrote it.|See example.com today."),
	   "initials and dotted names do not split");
	ok(split_is("Apples, pears, etc. and more. Tools etc. Then done.",
		    "Apples, pears, etc. and more.|Tools etc.|Then done."),
	   "etc. splits only before a capital");
	ok(split_is("   ", ""), "blank text gives no sentences");
}

int main(void)
{
	t_parse_basic();
	t_parse_tolerant();
	t_parse_skips();
	t_parse_drops_empty();
	t_parse_markup();
	t_sentences();
	return tap_done();
}
