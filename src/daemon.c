/*
 * daemon.c - the event loop.  It sleeps in epoll_wait with no timeout and
 * wakes only for: inotify (an idea, a pulse file or a decision file arrived), signalfd
 * (SIGCHLD from a stage child, SIGTERM/SIGINT to stop, SIGHUP to reload,
 * SIGUSR1 from a CLI command that changed the database), a stage child's
 * report pipe, or the timerfd armed for the next retry deadline, stage
 * timeout or hold release.  Idle means no system calls at all.
 *
 * Start-up order matters: take the lock, add the watches, remove the
 * temporaries dead processes left (tmpclean.c), then requeue work that was
 * running, finish interrupted ingests, reconcile the spool to the database,
 * and scan incoming/ — so nothing that arrives meanwhile is missed.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_RUNS 64

struct daemon {
	const struct daemon_opts *o;
	struct config cfg;
	sqlite3 *db;
	struct sched *sched;
	int ep, ino, sig, tim, lock;
	int wall; /* CLOCK_REALTIME timer: wall-clock deadlines, and news of a clock that was set */
	int wd_incoming, wd_pulse;
	const char *gates[8]; /* gate folders (stage table), watched for decision files */
	int wd_gate[8];
	size_t ngates;
	struct run runs[MAX_RUNS];
	int nruns;
	int stopping; /* 1 after SIGTERM: finish running stages, start none */
	int reload, rescan, wake;
	char *metrics_last;            /* the metrics text last written (metrics.c) */
	int64_t published_at;          /* db_generation() when publish_state last looked */
	double retry_at, backoff;      /* time_mono() of the retry after a resource failure (disk full, locked) */
	char unrecorded[MAX_RUNS][37]; /* episodes whose stage ended but whose end could not be recorded */
	int nunrecorded;
};

int daemon_lock(const char *root, int *fd_out)
{
	char *p = xasprintf("%s/acog.lock", root), pid[32];
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(p);
	if (fd < 0) return err_set_errno("cannot open %s/acog.lock", root);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		close(fd);
		err_set("another acog-batch daemon (pid %ld) is already running on %s; stop it first "
			"(kill -TERM %ld) or use another root with -C",
			strtol(pid, NULL, 10), root, strtol(pid, NULL, 10));
		return 1;
	}
	snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0) { /* the pid is informational */
	}
	*fd_out = fd;
	return 0;
}

void daemon_wake(const char *root)
{
	char *p = xasprintf("%s/acog.lock", root), buf[32];
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (fd < 0) return;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) { /* held: a daemon runs */
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		long pid;
		buf[n > 0 ? n : 0] = 0;
		pid = strtol(buf, NULL, 10);
		if (pid > 1) kill((pid_t)pid, SIGUSR1);
	}
	close(fd);
}

static int add_fd(struct daemon *d, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev) < 0) return err_set_errno("epoll_ctl");
	return 0;
}

#define WALL_FAR_AHEAD (86400.0 * 365) /* seconds */

enum { TAG_INO = 1, TAG_SIG, TAG_TIM, TAG_WALL, TAG_RUN = 100 };

static int watch(struct daemon *d, const char *dir)
{
	char *p = spool_path(d->cfg.root, dir, NULL);
	int wd = inotify_add_watch(d->ino, p, IN_CLOSE_WRITE | IN_MOVED_TO);
	if (wd < 0) err_set_errno("cannot watch %s", p);
	free(p);
	return wd;
}

static int setup_fds(struct daemon *d)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGIO, SIG_IGN); /* a lease break (ingest.c being_written) must not kill us */
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	d->sig = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	d->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	d->tim = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->wall = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->ep < 0 || d->sig < 0 || d->ino < 0 || d->tim < 0 || d->wall < 0)
		return err_set_errno("cannot set up the event loop");
	d->wd_incoming = watch(d, "incoming");
	d->wd_pulse = watch(d, "pulse");
	/* One watch per gate folder of the stage table: decision files. */
	d->ngates = stage_gates(d->gates, sizeof d->gates / sizeof d->gates[0]);
	for (size_t i = 0; i < d->ngates; i++)
		if ((d->wd_gate[i] = watch(d, d->gates[i])) < 0) return -1;
	if (d->wd_incoming < 0 || d->wd_pulse < 0) return -1;
	return add_fd(d, d->ino, TAG_INO) || add_fd(d, d->sig, TAG_SIG) || add_fd(d, d->tim, TAG_TIM) ||
			add_fd(d, d->wall, TAG_WALL)
		? -1
		: 0;
}

