/*
 * prov_command.c - the `command` provider, usable for any stage: "smart
 * orchestrator, dumb scripts".  The program named by providers.<stage>.argv
 * gets one JSON request on stdin, runs with the episode folder as its
 * working directory, and answers one JSON object on stdout:
 *   {"files": {"name": "text"}, "outputs": [{type,path,mime,duration_ms}],
 *    "costs": [{provider,operation,units,unit_type,cost_usd}],
 *    "error": "...", "retry_after": seconds,
 *    "hold": {"kind", "until", "channel"}}              (all optional)
 * Exit 0 = done, 75 (EX_TEMPFAIL) = try again later, anything else = failed;
 * a reply with "hold" (whatever the exit status) holds the episode instead
 * (STAGE_HOLD), with "error" as the reason.
 *
 * Invariants:
 *  - The program is run through proc_run: execve with an argument vector,
 *    never a shell; argv[0] relative paths resolve against the channel folder.
 *  - Files it returns land atomically in the episode folder and only there:
 *    each name must be a single path component, and idea.json / log.jsonl
 *    (the daemon's own) are refused.
 *  - Success is only reported when every file the stage must produce (its
 *    required outputs in the stage table) exists.
 *  - Its stderr never reaches the daemon's stderr raw: it is kept in an
 *    unnamed temporary file and logged line by line (log.c redacts secrets).
 */
#define _GNU_SOURCE
#include "provider.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD_STDERR_LOG_BYTES 65536 /* logged from the start of stderr */
#define CMD_STDERR_LOG_LINES 200
#define CMD_TAIL_BYTES 4096 /* where the last line is looked for */
#define CMD_DEFAULT_TIMEOUT 600

