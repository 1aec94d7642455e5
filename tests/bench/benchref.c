/*
 * benchref.c - the machine's own limits, measured for `make bench`
 * (tests/bench/bench.py), and the pickup probe that needs inotify:
 *
 *   benchref rename DIR N     N durable renames (write + fsync + rename +
 *                             directory fsync); prints renames per second
 *   benchref watch DIR N      a minimal inotify watcher: N renames into DIR,
 *                             each timed to its IN_MOVED_TO; prints µs each
 *   benchref pickup ROOT N CH N ideas of channel CH renamed one at a time
 *                             into ROOT/spool/incoming, each timed to its
 *                             ticket's arrival in spool/planning; prints µs
 *   benchref peak CMD ARG...  runs CMD once (fork + execv); prints its wall
 *                             time in µs and its own peak RSS in KiB
 *                             (wait4's ru_maxrss of that child alone)
 *
 * Why `peak` is here and not in Python: ru_maxrss of a child carries over
 * the peak of the address space it was forked from (the kernel keeps the
 * larger at execve), so a child of the ~34 MB Python interpreter, forked or
 * posix_spawn'ed, reports at least Python's peak.  Forked from this small
 * program, the floor is this program's own RSS (about 1 MB).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	fprintf(stderr, "benchref: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *path, const char *text, int sync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(text);
	if (fd < 0) die(path);
	if (write(fd, text, len) != (ssize_t)len) die("write");
	if (sync && fsync(fd) < 0) die("fsync");
	if (close(fd) < 0) die("close");
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) die(dir);
	close(fd);
}

static int cmd_rename(const char *dir, int n)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		snprintf(tmp, sizeof tmp, "%s/.r%d.tmp", dir, i);
		snprintf(dst, sizeof dst, "%s/r%d.json", dir, i);
		write_file(tmp, "{\"channel\": \"bench\", \"topic\": \"a durable rename of about this size\"}\n", 1);
		if (rename(tmp, dst) < 0) die("rename");
		fsync_dir(dir);
	}
	printf("%.1f\n", n / ((now_us() - t0) / 1e6));
	return 0;
}

/* Waits for the next IN_MOVED_TO of a name not starting with '.'. */
static void wait_moved(int ino)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t r = read(ino, buf, sizeof buf);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) die("inotify read");
		for (char *p = buf; p < buf + r;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if ((ev->mask & IN_MOVED_TO) && ev->len && ev->name[0] != '.') return;
		}
	}
}

static int cmd_watch(const char *dir, int n)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	int ino = inotify_init1(IN_CLOEXEC);
	if (ino < 0 || inotify_add_watch(ino, dir, IN_MOVED_TO) < 0) die("inotify");
	for (int i = 0; i < n; i++) {
		double t0;
		snprintf(tmp, sizeof tmp, "%s/.w%d.tmp", dir, i);
		snprintf(dst, sizeof dst, "%s/w%d.json", dir, i);
		write_file(tmp, "{}\n", 0);
		t0 = now_us();
		if (rename(tmp, dst) < 0) die("rename");
		wait_moved(ino);
		printf("%.1f\n", now_us() - t0);
	}
	return 0;
}

static int cmd_pickup(const char *root, int n, const char *channel)
{
	char tmp[PATH_MAX], dst[PATH_MAX], planning[PATH_MAX], idea[512];
	int ino = inotify_init1(IN_CLOEXEC);
	snprintf(planning, sizeof planning, "%s/spool/planning", root);
	if (ino < 0 || inotify_add_watch(ino, planning, IN_MOVED_TO) < 0) die("inotify");
	for (int i = 0; i < n; i++) {
		double t0;
		snprintf(tmp, sizeof tmp, "%s/spool/tmp/pickup-%d-%d.part", root, (int)getpid(), i);
		snprintf(dst, sizeof dst, "%s/spool/incoming/pickup-%d-%d.json", root, (int)getpid(), i);
		snprintf(idea, sizeof idea, "{\"channel\": \"%s\", \"topic\": \"pickup probe %d of run %d\"}\n", channel, i,
			 (int)getpid());
		write_file(tmp, idea, 0);
		t0 = now_us();
		if (rename(tmp, dst) < 0) die("rename");
		wait_moved(ino);
		printf("%.1f\n", now_us() - t0);
		fflush(stdout);
	}
	return 0;
}

static int cmd_peak(char **argv)
{
	struct rusage ru;
	int status;
	double t0 = now_us();
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null < 0 || dup2(null, 1) < 0) _exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) die("wait4");
	printf("%.1f %ld\n", now_us() - t0, ru.ru_maxrss);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "peak")) return cmd_peak(argv + 2);
	if (argc == 4 && !strcmp(argv[1], "rename")) return cmd_rename(argv[2], atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "watch")) return cmd_watch(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "pickup")) return cmd_pickup(argv[2], atoi(argv[3]), argv[4]);
	fprintf(stderr, "usage: benchref rename DIR N | watch DIR N | pickup ROOT N CHANNEL | peak CMD ARG...\n");
	return 64;
}
