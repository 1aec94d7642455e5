/*
 * test_caption_band.c - unit tests for caption_band.c (issue 12), printed
 * as TAP (tap.h): the frames where a captions.ass or subtitles.srt changes,
 * the lines a cue takes, the refusals (each naming the file and the line),
 * and the graph: a select expression ffmpeg's parser takes at any size
 * allowed, a band on even rows inside the frame.  That the frames and the
 * pixels are those of ffmpeg's subtitles filter: tests/test_caption_band.py.
 */
#include "provider.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct media_frame frame = { .w = 1920, .h = 1080, .fps = 25 };

#define ASS_HEAD \
	"[Script Info]\nScriptType: v4.00+\nPlayResX: 1920\nPlayResY: 1080\nWrapStyle: 2\n\n[V4+ Styles]\n" \
	"Format: Name, Fontname, Fontsize\nStyle: Caption,DejaVu Sans,77\n\n[Events]\n" \
	"Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"

static long changes(const char *name, const char *text, int cols, long **fr, int *lines)
{
	must(fsio_write_atomic(name, text, strlen(text)));
	return caption_band_changes(name, &frame, 1500, cols, fr, lines);
}

/* What the subtitles filter asks libass for, frame by frame: the frame's
 * microsecond pts times 1e-6 times 1000 in double, truncated; at 25 fps
 * frame 7 (280000 us) comes out at 279 ms, frame 8 at 320. */
static void t_frame(void)
{
	ok(caption_band_frame(0, 25) == 0 && caption_band_frame(1, 25) == 1, "0 ms: frame 0; 1 ms: frame 1");
	ok(caption_band_frame(279, 25) == 7 && caption_band_frame(280, 25) == 8, "frame 7 is drawn at 279 ms");
	ok(caption_band_frame(320, 25) == 8 && caption_band_frame(321, 25) == 9, "frame 8 at 320 ms");
	ok(caption_band_frame(99, 10) == 1 && caption_band_frame(100, 10) == 2, "10 fps: frame 1 at 99 ms");
}

static void t_ass(void)
{
	long *fr;
	int lines;
	long n = changes("c.ass",
			 ASS_HEAD
			 "Comment: 0,0:00:00.00,0:00:09.00,Caption,,0,0,0,,ignored\n"
			 "Dialogue: 0,0:00:00.32,0:00:00.54,Caption,,0,0,0,,{\\c&H00D4FF&}Why{\\c&HFFFFFF&} is\n"
			 "Dialogue: 0,0:00:00.54,0:00:01.00,Caption,,0,0,0,,Why {\\b1\\3c&H000000&}is\\Nit\n"
			 "Dialogue: 0,0:00:02.00,0:00:02.00,Caption,,0,0,0,,never shown\n"
			 "Dialogue: 0,1:00:00.00,1:00:01.00,Caption,,0000,0,0,,after the video\n",
			 40, &fr, &lines);
	ok(n == 4 && fr[0] == 0 && fr[1] == 8 && fr[2] == 14 && fr[3] == 25, "frames 0, 8, 14, 25: %ld (%s)", n,
	   n < 0 ? err_msg() : "");
	ok(lines == 2, "two lines (\\N): %d", lines);
	free(fr);
	n = changes("c.ass", ASS_HEAD, 40, &fr, &lines);
	ok(n == 1 && fr[0] == 0, "no events: frame 0 only");
	free(fr);
}

static void t_srt(void)
{
	long *fr;
	int lines;
	long n = changes("s.srt",
			 "1\n00:00:00,302 --> 00:00:01,404\nWhy do cats purr?\n\n"
			 "2\r\n00:00:01,708 --> 00:00:05,065\r\nThe answer is stranger,\r\nand simpler.\r\n",
			 40, &fr, &lines);
	ok(n == 5 && fr[1] == 8 && fr[2] == 36 && fr[3] == 43 && fr[4] == 127, "cue frames: %ld (%s)", n,
	   n < 0 ? err_msg() : "");
	ok(lines == 2, "two text lines: %d", lines);
	free(fr);
	n = changes("s.srt", "1\n00:00:00,000 --> 00:00:01,000\nthe answer is stranger and simpler than you think\n",
		    10, &fr, &lines);
	ok(n == 2 && lines >= 5, "a long line wraps, at 10 characters a line: %d lines", lines);
	free(fr);
}

