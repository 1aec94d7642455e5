/*
 * util.c - allocation that cannot fail silently, the single error message
 * and its kind (which picks the exit code),
 * time in UTC ISO-8601, UUIDs, slugs, UTF-8 checks and a growable string.
 * Allocation failure is a broken invariant for a daemon this size: abort.
 */
#define _GNU_SOURCE
#include "base.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

static char err_buf[2048];

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fputs("acog-batch: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fputs("acog-batch: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("acog-batch: out of memory\n", stderr);
		abort();
	}
	return p;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		fputs("acog-batch: out of memory\n", stderr);
		abort();
	}
	va_end(ap);
	return s;
}

/* The kind of the last error, set with its message: it picks the exit code
 * (err_exit), so no caller ever matches message text. */
static enum err_kind err_last_kind;

static void err_vset(enum err_kind k, const char *suffix, const char *fmt, va_list ap)
{
	char tmp[sizeof err_buf];
	size_t n;
	vsnprintf(tmp, sizeof tmp, fmt, ap); /* fmt may mention err_buf itself */
	n = strlen(tmp);
	if (suffix) snprintf(tmp + n, sizeof tmp - n, ": %s", suffix);
	memcpy(err_buf, tmp, sizeof err_buf);
	err_last_kind = k;
}

int err_set(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(ERR_UNSPEC, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

int err_set_kind(enum err_kind k, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	err_vset(k, NULL, fmt, ap);
	va_end(ap);
	return -1;
}

/* What an errno says about whose problem it is. */
/* clang-format off: a table keeps one row per line */
static const struct {
	int err;
	enum err_kind kind;
} errno_kinds[] = {
	{ ENOENT, ERR_NOINPUT },   { EACCES, ERR_NOPERM },   { EPERM, ERR_NOPERM },   { EROFS, ERR_NOPERM },
	{ ENOSPC, ERR_IOERR },     { EDQUOT, ERR_IOERR },    { EIO, ERR_IOERR },      { EFBIG, ERR_IOERR },
	{ EEXIST, ERR_CANTCREAT }, { EAGAIN, ERR_TEMPFAIL }, { EBUSY, ERR_TEMPFAIL }, { EINTR, ERR_TEMPFAIL },
	{ ENOMEM, ERR_SOFTWARE },
};
/* clang-format on */

enum err_kind err_kind_of_errno(int e)
{
	for (size_t i = 0; i < sizeof errno_kinds / sizeof errno_kinds[0]; i++)
		if (errno_kinds[i].err == e) return errno_kinds[i].kind;
	return ERR_UNSPEC;
}

int err_set_errno(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	err_vset(err_kind_of_errno(e), strerror(e), fmt, ap);
	va_end(ap);
	errno = e;
	return -1;
}

const char *err_msg(void)
{
	return err_buf[0] ? err_buf : "unknown error";
}

enum err_kind err_kind(void)
{
	return err_last_kind;
}

/* The one map from an error's kind to the sysexits code a command exits with. */
/* clang-format off: a table keeps one row per line */
static const int err_exit_codes[ERR_NKINDS] = {
	[ERR_UNSPEC] = 0,
	[ERR_SOFTWARE] = EXIT_SOFTWARE,
	[ERR_USAGE] = EXIT_USAGE,
	[ERR_DATAERR] = EXIT_DATAERR,
	[ERR_NOINPUT] = EXIT_NOINPUT,
	[ERR_UNAVAILABLE] = EXIT_UNAVAILABLE,
	[ERR_CANTCREAT] = EXIT_CANTCREAT,
	[ERR_IOERR] = EXIT_IOERR,
	[ERR_TEMPFAIL] = EXIT_TEMPFAIL,
	[ERR_NOPERM] = EXIT_NOPERM,
	[ERR_CONFIG] = EXIT_CONFIG,
};
/* clang-format on */

int err_exit_code(enum err_kind k, int unspecified)
{
	return k > ERR_UNSPEC && k < ERR_NKINDS ? err_exit_codes[k] : unspecified;
}

int err_exit(int unspecified)
{
	return err_exit_code(err_last_kind, unspecified);
}

double time_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double time_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void time_iso(double t, char out[32])
{
	time_t s = (time_t)t;
	struct tm tm;
	int ms = (int)((t - (double)s) * 1000.0);
	if (ms < 0) ms = 0;
	if (ms > 999) ms = 999;
	char date[24];
	gmtime_r(&s, &tm);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%.19s.%03dZ", date, ms);
}

double time_parse_iso(const char *s)
{
	struct tm tm = { 0 };
	char *end;
	double frac = 0;
	if (!s) return -1;
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end) return -1;
	if (*end == '.') {
		char *e2;
		frac = strtod(end, &e2);
		end = e2;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0) return -1;
	return (double)timegm(&tm) + frac;
}

/* A version 4 UUID from one getrandom(2): libuuid's uuid_generate_random
 * adds five more system calls (getpid, getuid, getppid, gettid) to mix into
 * bytes the kernel already made random, and the daemon makes a few UUIDs
 * per stage transition.  Where getrandom fails, libuuid's way stays. */
static void uuid_random(uuid_t u)
{
	if (getrandom(u, sizeof(uuid_t), 0) != (ssize_t)sizeof(uuid_t)) uuid_generate_random(u);
}

void uuid_new(char out[37])
{
	uuid_t u;
	uuid_random(u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* the RFC 4122 variant */
	uuid_unparse_lower(u, out);
}

/* A version 7 UUID (RFC 9562): the Unix time in milliseconds, then random
 * bits.  For rows nobody types an id of (jobs, audit_logs): new keys land
 * at the right edge of the id index, on a page the last commit wrote too,
 * instead of on a random leaf of a big b-tree (a page per row to write and
 * checkpoint). */
void uuid_new_ordered(char out[37])
{
	struct timespec ts;
	uint64_t ms;
	uuid_t u;
	uuid_random(u);
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int i = 0; i < 6; i++) u[i] = (unsigned char)(ms >> (40 - 8 * i));
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x70);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	uuid_unparse_lower(u, out);
}

