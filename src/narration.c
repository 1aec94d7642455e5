/*
 * narration.c - the three files every audio provider writes, in one format:
 * audio.wav (16-bit mono PCM), subtitles.srt (one cue per sentence) and
 * timeline.json (segments timed to the narration, and the cues), which the
 * avatar, b-roll and assembly stages read.  A segment starts where its
 * first sentence is heard (the first at 0) and ends where the next starts.
 */
#include "provider.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put16(unsigned char *p, unsigned v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
}
static void put32(unsigned char *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

static int wav_write(const char *path, const struct media_pcm *p)
{
	size_t bytes = p->n * 2;
	unsigned char *buf = xmalloc(44 + bytes);
	int rc;
	memcpy(buf, "RIFF", 4);
	put32(buf + 4, (uint32_t)(36 + bytes));
	memcpy(buf + 8, "WAVEfmt ", 8);
	put32(buf + 16, 16);
	put16(buf + 20, 1); /* PCM */
	put16(buf + 22, 1); /* mono */
	put32(buf + 24, p->rate);
	put32(buf + 28, p->rate * 2); /* bytes per second */
	put16(buf + 32, 2);           /* block align */
	put16(buf + 34, 16);
	memcpy(buf + 36, "data", 4);
	put32(buf + 40, (uint32_t)bytes);
	for (size_t i = 0; i < p->n; i++) put16(buf + 44 + 2 * i, (uint16_t)p->s[i]);
	rc = fsio_write_atomic(path, buf, 44 + bytes);
	free(buf);
	return rc;
}

static void srt_time(struct sbuf *b, double t)
{
	long ms = lround(t * 1000);
	sb_printf(b, "%02ld:%02ld:%02ld,%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

static int srt_write(const char *path, const struct media_cue *cue, size_t n)
{
	struct sbuf b = { 0 };
	int rc;
	for (size_t i = 0; i < n; i++) {
		sb_printf(&b, "%zu\n", i + 1);
		srt_time(&b, cue[i].start);
		sb_puts(&b, " --> ");
		srt_time(&b, cue[i].end);
		sb_printf(&b, "\n%s\n\n", cue[i].text);
	}
	rc = fsio_write_atomic(path, b.s ? b.s : "", b.len);
	sb_free(&b);
	return rc;
}

static double ms3(double t)
{
	return round(t * 1000) / 1000;
}

static cJSON *timeline_build(const struct script *sc, const struct media_cue *cue, size_t ncue, const double *seg_start,
			     const struct media_frame *f, double total)
{
	cJSON *t = cJSON_CreateObject(), *segs, *cues;
	cJSON_AddStringToObject(t, "audio", "audio.wav");
	cJSON_AddNumberToObject(t, "duration", ms3(total));
	cJSON_AddNumberToObject(t, "width", f->w);
	cJSON_AddNumberToObject(t, "height", f->h);
	cJSON_AddNumberToObject(t, "fps", f->fps);
	segs = cJSON_AddArrayToObject(t, "segments");
	for (size_t i = 0; i < sc->n; i++) {
		cJSON *s = cJSON_CreateObject();
		int broll = sc->seg[i].visual == SEG_BROLL;
		cJSON_AddNumberToObject(s, "index", (double)i + 1);
		cJSON_AddStringToObject(s, "visual", broll ? "broll" : "avatar");
		if (broll && sc->seg[i].broll)
			cJSON_AddStringToObject(s, "broll", sc->seg[i].broll);
		else
			cJSON_AddNullToObject(s, "broll");
		cJSON_AddNumberToObject(s, "start", i ? ms3(seg_start[i]) : 0);
		cJSON_AddNumberToObject(s, "end", i + 1 < sc->n ? ms3(seg_start[i + 1]) : ms3(total));
		cJSON_AddItemToArray(segs, s);
	}
	cues = cJSON_AddArrayToObject(t, "cues");
	for (size_t i = 0; i < ncue; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddNumberToObject(c, "start", ms3(cue[i].start));
		cJSON_AddNumberToObject(c, "end", ms3(cue[i].end));
		cJSON_AddStringToObject(c, "text", cue[i].text);
		cJSON_AddItemToArray(cues, c);
	}
	return t;
}

int narration_write(const struct script *sc, const struct media_pcm *pcm, const struct media_cue *cue, size_t ncue,
		    const double *seg_start, const struct media_frame *f)
{
	double total = (double)pcm->n / pcm->rate;
	cJSON *tl;
	int rc;
	if (wav_write("audio.wav", pcm) < 0 || srt_write("subtitles.srt", cue, ncue) < 0) return -1;
	tl = timeline_build(sc, cue, ncue, seg_start, f, total);
	rc = json_write_file("timeline.json", tl);
	cJSON_Delete(tl);
	return rc;
}
