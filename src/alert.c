/*
 * alert.c - optional webhook alerts (Discord or Slack) from the daemon.
 *
 * Job: when acog.yaml has alerts.webhook_url_env or alerts.webhook_url_file,
 * post one short message about an episode that failed, a budget warning or
 * hold, or a stage that keeps crashing.
 *
 * Invariants:
 *  - an alert never blocks or fails anything: the message is built in the
 *    caller, then a double fork hands it to a detached grandchild (its own
 *    session, every inherited descriptor but stdin/stdout/stderr closed,
 *    signals back to default, killed by alarm() after 150 s).  The caller
 *    only waits for the middle child, which exits at once;
 *  - the webhook URL carries its token, so it is registered for redaction
 *    and never written to a log; a URL file obeys the key-file rules
 *    (regular file, not a symlink, mode 0600 or 0400);
 *  - Discord: {"content" (at most 2000 characters), "username",
 *    "allowed_mentions": {"parse": []}} so nobody is pinged; Slack: {"text"};
 *  - delivery: 10 s per attempt, at most 3 attempts, 429 waits as the server
 *    says (http_request honours Retry-After), 400/404 are never retried;
 *    acog.yaml limits.webhook {rps, concurrency} hold as for a provider, and
 *    each attempt is one log line (event "http", the URL redacted).
 */
#define _GNU_SOURCE
#include "base.h"
#include "http.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DISCORD_MAX 2000
#define SLACK_MAX 3000

static const char *kind_label(const char *kind)
{
	static const char *const map[][2] = { { "episode_failed", "episode failed" },
					      { "budget_warning", "budget warning" },
					      { "budget_hold", "budget hold" },
					      { "stage_crashing", "stage keeps crashing" },
					      { "youtube_token_age", "YouTube token expires soon" },
					      { NULL, NULL } };
	for (int i = 0; map[i][0]; i++)
		if (strcmp(kind, map[i][0]) == 0) return map[i][1];
	return kind;
}

/* The URL, the URL without its query (as error messages show it) and its last
 * path segment (Discord's token) can never be printed. */
static void redact_url(const char *url)
{
	char *u = xstrdup(url), *slash;
	log_redact_add(u);
	u[strcspn(u, "?#")] = 0;
	log_redact_add(u);
	slash = strrchr(u, '/');
	if (slash && strlen(slash + 1) >= 8) log_redact_add(slash + 1);
	free(u);
}

/* The configured webhook URL, trimmed and registered for redaction; NULL when none or broken. */
static char *webhook_url(const struct config *c, int *configured)
{
	const char *var = json_str(c->global, "alerts.webhook_url_env", NULL);
	const char *file = json_str(c->global, "alerts.webhook_url_file", NULL);
	char *url = NULL, *path;
	size_t n;
	*configured = (var && *var) || (file && *file);
	if (var && *var) {
		url = getenv(var) && *getenv(var) ? xstrdup(getenv(var)) : NULL;
		if (!url) err_set("set %s in the daemon's environment (alerts.webhook_url_env)", var);
	} else if (file && *file) {
		path = file[0] == '/' ? xstrdup(file) : xasprintf("%s/%s", c->root, file);
		url = credential_read_file(path); /* the key-file rules: 0600, no symlink */
		free(path);
	}
	if (!url) return NULL;
	for (n = strlen(url); n > 0 && strchr(" \t\r\n", url[n - 1]);) url[--n] = 0;
	redact_url(url);
	if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) {
		err_set("the alerts webhook URL must start with https://");
		free(url);
		return NULL;
	}
	return url;
}

/* Cuts s to at most max characters (UTF-16 units, as Discord counts), marking the cut with "...". */
static void cut_chars(char *s, size_t max)
{
	size_t units = 0, i = 0, keep = 0;
	while (s[i]) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		units += len == 4 ? 2 : 1;
		if (units > max) break;
		if (units <= max - 3) keep = i + len;
		for (size_t k = 0; k < len && s[i]; k++) i++;
	}
	if (s[i]) strcpy(s + keep, "...");
}

static char *alert_body(const cJSON *global, const char *text)
{
	cJSON *o = cJSON_CreateObject();
	char *msg = xstrdup(text), *out;
	int slack = strcmp(json_str(global, "alerts.format", "discord"), "slack") == 0;
	cut_chars(msg, slack ? SLACK_MAX : DISCORD_MAX);
	if (slack) {
		cJSON_AddStringToObject(o, "text", msg);
	} else {
		cJSON_AddStringToObject(o, "content", msg);
		cJSON_AddStringToObject(o, "username", "acog-batch");
		cJSON_AddArrayToObject(cJSON_AddObjectToObject(o, "allowed_mentions"), "parse");
	}
	out = json_print(o);
	cJSON_Delete(o);
	free(msg);
	return out;
}

/* The detached grandchild: fresh session, default signals, only fds 0-2, then one POST. */
static void deliver(const struct config *c, const char *url, const char *body, const char *kind, const char *episode_id)
{
	const struct http_env env = { .root = c->root, .global = c->global, .episode_id = episode_id };
	static const char *const headers[] = { "Content-Type: application/json", NULL };
	struct http_req req = http_post("webhook", url, headers, body);
	struct http_resp resp;
	sigset_t none;
	int devnull = open("/dev/null", O_RDONLY);
	req.timeout_s = req.connect_timeout_s = 10;
	req.max_attempts = 3;
	req.max_response = 65536;
	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
	if (devnull >= 0) dup2(devnull, 0);
	if (close_range(3, ~0U, 0) < 0)
		for (int fd = 3; fd < 4096; fd++) close(fd);
	alarm(150);
	if (http_request(&env, &req, &resp) < 0)
		log_warn(episode_id, NULL, "alert.failed", "%s alert not delivered: %s", kind, resp.error);
	http_resp_free(&resp);
}

void alert_send(const struct config *c, const char *kind, const char *episode_id, const char *fmt, ...)
{
	va_list ap;
	char *msg, *text = NULL, *body = NULL, *url;
	int configured;
	pid_t pid;
	if (!c || !c->global) return;
	url = webhook_url(c, &configured);
	if (!url) {
		if (configured) log_warn(episode_id, NULL, "alert.failed", "%s alert not sent: %s", kind, err_msg());
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) abort();
	va_end(ap);
	text = xasprintf("acog-batch: %s%s%s: %s", kind_label(kind), episode_id ? " - episode " : "",
			 episode_id ? episode_id : "", msg);
	body = alert_body(c->global, text);
	pid = fork();
	if (pid == 0) {
		if (fork() == 0) {
			deliver(c, url, body, kind, episode_id);
			_exit(0);
		}
		_exit(0);
	}
	if (pid < 0)
		log_warn(episode_id, NULL, "alert.failed", "%s alert not sent: fork: %s", kind, strerror(errno));
	else
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
	free(body);
	free(text);
	free(msg);
	free(url);
}
