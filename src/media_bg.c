/*
 * media_bg.c - a step of a media stage run beside the next one (issue 12):
 * fn(ctx, arg) in a forked copy of the stage process, while this one goes
 * on (assembly draws the thumbnail while it encodes: on 2 cores the encode
 * leaves gaps the thumbnail's ffmpeg fills, instead of waiting for it).
 *
 * Invariants: the copy dies with this process (PR_SET_PDEATHSIG); it only
 * runs fn, which may run children (proc_run) and write files and log
 * lines, never the database; its result and error message come back
 * through a pipe, and media_bg_join() always reaps it.
 * Without a pipe or a fork, fn runs in this process: slower, never lost.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

void media_bg_start(struct stage_ctx *ctx, struct media_bg *bg, media_bg_fn fn, void *arg)
{
	int p[2];

	bg->pid = -1, bg->fd = -1;
	pid_t parent = getpid();

	if (pipe2(p, O_CLOEXEC) < 0) goto inline_run;
	if ((bg->pid = fork()) < 0) {
		close(p[0]), close(p[1]);
		goto inline_run;
	}
	if (bg->pid == 0) { /* the copy: its result, then its message, down the pipe */
		enum stage_rc rc;

		/* A death signal is not inherited: the copy (and through it its
		 * ffmpeg) must die with a killed stage, as proc.c's children do. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(1);
		rc = fn(ctx, arg);
		size_t n = rc == STAGE_OK ? 0 : strnlen(ctx->error, sizeof ctx->error - 1);
		int ok = write(p[1], &rc, sizeof rc) == (ssize_t)sizeof rc && write(p[1], ctx->error, n) == (ssize_t)n;
		_exit(ok ? 0 : 1);
	}
	close(p[1]);
	bg->fd = p[0];
	return;
inline_run:
	bg->rc = fn(ctx, arg);
}

/* Reads the copy's result and message: what it sent before it exited. */
static enum stage_rc bg_read(struct stage_ctx *ctx, int fd)
{
	char buf[sizeof ctx->error + sizeof(enum stage_rc)];
	size_t got = 0;
	ssize_t n;
	enum stage_rc rc;

	while (got < sizeof buf - 1 &&
	       ((n = read(fd, buf + got, sizeof buf - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0) got += (size_t)n;
	if (got < sizeof rc) return stage_fail(ctx, STAGE_RETRY, "a step run beside the encode died without a result");
	memcpy(&rc, buf, sizeof rc);
	if (rc != STAGE_OK) snprintf(ctx->error, sizeof ctx->error, "%.*s", (int)(got - sizeof rc), buf + sizeof rc);
	return rc;
}

enum stage_rc media_bg_join(struct stage_ctx *ctx, struct media_bg *bg)
{
	enum stage_rc rc;
	int status;

	if (bg->pid < 0) return bg->rc;
	rc = bg_read(ctx, bg->fd);
	close(bg->fd);
	while (waitpid(bg->pid, &status, 0) < 0 && errno == EINTR)
		;
	bg->pid = -1;
	return rc;
}
