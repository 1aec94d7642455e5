/*
 * tmpclean.c - the one cleaner of temporaries.  A process that dies between
 * creating a temporary (".<name>.<pid>.tmp", the convention of fsio.c) and
 * committing it leaves that name behind.  Nothing reads it (every scanner
 * skips dot-names), but it takes space, and a video's can be large.
 *
 * tmpclean_dir removes, in one folder, the names that follow the convention
 * and whose pid is no live process, and logs each one; any other name is
 * never touched.  Providers call it on the folder they publish into before
 * they write; the daemon calls tmpclean_startup once at start-up for the
 * spool folders it writes (not incoming/, pulse/ or tmp/, which are the user's),
 * every channel folder (episodes and their sub-folders, the default outbox)
 * and each configured outbox.
 *
 * The pid test assumes the processes writing these folders run on this
 * machine.  A pid since reused by a live process keeps its leftover until
 * that process is gone: the safe direction.
 */
#include "base.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* channels/<c>/episodes/<id>/<sub>/ is four folders below channels/. */
#define CHANNELS_DEPTH 4

static int stale_name(const char *name)
{
	long pid = fsio_tmp_pid(name);
	return pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

int tmpclean_dir(const char *dir)
{
	char **names;
	int n = fsio_list(dir, &names, stale_name), removed = 0;
	if (n < 0) return errno == ENOENT ? 0 : -1;
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s", dir, names[i]);
		if (fsio_discard(p) < 0) {
			log_warn(NULL, NULL, "tmpclean.error", "%s", err_msg());
		} else {
			log_info(NULL, NULL, "tmpclean.removed",
				 "removed %s: a temporary left by process %ld, "
				 "which is gone",
				 p, fsio_tmp_pid(names[i]));
			removed++;
		}
		free(p);
	}
	fsio_list_free(names, n);
	return removed;
}

static int user_folder(const char *name)
{
	return !strcmp(name, "incoming") || !strcmp(name, "tmp") || !strcmp(name, "pulse");
}

/* Cleans dir and, depth levels down, the real folders (not symbolic links) in it. */
static void sweep(const char *dir, int depth, int (*skip)(const char *name))
{
	char **names;
	int n;
	(void)!tmpclean_dir(dir); /* best effort; each removal is logged */
	if (depth == 0 || (n = fsio_list(dir, &names, NULL)) < 0) return;
	for (int i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s", dir, names[i]);
		struct stat st;
		if (!(skip && skip(names[i])) && lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) sweep(p, depth - 1, NULL);
		free(p);
	}
	fsio_list_free(names, n);
}

void tmpclean_startup(const struct config *c)
{
	char *spool = xasprintf("%s/spool", c->root), *channels = xasprintf("%s/channels", c->root);
	sweep(spool, 1, user_folder);
	sweep(channels, CHANNELS_DEPTH, NULL);
	for (size_t i = 0; i < c->nch; i++) {
		cJSON *up = config_provider(&c->ch[i], "upload");
		if (!strcmp(json_str(up, "name", ""), "directory")) {
			char *outbox = directory_outbox(c->ch[i].dir, up);
			(void)!tmpclean_dir(outbox); /* as above */
			free(outbox);
		}
		cJSON_Delete(up);
	}
	free(channels);
	free(spool);
}
