/*
 * test_broll_gen.c - unit tests for broll_gen.c (generated b-roll recipes,
 * issue 12), printed as TAP (tap.h): a recipe round-trips, and a file that
 * is not one is refused naming it, before anything reaches ffmpeg.
 */
#include "provider.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct media_frame frame = { .w = 1920, .h = 1080, .fps = 25 };

static int load_text(const char *json, struct broll_recipe *r)
{
	must(fsio_write_atomic_str("r.json", json));
	return broll_recipe_load("r.json", r);
}

static void t_round_trip(void)
{
	struct broll_recipe w = { .kind = 2, .seed = 4000000000u, .text = "Tardigrades\nin space" }, r;
	const char *scale;
	char *src, *filter;

	ok(broll_recipe_save("r.json", &w) == 0 && broll_recipe_load("r.json", &r) == 0, "saved and loaded");
	ok(r.kind == 2 && r.seed == 4000000000u && !strcmp(r.text, w.text), "the same kind, seed and text");
	src = broll_gen_source(&frame, &r, &scale);
	ok(!strncmp(src, "life=s=240x135:r=25/2:", 22) && !strcmp(scale, "neighbor"), "life at an eighth: %s", src);
	filter = broll_gen_filter(&frame, scale, "/f.ttf", "t.txt");
	ok(strstr(filter, "drawbox=c=black@0.25:t=fill,scale=1920:1080:flags=neighbor") != NULL,
	   "darkened before it is enlarged: %s", filter);
	ok(strstr(filter, "textfile=t.txt:expansion=none") && !strstr(filter, "Tardigrades"),
	   "the text reaches drawtext only through its file");
	free(src);
	free(filter);
	broll_recipe_free(&r);
}

static void t_refused(void)
{
	static const char *const bad[] = {
		"{\"kind\": \"movie=/etc/passwd\", \"seed\": 1, \"text\": \"x\"}",
		"{\"kind\": 4, \"seed\": 1, \"text\": \"x\"}",
		"{\"kind\": 1.5, \"seed\": 1, \"text\": \"x\"}",
		"{\"kind\": 1, \"seed\": -1, \"text\": \"x\"}",
		"{\"kind\": 1, \"seed\": 1}",
		"[1, 2]",
	};
	struct broll_recipe r;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ok(load_text(bad[i], &r) < 0 && strstr(err_msg(), "r.json") && r.text == NULL, "refused: %s (%s)",
		   bad[i], err_msg());
	{
		char *big = calloc(5000, 1);
		struct broll_recipe w = { .kind = 0, .seed = 1, .text = memset(big, 'a', 4999) };
		ok(broll_recipe_save("r.json", &w) < 0 && strstr(err_msg(), "shorten"),
		   "a text too long to draw: %.60s", err_msg());
		free(big);
	}
	ok(broll_recipe_load("missing.json", &r) < 0 && strstr(err_msg(), "missing.json"), "a missing recipe: %s",
	   err_msg());
}

int main(void)
{
	char dir[] = "/tmp/test_broll_gen.XXXXXX";
	must(mkdtemp(dir) ? 0 : -1);
	must(chdir(dir));
	t_round_trip();
	t_refused();
	unlink("r.json");
	(void)!rmdir(dir);
	return tap_done();
}
