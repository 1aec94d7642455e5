/*
 * intake.c - reading a file a user dropped into a spool input folder
 * (incoming/ for ideas, pulse/ for trend events).  Every refusal says what
 * the file is and what to drop instead, because it ends up in
 * spool/rejected/<name>.error; a file that is gone already is not an error
 * (the inotify event was stale).
 */
#include "base.h"
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

char *intake_read(const char *path, size_t *len, int *gone)
{
	struct stat st;
	*gone = 0;
	if (lstat(path, &st) < 0) {
		*gone = errno == ENOENT;
		return err_set_errno("cannot be read"), NULL;
	}
	if (S_ISLNK(st.st_mode)) return err_set("is a symbolic link; drop the file itself"), NULL;
	if (!S_ISREG(st.st_mode)) return err_set("is not a regular file; drop JSON files only"), NULL;
	if (st.st_size > IDEA_MAX_BYTES)
		return err_set("is %lld bytes; a file dropped here may be at most 1 MiB (1048576 bytes)",
			       (long long)st.st_size),
		       NULL;
	char *text = fsio_read(path, IDEA_MAX_BYTES, len);
	if (!text) {
		char *why = xstrdup(err_msg());
		err_set("cannot be read: %s", why);
		free(why);
	}
	return text;
}
