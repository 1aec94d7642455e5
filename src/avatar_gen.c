/*
 * avatar_gen.c - the offline presenter (`still` avatar) as a recipe
 * (issue 12: each frame is encoded once).  The avatar stage (prov_avatar.c)
 * fits the channel's picture once, into avatar/still.png at the channel's
 * frame in the layout its motion wants, and writes avatar/seg-NN.json naming
 * the motion; assembly (prov_assembly.c) renders each avatar segment from
 * them straight into the final encode.  A clip of a still picture cost the
 * avatar stage an H.264 encode (4.3 s of a 58 s episode's 46 s) and
 * assembly a decode, to show frames assembly makes as cheaply itself.
 *
 *  voice:  the picture above a waveform of the segment's narration that
 *          moves with the voice (an audiogram), read from the narration by
 *          an amovie source inside the graph;
 *  zoom:   the picture filling the frame with a slow zoom;
 *  static: the picture held.
 *
 * Invariants: a recipe holds data only (its motion, checked against the
 * list), never filter text or a file name: the picture is always
 * avatar/still.png and the filters are built here, so a file in avatar/
 * cannot put arbitrary filters into ffmpeg.  Recipes are written durably.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECIPE_MAX 4096
#define BG_COLOR "0x101820"

/* clang-format off: a table keeps one row per line */
const char *const avatar_motion_names[AVATAR_MOTIONS + 1] = {
	[AVATAR_VOICE] = "voice", [AVATAR_ZOOM] = "zoom", [AVATAR_STATIC] = "static", NULL
};
/* clang-format on */

char *avatar_recipe_path(int index)
{
	return xasprintf("avatar/seg-%02d.json", index);
}

/* The voice layout: the picture in a box high in the frame, the waveform
 * under it, everything in the top three quarters, above the captions. */
struct voice_box {
	int box_h, box_y, wave_w, wave_h, wave_y;
};

static struct voice_box voice_box(const struct media_frame *f)
{
	struct voice_box b = { .box_h = f->h * 56 / 100 / 2 * 2, .box_y = f->h * 7 / 100 };
	b.wave_w = f->w * 6 / 10 / 2 * 2;
	b.wave_h = f->h / 10 / 2 * 2;
	b.wave_y = b.box_y + b.box_h + f->h / 50;
	return b;
}

/* The filter that fits the channel's picture into still.png: scaled to fit
 * its box (the voice layout's, else the whole frame), centred on the dark
 * background. */
char *avatar_fit_filter(const struct media_frame *f, enum avatar_motion m)
{
	struct voice_box b = voice_box(f);
	int box_h = m == AVATAR_VOICE ? b.box_h : f->h, box_y = m == AVATAR_VOICE ? b.box_y : 0;

	return xasprintf("scale=%d:%d:force_original_aspect_ratio=decrease,"
			 "pad=%d:%d:(ow-iw)/2:%d+(%d-ih)/2:color=" BG_COLOR ",setsar=1",
			 f->w, box_h, f->w, f->h, box_y, box_h);
}

/* The picture, decoded once and repeated without copying (loop). */
static char *held(const struct media_frame *f, int input, const char *label)
{
	return xasprintf("[%d:v]format=yuv420p,loop=loop=-1:size=1,setpts=N/(%d*TB)%s", input, f->fps, label);
}

/* The narration during the segment, resampled to fps x width samples a
 * second so each frame draws exactly the sound heard during it, one sample
 * a column; dynaudnorm makes a quiet voice as visible as a loud one. */
static char *voice(const struct media_frame *f, const struct media_seg *s, int input, const char *audio_esc)
{
	struct voice_box b = voice_box(f);
	char *pic = held(f, input, "");
	char *out = xasprintf("%s[ap%d];amovie=%s,atrim=start=%.3f:end=%.3f,asetpts=PTS-STARTPTS,"
			      "aformat=channel_layouts=mono,dynaudnorm,aresample=%d,"
			      "showwaves=s=%dx%d:mode=cline:rate=%d:scale=sqrt:draw=full:colors=0xFFD400[aw%d];"
			      "[ap%d][aw%d]overlay=(W-w)/2:%d:shortest=1",
			      pic, input, audio_esc, s->start, s->end, f->fps * b.wave_w, b.wave_w, b.wave_h, f->fps,
			      input, input, input, b.wave_y);
	free(pic);
	return out;
}

/* zoompan makes every frame from the one picture (d=frames), going from 1.0
 * to 1.06 on a 2x canvas so the motion moves in half pixels and does not
 * judder. */
static char *zoom(const struct media_frame *f, long frames, int input)
{
	return xasprintf("[%d:v]scale=%d:%d,format=yuv420p,zoompan=z='1+0.06*on/%ld':d=%ld:"
			 "x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':s=%dx%d:fps=%d",
			 input, 2 * f->w, 2 * f->h, frames, frames, f->w, f->h, f->fps);
}

/* The segment's picture from input (avatar/still.png), ending unlabelled so
 * assembly's normalising chain follows it after a comma.  audio: the
 * narration's file name, a checked path component. */
char *avatar_gen_filter(const struct media_frame *f, enum avatar_motion m, const struct media_seg *s, long frames,
			int input, const char *audio)
{
	char *ea, *out;

	if (m == AVATAR_ZOOM) return zoom(f, frames, input);
	if (m == AVATAR_STATIC) return held(f, input, "");
	ea = media_filter_escape(audio);
	out = voice(f, s, input, ea);
	free(ea);
	return out;
}

int avatar_recipe_save(const char *path, enum avatar_motion m)
{
	cJSON *j = cJSON_CreateObject();
	int rc;

	cJSON_AddStringToObject(j, "motion", avatar_motion_names[m]);
	rc = json_write_file(path, j);
	cJSON_Delete(j);
	return rc;
}

/* The motion named, or -1. */
int avatar_motion_parse(const char *name)
{
	for (int i = 0; i < AVATAR_MOTIONS; i++)
		if (!strcmp(name, avatar_motion_names[i])) return i;
	return -1;
}

int avatar_recipe_load(const char *path, enum avatar_motion *m)
{
	cJSON *j = json_load_file(path, RECIPE_MAX);
	int i = j ? avatar_motion_parse(json_str(j, "motion", "")) : -1;

	cJSON_Delete(j);
	if (i >= 0) *m = i;
	if (!j) return -1;
	return i < 0 ? err_set("%s is not an avatar recipe (motion voice, zoom or static)", path) : 0;
}
