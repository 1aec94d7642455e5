/*
 * qa_measure.c - what the QA report (qa.c) measures in a finished video:
 * one ffmpeg pass with every audio and video filter on split outputs
 * (ebur128 loudness and true peak, silencedetect, blackdetect, freezedetect
 * on a small copy of the picture's top three quarters: the same spans for
 * a tenth of the work, and burned-in captions, which change while the
 * picture under them is black or frozen, are left out), one ffprobe for the streams, and the order of the top-level
 * MP4 boxes (faststart: moov before mdat), read from the file itself.
 * The assembly measures the picture in its own encode instead (issue 12:
 * decoding the finished 1080p video again cost a fifth of an encode):
 * qa_video_chain() is a branch of its graph, whose detectors print their
 * events to two files (frame metadata, whatever the log level), and
 * qa_measure() then reads those and passes over the sound alone.
 *
 * Invariants: ffmpeg and ffprobe run through proc_run with argument
 * vectors; a figure ffmpeg did not print stays NAN (the check then fails
 * saying it could not be measured), never a made-up number.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QA_STDERR_MAX (4 * 1024 * 1024)
#define QA_DETECT_WIDTH 320 /* blackdetect/freezedetect look at a copy this wide */
#define QA_SPAN_JOIN 0.2    /* spans this close are one: a frame or two apart is not a change a viewer sees */
/* Frozen: frames closer than this.  -60 dB (ffmpeg's default) misses a
 * still re-encoded twice (each generation's noise differs); -50 dB takes a
 * slow zoom over a picture for frozen. */
#define QA_FREEZE_DB -55
/* freezedetect compares frames this many a second apart, not every frame: a
 * slow zoom moves a fraction of a pixel per frame at 25 fps, and would look
 * frozen frame to frame. */
#define QA_FREEZE_FPS 5

void qa_spans_add(struct qa_spans *s, double start, double end)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	s->v[s->n].start = start;
	s->v[s->n++].end = end;
}

/* The last span's end, when ffmpeg printed a start and (so far) no end. */
static void spans_close(struct qa_spans *s, double end)
{
	if (s->n && isnan(s->v[s->n - 1].end)) s->v[s->n - 1].end = end;
}

/* Joins spans that (nearly) touch: freezedetect ends a span and starts the
 * next at the same frame when one frame differs a little. */
static void spans_join(struct qa_spans *s)
{
	size_t o = 0;
	for (size_t i = 0; i < s->n; i++)
		if (o && s->v[i].start - s->v[o - 1].end <= QA_SPAN_JOIN)
			s->v[o - 1].end = fmax(s->v[o - 1].end, s->v[i].end);
		else
			s->v[o++] = s->v[i];
	s->n = o;
}

static void spans_free(struct qa_spans *s)
{
	free(s->v);
	memset(s, 0, sizeof *s);
}

void qa_media_free(struct qa_media *m)
{
	spans_free(&m->black);
	spans_free(&m->freeze);
	spans_free(&m->silence);
}

#define QA_BLACK_MIN 0.2 /* s: blackdetect's d; a shorter black is no span */

/* The video detectors from [vin] to [ob] (black) and [of] (frozen), each
 * followed by what a caller adds (a metadata printer, or nothing). */
static char *video_graph(const char *vin, const char *ob, const char *of, const char *after_b, const char *after_f)
{
	return xasprintf("[%s]crop=iw:ih*3/4:0:0,scale=%d:-2,split=2[qv1][qv2];"
			 "[qv1]blackdetect=d=%g:pic_th=0.98:pix_th=0.10%s[%s];"
			 "[qv2]fps=%d,freezedetect=n=%ddB:d=0.5%s[%s]",
			 vin, QA_DETECT_WIDTH, QA_BLACK_MIN, after_b, ob, QA_FREEZE_FPS, QA_FREEZE_DB, after_f, of);
}

/* The video detectors as a branch of another graph, from [vin] to [ob] and
 * [of] (both for the null muxer), printing their events to files[0] and
 * files[1], which qa_measure() reads. */
char *qa_video_chain(const char *vin, const char *ob, const char *of, const char *const files[2])
{
	char *e0 = media_filter_escape(files[0]), *e1 = media_filter_escape(files[1]);
	char *p0 = xasprintf(",metadata=mode=print:file=%s", e0), *p1 = xasprintf(",metadata=mode=print:file=%s", e1);
	char *out = video_graph(vin, ob, of, p0, p1);
	free(e0);
	free(e1);
	free(p0);
	free(p1);
	return out;
}

/* The filter graph: both audio detectors on the sound, and (video) both
 * video ones on a small copy of the picture; every branch ends in the null
 * muxer. */
