/*
 * proc.c - run child programs: fork + execve with an argument vector, never
 * a shell, so no argument is ever re-parsed or globbed.
 *
 * Invariants:
 *  - Every descriptor we create is O_CLOEXEC, so a child sees only 0, 1, 2.
 *  - The child dies with us (PR_SET_PDEATHSIG), keeps our process group (so
 *    a signal to the daemon's group reaches it too), and starts with an empty
 *    signal mask and default dispositions whatever the daemon had set.
 *  - stdin is written while stdout is read, in one poll loop, so a child that
 *    writes a lot before reading all of its input cannot deadlock us.
 *  - The child is always reaped before proc_run returns: on success, on
 *    timeout, on output overflow.  No zombie, no orphan we know of.
 *  - A failed chdir or execve in the child is reported back through a
 *    close-on-exec pipe, so "could not start" is never confused with
 *    "exit status 127".
 */
#define _GNU_SOURCE
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PROC_STDOUT_MAX ((size_t)16 * 1024 * 1024)
#define PROC_POLL_FALLBACK_MS 50 /* only when the kernel lacks pidfd_open */

/* What the parent tracks while the child runs. */
struct proc_state {
	pid_t pid;
	int pidfd;         /* readable when the child exits; -1 if absent */
	int in_fd, out_fd; /* our ends of the pipes, -1 when closed */
	const char *in;
	size_t in_left;
	struct sbuf *out;
	size_t out_max;
	int reaped, status;
};

/* What the child reports when it could not reach execve. */
struct proc_report {
	int step;
	int err;
};
enum { STEP_CHDIR = 1, STEP_DUP, STEP_EXEC };

static void close_fd(int *fd)
{
	if (*fd >= 0) close(*fd);
	*fd = -1;
}

static int is_exec_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Search PATH like execvp would, but without executing anything.  The result
 * lives in a static buffer until the next call. */
const char *proc_find(const char *name)
{
	static char found[ACOG_PATH_MAX];
	const char *path = getenv("PATH"), *p, *end;

	if (!name || !*name) return NULL;
	if (strchr(name, '/')) return is_exec_file(name) ? name : NULL;
	if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p = end + 1) {
		end = strchrnul(p, ':');
		int dl = (int)(end - p);
		/* an empty PATH entry means the current directory */
		int n = dl ? snprintf(found, sizeof found, "%.*s/%s", dl, p, name)
			   : snprintf(found, sizeof found, "./%s", name);
		if (n > 0 && (size_t)n < sizeof found && is_exec_file(found)) return found;
		if (!*end) return NULL;
	}
}

