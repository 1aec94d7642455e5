/*
 * test_words.c - unit tests for words.c (word timings) and captions.c
 * (captions.ass from words.json), printed as TAP (tap.h).
 */
#include "daemon.h"
#include "provider.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void t_estimate(void)
{
	struct media_words ws = { 0 };
	int ordered = 1;

	words_estimate(&ws, "A  wonderful   idea", 2, 1.0, 3.0);
	ok(ws.n == 3 && !strcmp(ws.w[1].text, "wonderful"), "words are the whitespace-separated pieces");
	ok(ws.n == 3 && ws.w[0].start == 1.0 && fabs(ws.w[2].end - 3.0) < 1e-9, "they fill the sentence");
	for (size_t i = 1; i < ws.n; i++) ordered &= ws.w[i].start >= ws.w[i - 1].end;
	ok(ordered, "in order, without overlap");
	ok(ws.n == 3 && ws.w[1].end - ws.w[1].start > 2 * (ws.w[0].end - ws.w[0].start),
	   "a word of three syllables lasts longer than one of one");
	ok(ws.n == 3 && ws.w[0].seg == 2 && !ws.w[0].timed, "segment kept, marked estimated");
	words_clear(&ws);
}

static void t_place(void)
{
	struct media_words ws = { 0 };
	double t0[] = { 0.5, 0.9 }, t1[] = { 0.8, 1.4 };

	ok(words_place(&ws, "Hello world.", 0, t0, t1, 2, 0.5, 1.4) == 1, "engine times used when they match");
	ok(ws.n == 2 && ws.w[1].start == 0.9 && ws.w[1].timed, "as given");
	words_clear(&ws);
	ok(words_place(&ws, "Hello big world.", 0, t0, t1, 2, 0.5, 1.4) == 0, "not when the words differ");
	ok(ws.n == 3 && !ws.w[2].timed && fabs(ws.w[2].end - 1.4) < 1e-9, "then estimated in the sentence");
	words_clear(&ws);
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p++) n++;
	return n;
}

static void t_ass(void)
{
	struct media_words ws = { 0 };
	struct media_frame f = { .w = 320, .h = 180 };
	cJSON *ch = cJSON_Parse("{\"captions\": {\"highlight\": \"#102030\", \"lines\": 1}}");
	char *ass;

	words_estimate(&ws, "One two three {four}.", 0, 0.5, 2.5);
	words_estimate(&ws, "Next sentence here.", 0, 3.5, 5.0);
	must(words_write(&ws, "words.json"));
	ok(captions_ass_write(ch, &f, "captions.ass") == 1, "captions.ass written");
	ass = fsio_read("captions.ass", 1 << 20, NULL);
	ok(ass && count(ass, "Dialogue:") == 7, "one event per word");
	ok(ass && count(ass, "{\\c&H302010&}") == 7, "each with one word in the highlight colour (BGR)");
	ok(ass && strstr(ass, "(four).") && !strstr(ass, "{four}"), "braces in a word cannot start a tag");
	ok(ass && strstr(ass, "Dialogue: 0,0:00:03.50,"), "a new sentence starts a new page at its first word");
	free(ass);
	cJSON_Delete(ch);
	ch = cJSON_Parse("{\"captions\": {\"position\": \"left\"}}");
	ok(captions_ass_write(ch, &f, "captions.ass") == -1 && strstr(err_msg(), "captions.position"),
	   "a bad option is named");
	cJSON_Delete(ch);
	unlink("words.json");
	unlink("captions.ass");
	words_clear(&ws);
}

int main(void)
{
	char dir[] = "/tmp/test_words.XXXXXX";
	must(mkdtemp(dir) ? 0 : -1);
	must(chdir(dir));
	t_estimate();
	t_place();
	t_ass();
	(void)!rmdir(dir);
	return tap_done();
}