static char *graph(double silence_db, int video)
{
	char *v = video ? video_graph("0:v", "o3", "o4", "", "") : NULL;
	char *out = xasprintf("[0:a]asplit=2[a1][a2];"
			      "[a1]ebur128=peak=true:framelog=verbose[o1];"
			      "[a2]silencedetect=n=%.1fdB:d=0.12[o2]%s%s",
			      silence_db, v ? ";" : "", v ? v : "");
	free(v);
	return out;
}

/* One line of ffmpeg's stderr: a detector's event or a summary figure. */
static void parse_line(const char *l, struct qa_media *m, int in_summary)
{
	const char *p;
	double a, b;

	if ((p = strstr(l, "black_start:")) && sscanf(p, "black_start:%lf black_end:%lf", &a, &b) == 2)
		qa_spans_add(&m->black, a, b);
	else if ((p = strstr(l, "freezedetect.freeze_start: ")) && sscanf(p + 27, "%lf", &a) == 1)
		qa_spans_add(&m->freeze, a, NAN);
	else if ((p = strstr(l, "freezedetect.freeze_end: ")) && sscanf(p + 25, "%lf", &a) == 1)
		spans_close(&m->freeze, a);
	else if ((p = strstr(l, "silence_start: ")) && sscanf(p + 15, "%lf", &a) == 1)
		qa_spans_add(&m->silence, a, NAN);
	else if ((p = strstr(l, "silence_end: ")) && sscanf(p + 13, "%lf", &a) == 1)
		spans_close(&m->silence, a);
	else if (in_summary && sscanf(l, " I: %lf", &a) == 1)
		m->lufs = a;
	else if (in_summary && sscanf(l, " Peak: %lf", &a) == 1)
		m->true_peak = a;
	else if (in_summary && sscanf(l, " LRA: %lf", &a) == 1)
		m->lra = a;
}

/* Reads ffmpeg's stderr; the loudness figures count only after the last
 * "Summary:" (ebur128 prints an empty one when the graph is set up). */
static void parse_log(char *log, struct qa_media *m)
{
	char *save = NULL, *summary = NULL;
	for (char *p = strstr(log, "Summary:"); p; p = strstr(p + 1, "Summary:")) summary = p;
	for (char *l = strtok_r(log, "\n\r", &save); l; l = strtok_r(NULL, "\n\r", &save))
		parse_line(l, m, summary && l >= summary);
}

static char *read_all(FILE *fp)
{
	struct sbuf b = { 0 };
	char buf[8192];
	size_t n;
	rewind(fp);
	while ((n = fread(buf, 1, sizeof buf, fp)) > 0 && b.len < QA_STDERR_MAX) sb_add(&b, buf, n);
	return b.s ? b.s : xstrdup("");
}

/* Runs ffmpeg (argv) and returns what it printed on stderr (malloc'd), or
 * NULL + err_set when it could not run or failed. */
char *qa_ffmpeg_log(const char *const argv[], const char *what, int timeout_s)
{
	FILE *errf = tmpfile();
	struct proc_opts o = { .stderr_fd = errf ? fileno(errf) : -1, .timeout_s = timeout_s };
	int timed_out = 0, st;
	char *log;

	if (!errf) {
		err_set_errno("cannot make a temporary file for ffmpeg's messages");
		return NULL;
	}
	st = proc_run(argv, &o, &timed_out);
	log = read_all(errf);
	fclose(errf);
	if (st == 0) return log;
	free(log);
	if (st < 0)
		err_set("cannot measure %s with ffmpeg: %s", what, err_msg());
	else
		err_set("ffmpeg could not measure %s (exit %d)", what, st);
	return NULL;
}

/* Drops spans shorter than min seconds (blackdetect's metadata reports
 * every black frame run; its log only those of d seconds or more). */
static void spans_drop_short(struct qa_spans *s, double min)
{
	size_t o = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].end - s->v[i].start >= min - 1e-6) s->v[o++] = s->v[i];
	s->n = o;
}

/* Reads the events a metadata printer wrote (qa_video_chain): lines
 * "lavfi.<start>=<s>" and "lavfi.<end>=<s>". */
static int meta_read(const char *path, const char *start, const char *end, struct qa_spans *s, double until)
{
	size_t ns = strlen(start), ne = strlen(end);
	char *text = fsio_read(path, QA_STDERR_MAX, NULL), *save = NULL;

	if (!text) return err_set("the encode wrote no picture measurements (%s): %s", path, err_msg());
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, start, ns) && l[ns] == '=')
			qa_spans_add(s, atof(l + ns + 1), NAN);
		else if (!strncmp(l, end, ne) && l[ne] == '=')
			spans_close(s, atof(l + ne + 1));
	}
	free(text);
	spans_close(s, until);
	return 0;
}

/* The one ffmpeg pass over the finished video (without its picture when
 * files[] holds the encode's picture measurements). */
