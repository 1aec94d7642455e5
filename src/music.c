/*
 * music.c - the optional music bed of the assembly stage and the checks of
 * channel.yaml's music: and shorts: blocks.
 *
 *   music: {file: music/bed.mp3, volume_db: -20, duck: true}
 *
 * The bed (a file inside the channel folder) is looped for the whole
 * narration, set volume_db below its own level and, with duck, pressed down
 * further while the narration speaks (sidechaincompress keyed by the
 * narration), then mixed under it.  music_mix() only adds an input and a
 * filter-graph fragment to the assembly's ffmpeg run; it encodes nothing.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define VOLUME_DEFAULT -20.0
#define VOLUME_MIN -60.0
#define AFMT "aformat=sample_rates=48000:channel_layouts=stereo"

/* One problem of a block, appended to errs the way config.c lists them. */
static void problem(struct sbuf *errs, const char *fmt, const char *key, const char *want)
{
	sb_printf(errs, "%s", errs->len ? "; " : "");
	sb_printf(errs, fmt, key, want);
}

static void music_check(const cJSON *m, struct sbuf *errs)
{
	const cJSON *file = cJSON_GetObjectItemCaseSensitive(m, "file"),
		    *vol = cJSON_GetObjectItemCaseSensitive(m, "volume_db"),
		    *duck = cJSON_GetObjectItemCaseSensitive(m, "duck");
	if (!cJSON_IsObject(m)) {
		problem(errs, "%s: use %s", "music", "a map {file:, volume_db:, duck:}");
		return;
	}
	if (!cJSON_IsString(file) || !file->valuestring[0] || file->valuestring[0] == '/' ||
	    strstr(file->valuestring, ".."))
		problem(errs, "%s: use %s", "music.file", "a file relative to the channel folder (music/bed.mp3)");
	if (vol && (!cJSON_IsNumber(vol) || vol->valuedouble < VOLUME_MIN || vol->valuedouble > 0))
		problem(errs, "%s: use %s", "music.volume_db", "a number of dB from -60 to 0 (default -20)");
	if (duck && !cJSON_IsBool(duck)) problem(errs, "%s: use %s", "music.duck", "true or false");
}

static void shorts_check(const cJSON *s, struct sbuf *errs)
{
	const cJSON *on = cJSON_GetObjectItemCaseSensitive(s, "enabled"),
		    *max = cJSON_GetObjectItemCaseSensitive(s, "max_seconds");
	if (!cJSON_IsObject(s)) {
		problem(errs, "%s: use %s", "shorts", "a map {enabled:, max_seconds:}");
		return;
	}
	if (on && !cJSON_IsBool(on)) problem(errs, "%s: use %s", "shorts.enabled", "true or false");
	if (max && (!cJSON_IsNumber(max) || max->valuedouble < 5 || max->valuedouble > 60))
		problem(errs, "%s: use %s", "shorts.max_seconds", "a number of seconds from 5 to 60 (default 60)");
}

/* channel.yaml's music: and shorts: blocks (absent: nothing to check). */
void visuals_check(const cJSON *cfg, struct sbuf *errs)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(cfg, "music"),
		    *s = cJSON_GetObjectItemCaseSensitive(cfg, "shorts");
	if (m) music_check(m, errs);
	if (s) shorts_check(s, errs);
}

/* Adds the bed to an assembly's ffmpeg run: its input (the next one,
 * after the narration's, input nar) and the graph fragment mixing it under
 * the narration.  *map: what -map takes for the audio (malloc'd): the mix,
 * or the narration alone when the channel has no music. */
enum stage_rc music_mix(struct stage_ctx *ctx, struct media_argv *a, struct sbuf *g, int bed_input, char **map)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(ctx->channel, "music");
	double vol = json_num(m, "volume_db", VOLUME_DEFAULT);
	int duck = json_bool(m, "duck", 1);
	char *file;

	*map = xstrdup("[narr]");
	if (!m) return STAGE_OK;
	if (!(file = chanfile_path(ctx->channel_dir, json_str(m, "file", ""), "music.file")))
		return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	media_argv_opt(a, "-stream_loop", "-1");
	media_argv_opt(a, "-i", "%s", file);
	sb_printf(g, ";[%d:a]" AFMT ",volume=%gdB[bed0]", bed_input, isfinite(vol) ? vol : VOLUME_DEFAULT);
	if (duck)
		sb_printf(g,
			  ";[narr]" AFMT ",asplit=2[nar][key];[bed0][key]sidechaincompress=threshold=0.01:"
			  "ratio=12:attack=20:release=300[bed]");
	else
		sb_puts(g, ";[narr]" AFMT "[nar];[bed0]anull[bed]");
	sb_puts(g, ";[nar][bed]amix=inputs=2:duration=first:dropout_transition=0:normalize=0[aout]");
	stage_log(ctx, "info", "music bed %s at %g dB%s", file, vol, duck ? ", ducked under the narration" : "");
	free(*map);
	*map = xstrdup("[aout]");
	free(file);
	return STAGE_OK;
}
