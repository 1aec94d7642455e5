/*
 * voice_pick.c - the best offline voice this machine has, for the demo
 * channel `init --demo` writes: festival with an HTS voice (festvox-us-slt-hts
 * and the like: the most natural), else flite, else espeak-ng (what the
 * demo channel.yaml names, always there: install-deps installs it).
 */
#include "daemon.h"
#include "provider.h"
#include <stdlib.h>
#include <string.h>

#define DEMO_AUDIO "  audio: { name: espeak, voice: en-us, speed: 165 }"

/* The providers.audio line for the best voice installed, or NULL to keep espeak. */
static char *best_line(void)
{
	const char *v = festival_best_voice();

	if (proc_find("festival") && v && strstr(v, "_hts"))
		return xasprintf("  audio: { name: festival, voice: %s }   # the best voice found by init", v);
	if (proc_find("flite")) return xstrdup("  audio: { name: flite, voice: slt }   # the best voice found by init");
	return NULL;
}

char *voice_pick_demo_yaml(const char *yaml)
{
	const char *at = strstr(yaml, DEMO_AUDIO);
	char *line = at ? best_line() : NULL, *out;

	if (!line) return xstrdup(yaml);
	out = xasprintf("%.*s%s%s", (int)(at - yaml), yaml, line, at + strlen(DEMO_AUDIO));
	free(line);
	return out;
}
