/*
 * chanfile.c - files a channel.yaml names (music bed, b-roll library): a
 * name relative to the channel folder that must stay inside it, even
 * through symbolic links, so channel.yaml cannot make a stage read (and
 * publish) a file from elsewhere on the machine.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Is the resolved path p inside the resolved folder dir (or dir itself)? */
int chanfile_inside(const char *dir, const char *p)
{
	size_t n = strlen(dir);
	return strncmp(p, dir, n) == 0 && (p[n] == '/' || p[n] == 0);
}

/* The real path of rel (relative to the channel folder), malloc'd, or NULL
 * + err_set naming what (e.g. "music.file") and the problem. */
char *chanfile_path(const char *channel_dir, const char *rel, const char *what)
{
	char *dir = realpath(channel_dir, NULL), *joined, *real = NULL;

	if (!dir) {
		err_set_errno("cannot resolve the channel folder %s", channel_dir);
		return NULL;
	}
	if (!rel || !*rel || rel[0] == '/') {
		err_set("%s/channel.yaml %s \"%s\": name a file relative to the channel folder", channel_dir, what,
			rel ? rel : "");
		free(dir);
		return NULL;
	}
	joined = xasprintf("%s/%s", dir, rel);
	if (!(real = realpath(joined, NULL)))
		err_set_errno("%s/channel.yaml %s: %s is missing", channel_dir, what, joined);
	else if (!chanfile_inside(dir, real)) {
		err_set("%s/channel.yaml %s \"%s\" leads outside the channel folder (to %s); keep it inside %s",
			channel_dir, what, rel, real, dir);
		free(real);
		real = NULL;
	}
	free(joined);
	free(dir);
	return real;
}