/* Anything the band cannot vouch for is refused, naming file and line. */
static void t_refused(void)
{
	static const char *const ass[] = {
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,{\\fad(200,200)}x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,{\\move(0,0,9,9)}x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,{\\t(\\c&HFF&)}x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,{\\k20}x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,{\\bord9}x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,{\\an8}x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,{\\c&H00D4FF&x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,Banner;5,x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,40,,x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Other,,0,0,0,,x\n",
		"Dialogue: 0,0:00:01.0,0:00:02.00,Caption,,0,0,0,,x\n",
		"Dialogue: 0,0:0:01.00,0:00:02.00,Caption,,0,0,0,,x\n",
		"Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0\n",
		"Dialogue: x,0:00:01.00,0:00:02.00,Caption,,0,0,0,,x\n",
		"an event the line before broke in two\n",
		"[Fonts]\n",
		"Style: Second,DejaVu Sans,77\n",
	};
	static const char *const srt[] = {
		"1\n00:00:00.302 --> 00:00:01,404\nWhy?\n",
		"1\n00:00:00,302 -> 00:00:01,404\nWhy?\n",
		"00:00:00,302 --> 00:00:01,404\nWhy?\n",
		"1\n00:00:00,302 --> 00:00:01,404\n{\\an8}Why?\n",
		"1\n00:00:00,302 --> 00:00:01,404\n<font size=\"90\">Why?</font>\n",
		"1\n",
		"1\n00:00:00,302 --> 00:00:01,404\nWhy?\n2\n00:00:01,708 --> 00:00:05,065\nThe answer.\n",
	};
	long *fr;
	int lines;
	char buf[2048];

	for (size_t i = 0; i < sizeof ass / sizeof *ass; i++) {
		snprintf(buf, sizeof buf, "%s%s", ASS_HEAD, ass[i]);
		ok(changes("c.ass", buf, 40, &fr, &lines) < 0 && strstr(err_msg(), "c.ass line 13: ") && !fr,
		   "refused: %.*s (%s)", (int)strcspn(ass[i], "\n"), ass[i], err_msg());
	}
	for (size_t i = 0; i < sizeof srt / sizeof *srt; i++)
		ok(changes("s.srt", srt[i], 40, &fr, &lines) < 0 && strstr(err_msg(), "s.srt line "),
		   "refused: %.*s (%s)", (int)strcspn(srt[i] + 2, "\n"), srt[i] + 2, err_msg());
	ok(changes("c.ass", "Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,x\n", 40, &fr, &lines) < 0,
	   "an event before any section: %s", err_msg());
	ok(changes("c.ass", ASS_HEAD "Dialogue: 0,0:00:01.00,0:00:02.00,Caption,,0,0,0,,\xff\n", 40, &fr, &lines) < 0 &&
		   strstr(err_msg(), "UTF-8"),
	   "not UTF-8: %s", err_msg());
	snprintf(buf, sizeof buf, "%s", ASS_HEAD);
	memcpy(strstr(buf, "PlayResY: 1080"), "PlayResY: 1000", 14);
	ok(changes("c.ass", buf, 40, &fr, &lines) < 0 && strstr(err_msg(), "line 4: a PlayResX/PlayResY other"),
	   "a script laid out for another frame: %s", err_msg());
	ok(caption_band_changes("missing.ass", &frame, 1500, 40, &fr, &lines) < 0 && strstr(err_msg(), "missing.ass"),
	   "a missing file: %s", err_msg());
}

/* ffmpeg parses the select filter of the graph (ffmpeg's expression
 * parser refuses a flat sum of ~100 terms): its exit status. */
static int ffmpeg_takes(const char *sel)
{
	char *src = xasprintf("color=s=2x2:r=25:d=0.2,%.*s'", (int)strcspn(sel + 8, "'") + 8, sel);
	char *const argv[] = { "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", src, "-f", "null", "-", NULL };
	int st = -1;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid > 0) waitpid(pid, &st, 0);
	free(src);
	return st;
}

static char *graph_for(const char *text, long frames, struct caption_band *b)
{
	must(fsio_write_atomic("c.ass", text, strlen(text)));
	*b = (struct caption_band){
		.align = 2, .size = 77, .margin_v = 90, .outline = 4.8, .cols = 40, .canvas = "0x000000"
	};
	return caption_band_graph("c.ass", "filename=c.ass", &frame, frames, "in", b);
}

static void t_graph(void)
{
	struct sbuf s = { 0 };
	struct caption_band b;
	char *g, *sel;

	sb_puts(&s, ASS_HEAD);
	for (int i = 0; i < 1999; i++) /* at i * 2 + 1 s for half a second: 3,998 changes and frame 0 */
		sb_printf(&s, "Dialogue: 0,%d:%02d:%02d.%02d,%d:%02d:%02d.%02d,Caption,,0,0,0,,word\\Nword\n", i / 1800,
			  i / 30 % 60, (i * 2 + 1) % 60, 0, i / 1800, i / 30 % 60, (i * 2 + 1) % 60, 50);
	g = graph_for(s.s, 200000, &b);
	ok(g && b.drawn == 3999, "3,999 frames drawn: %zu (%s)", b.drawn, g ? "" : err_msg());
	sel = g ? strstr(g, "select='") : NULL;
	ok(sel && strlen(sel) < 60000 && !strncmp(sel + 8, "if(lt(n,", 8) && strstr(sel, "eq(n,0)+"),
	   "a binary search in the select expression, %zu bytes", sel ? strcspn(sel + 8, "'") : 0);
	ok(sel && ffmpeg_takes(sel) == 0, "ffmpeg takes it");
	ok(b.lines == 2 && b.y % 2 == 0 && b.h % 2 == 0 && b.y + b.h <= 1080 && b.y + b.h >= 1080 - 90 &&
		   b.y <= 1080 - 90 - 2 * 77 - 5,
	   "the band holds two lines above the margin: rows %d-%d", b.y, b.y + b.h - 1);
	ok(g && strstr(g, "subtitles=filename=c.ass:alpha=1,crop=1920:") && strstr(g, "[in][capband]overlay=0:") &&
		   strstr(g, ",fps=25,trim=end_frame=200000,settb=AVTB,setpts=PTS-20000[capband]"),
	   "libass draws on the canvas, overlay blends the band: %.200s", g ? g + strlen(g) - 200 : "");
	free(g);
	sb_printf(&s, "Dialogue: 0,0:59:58.20,0:59:58.60,Caption,,0,0,0,,one too many\n");
	g = graph_for(s.s, 200000, &b);
	ok(!g && strstr(err_msg(), "more than the 4000"), "4,001 changes are too many: %s", err_msg());
	sb_free(&s);
}

int main(void)
{
	char dir[] = "/tmp/test_caption_band.XXXXXX";
	must(mkdtemp(dir) ? 0 : -1);
	must(chdir(dir));
	t_frame();
	t_ass();
	t_srt();
	t_refused();
	t_graph();
	unlink("c.ass");
	unlink("s.srt");
	(void)!rmdir(dir);
	return tap_done();
}
