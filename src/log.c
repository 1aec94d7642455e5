/*
 * log.c - structured logging: one JSON object per line on stderr, carrying
 * the episode id as correlation id, and the same line appended to the
 * episode's own log.jsonl.  Every registered secret is replaced by
 * "[REDACTED]" before anything is written anywhere.
 */
#define _GNU_SOURCE
#include "base.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int to_stderr = 1;
static char **secrets;
static size_t nsecrets;

void log_set_stderr(int enabled)
{
	to_stderr = enabled;
}

void log_redact_add(const char *secret)
{
	if (!secret || strlen(secret) < 4) return;
	for (size_t i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0) return;
	secrets = xrealloc(secrets, (nsecrets + 1) * sizeof *secrets);
	secrets[nsecrets++] = xstrdup(secret);
}

static char *redact(const char *in)
{
	char *s = xstrdup(in);
	for (size_t i = 0; i < nsecrets; i++) {
		char *hit;
		while ((hit = strstr(s, secrets[i])) != NULL) {
			char *n = xasprintf("%.*s[REDACTED]%s", (int)(hit - s), s, hit + strlen(secrets[i]));
			free(s);
			s = n;
		}
	}
	return s;
}

static void append_line(int fd, const char *line)
{
	size_t len = strlen(line);
	/* One write per line so concurrent writers (daemon and stage child) never interleave. */
	if (write(fd, line, len) != (ssize_t)len) { /* logging must never stop the pipeline */
	}
}

/* Two system calls fewer per line: the process id is asked for once (and
 * again in a forked child), and the last few episodes' log.jsonl stay open
 * (O_APPEND, so the stage child's lines between ours still land in order).
 * An episode folder is never removed or replaced while acog-batch runs. */
#define OPEN_LOGS 8
static struct {
	char *dir;
	int fd;
} logs[OPEN_LOGS];
static size_t next_slot;
static pid_t pid;

static void pid_forget(void)
{
	pid = 0;
}

static pid_t log_pid(void)
{
	static int watching;
	if (!watching) watching = pthread_atfork(NULL, NULL, pid_forget) == 0;
	if (!pid) pid = getpid();
	return pid;
}

static int episode_log(const char *dir)
{
	char *p;
	size_t i;
	for (i = 0; i < OPEN_LOGS; i++)
		if (logs[i].dir && !strcmp(logs[i].dir, dir)) return logs[i].fd;
	i = next_slot++ % OPEN_LOGS; /* the oldest opened */
	if (logs[i].dir) close(logs[i].fd);
	free(logs[i].dir);
	logs[i].dir = NULL;
	p = xasprintf("%s/log.jsonl", dir);
	logs[i].fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	free(p);
	if (logs[i].fd >= 0) logs[i].dir = xstrdup(dir);
	return logs[i].fd;
}

void log_ev(const char *level, const char *episode_id, const char *episode_dir, const char *event, const char *fmt, ...)
{
	char ts[32], *msg, *raw, *line, *clean;
	va_list ap;
	cJSON *o = cJSON_CreateObject();

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) abort();
	va_end(ap);
	time_iso(time_now(), ts);
	cJSON_AddStringToObject(o, "ts", ts);
	cJSON_AddStringToObject(o, "level", level);
	cJSON_AddStringToObject(o, "event", event);
	if (episode_id) cJSON_AddStringToObject(o, "episode", episode_id);
	cJSON_AddNumberToObject(o, "pid", log_pid());
	cJSON_AddStringToObject(o, "msg", msg);
	raw = json_print(o);
	clean = redact(raw);
	line = xasprintf("%s\n", clean);
	if (to_stderr) append_line(2, line);
	if (episode_dir) {
		int fd = episode_log(episode_dir);
		if (fd >= 0) append_line(fd, line);
	}
	free(line);
	free(clean);
	free(raw);
	free(msg);
	cJSON_Delete(o);
}
