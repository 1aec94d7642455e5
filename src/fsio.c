/*
 * fsio.c - durable files.  Every file (and the outbox's publish folder) the
 * program commits goes through one helper, fsio_commit: written under a
 * temporary name in its final folder, fsynced, renamed (never over an
 * existing name unless FSIO_REPLACE), and the folder fsynced.
 * fsio_write_atomic and fsio_copy are built on it; downloads (http.c) and
 * media files (media_commit) use it too.  Moves (tickets, files a person
 * gave us) go through fsio_move (renameat2 RENAME_NOREPLACE, both folders
 * fsynced).
 *
 * The temporary-name convention: ".<final name>.<pid>.tmp" beside the final
 * name, made by fsio_tmp_name and recognised by fsio_tmp_pid.  Every scanner
 * skips dot-names, and the one cleaner (tmpclean.c) removes such names whose
 * process is gone.  Some scratch files that tools write and their provider
 * removes itself still carry ".tmp" without a pid (.final.tmp.mp4,
 * .tts-NNN.tmp.audio, a clip's .seg-NN.mp4.tmp.mp4): the cleaner leaves
 * them to that provider's next run.
 *
 * Also here: reading a bounded regular file, the one write loop
 * (fsio_write_all) and the one directory listing (fsio_list, scandir).
 */
#define _GNU_SOURCE
#include "base.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir_of(const char *path)
{
	char *tmp = xstrdup(path), *d = xstrdup(dirname(tmp));
	free(tmp);
	return d;
}

/* ".<name>.<pid>.tmp" in final's folder, for this process. */
char *fsio_tmp_name(const char *final)
{
	char *dir = dir_of(final), *tmp = xstrdup(final), *out;
	out = xasprintf("%s/.%s.%ld.tmp", dir, basename(tmp), (long)getpid());
	free(tmp);
	free(dir);
	return out;
}

/* The same with an extension after ".tmp", for the tools that choose a
 * format by it (ffmpeg, espeak-ng): ".<name>.<pid>.tmp.<ext>". */
char *fsio_tmp_name_ext(const char *final, const char *ext)
{
	char *tmp = fsio_tmp_name(final), *out = xasprintf("%s.%s", tmp, ext);
	free(tmp);
	return out;
}

/* The extensions our tools are given after ".tmp"; a user's ".x.1.tmp.bak" is not ours. */
static const char *const tmp_exts[] = { "mp4", "mp3", "wav", "pcm", "audio", "txt", "png", "srt", "ass", "json" };

/* Length of name without one of those extensions after ".tmp". */
static size_t without_ext(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof tmp_exts / sizeof *tmp_exts; i++) {
		size_t e = strlen(tmp_exts[i]);
		if (n > e + 5 && name[n - e - 1] == '.' && !strcmp(name + n - e, tmp_exts[i]) &&
		    !strncmp(name + n - e - 5, ".tmp", 4))
			return n - e - 1;
	}
	return n;
}

/* The pid a name made by fsio_tmp_name(_ext) carries, or 0 when the name
 * does not follow the convention (so it is not ours to remove). */
long fsio_tmp_pid(const char *name)
{
	size_t n = without_ext(name, strlen(name)), d = 0;
	long pid = 0;
	if (n < 8 || name[0] != '.' || strncmp(name + n - 4, ".tmp", 4) != 0) return 0;
	n -= 4;
	while (d < n && d < 10 && name[n - 1 - d] >= '0' && name[n - 1 - d] <= '9') d++;
	if (d == 0 || d + 3 > n || name[n - 1 - d] != '.') return 0;
	for (size_t i = n - d; i < n; i++) pid = pid * 10 + (name[i] - '0');
	return pid > 0 && pid <= INT_MAX ? pid : 0;
}

/* Group commit (ingest of a burst): between fsio_defer_begin and
 * fsio_defer_end the fsyncs of commits are left out, and fsio_defer_end
 * makes all of them durable with one syncfs of the file system. */
static int deferred;

void fsio_defer_begin(void)
{
	deferred = 1;
}

int fsio_defer_end(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	deferred = 0;
	if (fd < 0) return err_set_errno("cannot open folder %s", dir);
	if (syncfs(fd) < 0) rc = err_set_errno("cannot sync the file system of %s (disk full?)", dir);
	close(fd);
	return rc;
}

