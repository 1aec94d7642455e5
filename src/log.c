/*
 * log.c - structured logging: one JSON object per line on stderr, carrying
 * the episode id as correlation id, and the same line appended to the
 * episode's own log.jsonl.  Every registered secret is replaced by
 * "[REDACTED]" before anything is written anywhere.
 */
#define _GNU_SOURCE
#include "base.h"
#include <fcntl.h>
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
	cJSON_AddNumberToObject(o, "pid", getpid());
	cJSON_AddStringToObject(o, "msg", msg);
	raw = json_print(o);
	clean = redact(raw);
	line = xasprintf("%s\n", clean);
	if (to_stderr) append_line(2, line);
	if (episode_dir) {
		char *p = xasprintf("%s/log.jsonl", episode_dir);
		int fd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			append_line(fd, line);
			close(fd);
		}
		free(p);
	}
	free(line);
	free(clean);
	free(raw);
	free(msg);
	cJSON_Delete(o);
}