/* clang-format off: a table keeps one row per line */
const struct provider_opt command_opts[] = {
	{ "argv", OPT_ARRAY, NULL, 0, 0, NULL, "the program and its arguments, run without a shell" },
	{ "timeout", OPT_NUMBER, NULL, 1, 86400, NULL, "seconds before the program is killed (default: the stage's)" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

/* argv: a non-empty list of strings, the program first.  Checked when the
 * channel loads (the registry row) and again before a run. */
int command_check(const cJSON *opts)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(opts, "argv"), *it;
	int i = 0;

	if (!cJSON_IsArray(a) || !cJSON_GetArraySize(a))
		return err_set("the command provider needs argv: a list like [./tools/plan.sh, --fast]");
	cJSON_ArrayForEach (it, a) {
		if (!cJSON_IsString(it) || (i == 0 && !*it->valuestring))
			return err_set("argv[%d] must be a%s string (quote numbers)", i, i ? "" : " non-empty");
		i++;
	}
	return 0;
}

/* Everything one run collects; freed in one place. */
struct command_run {
	const char **argv;
	char *argv0; /* resolved program path */
	char *request;
	struct sbuf out;
	int err_fd;
	char last[512]; /* last non-empty stderr line */
	cJSON *reply;
};

static const char *provider_name(const struct stage_ctx *ctx)
{
	return json_str(ctx->provider, "name", "command");
}

/* argv from the provider options; NULL-terminated, strings borrowed from
 * ctx->provider except argv[0], which may be resolved. */
static enum stage_rc command_argv(struct stage_ctx *ctx, struct command_run *r)
{
	const cJSON *a = json_get(ctx->provider, "argv"), *it;
	int n = cJSON_GetArraySize(a), i = 0;

	if (command_check(ctx->provider) < 0)
		return stage_fail(ctx, STAGE_FAIL, "providers.%s: %s", ctx->stage, err_msg());
	r->argv = xcalloc((size_t)n + 1, sizeof *r->argv);
	cJSON_ArrayForEach (it, a) r->argv[i++] = it->valuestring;
	if (strchr(r->argv[0], '/') && r->argv[0][0] != '/')
		r->argv0 = xasprintf("%s/%s", ctx->channel_dir, r->argv[0]);
	else
		r->argv0 = xstrdup(r->argv[0]);
	r->argv[0] = r->argv0;
	return STAGE_OK;
}

/* The request's keys: the stage_ctx field each comes from, then its name on the wire. */
/* clang-format off: a table keeps one row per line */
static const char *const request_fields[][2] = { { "stage", "stage" },
						 { "episode_id", "episode_id" },
						 { "episode_dir", "episode_dir" },
						 { "channel_dir", "channel_dir" },
						 { "channel", "channel" },
						 { "idea", "idea" },
						 { "provider", "provider" },
						 { "reviewer_notes", "reviewer_notes" },
						 { "attempt", "attempt" },
						 { "state", "provider_state" },
						 { NULL, NULL } };
/* clang-format on */

static char *command_request(const struct stage_ctx *ctx)
{
	cJSON *q = cJSON_CreateObject(), *exp;
	char *s;

	for (size_t i = 0; request_fields[i][0]; i++) stage_ctx_put(q, ctx, request_fields[i][0], request_fields[i][1]);
	exp = cJSON_AddArrayToObject(q, "outputs_expected");
	for (const struct stage_file *f = stage_find(ctx->stage)->outputs; f->name; f++)
		if (f->required) cJSON_AddItemToArray(exp, cJSON_CreateString(f->name));
	s = json_print(q);
	cJSON_Delete(q);
	return s;
}

/* An unnamed file in the episode folder: nothing to clean up after a crash. */
static int command_stderr_open(const struct stage_ctx *ctx)
{
	int fd = open(ctx->episode_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	char *name, *tmp;

	if (fd >= 0) return fd;
	name = xasprintf("%s/command-stderr", ctx->episode_dir);
	tmp = fsio_tmp_name(name);
	fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		unlink(tmp);
	else
		err_set_errno("cannot create a temporary file in %s", ctx->episode_dir);
	free(name);
	free(tmp);
	return fd;
}

static ssize_t pread_all(int fd, char *buf, size_t len, off_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, off + (off_t)got);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Log the first lines of stderr; remember the last non-empty line. */
static void command_stderr_collect(struct stage_ctx *ctx, struct command_run *r)
{
	struct stat st;
	char *buf, *line, *save = NULL;
	size_t size, n;
	int lines = 0;

	if (r->err_fd < 0 || fstat(r->err_fd, &st) < 0 || st.st_size == 0) return;
	size = (size_t)st.st_size;
	n = size < CMD_STDERR_LOG_BYTES ? size : CMD_STDERR_LOG_BYTES;
	buf = xmalloc(n + 1);
	buf[pread_all(r->err_fd, buf, n, 0)] = 0;
	for (line = strtok_r(buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
		if (lines++ < CMD_STDERR_LOG_LINES) stage_log(ctx, "info", "%s: %s", provider_name(ctx), line);
	if (lines > CMD_STDERR_LOG_LINES || size > n)
		stage_log(ctx, "info", "%s: (stderr was %zu bytes; only the start is logged)", provider_name(ctx),
			  size);
	free(buf);
	n = size < CMD_TAIL_BYTES ? size : CMD_TAIL_BYTES;
	buf = xmalloc(n + 1);
	buf[pread_all(r->err_fd, buf, n, (off_t)(size - n))] = 0;
	for (line = strtok_r(buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
		if (line[strspn(line, " \t")]) snprintf(r->last, sizeof r->last, "%s", line);
	free(buf);
}

/* The reply, or NULL with *why set.  Empty stdout counts as {}. */
static cJSON *command_parse_reply(struct command_run *r, const char **why)
{
	const char *s = r->out.s ? r->out.s : "";
	cJSON *j;

	if (!s[strspn(s, " \t\r\n")]) return cJSON_CreateObject();
	if (memchr(s, 0, r->out.len) || !utf8_valid(s, r->out.len)) return *why = "stdout is not UTF-8 text", NULL;
	if (!(j = cJSON_ParseWithLength(s, r->out.len))) return *why = "stdout is not valid JSON", NULL;
	if (!cJSON_IsObject(j)) return cJSON_Delete(j), *why = "stdout is JSON but not an object", NULL;
	return j;
}

static enum stage_rc command_write_files(struct stage_ctx *ctx, const char *who, const cJSON *files)
{
	const cJSON *f;
	char *path;
	int rc;

	if (files && !cJSON_IsObject(files))
		return stage_fail(ctx, STAGE_FAIL,
				  "%s: \"files\" must be an object of "
				  "name: text",
				  who);
	cJSON_ArrayForEach (f, files) {
		if (!path_component_ok(f->string) || !strcmp(f->string, "idea.json") ||
		    !strcmp(f->string, "log.jsonl") || !cJSON_IsString(f))
			return stage_fail(ctx, STAGE_FAIL,
					  "%s: files[\"%.100s\"] refused: names must "
					  "be plain file names (not idea.json or log.jsonl) with "
					  "text content",
					  who, f->string);
		path = xasprintf("%s/%s", ctx->episode_dir, f->string);
		rc = fsio_write_atomic_str(path, f->valuestring);
		free(path);
		if (rc < 0) return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	}
	return STAGE_OK;
}

/* A relative path inside the episode folder ("broll/seg1.mp4" is fine). */
static int rel_path_ok(const char *p)
{
	const char *s = p;

	if (!*p || *p == '/' || strlen(p) > 1000) return 0;
	for (; s; s = strchr(s, '/') ? strchr(s, '/') + 1 : NULL)
		if (!strncmp(s, "..", 2) && (s[2] == '/' || !s[2])) return 0;
	return 1;
}

/* Duration of a media asset in ms, or -1 (not audio or video by the stage
 * table's mime type, or ffprobe failed). */
static long media_ms(const struct stage_ctx *ctx, const char *rel, const char *type)
{
	const struct stage_file *f = stage_output_find(NULL, type);
	char *path;
	double d;

	if (!f || !f->mime || (strncmp(f->mime, "audio/", 6) && strncmp(f->mime, "video/", 6))) return -1;
	path = xasprintf("%s/%s", ctx->episode_dir, rel);
	d = media_duration(path);
	free(path);
	return d < 0 ? -1 : lround(d * 1000.0);
}

/* A regular file (not a symlink that could point out of the folder). */
static int episode_file_ok(const struct stage_ctx *ctx, const char *rel)
{
	char *path = xasprintf("%s/%s", ctx->episode_dir, rel);
	struct stat st;
	int ok = lstat(path, &st) == 0 && S_ISREG(st.st_mode);

	free(path);
	return ok;
}

static enum stage_rc bad_output(struct stage_ctx *ctx, const char *who, int i)
{
	char *types = stage_asset_types();

	stage_fail(ctx, STAGE_FAIL, "%s: outputs[%d] needs a type (%s) and a relative path", who, i, types);
	free(types);
	return STAGE_FAIL;
}

static enum stage_rc command_outputs(struct stage_ctx *ctx, const char *who, const cJSON *outs)
{
	const cJSON *o;
	int i = 0;

	if (outs && !cJSON_IsArray(outs)) return stage_fail(ctx, STAGE_FAIL, "%s: \"outputs\" must be a list", who);
	cJSON_ArrayForEach (o, outs) {
		const char *type = json_str(o, "type", ""), *path = json_str(o, "path", "");
		if (!stage_output_find(NULL, type) || !rel_path_ok(path)) return bad_output(ctx, who, i);
		if (!episode_file_ok(ctx, path))
			return stage_fail(ctx, STAGE_FAIL, "%s: outputs[%d]: %s/%s is not a regular file", who, i,
					  ctx->episode_dir, path);
		stage_output(ctx, type, path, json_str(o, "mime", "application/octet-stream"),
			     (long)json_num(o, "duration_ms", (double)media_ms(ctx, path, type)));
		i++;
	}
	return STAGE_OK;
}

static int already_reported(const struct stage_ctx *ctx, const char *path)
{
	const cJSON *o;

	cJSON_ArrayForEach (o, ctx->outputs)
		if (!strcmp(json_str(o, "path", ""), path)) return 1;
	return 0;
}

/* Every file the stage must leave exists; report the assets not yet listed. */
static enum stage_rc command_expected(struct stage_ctx *ctx, const char *who)
{
	const struct stage_file *out = stage_find(ctx->stage)->outputs, *f;
	struct sbuf missing = { 0 };
	enum stage_rc rc = STAGE_OK;

	for (f = out; f->name; f++)
		if (f->required && !episode_file_ok(ctx, f->name))
			sb_printf(&missing, "%s%s", missing.len ? ", " : "", f->name);
	if (missing.len) {
		rc = stage_fail(ctx, STAGE_FAIL,
				"%s exited 0 but did not create %s in %s; it must "
				"write them there or return them in \"files\"",
				who, missing.s, ctx->episode_dir);
		goto out;
	}
	for (f = out; f->name; f++)
		if (f->required && f->asset_type && !already_reported(ctx, f->name))
			stage_output(ctx, f->asset_type, f->name, f->mime, media_ms(ctx, f->name, f->asset_type));
out:
	sb_free(&missing);
	return rc;
}

static enum stage_rc command_costs(struct stage_ctx *ctx, const char *who, const cJSON *costs)
{
	const cJSON *c;

	if (costs && !cJSON_IsArray(costs)) return stage_fail(ctx, STAGE_FAIL, "%s: \"costs\" must be a list", who);
	cJSON_ArrayForEach (c, costs)
		stage_cost(ctx, json_str(c, "provider", provider_name(ctx)), json_str(c, "operation", ctx->stage),
			   json_num(c, "units", 0), json_str(c, "unit_type", "calls"), json_num(c, "cost_usd", 0));
	return STAGE_OK;
}

/* "hold": the stage cannot go on until a time or a person.  until is
 * ISO-8601 UTC or a number of seconds from now (absent: until a person
 * acts); channel true holds the stage for every episode of the channel. */
static enum stage_rc command_hold(struct stage_ctx *ctx, struct command_run *r, const cJSON *h)
{
	const cJSON *u = cJSON_GetObjectItem(h, "until");
	const char *why = json_str(r->reply, "error", "");
	double until = 0;
	if (!cJSON_IsObject(h) || !cJSON_IsString(cJSON_GetObjectItem(h, "kind")))
		return stage_fail(ctx, STAGE_FAIL, "%s: \"hold\" must be an object with a \"kind\"", r->argv[0]);
	if (cJSON_IsNumber(u))
		until = time_now() + u->valuedouble;
	else if (u && (!cJSON_IsString(u) || (until = time_parse_iso(u->valuestring)) < 0))
		return stage_fail(ctx, STAGE_FAIL,
				  "%s: hold.until must be an ISO-8601 UTC time or a number of "
				  "seconds from now",
				  r->argv[0]);
	return stage_hold(ctx, json_str(h, "kind", ""), until, json_bool(h, "channel", 0), "%s",
			  *why ? why : "held by the stage's command");
}

/* Exit 0: apply the reply.  Costs are recorded even when a later check
 * fails, because the paid work did happen. */
static enum stage_rc command_success(struct stage_ctx *ctx, struct command_run *r)
{
	const char *why = NULL, *err;
	enum stage_rc rc;

	if (!(r->reply = command_parse_reply(r, &why)))
		return stage_fail(ctx, STAGE_FAIL,
				  "%s exited 0 but its %s; it must print one JSON "
				  "object (or nothing)",
				  r->argv[0], why);
	if ((rc = command_costs(ctx, r->argv[0], json_get(r->reply, "costs"))) != STAGE_OK) return rc;
	if (json_get(r->reply, "hold")) return command_hold(ctx, r, json_get(r->reply, "hold"));
	if ((err = json_str(r->reply, "error", NULL)) && *err)
		return stage_fail(ctx, STAGE_FAIL, "%s exited 0 but reported an error: %s", r->argv[0], err);
	if ((rc = command_write_files(ctx, r->argv[0], json_get(r->reply, "files"))) != STAGE_OK ||
	    (rc = command_outputs(ctx, r->argv[0], json_get(r->reply, "outputs"))) != STAGE_OK)
		return rc;
	return command_expected(ctx, r->argv[0]);
}

/* Non-zero exit: 75 asks for a retry, anything else is a failure. */
static enum stage_rc command_failure(struct stage_ctx *ctx, struct command_run *r, int status)
{
	const char *why = NULL, *msg;

	r->reply = command_parse_reply(r, &why);
	msg = json_str(r->reply, "error", NULL);
	if (!msg || !*msg) msg = r->last[0] ? r->last : "no message on stdout or stderr";
	command_costs(ctx, r->argv[0], json_get(r->reply, "costs"));
	if (json_get(r->reply, "hold")) return command_hold(ctx, r, json_get(r->reply, "hold"));
	if (status == EXIT_TEMPFAIL) {
		ctx->retry_after = json_num(r->reply, "retry_after", 0);
		return stage_fail(ctx, STAGE_RETRY, "%s asked to be retried (exit 75): %s", r->argv[0], msg);
	}
	return stage_fail(ctx, STAGE_FAIL, "%s exited with status %d: %s", r->argv[0], status, msg);
}

enum stage_rc prov_command(struct stage_ctx *ctx)
{
	struct command_run r = { .err_fd = -1 };
	struct proc_opts o = { 0 };
	int status, timed_out = 0;
	enum stage_rc rc;

	if ((rc = command_argv(ctx, &r)) != STAGE_OK) goto out;
	if ((r.err_fd = command_stderr_open(ctx)) < 0) {
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
		goto out;
	}
	r.request = command_request(ctx);
	o.cwd = ctx->episode_dir;
	o.stdin_data = r.request;
	o.stdin_len = strlen(r.request);
	o.stdout_buf = &r.out;
	o.stderr_fd = r.err_fd;
	o.timeout_s = (int)json_num(ctx->provider, "timeout", ctx->timeout_s);
	if (o.timeout_s <= 0) o.timeout_s = CMD_DEFAULT_TIMEOUT;
	status = proc_run(r.argv, &o, &timed_out);
	command_stderr_collect(ctx, &r);
	if (status < 0 && timed_out)
		rc = stage_fail(ctx, STAGE_RETRY,
				"%s (raise providers.%s.timeout if it needs "
				"longer)%s%s",
				err_msg(), ctx->stage, r.last[0] ? "; last stderr line: " : "", r.last);
	else if (status < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "%s%s%s", err_msg(), r.last[0] ? "; last stderr line: " : "", r.last);
	else
		rc = status == 0 ? command_success(ctx, &r) : command_failure(ctx, &r, status);
out:
	if (r.err_fd >= 0) close(r.err_fd);
	cJSON_Delete(r.reply);
	sb_free(&r.out);
	free(r.request);
	free(r.argv0);
	free(r.argv);
	return rc;
}