/* Start-up and rescan steps go on after a failure; it is logged. */
static void note(int rc, const char *what)
{
	if (rc < 0) log_error(NULL, NULL, what, "%s", err_msg());
}

/* Work that failed for want of a resource (disk full, read-only, database
 * locked) is retried by the timerfd with a backoff of 1 s doubling to 60 s:
 * a wake-up from the kernel, never a poll; an idea stays in incoming/ and a
 * job in its queue meanwhile. */
static void retry_later(struct daemon *d, const char *why)
{
	if (d->retry_at > 0) return;
	d->backoff = d->backoff > 0 ? (d->backoff * 2 > 60 ? 60 : d->backoff * 2) : 1;
	d->retry_at = time_mono() + d->backoff;
	log_warn(NULL, NULL, "daemon.retry_later", "%s; the work waits where it is and is retried in %.0f s", why,
		 d->backoff);
}

static void rescan(struct daemon *d)
{
	if (pulse_scan(d->db, &d->cfg) < 0) { /* first: the ideas it writes are scanned next */
		note(-1, "pulse.scan");
		retry_later(d, err_msg());
	}
	if (ingest_scan(d->db, &d->cfg) < 0) {
		note(-1, "ingest.scan");
		retry_later(d, err_msg());
	}
	note(review_scan(d->db, &d->cfg), "review.scan");
}

/* The ideas of one read of the inotify queue are accepted as one group. */
static void on_inotify(struct daemon *d)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(d->ino, buf, sizeof buf)) > 0) {
		char *ideas[sizeof buf / sizeof(struct inotify_event)];
		int nideas = 0;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				if (!d->rescan)
					log_warn(NULL, NULL, "inotify.overflow",
						 "the kernel's inotify queue overflowed (fs.inotify.max_queued_events); "
						 "rescanning the spool so nothing is missed");
				d->rescan = 1;
				continue;
			}
			if (!ev->len) continue;
			/* An event is a hint: ingest_file re-checks the file itself. */
			if (ev->wd == d->wd_incoming) {
				ideas[nideas++] = ev->name;
			} else if (ev->wd == d->wd_pulse) {
				if (pulse_file(d->db, &d->cfg, ev->name) < 0) {
					log_error(NULL, NULL, "pulse.error", "spool/pulse/%s: %s", ev->name, err_msg());
					retry_later(d, "a pulse file could not be taken");
				}
			} else {
				for (size_t i = 0; i < d->ngates; i++)
					if (ev->wd == d->wd_gate[i])
						(void)!review_file(d->db, &d->cfg, d->gates[i], ev->name);
			}
		}
		if (ingest_batch(d->db, &d->cfg, ideas, nideas) > 0) retry_later(d, "an idea could not be ingested");
	}
}

static struct run *run_by_pid(struct daemon *d, pid_t pid)
{
	for (int i = 0; i < d->nruns; i++)
		if (d->runs[i].pid == pid) return &d->runs[i];
	return NULL;
}

static void reap(struct daemon *d)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct run *r = run_by_pid(d, pid);
		if (!r) continue;
		epoll_ctl(d->ep, EPOLL_CTL_DEL, r->fd, NULL);
		if (worker_finish(d->db, &d->cfg, r, status) < 0 && d->nunrecorded < MAX_RUNS) {
			memcpy(d->unrecorded[d->nunrecorded++], r->job.episode_id, sizeof r->job.episode_id);
			retry_later(d, "a finished stage could not be recorded; it will run again");
		}
		*r = d->runs[--d->nruns];
	}
}

/* Channels whose files are broken are left out; say which and why. */
static void log_load_errors(const struct config *c)
{
	if (c->load_errors && *c->load_errors)
		log_warn(NULL, NULL, "config.channel_errors", "channels left out:\n%s", c->load_errors);
}

