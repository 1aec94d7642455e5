/*
 * stage.c - the pipeline as one table.  Order matters: an episode moves to
 * the next row when a stage completes.  The review gate has no provider; it
 * waits for a human (or is skipped when the channel turns it off).
 */
#include "acog.h"
#include <string.h>

const struct stage_def stage_table[] = {
	{ "planning", STAGE_WORK, "planning", "builtin", 300 },
	{ "scripting", STAGE_WORK, "scripting", "builtin", 300 },
	{ "script_review", STAGE_WORK, "script_review", "builtin", 60 },
	{ "metadata", STAGE_WORK, "metadata", "builtin", 300 },
	{ "audio", STAGE_WORK, "audio", "espeak", 600 },
	{ "avatar", STAGE_WORK, "avatar", "none", 1800 },
	{ "broll", STAGE_WORK, "broll", "generated", 1800 },
	{ "assembly", STAGE_WORK, "assembly", "ffmpeg", 1800 },
	{ "review", STAGE_GATE, "ready", NULL, 0 },
	{ "upload", STAGE_WORK, "publishing", "directory", 3600 },
};
const size_t stage_count = sizeof stage_table / sizeof stage_table[0];

const char *const spool_other_dirs[] = {
	"incoming", "published", "failed", "rejected", "held", "tmp", NULL
};

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
