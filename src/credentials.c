/*
 * credentials.c - API keys for the cloud providers.
 *
 * Job: read one secret named by the stage's provider options, either
 * <what>_env (the name of an environment variable of the daemon) or
 * <what>_file (a file under the root, or an absolute path).  `what` is the
 * option prefix: NULL or "api_key" gives api_key_env / api_key_file; a
 * provider with a second secret may use e.g. "client_secret".
 *
 * Invariants:
 *  - a key file is opened without following a symlink, must be a regular
 *    file of mode 0600 or 0400 (else "chmod 600 <path>"), at most 64 KiB;
 *    its trailing newline and blanks are stripped;
 *  - an empty key, or one holding a control character (a second line
 *    would become a second HTTP header), is refused;
 *  - every key is registered with log_redact_add() before it is returned,
 *    so no log line can ever print it.  The caller frees the key.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX (64 * 1024)

/* The options credential_get(ctx, NULL) reads; a provider with a second
 * secret lists its <what>_env / <what>_file in its own table. */
/* clang-format off: a table keeps one row per line */
const struct provider_opt credential_opts[] = { { "api_key_env", OPT_ENV_NAME, NULL, 0, 0, NULL,
						  "environment variable of the daemon holding the API key" },
						{ "api_key_file", OPT_SECRET_FILE, NULL, 0, 0, NULL,
						  "file holding the API key (under the root or absolute, mode 0600)" },
						{ NULL, 0, NULL, 0, 0, NULL, NULL } };
/* clang-format on */

static int option_name_ok(const char *s)
{
	if (!*s || strlen(s) > 48) return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
	return 1;
}

/* Strips trailing blanks and newlines; refuses an empty key or control characters. */
static char *key_clean(char *key, const char *where)
{
	size_t n = strlen(key);
	while (n > 0 && strchr(" \t\r\n", key[n - 1])) key[--n] = 0;
	if (n == 0) {
		err_set("%s is empty", where);
		goto bad;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f) {
			err_set("%s holds a line break or control character inside the key; put the key alone on one line",
				where);
			goto bad;
		}
	log_redact_add(key);
	return key;
bad:
	free(key);
	return NULL;
}

static char *key_from_env(const struct stage_ctx *ctx, const char *opt, const char *var)
{
	const char *v = getenv(var);
	char where[256];
	if (!v || !*v) {
		err_set("set %s in the daemon's environment (providers.%s.%s)", var, ctx->stage ? ctx->stage : "?",
			opt);
		return NULL;
	}
	snprintf(where, sizeof where, "environment variable %s", var);
	return key_clean(xstrdup(v), where);
}

char *credential_read_file(const char *path)
{
	struct stat st;
	char *key = NULL;
	int fd = fsio_open_regular(path, &st, "the key file ", "put the key in a regular file");
	if (fd < 0) return NULL;
	if ((st.st_mode & 07777) != 0600 && (st.st_mode & 07777) != 0400)
		err_set("%s has mode %04o; only 0600 or 0400 is accepted: chmod 600 %s", path,
			(unsigned)(st.st_mode & 07777), path);
	else if (st.st_size > KEY_FILE_MAX)
		err_set("%s is larger than %d bytes; it should hold only the key", path, KEY_FILE_MAX);
	else
		key = xcalloc((size_t)st.st_size + 1, 1);
	if (key && read(fd, key, (size_t)st.st_size) != (ssize_t)st.st_size) {
		err_set_errno("cannot read %s", path);
		free(key);
		key = NULL;
	}
	close(fd);
	return key ? key_clean(key, path) : NULL;
}

char *credential_get(const struct stage_ctx *ctx, const char *what)
{
	const char *prefix = what && option_name_ok(what) ? what : "api_key";
	char *env_opt = xasprintf("%s_env", prefix), *file_opt = xasprintf("%s_file", prefix);
	const char *var = json_str(ctx->provider, env_opt, NULL), *file = json_str(ctx->provider, file_opt, NULL);
	char *key = NULL, *path;
	if (var && *var) {
		key = key_from_env(ctx, env_opt, var);
	} else if (file && *file) {
		path = file[0] == '/' ? xstrdup(file) : xasprintf("%s/%s", ctx->root, file);
		key = credential_read_file(path);
		free(path);
	} else {
		err_set("providers.%s: set %s (an environment variable name) or %s (a file under the root, mode 0600)",
			ctx->stage ? ctx->stage : "?", env_opt, file_opt);
	}
	free(env_opt);
	free(file_opt);
	return key;
}
