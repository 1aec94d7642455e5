/*
 * fsio.c - durable file operations.  The only atomic write is
 * fsio_write_atomic (temporary name in the same folder, fsync, rename, fsync
 * the folder); the only move is fsio_move (renameat2 RENAME_NOREPLACE, then
 * fsync both folders).  Temporary names begin with '.' and contain ".tmp",
 * which the watcher and every scanner ignore.
 */
#define _GNU_SOURCE
#include "base.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir_of(const char *path)
{
	char *tmp = xstrdup(path), *d = xstrdup(dirname(tmp));
	free(tmp);
	return d;
}

static char *tmp_name_for(const char *path)
{
	char *tmp = xstrdup(path), *dir = xstrdup(dirname(tmp)), *base;
	char *out;
	free(tmp);
	tmp = xstrdup(path);
	base = basename(tmp);
	out = xasprintf("%s/.%s.%ld.tmp", dir, base, (long)getpid());
	free(tmp);
	free(dir);
	return out;
}

int fsio_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
	char *tmp = tmp_name_for(final);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err_set_errno("cannot create %s", tmp);
		free(tmp);
		return -1;
	}
	*tmp_out = tmp;
	return fd;
}

/* The one durable commit: data on disk, then the name, then the folder. */
int fsio_commit(int fd, const char *tmp, const char *final, int flags)
{
	char *dir;
	int rc;
	if (fd >= 0 && fsync(fd) < 0) {
		err_set_errno("cannot fsync %s (disk full?)", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (fd >= 0 && close(fd) < 0) {
		err_set_errno("cannot close %s (disk full?)", tmp);
		unlink(tmp);
		return -1;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, flags & FSIO_REPLACE ? 0 : RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST) err_set("cannot commit %s: %s already exists", tmp, final);
		else err_set_errno("cannot rename %s to %s", tmp, final);
		unlink(tmp);
		return -1;
	}
	dir = dir_of(final);
	rc = fsio_fsync_dir(dir);
	free(dir);
	return rc;
}

int fsio_write_atomic(const char *path, const void *data, size_t len)
{
	char *tmp;
	int rc, fd = fsio_tmp_open(path, &tmp);
	if (fd < 0) return -1;
	if (fsio_write_all(fd, data, len) < 0) {
		err_set_errno("cannot write %s (disk full?)", tmp);
		close(fd);
		unlink(tmp);
		free(tmp);
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

int fsio_move(const char *from, const char *to)
{
	char *d1, *d2;
	int rc;
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST) return err_set("cannot move %s: %s already exists", from, to);
		if (errno == EXDEV)
			return err_set("cannot move %s to %s: they are on different filesystems; "
				       "keep the whole root on one filesystem", from, to);
		return err_set_errno("cannot move %s to %s", from, to);
	}
	d1 = dir_of(from);
	d2 = dir_of(to);
	rc = fsio_fsync_dir(d2);
	if (rc == 0 && strcmp(d1, d2) != 0) rc = fsio_fsync_dir(d1);
	free(d1);
	free(d2);
	return rc;
}

int fsio_copy_atomic(const char *from, const char *to)
{
	size_t len;
	char *data = fsio_read(from, (size_t)1 << 34, &len);
	int rc;
	if (!data) return -1;
	rc = fsio_write_atomic(to, data, len);
	free(data);
	return rc;
}

int fsio_mkdirs(const char *path)
{
	char *p = xstrdup(path);
	int rc = 0;
	for (char *s = p + 1; ; s++) {
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

/* Reads a regular file (never through a symlink) of at most max bytes. */
char *fsio_read(const char *path, size_t max, size_t *len_out)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ELOOP) err_set("%s is a symbolic link; only regular files are read", path);
		else err_set_errno("cannot open %s", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		err_set("%s is not a regular file", path);
		return NULL;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		err_set("%s is %lld bytes, more than the limit of %zu", path, (long long)st.st_size, max);
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
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
	return rc;
}
