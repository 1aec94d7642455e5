/*
 * worker.c - running one stage in a child process.  The child is a fresh
 * program (`acog-batch __stage`, execve of this binary): its input is one
 * JSON document on fd 0 (a memfd), its answer one JSON "result" line on the
 * pipe at fd 3 (stage_child.c).  It is started with posix_spawn: its own
 * process group (a timeout kills it and everything it started), an empty
 * signal mask, and no other descriptor of the daemon's (closefrom); it
 * arms SIGKILL-when-the-daemon-dies (PR_SET_PDEATHSIG) itself.  A child that crashes, hangs
 * or exits without a result fails its job, never the daemon.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "provider.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct child_input {
	struct stage_ctx ctx;
	cJSON *provider;
	cJSON *idea;
	char *episode_dir;
	char *notes;
	cJSON *state;
};

static int load_input(sqlite3 *db, struct config *c, const struct job_ref *j, struct channel **ch,
		      struct child_input *in)
{
	struct episode e;
	char *p;
	memset(in, 0, sizeof *in);
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return -1;
	*ch = config_channel(c, e.channel);
	if (!*ch) {
		episode_free(&e);
		return err_set("channel %s failed to load; fix channels/%s/channel.yaml (see `acog-batch doctor`)",
			       e.channel, e.channel);
	}
	p = xasprintf("%s/idea.json", e.dir);
	in->idea = json_load_file(p, IDEA_MAX_BYTES);
	free(p);
	if (!in->idea) in->idea = cJSON_CreateObject();
	in->provider = config_provider(*ch, j->stage);
	in->episode_dir = xstrdup(e.dir);
	in->notes = e.review_notes ? xstrdup(e.review_notes) : NULL;
	episode_free(&e);
	return 0;
}

static void free_input(struct child_input *in)
{
	cJSON_Delete(in->provider);
	cJSON_Delete(in->idea);
	cJSON_Delete(in->state);
	free(in->episode_dir);
	free(in->notes);
}

/* What the stage's provider stored so far (stagedb.c writes it). */
static cJSON *provider_state(sqlite3 *db, const struct job_ref *j)
{
	sqlite3_stmt *st = db_get(db,
				  "SELECT json_group_object(key, value) FROM provider_state"
				  " WHERE episode_id = ? AND stage = ?",
				  "ss", j->episode_id, j->stage);
	cJSON *o = st && sqlite3_step(st) == SQLITE_ROW ? cJSON_Parse((const char *)sqlite3_column_text(st, 0)) : NULL;
	db_done(st);
	return cJSON_IsObject(o) ? o : (cJSON_Delete(o), cJSON_CreateObject());
}

/* The stage input as a sealed in-memory file the child reads on fd 0. */
static int input_memfd(const struct stage_ctx *ctx)
{
	cJSON *doc = stage_input_json(ctx);
	char *text = json_print(doc);
	size_t len = strlen(text);
	int fd = memfd_create("acog-stage-input", MFD_CLOEXEC);
	cJSON_Delete(doc);
	if (fd < 0) {
		free(text);
		return err_set_errno("cannot create the stage input");
	}
	if (fsio_write_all(fd, text, len) < 0) {
		err_set_errno("cannot write the stage input");
		free(text);
		close(fd);
		return -1;
	}
	free(text);
	if (lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return err_set_errno("cannot rewind the stage input");
	}
	return fd;
}

/* posix_spawn (vfork semantics): the daemon's memory is never copied, and
 * no child ever holds the daemon's descriptors (acog.lock among them) after
 * the daemon is gone.  The child gets its own process group, an empty signal
 * mask, SIGPIPE and SIGIO (ignored by the daemon) at their default, the input on fd 0, the report pipe on fd 3,
 * and nothing else; it arms PR_SET_PDEATHSIG itself (stage_child.c). */
static int spawn_child(int in, int out, pid_t *pid)
{
	static char *const argv[] = { "acog-batch", "__stage", NULL };
	extern char **environ;
	const char *exe;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	int rc;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGIO);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setsigmask(&at, &none); /* the daemon blocks signals for signalfd */
	posix_spawnattr_setsigdefault(&at, &dfl);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, out, 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	/* the very file the daemon runs from; ACOG_STAGE_EXE names it instead under a wrapper
	 * whose /proc/self/exe is the wrapper itself (valgrind: tests/test_valgrind.py) */
	exe = getenv("ACOG_STAGE_EXE");
	rc = posix_spawn(pid, exe && *exe ? exe : "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		errno = rc;
		return err_set_errno("cannot start a stage");
	}
	return 0;
}