/* ASCII letters and digits survive, runs of anything else become one '-'. */
void slugify(const char *in, char *out, size_t outsz)
{
	size_t n = 0;
	int dash = 0;
	for (; *in && n + 1 < outsz; in++) {
		unsigned char c = (unsigned char)*in;
		if (isalnum(c) && c < 128) {
			if (dash && n > 0 && n + 2 < outsz) out[n++] = '-';
			out[n++] = (char)tolower(c);
			dash = 0;
		} else if (c != '\'') {
			dash = 1;
		}
	}
	out[n] = 0;
	if (n == 0) snprintf(out, outsz, "untitled");
}

int utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *e = p + len;
	while (p < e) {
		int n;
		uint32_t cp;
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			n = 1;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 2;
			cp = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 3;
			cp = *p & 0x07;
		} else
			return 0;
		if (e - p <= n) return 0;
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80) return 0;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

/* Cut s (in place) to at most max code points, at a word boundary when one
 * exists in the second half, never inside a UTF-8 sequence. */
void utf8_cut_words(char *s, size_t max)
{
	size_t i = 0, chars = 0, last_space = 0;

	while (s[i] && chars < max) {
		if (s[i] == ' ') last_space = i;
		i++;
		while (((unsigned char)s[i] & 0xc0) == 0x80) i++;
		chars++;
	}
	if (!s[i]) return;
	if (last_space > i / 2) i = last_space;
	s[i] = 0;
	while (i > 0 && strchr(" ,;:-", s[i - 1])) s[--i] = 0;
}

int path_component_ok(const char *s)
{
	if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0) return 0;
	if (strlen(s) > 200) return 0;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == 0x7f) return 0;
	return 1;
}

uint64_t rand_u64(void)
{
	uint64_t v;
	if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
		v = (uint64_t)time_mono() * 2654435761u ^ (uint64_t)getpid();
	return v;
}

void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1) cap *= 2;
		b->s = xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
	char *s;
	if (vasprintf(&s, fmt, ap) < 0) abort();
	sb_puts(b, s);
	free(s);
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

/* Percent-encodes every byte but ASCII letters, digits and those in keep
 * (RFC 3986 unreserved is "-._~"; a file URL keeps "/" too). */
void sb_percent_escape(struct sbuf *b, const char *s, const char *keep)
{
	sb_add(b, "", 0);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr(keep, *p))
			sb_add(b, (const char *)p, 1);
		else
			sb_printf(b, "%%%02X", *p);
	}
}

void sb_free(struct sbuf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}
