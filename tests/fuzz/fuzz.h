/*
 * fuzz.h - what every libFuzzer target in tests/fuzz/ shares: a private
 * scratch folder (its cwd) for targets whose code under test reads or
 * writes files, and a NUL-terminated copy of the input for the parsers
 * that take C strings.  Each target defines LLVMFuzzerTestOneInput; the
 * same file links with libFuzzer (make fuzz) or with replay.c (make unit).
 */
#ifndef FUZZ_H
#define FUZZ_H
#include "provider.h"
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a C string (parsers stop at its first NUL, as they do on the wire). */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	memcpy(s, data, size);
	s[size] = 0;
	return s;
}

static inline int fuzz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static char fuzz_dir_path[256];
static inline void fuzz_cleanup(void)
{
	(void)!chdir("/");
	nftw(fuzz_dir_path, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Once per process: a fresh folder under $TMPDIR, made the cwd; logs off. */
static inline const char *fuzz_dir(void)
{
	char *dir = fuzz_dir_path;
	const char *tmp = getenv("TMPDIR");
	if (dir[0]) return dir;
	snprintf(dir, sizeof fuzz_dir_path, "%s/acog-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir) || chdir(dir) < 0) abort();
	atexit(fuzz_cleanup);
	log_set_stderr(0);
	return dir;
}

/* Writes data to path (relative to the fuzz folder), replacing it. */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd) < 0) abort();
}

/* The input split at its first NUL: head (say, headers) and tail (a body). */
static inline void fuzz_split(const uint8_t *data, size_t size, char **head, char **tail)
{
	const uint8_t *z = memchr(data, 0, size);
	size_t h = z ? (size_t)(z - data) : 0;
	*head = fuzz_str(data, h);
	*tail = z ? fuzz_str(z + 1, size - h - 1) : fuzz_str(data, size);
}
#endif