/* Runs in the child between fork and execve: async-signal-safe calls only. */
static void __attribute__((noreturn))
child_exec(const char *path, const char *const argv[], const char *cwd, int fds[3], int report, pid_t parent)
{
	struct proc_report r = { STEP_DUP, 0 };
	struct sigaction dfl;
	sigset_t none;
	int i, moved[3];

	/* Die with the stage process; the check closes the race where the
	 * parent exited before prctl took effect. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) _exit(127);
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (i = 1; i < NSIG; i++) sigaction(i, &dfl, NULL); /* ignored signals survive execve */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Lift the sources above 2 first so dup2 onto 0..2 cannot clobber one
	 * of them when the daemon itself was started with 0..2 closed. */
	for (i = 0; i < 3; i++)
		if ((moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0) goto fail;
	for (i = 0; i < 3; i++)
		if (dup2(moved[i], i) < 0) goto fail;
	r.step = STEP_CHDIR;
	if (cwd && chdir(cwd) < 0) goto fail;
	r.step = STEP_EXEC;
	execve(path, (char *const *)argv, environ);
fail:
	r.err = errno;
	if (write(report, &r, sizeof r) < 0) _exit(127);
	_exit(127);
}

static int wait_eintr(pid_t pid, int *status, int flags)
{
	pid_t r;

	do r = waitpid(pid, status, flags);
	while (r < 0 && errno == EINTR);
	return (int)r;
}

/* Read the child's report: 0 bytes means execve succeeded (the pipe closed
 * on exec); a full report means it failed and has already exited. */
static int spawn_check(struct proc_state *st, int report, const char *path, const char *cwd)
{
	struct proc_report r;
	ssize_t n;
	int status;

	do n = read(report, &r, sizeof r);
	while (n < 0 && errno == EINTR);
	if (n == 0) return 0;
	wait_eintr(st->pid, &status, 0);
	st->reaped = 1;
	if (n != (ssize_t)sizeof r) return err_set("cannot start %s: lost contact with the child", path);
	if (r.step == STEP_CHDIR) return err_set("cannot start %s: chdir %s: %s", path, cwd, strerror(r.err));
	if (r.step == STEP_DUP) return err_set("cannot start %s: dup2: %s", path, strerror(r.err));
	return err_set("cannot execute %s: %s (check it exists, is executable and "
		       "has a valid #! line)",
		       path, strerror(r.err));
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Create the pipes, fork, and close the child's ends in the parent. */
static int proc_spawn(const char *path, const char *const argv[], const struct proc_opts *o, struct proc_state *st)
{
	int devnull = -1, in[2] = { -1, -1 }, out[2] = { -1, -1 };
	int rep[2] = { -1, -1 }, fds[3], rc = -1;
	pid_t parent = getpid();

	if ((devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		err_set_errno("cannot open /dev/null");
		goto out;
	}
	if ((o->stdin_data && pipe2(in, O_CLOEXEC) < 0) || (o->stdout_buf && pipe2(out, O_CLOEXEC) < 0) ||
	    pipe2(rep, O_CLOEXEC) < 0) {
		err_set_errno("cannot create a pipe for %s", path);
		goto out;
	}
	fds[0] = o->stdin_data ? in[0] : devnull;
	fds[1] = o->stdout_buf ? out[1] : devnull;
	fds[2] = o->stderr_fd >= 0 ? o->stderr_fd : devnull;
	if ((st->pid = fork()) < 0) {
		err_set_errno("cannot fork for %s", path);
		goto out;
	}
	if (st->pid == 0) child_exec(path, argv, o->cwd, fds, rep[1], parent);
	close_fd(&rep[1]);
	st->in_fd = in[1], in[1] = -1;
	st->out_fd = out[0], out[0] = -1;
	if (spawn_check(st, rep[0], path, o->cwd) < 0) goto out;
	if ((st->in_fd >= 0 && set_nonblock(st->in_fd) < 0) || (st->out_fd >= 0 && set_nonblock(st->out_fd) < 0)) {
		err_set_errno("cannot set O_NONBLOCK on a pipe to %s", path);
		goto out;
	}
	rc = 0;
out:
	close_fd(&devnull);
	close_fd(&in[0]), close_fd(&in[1]);
	close_fd(&out[0]), close_fd(&out[1]);
	close_fd(&rep[0]), close_fd(&rep[1]);
	return rc;
}

/* Feed stdin; a child that stops reading (EPIPE) just loses the rest. */
static void pump_stdin(struct proc_state *st)
{
	size_t chunk = st->in_left > 65536 ? 65536 : st->in_left;
	ssize_t n = chunk ? write(st->in_fd, st->in, chunk) : 0;

	if (n > 0) {
		st->in += n;
		st->in_left -= (size_t)n;
	} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		return;
	}
	if (st->in_left == 0 || n <= 0) close_fd(&st->in_fd); /* EOF tells the child the request is complete */
}

/* Read what is available.  Returns -1 when the output is too big. */
static int pump_stdout(struct proc_state *st)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = read(st->out_fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0 && errno == EAGAIN) return 0;
		if (n <= 0) {
			close_fd(&st->out_fd);
			return 0;
		}
		if (st->out->len + (size_t)n > st->out_max) return -1;
		sb_add(st->out, buf, (size_t)n);
	}
}

/* ECHILD means someone else reaped it (a SIGCHLD handler calling
 * waitpid(-1)); stop waiting rather than spin, and report status 255. */
static void try_reap(struct proc_state *st)
{
	int r;

	if (st->reaped) return;
	r = wait_eintr(st->pid, &st->status, WNOHANG);
	if (r == st->pid)
		st->reaped = 1;
	else if (r < 0 && errno == ECHILD)
		st->reaped = 1, st->status = 255 << 8;
}

/* Milliseconds poll may sleep: until the deadline, or short naps when we
 * cannot be woken by the child's exit (no pidfd). */
static int poll_ms(const struct proc_state *st, double deadline)
{
	int ms = -1;

	if (deadline > 0) {
		double left = deadline - time_mono();
		ms = left <= 0 ? 0 : (int)(left * 1000.0) + 1;
	}
	if (st->pidfd < 0 && !st->reaped && (ms < 0 || ms > PROC_POLL_FALLBACK_MS)) ms = PROC_POLL_FALLBACK_MS;
	return ms;
}

/* The loop: returns 0 when the child exited and the pipes are closed,
 * -2 on timeout, -3 when stdout went over its limit. */