int worker_start(sqlite3 *db, struct config *c, const struct job_ref *j, struct run *r)
{
	struct child_input in;
	struct channel *ch;
	int pfd[2], mfd = -1;
	pid_t pid;

	if (load_input(db, c, j, &ch, &in) < 0) return -1;
	in.ctx = (struct stage_ctx){
		.root = c->root,
		.episode_id = j->episode_id,
		.episode_dir = in.episode_dir,
		.channel_dir = ch->dir,
		.stage = j->stage,
		.channel = ch->cfg,
		.global = c->global,
		.provider = in.provider,
		.idea = in.idea,
		.reviewer_notes = in.notes,
		.attempt = j->retry_count + 1,
		.job_id = j->id,
		.timeout_s = config_timeout(c, ch, j->stage),
	};
	in.ctx.state = in.state = provider_state(db, j);
	/* written now, not at ingest: the earlier episodes' plans exist only now */
	if (stage_reads(stage_find(j->stage), "context.json") &&
	    context_write(db, c->root, j->episode_id, in.episode_dir) < 0)
		goto fail;
	if ((mfd = input_memfd(&in.ctx)) < 0) goto fail;
	if (pipeline_start_job(db, c, j, json_str(in.provider, "name", "?")) < 0) goto fail;
	youtube_token_alert(c, ch, in.provider, j->episode_id);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		err_set_errno("cannot create a pipe");
		goto fail;
	}
	if (spawn_child(mfd, pfd[1], &pid) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		goto fail;
	}
	close(pfd[1]);
	close(mfd);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	memset(r, 0, sizeof *r);
	r->pid = pid;
	r->fd = pfd[0];
	r->job = *j;
	r->timeout_s = in.ctx.timeout_s;
	r->deadline = time_mono() + in.ctx.timeout_s;
	log_info(j->episode_id, in.episode_dir, "stage.started",
		 "%s started with provider %s (attempt %d, pid %d,"
		 " timeout %d s)",
		 j->stage, json_str(in.provider, "name", "?"), in.ctx.attempt, (int)pid, r->timeout_s);
	free_input(&in);
	return 0;
fail:
	if (mfd >= 0) close(mfd);
	free_input(&in);
	return -1;
}

void worker_read(struct run *r)
{
	char buf[65536];
	ssize_t n;
	while (r->fd >= 0 && (n = read(r->fd, buf, sizeof buf)) > 0) sb_add(&r->buf, buf, (size_t)n);
}

static cJSON *parse_lines(struct run *r)
{
	cJSON *result = NULL;
	char *line = r->buf.s, *nl;
	while (line && (nl = strchr(line, '\n')) != NULL) {
		cJSON *m;
		*nl = 0;
		m = cJSON_Parse(line);
		if (m && !strcmp(json_str(m, "type", ""), "result")) {
			cJSON_Delete(result);
			result = m;
		} else {
			cJSON_Delete(m);
		}
		line = nl + 1;
	}
	return result;
}

static void describe_death(struct run *r, int wstatus, char *out, size_t n)
{
	if (r->timed_out)
		snprintf(out, n,
			 "stage %s timed out after %d s and was killed; raise timeouts.%s in channel.yaml "
			 "if it needs longer",
			 r->job.stage, r->timeout_s, r->job.stage);
	else if (WIFSIGNALED(wstatus))
		snprintf(out, n, "stage %s crashed (killed by signal %d, %s)", r->job.stage, WTERMSIG(wstatus),
			 strsignal(WTERMSIG(wstatus)));
	else
		snprintf(out, n, "stage %s exited (status %d) without reporting a result", r->job.stage,
			 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
}

int worker_finish(sqlite3 *db, struct config *c, struct run *r, int wstatus)
{
	cJSON *res;
	char why[512];
	int rc = 0;

	worker_read(r);
	res = parse_lines(r);
	if (r->killed_for_cancel) {
		log_info(r->job.episode_id, NULL, "stage.cancelled",
			 "%s stopped because the episode was cancelled or paused", r->job.stage);
	} else if (!res && r->killed_for_stop) { /* our doing, not the stage's: no attempt used, no delay */
		log_info(r->job.episode_id, NULL, "stage.interrupted",
			 "%s was stopped with the daemon; it runs again at the next start", r->job.stage);
		rc = pipeline_retry_or_fail(db, c, &r->job, "stopped with the daemon", 0, 0);
	} else if (!res) {
		describe_death(r, wstatus, why, sizeof why);
		log_error(r->job.episode_id, NULL, "stage.crashed", "%s", why);
		if (r->job.retry_count >= 1) /* the same stage crashed before: say so now */
			alert_send(c, "stage_crashing", r->job.episode_id, "%s (attempt %d)", why,
				   r->job.retry_count + 1);
		rc = pipeline_retry_or_fail(db, c, &r->job, why, 0, 1);
	} else {
		int code = (int)json_num(res, "rc", STAGE_FAIL);
		const char *err = json_str(res, "error", "provider failed without saying why");
		if (code != STAGE_OK && pipeline_record_costs(db, c, &r->job, json_get(res, "costs")) < 0)
			log_error(r->job.episode_id, NULL, "cost.record", "%s", err_msg());
		if (code == STAGE_OK)
			rc = pipeline_complete(db, c, &r->job, res);
		else if (code == STAGE_RETRY)
			rc = pipeline_retry_or_fail(db, c, &r->job, err, json_num(res, "retry_after", 0), 1);
		else if (code == STAGE_PENDING)
			rc = pipeline_retry_or_fail(db, c, &r->job, "waiting for the provider",
						    json_num(res, "retry_after", 5), 0);
		else if (code == STAGE_HOLD)
			rc = pipeline_hold(db, c, &r->job, json_str(res, "hold.kind", ""),
					   json_num(res, "hold.until", 0), json_bool(res, "hold.channel", 0), err);
		else
			rc = pipeline_fail(db, c, &r->job, err);
	}
	if (rc < 0) log_warn(r->job.episode_id, NULL, "stage.record", "%s", err_msg());
	cJSON_Delete(res);
	if (r->fd >= 0) close(r->fd);
	r->fd = -1;
	sb_free(&r->buf);
	return rc < 0 ? -1 : 0;
}
