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
 *
 * At start-up a stage child of the daemon that was killed may still be
 * dying: SIGKILL reaches it at once, but a big process takes a while to
 * exit, and its ffmpeg can still write a temporary meanwhile.  So
 * tmpclean_startup waits (at most TMPCLEAN_WAIT_MS) for the owners it saw
 * alive, then sweeps again; otherwise their leftovers would outlive the
 * start-up sweep until the next restart.
 */
#include "base.h"
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* channels/<c>/episodes/<id>/<sub>/ is four folders below channels/. */
#define CHANNELS_DEPTH 4

#define TMPCLEAN_WAIT_MS 3000
#define TMPCLEAN_OWNERS_MAX 32

/* Owners of temporaries seen alive by the start-up sweep, to wait for. */
static struct {
	int on;
	size_t n;
	pid_t pid[TMPCLEAN_OWNERS_MAX];
} owners;

/* A stage child of ours, or a process so far into dying that its program
 * can no longer be read: worth waiting for.  Anyone else's is not. */
static int owner_ours(pid_t pid)
{
	char p[64], exe[4096], self[4096];
	ssize_t n, m;
	snprintf(p, sizeof p, "/proc/%ld/exe", (long)pid);
	if ((n = readlink(p, exe, sizeof exe - 1)) < 0) return errno == ENOENT;
	if ((m = readlink("/proc/self/exe", self, sizeof self - 1)) < 0) return 0;
	return n == m && !memcmp(exe, self, (size_t)n);
}

static void owner_note(pid_t pid)
{
	if (!owners.on || pid == getpid() || !owner_ours(pid)) return;
	for (size_t i = 0; i < owners.n; i++)
		if (owners.pid[i] == pid) return;
	if (owners.n < TMPCLEAN_OWNERS_MAX) owners.pid[owners.n++] = pid;
}

/* A zombie writes nothing more: as good as gone. */
static int zombie(pid_t pid)
{
	char p[64], st[512];
	snprintf(p, sizeof p, "/proc/%ld/stat", (long)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, st, sizeof st - 1);
	if (fd >= 0) close(fd);
	if (n <= 0) return 0;
	st[n] = 0;
	const char *paren = strrchr(st, ')'); /* the state follows the name, which may hold anything */
	return paren && (paren[2] == 'Z' || paren[2] == 'X');
}

static int stale_name(const char *name)
{
	long pid = fsio_tmp_pid(name);
	if (pid <= 0) return 0;
	if ((kill((pid_t)pid, 0) < 0 && errno == ESRCH) || zombie((pid_t)pid)) return 1;
	owner_note((pid_t)pid);
	return 0;
}

/* Waits until each noted owner is gone or the time is up; 1 if any was waited for. */
static int owners_wait(void)
{
	double end = time_mono() + TMPCLEAN_WAIT_MS / 1000.0;
	int waited = 0;
	for (size_t i = 0; i < owners.n; i++) {
		int fd = proc_pidfd(owners.pid[i]), ms = (int)((end - time_mono()) * 1000);
		if (fd < 0) continue; /* gone already, or no pidfd: the next start-up sweeps it */
		struct pollfd p = { fd, POLLIN, 0 };
		if (ms > 0) waited |= poll(&p, 1, ms) >= 0;
		close(fd);
	}
	return waited;
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

static void sweep_root(const struct config *c)
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

void tmpclean_startup(const struct config *c)
{
	owners.on = 1;
	owners.n = 0;
	sweep_root(c);
	owners.on = 0;
	if (owners.n && owners_wait()) sweep_root(c);
}
