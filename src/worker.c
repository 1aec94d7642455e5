/*
 * worker.c - running one stage in a forked child.  The child is isolated:
 * its own process group (a timeout kills it and everything it started),
 * SIGKILL when the daemon dies (PR_SET_PDEATHSIG), no database handle use,
 * and one pipe back to the daemon carrying JSON lines: an async provider's
 * job id as soon as it exists, then one "result" line.  A child that
 * crashes, hangs or exits without a result fails its job, never the daemon.
 */
#define _GNU_SOURCE
#include "acog.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int worker_close_in_child[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };

struct child_input {
	struct stage_ctx ctx;
	cJSON *provider;
	cJSON *idea;
	char *episode_dir;
	char *notes;
	cJSON *jobs;
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
	cJSON_Delete(in->jobs);
	free(in->episode_dir);
	free(in->notes);
}

static char *provider_job_id(sqlite3 *db, const char *job)
{
	sqlite3_stmt *st = db_prep(db, "SELECT provider_job_id FROM jobs WHERE id = ?", "s", job);
	char *s = st && sqlite3_step(st) == SQLITE_ROW ? db_col_str(st, 0) : NULL;
	sqlite3_finalize(st);
	return s;
}

static void send_line(int fd, cJSON *o)
{
	char *s = json_print(o), *line = xasprintf("%s\n", s);
	if (write(fd, line, strlen(line)) < 0) _exit(EXIT_IOERR);
	free(line);
	free(s);
}

static void send_result(int fd, struct stage_ctx *ctx, enum stage_rc rc, const char *key)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "result");
	cJSON_AddNumberToObject(o, "rc", rc);
	cJSON_AddStringToObject(o, "provider", json_str(ctx->provider, "name", "?"));
	if (ctx->error[0]) cJSON_AddStringToObject(o, "error", ctx->error);
	if (ctx->retry_after > 0) cJSON_AddNumberToObject(o, "retry_after", ctx->retry_after);
	cJSON_AddItemToObject(o, "outputs", ctx->outputs ? ctx->outputs : cJSON_CreateArray());
	cJSON_AddItemToObject(o, "costs", ctx->costs ? ctx->costs : cJSON_CreateArray());
	if (key) cJSON_AddStringToObject(o, "input_hash", key);
	send_line(fd, o);
	cJSON_Delete(o);
}

static void child_main(struct child_input *in, int fd)
{
	sigset_t all;
	provider_fn fn;
	enum stage_rc rc;
	char key[65];
	cJSON *hit;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);   /* the daemon blocks signals for signalfd */
	signal(SIGPIPE, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1) _exit(EXIT_SOFTWARE);   /* the daemon is already gone */
	setpgid(0, 0);
	for (int i = 0; i < 8; i++)
		if (worker_close_in_child[i] >= 0) close(worker_close_in_child[i]);
	stage_report_fd = fd;
	if (chdir(in->episode_dir) < 0) {
		stage_fail(&in->ctx, STAGE_FAIL, "cannot enter %s: %s", in->episode_dir, strerror(errno));
		send_result(fd, &in->ctx, STAGE_FAIL, NULL);
		_exit(0);
	}
	cache_key(&in->ctx, key);
	if ((hit = cache_lookup(&in->ctx, key)) != NULL) {
		stage_log(&in->ctx, "info", "inputs unchanged since job %s: its result is reused, no provider call",
			  json_str(hit, "cached_from", "?"));
		cJSON_AddStringToObject(hit, "input_hash", key);
		cJSON_AddBoolToObject(hit, "cached", 1);
		send_line(fd, hit);
		_exit(0);
	}
	fn = provider_lookup(in->ctx.stage, json_str(in->provider, "name", ""));
	if (!fn) rc = stage_fail(&in->ctx, STAGE_FAIL, "no provider '%s' for stage %s",
				 json_str(in->provider, "name", ""), in->ctx.stage);
	else rc = fn(&in->ctx);
	if (rc == STAGE_OK) cache_seal(&in->ctx);
	send_result(fd, &in->ctx, rc, key);
	_exit(0);
}