int fsio_fsync_dir(const char *dir)
{
	int fd;
	if (deferred) return 0;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) return err_set_errno("cannot open folder %s", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		close(fd);
		return err_set_errno("cannot fsync folder %s", dir);
	}
	close(fd);
	return 0;
}

int fsio_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fsio_tmp_open(const char *final, char **tmp_out)
{
	char *tmp = fsio_tmp_name(final);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		err_set_errno("cannot create %s", tmp);
		free(tmp);
		return -1;
	}
	*tmp_out = tmp;
	return fd;
}

/* Gives up a temporary file before its commit (the error is already set). */
static void tmp_abandon(int fd, char *tmp)
{
	close(fd);
	unlink(tmp);
	free(tmp);
}

static int commit_steps(int fd, const char *tmp, const char *final, int flags)
{
	char *dir;
	int rc;
	if (fd >= 0 && !deferred && fsync(fd) < 0) {
		err_set_errno("cannot fsync %s (disk full?)", tmp);
		close(fd);
		return -1;
	}
	if (fd >= 0 && close(fd) < 0) return err_set_errno("cannot close %s (disk full?)", tmp);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, flags & FSIO_REPLACE ? 0 : RENAME_NOREPLACE) < 0) {
		if (errno != EEXIST) return err_set_errno("cannot rename %s to %s", tmp, final);
		err_set("cannot commit %s: %s already exists", tmp, final);
		errno = EEXIST;
		return -1;
	}
	dir = dir_of(final);
	rc = fsio_fsync_dir(dir);
	free(dir);
	if (rc == 0) fsio_durable(final);
	return rc;
}

/* The one durable commit: data on disk, then the name, then the folder.
 * fd may be a file's or a folder's (a folder's fsync makes its entries
 * durable).  Fails with errno EEXIST when final exists and flags say
 * FSIO_NOREPLACE; tmp is discarded on every failure. */
int fsio_commit(int fd, const char *tmp, const char *final, int flags)
{
	int rc = commit_steps(fd, tmp, final, flags), e = errno;
	if (rc < 0) {
		(void)!fsio_discard(tmp); /* the first error is the one to report */
		errno = e;
	}
	return rc;
}

int fsio_write_atomic(const char *path, const void *data, size_t len)
{
	char *tmp;
	int rc, fd = fsio_tmp_open(path, &tmp);
	if (fd < 0) return -1;
	if (fsio_write_all(fd, data, len) < 0) {
		err_set_errno("cannot write %s (disk full?)", tmp);
		tmp_abandon(fd, tmp);
		return -1;
	}
	rc = fsio_commit(fd, tmp, path, FSIO_REPLACE);
	free(tmp);
	return rc;
}

int fsio_write_atomic_str(const char *path, const char *s)
{
	return fsio_write_atomic(path, s, strlen(s));
}

/* Only a file that is still the one read (same inode, size and mtime; the
 * link itself changes its ctime), ours, and named nowhere else is taken. */
static int link_is_want(const struct stat *got, const struct stat *want)
{
	return got->st_dev == want->st_dev && got->st_ino == want->st_ino && got->st_size == want->st_size &&
		got->st_mtim.tv_sec == want->st_mtim.tv_sec && got->st_mtim.tv_nsec == want->st_mtim.tv_nsec &&
		got->st_nlink == 2 && got->st_uid == geteuid() && S_ISREG(got->st_mode);
}