static int proc_pump(struct proc_state *st, double deadline)
{
	struct pollfd p[3];
	int n, in_i, out_i, pid_i;

	while (st->in_fd >= 0 || st->out_fd >= 0 || !st->reaped) {
		if (deadline > 0 && time_mono() >= deadline) return -2;
		n = 0, in_i = out_i = pid_i = -1;
		if (st->in_fd >= 0) in_i = n, p[n++] = (struct pollfd){ st->in_fd, POLLOUT, 0 };
		if (st->out_fd >= 0) out_i = n, p[n++] = (struct pollfd){ st->out_fd, POLLIN, 0 };
		if (st->pidfd >= 0 && !st->reaped) pid_i = n, p[n++] = (struct pollfd){ st->pidfd, POLLIN, 0 };
		if (poll(p, (nfds_t)n, poll_ms(st, deadline)) < 0) {
			if (errno == EINTR) continue;
			return err_set_errno("poll");
		}
		if (in_i >= 0 && p[in_i].revents) pump_stdin(st);
		if (out_i >= 0 && p[out_i].revents && pump_stdout(st) < 0) return -3;
		if (pid_i < 0 || p[pid_i].revents) try_reap(st);
		if (st->reaped) {
			/* Everything the child wrote is in the pipe now; a
			 * grandchild holding it open must not keep us here. */
			close_fd(&st->in_fd);
			if (st->out_fd >= 0 && pump_stdout(st) < 0) return -3;
			close_fd(&st->out_fd);
		}
	}
	return 0;
}

int proc_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0) return fd;
	if (fd >= 0) close(fd);
#else
	(void)pid;
#endif
	return -1;
}

/* SIGCHLD set to SIG_IGN would make the kernel reap the child before we
 * can read its status: use the default while it runs. */
static void sigchld_default(struct sigaction *old)
{
	struct sigaction dfl;

	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, NULL, old);
	if (old->sa_handler == SIG_IGN) sigaction(SIGCHLD, &dfl, NULL);
}

/* SIGPIPE is blocked while we write to the child, then any SIGPIPE we
 * caused is consumed, so a child that exits early cannot kill us. */
static void sigpipe_restore(const sigset_t *old, int was_pending)
{
	sigset_t pending, pipe_set;
	struct timespec zero = { 0, 0 };

	sigpending(&pending);
	if (!was_pending && sigismember(&pending, SIGPIPE)) {
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	sigprocmask(SIG_SETMASK, old, NULL);
}

static int proc_status(int status)
{
	if (WIFEXITED(status)) return WEXITSTATUS(status);
	if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
	return 255;
}

int proc_run(const char *const argv[], const struct proc_opts *o, int *timed_out)
{
	struct proc_state st = { .pid = -1, .pidfd = -1, .in_fd = -1, .out_fd = -1 };
	struct sigaction old_chld;
	const char *path;
	sigset_t block, old, pending;
	int rc = -1, pr, was_pending;

	if (timed_out) *timed_out = 0;
	if (!argv || !argv[0] || !*argv[0]) return err_set("proc_run: empty argument vector");
	if (!(path = proc_find(argv[0])))
		return err_set("%s: not found%s", argv[0],
			       strchr(argv[0], '/') ? " or not executable"
						    : " in PATH (install it or give a full path)");
	path = xstrdup(path); /* proc_find's buffer is shared */
	sigemptyset(&block);
	sigaddset(&block, SIGPIPE);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	sigchld_default(&old_chld);
	st.in = o->stdin_data;
	st.in_left = o->stdin_data ? o->stdin_len : 0;
	st.out = o->stdout_buf;
	st.out_max = o->stdout_max ? o->stdout_max : PROC_STDOUT_MAX;
	if (proc_spawn(path, argv, o, &st) < 0) goto out;
	st.pidfd = proc_pidfd(st.pid);
	pr = proc_pump(&st, o->timeout_s > 0 ? time_mono() + o->timeout_s : 0);
	if (pr == -2 && timed_out) *timed_out = 1;
	if (pr == -2)
		err_set("%s timed out after %d s", argv[0], o->timeout_s);
	else if (pr == -3)
		err_set("%s wrote more than %zu bytes on stdout; it was stopped", argv[0], st.out_max);
	rc = pr == 0 ? proc_status(st.status) : -1;
out:
	if (st.pid > 0 && !st.reaped) {
		kill(st.pid, SIGKILL);
		wait_eintr(st.pid, &st.status, 0);
	}
	close_fd(&st.in_fd), close_fd(&st.out_fd), close_fd(&st.pidfd);
	sigaction(SIGCHLD, &old_chld, NULL);
	sigpipe_restore(&old, was_pending);
	free((void *)path);
	return rc;
}
