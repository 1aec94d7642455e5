/*
 * media_pipe.c - two ffmpeg runs joined by a FIFO (issue 12): the writer
 * decodes the inputs and runs the filter graph, the reader encodes what it
 * is sent.  ffmpeg 5 runs a filter graph on its main thread, one frame after
 * another, and the encoder waits for it; in two processes the graph and the
 * encoder work at the same time, so an encode with a costly graph (b-roll
 * rendered, captions burned in, the QA detectors) keeps both cores busy.
 *
 * Invariants: both children run through proc_run() with argument vectors
 * (the writer from a forked helper, which only waits for it and exits);
 * neither can be left blocked opening the FIFO: when the writer ends, the
 * helper opens and closes the FIFO so a reader still waiting sees its end,
 * and when the reader fails the helper and with it the writer are killed.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELPER_NO_RUN 255    /* the helper's exit status when the writer could not run or timed out */
#define WRITER_GRACE_MS 3000 /* a reader that failed because the writer did: the writer's end is on its way */

/* The helper: runs the writer, unblocks a reader still waiting in open()
 * (O_RDWR never blocks on a FIFO), exits with the writer's status. */
static void __attribute__((noreturn)) helper(struct stage_ctx *ctx, struct media_argv *w, const char *fifo, int errfd)
{
	struct proc_opts o = { .stderr_fd = errfd, .timeout_s = ctx->timeout_s };
	int timed_out = 0, st = proc_run((const char *const *)w->v, &o, &timed_out), fd;

	if (st < 0 && errfd >= 0) dprintf(errfd, "%s\n", err_msg());
	if ((fd = open(fifo, O_RDWR | O_CLOEXEC)) >= 0) close(fd);
	_exit(st < 0 ? HELPER_NO_RUN : st);
}

/* After the reader failed: whether the helper ends by itself soon (the
 * writer failed first, and its message is the one to report). */
static int helper_ending(pid_t pid)
{
	int fd = proc_pidfd(pid), n;
	struct pollfd p = { fd, POLLIN, 0 };

	if (fd < 0) return 0;
	do n = poll(&p, 1, WRITER_GRACE_MS);
	while (n < 0 && errno == EINTR);
	close(fd);
	return n > 0;
}

static int helper_wait(pid_t pid)
{
	int status;
	pid_t r;

	do r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	if (r != pid) return HELPER_NO_RUN;
	return WIFEXITED(status) ? WEXITSTATUS(status) : HELPER_NO_RUN;
}

/* The writer's failure, with the end of what it printed. */
static enum stage_rc writer_failed(struct stage_ctx *ctx, FILE *errf, int st, const char *what)
{
	char tail[600];
	media_stderr_tail(errf, tail, sizeof tail);
	return stage_fail(ctx, STAGE_FAIL, "ffmpeg failed (exit %d) rendering the pictures of %s: %s", st, what,
			  tail[0] ? tail : "no message");
}

enum stage_rc media_run_piped(struct stage_ctx *ctx, struct media_argv *w, struct media_argv *r, const char *fifo,
			      const char *what)
{
	FILE *errf;
	pid_t pid;
	enum stage_rc rc;
	int st;

	if ((unlink(fifo) < 0 && errno != ENOENT) || mkfifo(fifo, 0600) < 0)
		return stage_fail(ctx, STAGE_RETRY, "cannot make the pipe %s for ffmpeg: %s", fifo, strerror(errno));
	if (!(errf = tmpfile()))
		return stage_fail(ctx, STAGE_RETRY, "cannot make a temporary file: %s", strerror(errno));
	if ((pid = fork()) < 0) {
		fclose(errf);
		return stage_fail(ctx, STAGE_RETRY, "cannot fork for ffmpeg: %s", strerror(errno));
	}
	if (pid == 0) helper(ctx, w, fifo, fileno(errf));
	rc = media_run(ctx, r, what);
	if (rc != STAGE_OK && !helper_ending(pid)) kill(pid, SIGKILL); /* the writer dies with it (PDEATHSIG) */
	st = helper_wait(pid);
	if (st != 0 && !(rc != STAGE_OK && st == HELPER_NO_RUN)) rc = writer_failed(ctx, errf, st, what);
	fclose(errf);
	unlink(fifo);
	return rc;
}
