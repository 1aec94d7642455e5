/*
 * fuzz_timeline.c - timeline.json as the avatar, b-roll and assembly stages
 * read it (media_timeline_load, media_seg_frames), and the subtitle and
 * timeline writers of src/narration.c (included: its helpers are static)
 * fed with what was read, as an audio provider would.
 */
#include "../../src/narration.c"
#include "fuzz.h"

static void subtitles(const struct media_timeline *t, const struct media_frame *f)
{
	struct script sc = { .seg = xcalloc(t->n + 1, sizeof *sc.seg), .n = t->n };
	struct media_cue *cue = xcalloc(t->n + 1, sizeof *cue);
	double *start = xcalloc(t->n + 1, sizeof *start);
	struct sbuf b = { 0 };
	cJSON *out;

	for (size_t i = 0; i < t->n; i++) {
		sc.seg[i].visual = t->seg[i].broll ? SEG_BROLL : SEG_AVATAR;
		sc.seg[i].broll = (char *)t->seg[i].desc;
		cue[i] = (struct media_cue){ t->seg[i].start, t->seg[i].end, t->seg[i].desc ? t->seg[i].desc : "" };
		start[i] = t->seg[i].start;
		srt_time(&b, cue[i].start);
		srt_time(&b, cue[i].end);
	}
	out = timeline_build(&sc, cue, t->n, start, f, t->duration);
	free(json_print(out));
	cJSON_Delete(out);
	sb_free(&b);
	free(sc.seg), free(cue), free(start);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct media_timeline t;
	struct media_frame f = { .w = 1920, .h = 1080, .fps = 25 };
	long frames = 0;

	fuzz_dir();
	fuzz_write("timeline.json", data, size);
	if (media_timeline_load(&t) < 0) return 0;
	f.fps = (int)fmin(fmax(json_num(t.json, "fps", 25), 1), 120);
	for (size_t i = 0; i < t.n; i++) frames += media_seg_frames(&t.seg[i], f.fps);
	(void)frames;
	subtitles(&t, &f);
	media_timeline_free(&t);
	return 0;
}