static void reload(struct daemon *d)
{
	struct config fresh;
	if (config_load(&fresh, d->cfg.root) < 0 || db_sync_channels(d->db, &fresh) < 0) {
		log_error(NULL, NULL, "daemon.reload", "keeping the old configuration: %s", err_msg());
		return;
	}
	config_free(&d->cfg);
	d->cfg = fresh;
	free(d->metrics_last); /* metrics_file may have moved: write it afresh */
	d->metrics_last = NULL;
	d->published_at = 0;
	log_load_errors(&d->cfg);
	hold_release_due(d->db, &d->cfg); /* a raised budget releases held work at once */
	log_info(NULL, NULL, "daemon.reloaded", "configuration reloaded: %zu channel(s)", d->cfg.nch);
}

static int count_held(sqlite3 *db)
{
	sqlite3_stmt *st = db_prep(db, "SELECT COUNT(*) FROM episodes WHERE state = 'held'", NULL);
	int n = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return n;
}

/* A number that changes whenever the database does: this connection's
 * changes plus SQLite's data_version (commits by other connections: the CLI). */
static int64_t db_generation(sqlite3 *db)
{
	sqlite3_stmt *st = db_prep(db, "PRAGMA data_version", NULL);
	int64_t v = st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return (v << 32) + sqlite3_total_changes64(db);
}

/* What outside watchers see, brought up to date once per loop turn after the
 * database changed: the metrics file and the service manager's STATUS= line,
 * each only when it is wanted and only when its text changed. */
static void publish_state(struct daemon *d)
{
	int64_t gen;
	if (!d->cfg.global || (!json_str(d->cfg.global, "metrics_file", NULL) && !getenv("NOTIFY_SOCKET"))) return;
	if ((gen = db_generation(d->db)) == d->published_at && d->published_at) return;
	d->published_at = gen;
	if (metrics_write(d->db, &d->cfg, &d->metrics_last) < 0)
		log_error(NULL, NULL, "metrics.write", "%s", err_msg());
	if (getenv("NOTIFY_SOCKET")) notify_status(d->nruns, sched_pending(d->db), count_held(d->db));
}

static void on_signal(struct daemon *d)
{
	struct signalfd_siginfo si;
	while (read(d->sig, &si, sizeof si) == (ssize_t)sizeof si) {
		switch (si.ssi_signo) {
		case SIGCHLD: reap(d); break;
		case SIGHUP: d->reload = 1; break;
		case SIGUSR1: d->wake = 1; break;
		default:
			if (d->stopping) { /* second request: stop now, work is requeued at start-up */
				for (int i = 0; i < d->nruns; i++) {
					d->runs[i].killed_for_stop = 1;
					kill(-d->runs[i].pid, SIGKILL);
				}
				d->stopping = 2;
			} else {
				d->stopping = 1;
				notify_send("STOPPING=1");
				log_info(NULL, NULL, "daemon.stopping",
					 "stopping: %d running stage(s) will finish first; "
					 "signal again to stop at once",
					 d->nruns);
			}
		}
	}
}

/* Kills children whose episode was cancelled from the CLI. */
static void check_cancelled(struct daemon *d)
{
	for (int i = 0; i < d->nruns; i++) {
		sqlite3_stmt *st = db_get(d->db, "SELECT status FROM jobs WHERE id = ?", "s", d->runs[i].job.id);
		if (st && sqlite3_step(st) == SQLITE_ROW &&
		    strcmp((const char *)sqlite3_column_text(st, 0), "running")) {
			d->runs[i].killed_for_cancel = 1;
			kill(-d->runs[i].pid, SIGKILL);
		}
		db_done(st);
	}
}

/* A wall-clock deadline passed, or the clock was set (read fails with
 * ECANCELED): either way look again at what is due; arm_timer re-arms. */
static void on_wall(struct daemon *d)
{
	uint64_t x;
	if (read(d->wall, &x, sizeof x) < 0 && errno == ECANCELED)
		log_info(NULL, NULL, "clock.set",
			 "the system clock was set; retry deadlines and holds are measured against the new time");
	hold_release_due(d->db, &d->cfg);
}