static int detect(const char *video, struct qa_media *m, double silence_db, int timeout_s, const char *const *files)
{
	char *g = graph(silence_db, !files), *log;
	const char *argv[] = {
		"ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", "-i",   video, "-filter_complex",
		g,        "-map",     "[o1]",         "-map",     "[o2]",      "-f",   "null", "-",   NULL,
		NULL,     NULL,       NULL,           NULL,       NULL,        NULL
	};

	if (!files) /* the picture too: its two detectors' outputs */
		memcpy(argv + 14, (const char *[]){ "-map", "[o3]", "-map", "[o4]", "-f", "null", "-" },
		       7 * sizeof *argv);
	log = qa_ffmpeg_log(argv, video, timeout_s);
	free(g);
	if (!log) return -1;
	parse_log(log, m);
	free(log);
	if (files &&
	    (meta_read(files[0], "lavfi.black_start", "lavfi.black_end", &m->black, m->video_s) < 0 ||
	     meta_read(files[1], "lavfi.freezedetect.freeze_start", "lavfi.freezedetect.freeze_end", &m->freeze,
		       m->video_s) < 0))
		return -1;
	if (files) spans_drop_short(&m->black, QA_BLACK_MIN);
	spans_close(&m->silence, m->audio_s);
	spans_close(&m->freeze, m->video_s);
	spans_join(&m->freeze);
	spans_join(&m->black);
	return 0;
}

static double frame_rate(const char *r)
{
	double num = 0, den = 1;
	if (!r || sscanf(r, "%lf/%lf", &num, &den) < 1 || den <= 0) return NAN;
	return num / den;
}

/* Stream facts from ffprobe's JSON. */
static void streams_read(const cJSON *j, struct qa_media *m)
{
	const cJSON *s;
	cJSON_ArrayForEach (s, cJSON_GetObjectItemCaseSensitive(j, "streams")) {
		const char *type = json_str(s, "codec_type", "");
		double d = atof(json_str(s, "duration", "nan"));
		if (!strcmp(type, "video") && !m->vcodec[0]) {
			snprintf(m->vcodec, sizeof m->vcodec, "%s", json_str(s, "codec_name", "?"));
			snprintf(m->pix_fmt, sizeof m->pix_fmt, "%s", json_str(s, "pix_fmt", "?"));
			m->w = (int)json_num(s, "width", 0);
			m->h = (int)json_num(s, "height", 0);
			m->fps = frame_rate(json_str(s, "avg_frame_rate", NULL));
			m->video_s = d;
		} else if (!strcmp(type, "audio") && !m->acodec[0]) {
			snprintf(m->acodec, sizeof m->acodec, "%s", json_str(s, "codec_name", "?"));
			m->sample_rate = atoi(json_str(s, "sample_rate", "0"));
			m->audio_s = d;
		}
	}
}

static int probe(const char *video, struct qa_media *m)
{
	struct sbuf out = { 0 };
	struct proc_opts o = { .stdout_buf = &out, .stdout_max = 1 << 20, .stderr_fd = -1, .timeout_s = 120 };
	const char *argv[] = { "ffprobe",
			       "-v",
			       "error",
			       "-show_entries",
			       "stream=codec_type,codec_name,pix_fmt,width,height,avg_frame_rate,sample_rate,duration",
			       "-of",
			       "json",
			       video,
			       NULL };
	int timed_out = 0, st = proc_run(argv, &o, &timed_out);
	cJSON *j = st == 0 && out.s ? cJSON_Parse(out.s) : NULL;

	sb_free(&out);
	if (!j) return err_set("ffprobe cannot read the streams of %s", video);
	streams_read(j, m);
	cJSON_Delete(j);
	return 0;
}

/* Walks the top-level boxes: 1 when moov comes before mdat, 0 when after
 * (or missing), -1 when the file cannot be read. */
static int faststart(const char *path)
{
	unsigned char h[16];
	off_t at = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0) return -1;
	while (pread(fd, h, 16, at) >= 8) {
		uint64_t size = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 8 | h[3];
		if (size == 1)
			for (int i = 8; i < 16; i++) size = (i == 8 ? 0 : size << 8) | h[i];
		if (!memcmp(h + 4, "moov", 4)) rc = 1;
		if (!memcmp(h + 4, "moov", 4) || !memcmp(h + 4, "mdat", 4) || size < 8) break;
		at += (off_t)size;
	}
	close(fd);
	return rc;
}

int qa_measure(const char *video, struct qa_media *m, double silence_db, int timeout_s, const char *const *files)
{
	memset(m, 0, sizeof *m);
	m->lufs = m->true_peak = m->lra = m->audio_s = m->video_s = m->fps = NAN;
	if (probe(video, m) < 0) return -1;
	m->faststart = faststart(video);
	if (!m->vcodec[0] || !m->acodec[0])
		return err_set("%s has no %s stream; the QA report needs both", video,
			       m->vcodec[0] ? "audio" : "video");
	return detect(video, m, silence_db, timeout_s, files);
}