int fsio_link_commit(const char *src, const char *final, const struct stat *want, struct stat *got)
{
	char *tmp;
	int rc, fd = -1;
	if (want->st_nlink != 1 || want->st_uid != geteuid()) return 0; /* tried, a link would change its ctime */
	tmp = fsio_tmp_name(final);
	if (link(src, tmp) < 0) {
		free(tmp);
		return 0; /* gone, another file system, not allowed: the caller copies */
	}
	if (lstat(tmp, got) < 0 || !link_is_want(got, want) ||
	    (!deferred && (fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0)) {
		(void)!fsio_discard(tmp); /* only a second name: the file stays at src */
		free(tmp);
		return 0;
	}
	rc = fsio_commit(fd, tmp, final, FSIO_REPLACE);
	free(tmp);
	return rc < 0 ? -1 : 1;
}

int fsio_move(const char *from, const char *to)
{
	char *d1, *d2;
	int rc;
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST) return err_set("cannot move %s: %s already exists", from, to);
		if (errno == EXDEV)
			return err_set("cannot move %s to %s: they are on different filesystems; "
				       "keep the whole root on one filesystem",
				       from, to);
		return err_set_errno("cannot move %s to %s", from, to);
	}
	d1 = dir_of(from);
	d2 = dir_of(to);
	rc = fsio_fsync_dir(d2);
	if (rc == 0 && strcmp(d1, d2) != 0) rc = fsio_fsync_dir(d1);
	free(d1);
	free(d2);
	if (rc == 0) fsio_durable(to);
	return rc;
}

/* Streams a regular file (never through a symlink) to `to` through the
 * durable commit, feeding h (when not NULL) what it copies.  Returns the
 * number of bytes copied, or -1. */
long long fsio_copy(const char *from, const char *to, int flags, struct hash *h)
{
	char buf[1 << 16], *tmp;
	long long total = 0;
	ssize_t n;
	int out, in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) return err_set_errno("cannot open %s", from);
	if ((out = fsio_tmp_open(to, &tmp)) < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 || fsio_write_all(out, buf, (size_t)n) < 0) break;
		if (h) hash_update(h, buf, (size_t)n);
		total += n;
	}
	close(in);
	if (n != 0) {
		err_set_errno("cannot copy %s to %s (disk full?)", from, to);
		tmp_abandon(out, tmp);
		return -1;
	}
	n = fsio_commit(out, tmp, to, flags);
	free(tmp);
	return n < 0 ? -1 : total;
}

int fsio_mkdirs(const char *path)
{
	char *p;
	int rc = 0;
	/* the common case in one call: the parent is there (a new episode's folder) */
	if (mkdir(path, 0755) == 0) return 0;
	if (errno == EEXIST) return fsio_is_dir(path) ? 0 : err_set("%s exists but is not a folder", path);
	p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) < 0 && errno != EEXIST) {
				rc = err_set_errno("cannot create folder %s", p);
				break;
			}
			*s = c;
			if (!c) break;
		}
	}
	if (rc == 0 && !fsio_is_dir(path)) rc = err_set("%s exists but is not a folder", path);
	free(p);
	return rc;
}

/* Opens a regular file for reading, never through a symlink (symlink_hint
 * says what to do instead); *st gets its status. -1 with err_set, whose
 * message calls it what ("the key file ") and its path. */
int fsio_open_regular(const char *path, struct stat *st, const char *what, const char *symlink_hint)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ELOOP)
			err_set("%s is a symbolic link; %s", path, symlink_hint);
		else
			err_set_errno("cannot open %s%s", what, path);
		return -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		err_set("%s is not a regular file", path);
		return -1;
	}
	return fd;
}

/* Reads a regular file (never through a symlink) of at most max bytes. */
char *fsio_read(const char *path, size_t max, size_t *len_out)
{
	struct stat st;
	return fsio_read_st(path, max, len_out, &st);
}

/* fsio_read, and *st the status of the file the bytes came from. */
char *fsio_read_st(const char *path, size_t max, size_t *len_out, struct stat *stp)
{
	int fd = fsio_open_regular(path, stp, "", "only regular files are read");
	return fd < 0 ? NULL : fsio_read_fd(fd, stp, path, max, len_out);
}

/* The whole of a file fsio_open_regular opened (st: its status), which it
 * closes; path names it in errors. */
char *fsio_read_fd(int fd, const struct stat *st, const char *path, size_t max, size_t *len_out)
{
	char *buf;
	size_t got = 0;
	if ((size_t)st->st_size > max) {
		close(fd);
		err_set("%s is %lld bytes, more than the limit of %zu", path, (long long)st->st_size, max);
		return NULL;
	}
	buf = xmalloc((size_t)st->st_size + 1);
	while (got < (size_t)st->st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st->st_size - got);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st->st_size) {
		free(buf);
		err_set("%s changed size while being read", path);
		return NULL;
	}
	buf[got] = 0;
	if (len_out) *len_out = got;
	return buf;
}