static void on_timer(struct daemon *d)
{
	uint64_t x;
	double now = time_mono();
	if (read(d->tim, &x, sizeof x) < 0) { /* spurious: nothing to read */
	}
	hold_release_due(d->db, &d->cfg);
	if (d->retry_at > 0 && now >= d->retry_at) {
		int kept = 0;
		d->retry_at = 0;
		d->rescan = 1;
		for (int i = 0; i < d->nunrecorded; i++)
			if (pipeline_requeue(d->db, &d->cfg, d->unrecorded[i],
					     "its end could not be recorded (disk full?)"))
				memmove(d->unrecorded[kept++], d->unrecorded[i], 37);
		if ((d->nunrecorded = kept) > 0) retry_later(d, "a finished stage still cannot be recorded");
	}
	for (int i = 0; i < d->nruns; i++)
		if (!d->runs[i].timed_out && now >= d->runs[i].deadline) {
			d->runs[i].timed_out = 1;
			kill(-d->runs[i].pid, SIGKILL);
			kill(d->runs[i].pid, SIGKILL);
		}
}

static void dispatch(struct daemon *d)
{
	struct job_ref j;
	int limit = d->o->jobs < MAX_RUNS ? d->o->jobs : MAX_RUNS;
	while (!d->stopping && d->nruns < limit && sched_pick(d->sched, d->db, &j)) {
		struct run *r = &d->runs[d->nruns];
		int rc = hold_gate(d->db, &d->cfg, &j); /* 1: held instead of started */
		if (rc > 0) continue;
		if (rc < 0) { /* picking it again now would spin */
			retry_later(d, err_msg());
			break;
		}
		if (worker_start(d->db, &d->cfg, &j, r) < 0) {
			char *why = xstrdup(err_msg());
			int resource = err_kind() == ERR_IOERR ||
				err_kind() == ERR_TEMPFAIL; /* not the episode's fault */
			log_error(j.episode_id, NULL, "stage.start", "%s: %s", j.stage, why);
			rc = resource ? -1 : pipeline_fail(d->db, &d->cfg, &j, why);
			if (rc < 0) { /* still queued: not again before the next event or the retry */
				retry_later(d, why);
				free(why);
				break;
			}
			free(why);
			continue;
		}
		d->backoff = 0;
		d->nruns++;
		add_fd(d, r->fd, TAG_RUN + (uint64_t)r->pid);
	}
}

/* The monotonic timer: the nearest stage timeout or resource retry, which
 * are intervals and must not move when someone sets the clock. */
static void arm_mono(struct daemon *d)
{
	struct itimerspec its = { 0 };
	double next = 0;
	for (int i = 0; i < d->nruns; i++)
		if (!d->runs[i].timed_out && (next == 0 || d->runs[i].deadline < next)) next = d->runs[i].deadline;
	if (d->retry_at > 0 && (next == 0 || d->retry_at < next)) next = d->retry_at;
	if (next > 0) {
		double in = next - time_mono();
		if (in < 0.001) in = 0.001;
		its.it_value.tv_sec = (time_t)in;
		its.it_value.tv_nsec = (long)((in - (double)(time_t)in) * 1e9);
	}
	timerfd_settime(d->tim, 0, &its, NULL);
}

/* The wall-clock timer: the nearest retry deadline or hold release, which
 * are times of day.  It is absolute and cancelled when the clock is set
 * (TFD_TIMER_CANCEL_ON_SET), so a clock jumped forward releases what is now
 * due at once and a clock set back delays nothing past its time.  With no
 * deadline it is armed far ahead only to hear of such a jump. */
static void arm_wall(struct daemon *d)
{
	double retry = sched_next_deadline(d->db), release = hold_next_release(d->db);
	if (release > 0 && (retry == 0 || release < retry)) retry = release;
	if (retry <= 0) retry = time_now() + WALL_FAR_AHEAD;
	struct itimerspec its = { .it_value = { (time_t)retry, (long)((retry - (double)(time_t)retry) * 1e9) } };
	timerfd_settime(d->wall, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL);
}

static void arm_timer(struct daemon *d)
{
	arm_mono(d);
	arm_wall(d);
}

