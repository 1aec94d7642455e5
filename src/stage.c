/*
 * stage.c - the pipeline as one table of stage contracts.  Order matters:
 * an episode moves to the next row when a stage completes.  A gate has no
 * provider; it waits for a person (or is skipped when the channel turns it
 * off).  The cache, the command provider, versioning, reject --to, retry
 * --from, the channel checks and the daemon's gate watches all read this
 * table through the small queries below, so adding a stage or a gate is one
 * row plus its providers (provider.c).
 */
#include "base.h"
#include <string.h>

#define JSON "application/json"
/* clang-format off: a table keeps one row per line */
const struct stage_def stage_table[] = {
	{ "planning",
	  STAGE_WORK,
	  "planning",
	  "builtin",
	  300,
	  { "idea.json", "context.json" },
	  { { "plan.json", "plan", JSON, 1, 1 } },
	  1,
	  1,
	  NULL,
	  SCOPE_JOB },
	{ "scripting",
	  STAGE_WORK,
	  "scripting",
	  "builtin",
	  300,
	  { "idea.json", "plan.json" },
	  { { "script.md", "script", "text/markdown", 1, 1 } },
	  1,
	  1,
	  NULL,
	  SCOPE_JOB },
	{ "script_review",
	  STAGE_WORK,
	  "script_review",
	  "builtin",
	  60,
	  { "script.md" },
	  { { 0 } },
	  0,
	  1,
	  "script_review",
	  SCOPE_JOB },
	{ "metadata",
	  STAGE_WORK,
	  "metadata",
	  "builtin",
	  300,
	  { "plan.json", "script.md" },
	  { { "metadata.json", "metadata", JSON, 1, 1 } },
	  1,
	  1,
	  NULL,
	  SCOPE_JOB },
	{ "audio",
	  STAGE_WORK,
	  "audio",
	  "espeak",
	  600,
	  { "script.md" },
	  { { "audio.wav", "audio", "audio/wav", 1, 0 },
	    { "subtitles.srt", NULL, "application/x-subrip", 1, 0 },
	    { "timeline.json", NULL, JSON, 1, 0 } },
	  0,
	  1,
	  NULL,
	  SCOPE_JOB },
	{ "avatar",
	  STAGE_WORK,
	  "avatar",
	  "none",
	  1800,
	  { "timeline.json", "audio.wav" },
	  { { "avatar/", "avatar_video", "video/mp4", 0, 0 } },
	  0,
	  1,
	  NULL,
	  SCOPE_JOB },
	{ "broll",
	  STAGE_WORK,
	  "broll",
	  "generated",
	  1800,
	  { "timeline.json" },
	  { { "broll/", "b_roll", "video/mp4", 0, 0 } },
	  0,
	  1,
	  NULL,
	  SCOPE_JOB },
	{ "assembly",
	  STAGE_WORK,
	  "assembly",
	  "ffmpeg",
	  1800,
	  { "timeline.json", "audio.wav", "subtitles.srt", "metadata.json", "avatar/", "broll/" },
	  { { "final.mp4", "assembled_video", "video/mp4", 1, 0 },
	    { "thumbnail.png", "thumbnail", "image/png", 1, 0 } },
	  0,
	  1,
	  NULL,
	  SCOPE_JOB },
	/* Approval writes the publishing slot (schedule.c). */
	{ "review",
	  STAGE_GATE,
	  "ready",
	  NULL,
	  0,
	  { NULL },
	  { { "schedule.json", NULL, JSON, 0, 0 } },
	  0,
	  0,
	  NULL,
	  SCOPE_JOB },
	/* An upload's session and video id must outlive a failed job and a retry:
	 * a second upload would publish the video twice. */
	{ "upload",
	  STAGE_WORK,
	  "publishing",
	  "directory",
	  3600,
	  { "final.mp4", "metadata.json", "thumbnail.png", "subtitles.srt", "schedule.json" },
	  { { "publish.json", NULL, JSON, 1, 0 } },
	  0,
	  0,
	  NULL,
	  SCOPE_EPISODE },
};
/* clang-format on */
#undef JSON
const size_t stage_count = sizeof stage_table / sizeof stage_table[0];

const char *const spool_other_dirs[] = { "incoming", "published", "failed",     "rejected", "held",
					 "tmp",      "pulse",     "pulse-done", NULL };

int stage_reads(const struct stage_def *s, const char *file)
{
	for (size_t k = 0; s && k < sizeof s->inputs / sizeof s->inputs[0] && s->inputs[k]; k++)
		if (!strcmp(s->inputs[k], file)) return 1;
	return 0;
}

const struct stage_def *stage_find(const char *name)
{
	for (size_t i = 0; name && i < stage_count; i++)
		if (strcmp(stage_table[i].name, name) == 0) return &stage_table[i];
	return NULL;
}

int stage_index(const char *name)
{
	const struct stage_def *s = stage_find(name);
	return s ? (int)(s - stage_table) : -1;
}

const struct stage_def *stage_next(const struct stage_def *s)
{
	size_t i = (size_t)(s - stage_table) + 1;
	return i < stage_count ? &stage_table[i] : NULL;
}

const struct stage_file *stage_output_find(const struct stage_def *s, const char *asset_type)
{
	for (size_t i = s ? (size_t)(s - stage_table) : 0; i < stage_count; i++) {
		for (const struct stage_file *f = stage_table[i].outputs; f->name; f++)
			if (f->asset_type && asset_type && !strcmp(f->asset_type, asset_type)) return f;
		if (s) break;
	}
	return NULL;
}

int stage_is_versioned(const struct stage_def *s, const char *asset_type)
{
	const struct stage_file *f = stage_output_find(s, asset_type);
	return f && f->versioned;
}

const struct stage_def *stage_producer(const char *file)
{
	for (size_t i = 0; file && i < stage_count; i++)
		for (const struct stage_file *f = stage_table[i].outputs; f->name; f++)
			if (!strcmp(f->name, file)) return &stage_table[i];
	return NULL;
}

/* A gate row is a point every episode passes (on unless the channel turns it
 * off); a gate after a work stage is an extra check (off unless turned on). */
int stage_gate_default(const char *gate)
{
	for (size_t i = 0; gate && i < stage_count; i++) {
		if (stage_table[i].kind == STAGE_GATE && !strcmp(stage_table[i].name, gate)) return 1;
		if (stage_table[i].gate_after && !strcmp(stage_table[i].gate_after, gate)) return 0;
	}
	return -1;
}

size_t stage_gates(const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < stage_count; i++) {
		if (stage_table[i].gate_after && n < max) out[n++] = stage_table[i].gate_after;
		if (stage_table[i].kind == STAGE_GATE && n < max) out[n++] = stage_table[i].name;
	}
	return n;
}

/* "a, b, c": what an error message offers instead of a wrong name. */
char *stage_rerunnable_names(void)
{
	struct sbuf b = { 0 };
	for (size_t i = 0; i < stage_count; i++)
		if (stage_table[i].rerunnable) sb_printf(&b, "%s%s", b.len ? ", " : "", stage_table[i].name);
	return b.s ? b.s : xstrdup("");
}

char *stage_asset_types(void)
{
	struct sbuf b = { 0 };
	for (size_t i = 0; i < stage_count; i++)
		for (const struct stage_file *f = stage_table[i].outputs; f->name; f++)
			if (f->asset_type && stage_output_find(NULL, f->asset_type) == f)
				sb_printf(&b, "%s%s", b.len ? ", " : "", f->asset_type);
	return b.s ? b.s : xstrdup("");
}