int worker_start(sqlite3 *db, struct config *c, const struct job_ref *j, struct run *r)
{
	struct child_input in;
	struct channel *ch;
	cJSON *jobs;
	int pfd[2];
	pid_t pid;
	char *pjid;

	if (load_input(db, c, j, &ch, &in) < 0) return -1;
	pjid = provider_job_id(db, j->id);
	in.ctx = (struct stage_ctx){
		.root = c->root, .episode_id = j->episode_id, .episode_dir = in.episode_dir,
		.channel_dir = ch->dir, .stage = j->stage, .channel = ch->cfg, .global = c->global,
		.provider = in.provider, .idea = in.idea, .reviewer_notes = in.notes,
		.attempt = j->retry_count + 1, .provider_job_id = pjid, .job_id = j->id,
		.timeout_s = config_timeout(c, ch, j->stage),
	};
	jobs = pjid ? cJSON_Parse(pjid) : NULL;
	in.ctx.provider_jobs = jobs ? jobs : (jobs = cJSON_CreateObject());
	in.jobs = jobs;
	if (pipeline_start_job(db, j, json_str(in.provider, "name", "?")) < 0) goto fail;
	if (pipe2(pfd, O_CLOEXEC) < 0) { err_set_errno("cannot create a pipe"); goto fail; }
	pid = fork();
	if (pid < 0) { err_set_errno("cannot fork a stage"); close(pfd[0]); close(pfd[1]); goto fail; }
	if (pid == 0) { close(pfd[0]); child_main(&in, pfd[1]); }
	close(pfd[1]);
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);
	memset(r, 0, sizeof *r);
	r->pid = pid;
	r->fd = pfd[0];
	r->job = *j;
	r->timeout_s = in.ctx.timeout_s;
	r->deadline = time_mono() + in.ctx.timeout_s;
	log_info(j->episode_id, in.episode_dir, "stage.started", "%s started with provider %s (attempt %d, pid %d,"
		 " timeout %d s)", j->stage, json_str(in.provider, "name", "?"), in.ctx.attempt, (int)pid, r->timeout_s);
	free(pjid);
	free_input(&in);
	return 0;
fail:
	free(pjid);
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
		snprintf(out, n, "stage %s timed out after %d s and was killed; raise timeouts.%s in channel.yaml "
			 "if it needs longer", r->job.stage, r->timeout_s, r->job.stage);
	else if (WIFSIGNALED(wstatus))
		snprintf(out, n, "stage %s crashed (killed by signal %d, %s)", r->job.stage, WTERMSIG(wstatus),
			 strsignal(WTERMSIG(wstatus)));
	else
		snprintf(out, n, "stage %s exited (status %d) without reporting a result", r->job.stage,
			 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
}

void worker_finish(sqlite3 *db, struct config *c, struct run *r, int wstatus)
{
	cJSON *res;
	char why[512];
	int rc = 0;

	worker_read(r);
	res = parse_lines(r);
	if (r->killed_for_cancel) {
		log_info(r->job.episode_id, NULL, "stage.cancelled", "%s stopped because the episode was cancelled",
			 r->job.stage);
	} else if (!res) {
		describe_death(r, wstatus, why, sizeof why);
		log_error(r->job.episode_id, NULL, "stage.crashed", "%s", why);
		if (r->job.retry_count >= 1)   /* the same stage crashed before: say so now */
			alert_send(c, "stage_crashing", r->job.episode_id, "%s (attempt %d)", why, r->job.retry_count + 1);
		rc = pipeline_retry_or_fail(db, c, &r->job, why, 0, 1);
	} else {
		int code = (int)json_num(res, "rc", STAGE_FAIL);
		const char *err = json_str(res, "error", "provider failed without saying why");
		if (code != STAGE_OK && pipeline_record_costs(db, c, &r->job, json_get(res, "costs")) < 0)
			log_error(r->job.episode_id, NULL, "cost.record", "%s", err_msg());
		if (code == STAGE_OK) rc = pipeline_complete(db, c, &r->job, res);
		else if (code == STAGE_RETRY) rc = pipeline_retry_or_fail(db, c, &r->job, err, json_num(res, "retry_after", 0), 1);
		else if (code == STAGE_PENDING) rc = pipeline_retry_or_fail(db, c, &r->job, "waiting for the provider",
									    json_num(res, "retry_after", 5), 0);
		else rc = pipeline_fail(db, c, &r->job, err);
	}
	if (rc < 0) log_warn(r->job.episode_id, NULL, "stage.record", "%s", err_msg());
	cJSON_Delete(res);
	if (r->fd >= 0) close(r->fd);
	r->fd = -1;
	sb_free(&r->buf);
}