static int startup(struct daemon *d, const char *root)
{
	int rc = daemon_lock(root, &d->lock);
	if (rc != 0) return rc < 0 ? -1 : 1;
	if (config_load(&d->cfg, root) < 0) return -1;
	log_load_errors(&d->cfg);
	if (spool_init_dirs(root) < 0 || !(d->db = db_open(root, 1)) || db_sync_channels(d->db, &d->cfg) < 0) return -1;
	if (setup_fds(d) < 0) return -1;
	db_checkpoint_aside(d->db, root);
	tmpclean_startup(&d->cfg);
	note(pipeline_requeue_running(d->db, &d->cfg), "daemon.requeue");
	note(ingest_finish_pending(d->db, &d->cfg), "ingest.finish");
	hold_release_due(d->db, &d->cfg);
	note(spool_reconcile(d->db, root), "spool.reconcile");
	rescan(d);
	d->sched = sched_new();
	/* Start-up read far more than an event does: give the pages back before idling. */
	sqlite3_db_release_memory(d->db);
	malloc_trim(0);
	/* From here the heap keeps up to 1 MB free at its top and serves blocks up to
	 * 1 MB itself: each stage transition allocates and frees a few hundred KB
	 * (SQLite's ephemeral tables for the CHECK ... IN lists), and glibc's defaults
	 * gave it back with brk and faulted it in again every time (~12 % of the
	 * daemon's CPU per transition). */
	mallopt(M_TRIM_THRESHOLD, 1 << 20);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	notify_send("READY=1"); /* start-up reconciliation is done */
	log_info(NULL, NULL, "daemon.started", "acog-batch %s on %s: %zu channel(s), up to %d stage(s) at once%s",
		 ACOG_VERSION, root, d->cfg.nch, d->o->jobs, d->o->drain ? ", draining" : "");
	return 0;
}

static void loop_once(struct daemon *d)
{
	struct epoll_event evs[32];
	int n;
	dispatch(d);
	arm_timer(d);
	publish_state(d);
	/* EINTR (a debugger or strace attaching) is not an event: wait again. */
	do n = epoll_wait(d->ep, evs, 32, -1);
	while (n < 0 && errno == EINTR);
	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64;
		if (tag == TAG_INO)
			on_inotify(d);
		else if (tag == TAG_SIG)
			on_signal(d);
		else if (tag == TAG_TIM)
			on_timer(d);
		else if (tag == TAG_WALL)
			on_wall(d);
		else {
			struct run *r = run_by_pid(d, (pid_t)(tag - TAG_RUN));
			if (r) {
				worker_read(r);
				if (evs[i].events & (EPOLLHUP | EPOLLERR)) epoll_ctl(d->ep, EPOLL_CTL_DEL, r->fd, NULL);
			}
		}
	}
	if (d->reload) {
		d->reload = 0;
		reload(d);
	}
	if (d->rescan) {
		d->rescan = 0;
		rescan(d);
	}
	if (d->wake) {
		d->wake = 0;
		check_cancelled(d);
		note(review_scan(d->db, &d->cfg), "review.scan");
		hold_release_due(d->db, &d->cfg);
	}
}

int daemon_run(const char *root, const struct daemon_opts *o)
{
	struct daemon d;
	int rc;
	memset(&d, 0, sizeof d);
	d.o = o;
	d.lock = d.ep = d.ino = d.sig = d.tim = -1;
	rc = startup(&d, root);
	if (rc != 0) {
		fprintf(stderr, "acog-batch: %s\n", err_msg());
		rc = rc > 0 ? EXIT_TEMPFAIL : err_exit(EXIT_SOFTWARE); /* a busy database: 75 */
		goto out;
	}
	for (;;) {
		if (d.stopping && d.nruns == 0) break;
		if (o->drain && d.nruns == 0) {
			dispatch(&d);
			if (d.nruns == 0 && sched_pending(d.db) == 0) break;
		}
		loop_once(&d);
	}
	note(spool_mark_clean(d.db), "spool.mark");
	publish_state(&d); /* what the last turn changed */
	log_info(NULL, NULL, "daemon.stopped", "stopped cleanly");
	rc = EXIT_OK;
out:
	free(d.metrics_last);
	if (d.db) db_close(d.db);
	sched_free(d.sched);
	config_free(&d.cfg);
	for (int i = 0; i < 4; i++) {
		int fds[4] = { d.ep, d.ino, d.sig, d.tim };
		if (fds[i] >= 0) close(fds[i]);
	}
	if (d.lock >= 0) close(d.lock);
	return rc;
}