int fsio_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int fsio_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int fsio_set_mtime(const char *path, double t)
{
	struct timespec ts[2];
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = (time_t)t;
	ts[1].tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return err_set_errno("cannot set the time of %s", path);
	return 0;
}

int fsio_unlink_durable(const char *path)
{
	char *d;
	int rc;
	if (unlink(path) < 0 && errno != ENOENT) return err_set_errno("cannot remove %s", path);
	d = dir_of(path);
	rc = fsio_fsync_dir(d);
	free(d);
	if (rc == 0) fsio_durable(path);
	return rc;
}

static int name_order(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name); /* bytewise: never the locale's order */
}

/* The names in dir, sorted bytewise, into *names (free with fsio_list_free).
 * "." and ".." never; with keep NULL every name not beginning with '.',
 * else the names keep accepts (it sees dot-names too).  Returns the count,
 * or -1 with err_set and errno (ENOENT: no such folder). */
int fsio_list(const char *dir, char ***names, int (*keep)(const char *name))
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, name_order), kept = 0, e;
	*names = NULL;
	if (n < 0) {
		e = errno;
		err_set_errno("cannot list folder %s", dir);
		errno = e;
		return -1;
	}
	*names = xcalloc((size_t)n + 1, sizeof **names);
	for (int i = 0; i < n; i++) {
		const char *nm = ents[i]->d_name;
		if (strcmp(nm, ".") && strcmp(nm, "..") && (keep ? keep(nm) : nm[0] != '.'))
			(*names)[kept++] = xstrdup(nm);
		free(ents[i]);
	}
	free(ents);
	return kept;
}

void fsio_list_free(char **names, int n)
{
	for (int i = 0; i < n; i++) free(names[i]);
	free(names);
}

static int any_name(const char *name)
{
	(void)name;
	return 1;
}

/* Removes a temporary of ours: a file, or a folder of plain files (the
 * outbox's publish folder).  Never follows a symbolic link. */
int fsio_discard(const char *path)
{
	struct stat st;
	char **names;
	int n, rc = 0;
	if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : err_set_errno("cannot remove %s", path);
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 && errno != ENOENT ? err_set_errno("cannot remove %s", path) : 0;
	if ((n = fsio_list(path, &names, any_name)) < 0) return -1;
	for (int i = 0; i < n && rc == 0; i++) {
		char *p = xasprintf("%s/%s", path, names[i]);
		if (unlink(p) < 0 && errno != ENOENT) rc = err_set_errno("cannot remove %s", p);
		free(p);
	}
	fsio_list_free(names, n);
	if (rc == 0 && rmdir(path) < 0) rc = err_set_errno("cannot remove folder %s", path);
	return rc;
}

#ifdef ACOG_TEST
/* The shared count: bumped under an exclusive lock, so the daemon and its
 * stage children number their durable points in one sequence. */
static long durable_bump(const char *path, const char *what)
{
	char buf[32] = { 0 }, *log = xasprintf("%s.log", path);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644), lf;
	long n;
	if (fd < 0 || flock(fd, LOCK_EX) < 0) abort(); /* a test set-up error: loud */
	n = pread(fd, buf, sizeof buf - 1, 0) > 0 ? strtol(buf, NULL, 10) + 1 : 1;
	snprintf(buf, sizeof buf, "%ld\n", n);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, strlen(buf), 0) < 0) abort();
	if ((lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) >= 0) {
		dprintf(lf, "%ld %ld %s\n", n, (long)getpid(), what);
		close(lf);
	}
	close(fd);
	free(log);
	return n;
}

void fsio_durable(const char *what)
{
	static long local;
	const char *count = getenv("ACOG_CRASH_COUNT"), *after = getenv("ACOG_CRASH_AFTER");
	long n;
	if (!count && !after) return;
	n = count ? durable_bump(count, what) : ++local;
	if (after && n == strtol(after, NULL, 10)) {
		fprintf(stderr, "ACOG_CRASH_AFTER=%ld: aborting right after durable point %ld (%s), pid %ld\n", n, n,
			what, (long)getpid());
		abort();
	}
}
#endif
