/*
 * http.c - the one HTTP layer every cloud provider uses (libcurl).
 *
 * Job: send one logical request, retrying what can succeed later, and hand
 * back the final answer (status, body, raw headers) or one readable error
 * "<provider>: HTTP <status>: <the provider's own message>".
 *
 * Invariants:
 *  - one libcurl easy handle per attempt; TLS peer and host verification are
 *    always on, with the CA bundle from http_ca_file() (no CA path); only
 *    http and https; redirects are never followed; "Expect:" is sent empty.
 *  - an answer body in memory never exceeds max_response: a bigger answer is
 *    a permanent error "answer larger than N bytes".
 *  - download_to is written only through fsio_tmp_open / fsio_commit: the
 *    final name holds a whole 2xx body or nothing new.
 *  - a body_file is read in libcurl's buffer-sized pieces straight from the
 *    file (pread at the range's offset), never whole into memory; every
 *    attempt, and every rewind libcurl asks for, starts again at the range's
 *    first byte.
 *  - a status in req->answers is an answer like a 2xx (YouTube's 308 Resume
 *    Incomplete): returned, never retried.
 *  - retries: transport errors and timeouts, 408, 409, 429 (not quota), 500,
 *    502, 503, 504; x-should-retry overrides; full-jitter backoff
 *    base*2^n capped, or the server's Retry-After / retry-after-ms clamped to
 *    60 s.  A not_idempotent request (a paid job's creation) is resent only
 *    after an answer that proves nothing was done: 408, 429, 503 with
 *    Retry-After, or a transport failure before any byte of the request
 *    went out (connection refused, DNS, TLS handshake).  After anything else
 *    (500, 502, 504, 409, a timeout, a reset or a cut answer once the request
 *    was sent) the job may exist: the failure is reported as not retriable
 *    with resp->maybe_ran set, and the caller looks the job up or asks a
 *    person.
 *  - limits.<provider> {rps, concurrency} hold across processes: a flock'ed
 *    slot file per concurrent request and a flock'ed file with the next free
 *    start time, both under <root>/spool/tmp/.
 *  - one log line per attempt: method, URL without query string or user
 *    info, status, milliseconds; never a header value or a body.
 *  - a request body without a Content-Type header is sent as
 *    application/json (application/octet-stream from a body_file).
 * Results: resp is overwritten (free it with http_resp_free, also after a
 * failure); body.s and headers.s are always NUL-terminated strings; status
 * is 0 when the last attempt got no complete answer; retry_after is the
 * server's own wish (not clamped; at most a day) for the caller's
 * STAGE_RETRY.  timeout_s 0 takes the provider option `timeout`, else 120;
 * max_attempts 0 and max_response 0 take acog.yaml http.max_attempts and
 * http.max_response_mb (defaults 4 and 16).
 * env may be NULL: no limits, no logs, CA from SSL_CERT_FILE or the distro
 * paths.
 */
#define _GNU_SOURCE
#include "http.h"
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB ((size_t)1024 * 1024)
#define RETRY_AFTER_CLAMP 60.0
#define RETRY_AFTER_MAX 86400.0
#define HEADERS_MAX (256 * 1024)
#define CONCURRENCY_MAX 64

/* The request with every default resolved. */
struct opts {
	const char *prov, *method, *ca;
	size_t max_response;
	off_t body_end; /* one past the last byte of a body_file's range */
	long timeout, connect_timeout;
	int max_attempts;
	double base, cap;
	char url_log[512];
};

/* One attempt. */
struct xfer {
	const struct http_req *req;
	const struct opts *o;
	struct http_resp *resp;
	CURL *h;
	int fd; /* download temp file, -1 when none */
	char *tmp;
	int body_fd;              /* body_file, -1 when none */
	off_t body_pos, body_end; /* the next byte to send, one past the last */
	int too_big;
	char local_err[512]; /* a local failure (file, disk), "" when none */
	CURLcode cc;
	long status;
	int sent; /* the request (or part of it) went out */
	char curl_err[CURL_ERROR_SIZE];
};

/* ---- small helpers ---------------------------------------------------- */

static void sleep_s(double s)
{
	double end = time_mono() + s;
	while (s > 0) {
		struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
		nanosleep(&ts, NULL);
		s = end - time_mono();
	}
}

static double rand_unit(void)
{
	return (double)(rand_u64() >> 11) / 9007199254740992.0;
}

/* Copies at most n-1 bytes, control characters as spaces, never cutting a UTF-8 sequence. */
static void copy_clean(char *out, size_t n, const char *in, size_t len)
{
	size_t k = len < n - 1 ? len : n - 1;
	if (k < len)
		while (k > 0 && ((unsigned char)in[k] & 0xc0) == 0x80) k--;
	for (size_t i = 0; i < k; i++) out[i] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? ' ' : in[i];
	out[k] = 0;
}

static void set_error(struct http_resp *resp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct http_resp *resp, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) abort();
	va_end(ap);
	copy_clean(resp->error, sizeof resp->error, s, strlen(s));
	free(s);
}

/* The URL for logs and errors: no user info, no query string, no fragment. */
static void url_for_log(const char *url, char *out, size_t n)
{
	const char *host = strstr(url, "://"), *at, *end;
	struct sbuf b = { 0 };
	host = host ? host + 3 : url;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	sb_add(&b, url, (size_t)(host - url));
	if (at) host = at + 1;
	sb_add(&b, host, strcspn(host, "?#"));
	copy_clean(out, n, b.s, b.len);
	sb_free(&b);
}

/* A stage's lines are its events (stage.<name>), as stage_log writes them. */
static void log_line(const struct http_env *env, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void log_line(const struct http_env *env, const char *level, const char *fmt, ...)
{
	va_list ap;
	char *msg, *ev;
	if (!env) return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) abort();
	va_end(ap);
	ev = env->stage ? xasprintf("stage.%s", env->stage) : xstrdup("http");
	log_ev(level, env->episode_id, env->episode_dir, ev, "%s", msg);
	free(ev);
	free(msg);
}

/* ---- pure helpers (unit-tested) -------------------------------------- */

const char *http_ca_file(const cJSON *global, char *why, size_t n)
{
	static const char *const distro[] = { "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu */
					      "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
					      "/etc/ssl/ca-bundle.pem",             /* openSUSE */
					      "/etc/ssl/cert.pem",                  /* Alpine */
					      NULL };
	/* The explicit choices, first set wins: what why says when it is used, or unreadable. */
	const struct {
		const char *path, *used, *unreadable;
	} set[] = {
		{ json_str(global, "ca_file", NULL), "ca_file %s from acog.yaml",
		  "ca_file %s (acog.yaml) cannot be read: %s" },
		{ getenv("SSL_CERT_FILE"), "SSL_CERT_FILE=%s", "SSL_CERT_FILE=%s cannot be read: %s" },
	};
	char dummy[8];
	if (!why || n == 0) {
		why = dummy;
		n = sizeof dummy;
	}
	/* An explicit choice is never silently replaced by another bundle. */
	for (size_t i = 0; i < sizeof set / sizeof set[0]; i++) {
		const char *p = set[i].path;
		if (!p || !*p) continue;
		if (access(p, R_OK) < 0) {
			snprintf(why, n, set[i].unreadable, p, strerror(errno));
			return NULL;
		}
		snprintf(why, n, set[i].used, p);
		return p;
	}
	for (int i = 0; distro[i]; i++)
		if (access(distro[i], R_OK) == 0) {
			snprintf(why, n, "%s", distro[i]);
			return distro[i];
		}
	snprintf(why, n,
		 "no CA bundle found: looked at acog.yaml ca_file (not set), SSL_CERT_FILE (not set), "
		 "%s, %s, %s, %s; install the ca-certificates package or set ca_file in acog.yaml",
		 distro[0], distro[1], distro[2], distro[3]);
	return NULL;
}

static int only_number(const char *s, const char *end)
{
	int digits = 0, dots = 0;
	for (const char *p = s; p < end; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && !dots)
			dots++;
		else
			return 0;
	}
	return digits > 0;
}

double http_parse_retry_after(const char *value)
{
	char buf[128];
	size_t len;
	time_t t;
	if (!value) return -1;
	while (*value == ' ' || *value == '\t') value++;
	len = strlen(value);
	while (len > 0 && strchr(" \t\r\n", value[len - 1])) len--;
	if (len == 0 || len >= sizeof buf) return -1;
	memcpy(buf, value, len);
	buf[len] = 0;
	if (only_number(buf, buf + len)) {
		double d = strtod(buf, NULL);
		return d > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : d;
	}
	if (!strchr(buf, ':') || !strpbrk(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
		return -1; /* an HTTP-date has a month name and a time */
	t = curl_getdate(buf, NULL);
	if (t == (time_t)-1) return -1;
	double d = (double)t - time_now();
	return d < 0 ? 0 : d > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : d;
}

int http_classify(long status, const char *body)
{
	static const char *const quota[] = { "insufficient_quota", "quota_exceeded",     "quotaexceeded",
					     "billing_hard_limit", "billing_not_active", NULL };
	switch (status) {
	case 0:
	case 408:
	case 409:
	case 500:
	case 502:
	case 503:
	case 504: return 1;
	case 429:
		for (int i = 0; body && quota[i]; i++)
			if (strcasestr(body, quota[i])) return 0;
		return 1;
	default: return 0;
	}
}

static const char *str_of(const cJSON *o, const char *key)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(j) && j->valuestring && *j->valuestring ? j->valuestring : NULL;
}

/* "message (code)" unless the code is already in the message. */
static char *with_code(const char *msg, const char *code)
{
	if (code && !strstr(msg, code)) return xasprintf("%s (%s)", msg, code);
	return xstrdup(msg);
}

static void add_path(struct sbuf *b, const cJSON *loc)
{
	const cJSON *p;
	int first = 1;
	if (cJSON_IsString(loc)) {
		sb_printf(b, "%s: ", loc->valuestring);
		return;
	}
	if (!cJSON_IsArray(loc) || cJSON_GetArraySize(loc) == 0) return;
	cJSON_ArrayForEach (p, loc) {
		if (cJSON_IsString(p))
			sb_printf(b, "%s%s", first ? "" : ".", p->valuestring);
		else if (cJSON_IsNumber(p))
			sb_printf(b, "%s%d", first ? "" : ".", p->valueint);
		first = 0;
	}
	sb_puts(b, ": ");
}

/* "lead: loc: msg; loc: msg" from [{loc|path, msg|message}, ...]; NULL when no item has a message. */
static char *join_items(const char *lead, const cJSON *arr)
{
	struct sbuf b = { 0 };
	const cJSON *it;
	int n = 0;
	if (lead) sb_puts(&b, lead);
	cJSON_ArrayForEach (it, arr) {
		const char *m = str_of(it, "msg") ? str_of(it, "msg") : str_of(it, "message");
		const cJSON *loc = cJSON_GetObjectItemCaseSensitive(it, "loc");
		if (!m) continue;
		sb_puts(&b, n++ ? "; " : lead ? ": " : "");
		add_path(&b, loc ? loc : cJSON_GetObjectItemCaseSensitive(it, "path"));
		sb_puts(&b, m);
	}
	if (n == 0) sb_free(&b);
	return b.s;
}

static char *from_object(const cJSON *o)
{
	const char *m = str_of(o, "message"), *code = str_of(o, "code");
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(o, "errors");
	if (!m) return NULL;
	if (!code && cJSON_IsArray(errs)) code = str_of(cJSON_GetArrayItem(errs, 0), "reason");
	if (!code) code = str_of(o, "type");
	if (!code) code = str_of(o, "status");
	return with_code(m, code);
}

static char *message_of(const cJSON *j)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "detail");
	const cJSON *issues = cJSON_GetObjectItemCaseSensitive(j, "issues");
	char *m;
	if (cJSON_IsObject(e) && (m = from_object(e))) return m;
	if (cJSON_IsString(e) && *e->valuestring) {
		if (cJSON_IsArray(issues) && (m = join_items(e->valuestring, issues))) return m;
		return xstrdup(e->valuestring);
	}
	if (cJSON_IsObject(d) && (m = from_object(d))) return m;
	if (cJSON_IsArray(d) && (m = join_items(NULL, d))) return m;
	if (cJSON_IsString(d) && *d->valuestring) return xstrdup(d->valuestring);
	return from_object(j); /* {"message"}, vLLM {"object":"error","message"}, Discord, HeyGen v1 */
}

char *http_error_message(const char *body)
{
	cJSON *j = body ? cJSON_Parse(body) : NULL;
	char *m = NULL, *clean;
	if (cJSON_IsObject(j)) m = message_of(j);
	cJSON_Delete(j);
	if (!m) return NULL;
	clean = xmalloc(strlen(m) + 1);
	copy_clean(clean, strlen(m) + 1, m, strlen(m));
	free(m);
	return clean;
}

const char *http_header(const struct http_resp *resp, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	const char *p = resp && resp->headers.s ? resp->headers.s : NULL, *found = NULL;
	size_t flen = 0;
	for (; p && *p; p += strcspn(p, "\n"), p += *p == '\n') {
		size_t len = strcspn(p, "\r\n");
		if (len > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
			found = p + nl + 1;
			flen = len - nl - 1;
		}
	}
	if (!found || n == 0) return NULL;
	while (flen > 0 && (*found == ' ' || *found == '\t')) {
		found++;
		flen--;
	}
	while (flen > 0 && (found[flen - 1] == ' ' || found[flen - 1] == '\t')) flen--;
	if (flen >= n) flen = n - 1;
	memcpy(out, found, flen);
	out[flen] = 0;
	return out;
}

void http_resp_free(struct http_resp *resp)
{
	sb_free(&resp->body);
	sb_free(&resp->headers);
}

/* ---- limits across processes ------------------------------------------ */

static int name_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 64) return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return 0;
	return 1;
}

/* name is ".limit-<provider>-<i>.lock" (slot >= 0) or ".rate-<provider>.lock" (slot < 0). */
static int open_lock(const char *root, const char *prov, int slot)
{
	char *path = slot >= 0 ? xasprintf("%s/spool/tmp/.limit-%s-%d.lock", root, prov, slot)
			       : xasprintf("%s/spool/tmp/.rate-%s.lock", root, prov);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	free(path);
	return fd;
}

/* A free slot file, flock'ed; -1 when the files cannot be used (then no limit). */
static int slot_acquire(const char *root, const char *prov, int conc)
{
	int start = (int)(rand_u64() % (uint64_t)conc);
	for (;;) {
		for (int k = 0; k < conc; k++) {
			int fd = open_lock(root, prov, (start + k) % conc);
			if (fd < 0) return -1;
			if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
			close(fd);
		}
		sleep_s(0.02 + 0.08 * rand_unit());
	}
}

/* Reserves the next start time (last + 1/rps) under flock, then sleeps until it. */
static void rate_wait(const char *root, const char *prov, double rps, int conc)
{
	char buf[64] = { 0 };
	double now, last, next, interval = 1.0 / rps;
	int fd = open_lock(root, prov, -1);
	ssize_t n;
	if (fd < 0 || flock(fd, LOCK_EX) < 0) goto out;
	n = pread(fd, buf, sizeof buf - 1, 0);
	last = n > 0 ? strtod(buf, NULL) : 0;
	now = time_now();
	next = last + interval;
	if (next < now || next > now + (conc + 2) * interval + 1) next = now; /* idle, or a clock jump */
	n = snprintf(buf, sizeof buf, "%.6f\n", next);
	if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) < 0) next = now;
	flock(fd, LOCK_UN);
	sleep_s(next - now);
out:
	if (fd >= 0) close(fd);
}

/* Waits for a slot and a start time; returns the slot fd (or -1: none held). */
static int limits_enter(const struct http_env *env, const char *prov, double *waited)
{
	const cJSON *lim;
	double rps, t0 = time_mono();
	int conc, fd = -1;
	char *dir;
	if (!env || !env->root || !name_ok(prov)) return -1;
	lim = json_get(env->global, "limits");
	lim = cJSON_IsObject(lim) ? cJSON_GetObjectItemCaseSensitive(lim, prov) : NULL;
	/* acog.yaml limits.<provider> first; a channel's provider options rps /
	 * concurrency fill in what acog.yaml leaves unset. */
	rps = json_num(lim, "rps", json_num(env->provider, "rps", 0));
	conc = (int)json_num(lim, "concurrency", json_num(env->provider, "concurrency", 0));
	if (rps <= 0 && conc <= 0) return -1;
	dir = xasprintf("%s/spool/tmp", env->root);
	if (fsio_mkdirs(dir) < 0) {
		log_line(env, "warn", "http: no %s limits: %s", prov, err_msg());
		free(dir);
		return -1;
	}
	free(dir);
	if (conc > 0) fd = slot_acquire(env->root, prov, conc > CONCURRENCY_MAX ? CONCURRENCY_MAX : conc);
	if (rps > 0) rate_wait(env->root, prov, rps, conc > 0 ? conc : 1);
	*waited = time_mono() - t0;
	return fd;
}

/* ---- one attempt ------------------------------------------------------- */

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	size_t n = size * nmemb;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) x->resp->headers.len = 0; /* a new answer */
	if (x->resp->headers.len + n <= HEADERS_MAX) sb_add(&x->resp->headers, data, n);
	return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	size_t n = size * nmemb;
	long code = 0;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	if (x->fd >= 0 && code >= 200 && code < 300) {
		if (fsio_write_all(x->fd, data, n) == 0) return n;
		snprintf(x->local_err, sizeof x->local_err, "cannot write %s: %s", x->tmp, strerror(errno));
		return 0;
	}
	if (x->resp->body.len + n > x->o->max_response) {
		x->too_big = 1;
		return 0;
	}
	sb_add(&x->resp->body, data, n);
	return n;
}

/* The next piece of a body_file: read at its place in the range, straight
 * into libcurl's buffer. */
static size_t on_read(char *buf, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	size_t want = size * nmemb;
	ssize_t n;
	if ((off_t)want > x->body_end - x->body_pos) want = (size_t)(x->body_end - x->body_pos);
	if (want == 0) return 0;
	do n = pread(x->body_fd, buf, want, x->body_pos);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		snprintf(x->local_err, sizeof x->local_err, "cannot read %s at byte %lld: %s", x->req->body_file,
			 (long long)x->body_pos, n < 0 ? strerror(errno) : "it became shorter while it was sent");
		return CURL_READFUNC_ABORT;
	}
	x->body_pos += n;
	return (size_t)n;
}

/* libcurl rewinds the body to send it again (a redirect or an
 * authentication answer): its offsets count from the range's first byte. */
static int on_seek(void *user, curl_off_t offset, int origin)
{
	struct xfer *x = user;
	if (origin != SEEK_SET || offset < 0 || offset > (curl_off_t)(x->body_end - x->req->body_offset))
		return CURL_SEEKFUNC_CANTSEEK;
	x->body_pos = x->req->body_offset + (off_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int has_header(const char *const *h, const char *name)
{
	size_t nl = strlen(name);
	for (; h && *h; h++)
		if (strncasecmp(*h, name, nl) == 0 && (*h)[nl] == ':') return 1;
	return 0;
}

static struct curl_slist *build_headers(const struct http_req *req)
{
	struct curl_slist *l = NULL;
	for (const char *const *h = req->headers; h && *h; h++) l = curl_slist_append(l, *h);
	if (req->body_file && !has_header(req->headers, "Content-Type"))
		l = curl_slist_append(l, "Content-Type: application/octet-stream");
	else if (req->body && !has_header(req->headers, "Content-Type"))
		l = curl_slist_append(l, "Content-Type: application/json");
	l = curl_slist_append(l, "Expect:");
	return l;
}

/* A body_file goes through the read callback: a POST with its size, any
 * other method as an upload of its size. */
static void set_body_file(struct xfer *x, const char *method)
{
	CURL *h = x->h;
	curl_off_t len = (curl_off_t)(x->body_end - x->req->body_offset);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(h, CURLOPT_READDATA, x);
	curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, len);
		return;
	}
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, len);
	if (strcmp(method, "PUT") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

static void set_method(struct xfer *x)
{
	const struct http_req *req = x->req;
	const char *method = x->o->method;
	CURL *h = x->h;
	if (req->body_file) {
		set_body_file(x, method);
		return;
	}
	if (req->body || strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->body_len : 0));
	}
	if (strcmp(method, "GET") == 0 && !req->body)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	else if (strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

static void setup(struct xfer *x, struct curl_slist *hdrs)
{
	CURL *h = x->h;
	curl_easy_setopt(h, CURLOPT_URL, x->req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->curl_err);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, x->o->connect_timeout);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, x->o->timeout);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (x->o->ca) curl_easy_setopt(h, CURLOPT_CAINFO, x->o->ca);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "acog-batch/" ACOG_VERSION);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (!x->req->download_to) curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->o->max_response);
	set_method(x);
}

static int download_open(struct xfer *x)
{
	x->fd = fsio_tmp_open(x->req->download_to, &x->tmp);
	if (x->fd >= 0) return 0;
	snprintf(x->local_err, sizeof x->local_err, "%s", err_msg());
	return -1;
}

/* The one durable commit (fsio_commit), or the temporary file removed when
 * the attempt failed. */
static void download_close(struct xfer *x, int fail)
{
	if (!x->tmp) return;
	if (fail) {
		close(x->fd); /* a file being thrown away: nothing to check */
		unlink(x->tmp);
	} else if (fsio_commit(x->fd, x->tmp, x->req->download_to, FSIO_REPLACE) < 0) {
		snprintf(x->local_err, sizeof x->local_err, "%s", err_msg());
	}
	x->fd = -1;
	free(x->tmp);
	x->tmp = NULL;
}

static int body_open(struct xfer *x)
{
	x->body_fd = open(x->req->body_file, O_RDONLY | O_CLOEXEC);
	x->body_pos = x->req->body_offset;
	x->body_end = x->o->body_end;
	if (x->body_fd >= 0) return 0;
	snprintf(x->local_err, sizeof x->local_err, "cannot open %s: %s", x->req->body_file, strerror(errno));
	return -1;
}

static void attempt(struct xfer *x)
{
	struct curl_slist *hdrs = build_headers(x->req);
	long reqsize = 0;
	x->resp->body.len = x->resp->headers.len = 0;
	sb_add(&x->resp->body, "", 0); /* body.s and headers.s are always strings */
	sb_add(&x->resp->headers, "", 0);
	x->h = curl_easy_init();
	if (!x->h) abort();
	if (x->req->download_to && download_open(x) < 0) goto out;
	if (x->req->body_file && body_open(x) < 0) goto out;
	setup(x, hdrs);
	x->cc = curl_easy_perform(x->h);
	if (x->cc == CURLE_FILESIZE_EXCEEDED) x->too_big = 1;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
	curl_easy_getinfo(x->h, CURLINFO_REQUEST_SIZE, &reqsize);
	x->sent = reqsize > 0;
out:
	download_close(x, x->cc != CURLE_OK || x->status < 200 || x->status >= 300 || x->local_err[0]);
	if (x->body_fd >= 0) close(x->body_fd); /* read only */
	curl_easy_cleanup(x->h);
	curl_slist_free_all(hdrs);
}

/* ---- verdicts ------------------------------------------------------------ */

static int transport_retriable(CURLcode cc)
{
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_FILESIZE_EXCEEDED:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_LOGIN_DENIED: return 0;
	default: return 1;
	}
}

struct verdict {
	int ok, retriable, resend, maybe_ran;
	double retry_after; /* server's wish, -1 none */
};

/* Discord also says {"retry_after": 1.5} in the body of a 429. */
static double body_retry_after(const char *body)
{
	cJSON *j = body && *body == '{' ? cJSON_Parse(body) : NULL;
	double d = json_num(j, "retry_after", -1);
	cJSON_Delete(j);
	return d < 0 ? -1 : d > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : d;
}

static double server_retry_after(const struct http_resp *resp)
{
	char v[128];
	double d;
	if (http_header(resp, "retry-after-ms", v, sizeof v) && (d = http_parse_retry_after(v)) >= 0) return d / 1000.0;
	if (http_header(resp, "retry-after", v, sizeof v) && (d = http_parse_retry_after(v)) >= 0) return d;
	return body_retry_after(resp->body.s);
}

static int is_answer(const struct http_req *req, long status)
{
	for (const long *a = req->answers; a && *a; a++)
		if (*a == status) return 1;
	return 0;
}

/* Does this failure prove the request was not carried out?  Nothing of it
 * went out (connection refused, DNS, TLS handshake); or the server refused
 * it (a 4xx, except 409: a conflict may be with the very job it made); or a
 * 503 with Retry-After.  A 500, 502 or 504 may come from a gateway after
 * the job was made, a timeout or reset from a lost answer. */
static int nothing_done(const struct xfer *x, double retry_after)
{
	if (x->cc != CURLE_OK) return !x->sent;
	if (x->status == 503) return retry_after >= 0;
	return x->status >= 400 && x->status < 500 && x->status != 409;
}

static struct verdict judge(const struct xfer *x)
{
	struct verdict v = { 0, 0, 0, 0, -1 };
	char xs[16];
	if (x->local_err[0] || x->too_big) {
		v.retriable = x->local_err[0] != 0; /* a full disk may clear; a huge answer will not */
		v.maybe_ran = x->req->not_idempotent && x->sent;
	} else if (x->cc != CURLE_OK) {
		v.retriable = transport_retriable(x->cc);
		v.maybe_ran = x->req->not_idempotent && !nothing_done(x, -1);
	} else if ((x->status >= 200 && x->status < 300) || is_answer(x->req, x->status)) {
		v.ok = 1;
		return v;
	} else {
		v.retriable = http_classify(x->status, x->resp->body.s);
		if (http_header(x->resp, "x-should-retry", xs, sizeof xs))
			v.retriable = strcasecmp(xs, "true") == 0 ? 1 : strcasecmp(xs, "false") == 0 ? 0 : v.retriable;
		v.retry_after = server_retry_after(x->resp);
		v.maybe_ran = x->req->not_idempotent && !nothing_done(x, v.retry_after);
	}
	if (v.maybe_ran) v.retriable = 0; /* a paid job made twice is worse than a stage held up */
	v.resend = v.retriable;
	return v;
}

/* ---- the request ---------------------------------------------------------- */

static void curl_init_once(void)
{
	static int done;
	if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) done = 1;
}

/* The end of a body_file's range, checked against the file as it is now. */
static int body_range(const struct http_req *req, struct opts *o, struct http_resp *resp)
{
	struct stat st;
	if (stat(req->body_file, &st) < 0) {
		set_error(resp, "%s: cannot read %s: %s", o->prov, req->body_file, strerror(errno));
		return -1;
	}
	o->body_end = req->body_length > 0 ? req->body_offset + req->body_length : st.st_size;
	if (req->body_offset < 0 || req->body_length < 0 || req->body_offset > o->body_end ||
	    o->body_end > st.st_size) {
		set_error(resp, "%s: %s holds %lld bytes, not the %lld from byte %lld the request should send", o->prov,
			  req->body_file, (long long)st.st_size, (long long)req->body_length,
			  (long long)req->body_offset);
		return -1;
	}
	return 0;
}

static int resolve(const struct http_env *env, const struct http_req *req, struct opts *o, struct http_resp *resp)
{
	const cJSON *g = env ? env->global : NULL;
	double mb = json_num(g, "http.max_response_mb", 16);
	char why[600];
	memset(o, 0, sizeof *o);
	o->prov = req->provider ? req->provider : "http";
	o->method = req->method ? req->method : req->body ? "POST" : "GET";
	o->max_response = req->max_response ? req->max_response : (size_t)(mb > 0 ? mb * (double)MIB : 16.0 * MIB);
	o->timeout = req->timeout_s > 0 ? req->timeout_s : (long)json_num(env ? env->provider : NULL, "timeout", 120);
	if (o->timeout <= 0) o->timeout = 120;
	o->connect_timeout = req->connect_timeout_s > 0 ? req->connect_timeout_s : 10;
	o->max_attempts = req->max_attempts > 0 ? req->max_attempts : (int)json_num(g, "http.max_attempts", 4);
	if (o->max_attempts < 1) o->max_attempts = 1;
	o->base = json_num(g, "http.backoff_base", 0.5);
	o->cap = json_num(g, "http.backoff_cap", 8);
	url_for_log(req->url ? req->url : "", o->url_log, sizeof o->url_log);
	if (!req->url || (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8))) {
		set_error(resp, "%s: only http:// and https:// URLs are allowed, not '%s'", o->prov, o->url_log);
		return -1;
	}
	for (const char *const *h = req->headers; h && *h; h++)
		if (strpbrk(*h, "\r\n")) {
			set_error(resp,
				  "%s: a request header contains a line break (a credential file with two lines?)",
				  o->prov);
			return -1;
		}
	if (strncasecmp(req->url, "https://", 8) == 0 && !(o->ca = http_ca_file(g, why, sizeof why))) {
		set_error(resp, "%s: cannot verify %s: %s", o->prov, o->url_log, why);
		return -1;
	}
	return req->body_file ? body_range(req, o, resp) : 0;
}

static double backoff(const struct opts *o, int attempt)
{
	double full = o->base * pow(2, attempt - 1);
	if (full > o->cap) full = o->cap;
	return full * rand_unit();
}

/* Cuts a URL to scheme://host[:port]: the rest of a Location may carry a token. */
static void url_origin(char *u)
{
	char *host = strstr(u, "://");
	host = host ? host + 3 : u;
	host[strcspn(host, "/?#")] = 0;
}

static void final_error(const struct xfer *x, const struct verdict *v)
{
	const struct opts *o = x->o;
	struct http_resp *r = x->resp;
	const char *why = v->maybe_ran ? "; not resent: the request may have been carried out (not idempotent)" : "";
	char *m, loc[200];
	if (x->local_err[0]) {
		set_error(r, "%s: %s%s", o->prov, x->local_err, why);
	} else if (x->too_big) {
		set_error(r, "%s: answer larger than %zu bytes (%s %s)%s", o->prov, o->max_response, o->method,
			  o->url_log, why);
	} else if (x->cc != CURLE_OK) {
		set_error(r, "%s: %s (%s %s, %d attempt%s)%s", o->prov,
			  x->curl_err[0] ? x->curl_err : curl_easy_strerror(x->cc), o->method, o->url_log, r->attempts,
			  r->attempts == 1 ? "" : "s", why);
	} else if (x->status >= 300 && x->status < 400 && http_header(r, "location", loc, sizeof loc)) {
		url_origin(loc);
		set_error(r,
			  "%s: HTTP %ld: a redirect to %s, not followed (redirects never are, so a key cannot "
			  "leak to another host); check base_url%s",
			  o->prov, x->status, loc, why);
	} else if ((m = http_error_message(r->body.s)) != NULL) {
		set_error(r, "%s: HTTP %ld: %s%s", o->prov, x->status, m, why);
		free(m);
	} else {
		char snip[201];
		copy_clean(snip, sizeof snip, r->body.s ? r->body.s : "", r->body.len);
		set_error(r, "%s: HTTP %ld: %s%s", o->prov, x->status, snip[0] ? snip : "(empty answer)", why);
	}
}

static void log_attempt(const struct http_env *env, const struct xfer *x, const struct verdict *v, double ms,
			double waited, double next_wait)
{
	char what[200], tail[80] = "", lim[48] = "";
	if (x->local_err[0])
		snprintf(what, sizeof what, "local error: %.170s", x->local_err);
	else if (x->too_big)
		snprintf(what, sizeof what, "%ld, answer too large", x->status);
	else if (x->cc != CURLE_OK)
		snprintf(what, sizeof what, "error: %.150s", x->curl_err[0] ? x->curl_err : curl_easy_strerror(x->cc));
	else
		snprintf(what, sizeof what, "%ld", x->status);
	if (waited >= 0.05) snprintf(lim, sizeof lim, ", %.2f s waiting for limits", waited);
	if (next_wait >= 0)
		snprintf(tail, sizeof tail, "; retrying in %.2f s", next_wait);
	else if (v->maybe_ran)
		snprintf(tail, sizeof tail, "; not resent (not idempotent)");
	log_line(env, v->ok ? "info" : "warn", "http %s %s -> %s in %.0f ms (attempt %d/%d%s)%s", x->o->method,
		 x->o->url_log, what, ms, x->resp->attempts, x->o->max_attempts, lim, tail);
}

/* A POST of a small in-memory body; the caller adjusts limits and retries. */
struct http_req http_post(const char *provider, const char *url, const char *const *headers, const char *body)
{
	struct http_req q = { .provider = provider, .method = "POST", .url = url, .headers = headers };
	q.body = body;
	q.body_len = strlen(body);
	return q;
}

int http_request(const struct http_env *env, const struct http_req *req, struct http_resp *resp)
{
	struct opts o;
	struct xfer x;
	struct verdict v = { 0, 0, 0, 0, -1 };
	memset(resp, 0, sizeof *resp);
	if (resolve(env, req, &o, resp) < 0) return -1;
	curl_init_once();
	for (;;) {
		double waited = 0, t0, wait = -1;
		int slot = limits_enter(env, o.prov, &waited);
		memset(&x, 0, sizeof x);
		x.req = req;
		x.o = &o;
		x.resp = resp;
		x.fd = -1;
		x.body_fd = -1;
		resp->attempts++;
		t0 = time_mono();
		attempt(&x);
		if (slot >= 0) close(slot);
		v = judge(&x);
		if (!v.ok && v.resend && resp->attempts < o.max_attempts)
			wait = v.retry_after >= 0 ? fmin(v.retry_after, RETRY_AFTER_CLAMP)
						  : backoff(&o, resp->attempts);
		log_attempt(env, &x, &v, (time_mono() - t0) * 1000, waited, wait);
		if (wait < 0) break;
		sleep_s(wait);
	}
	resp->status = x.cc == CURLE_OK || x.too_big || x.local_err[0] ? x.status : 0;
	resp->retriable = v.retriable;
	resp->maybe_ran = v.maybe_ran;
	resp->retry_after = v.retry_after > 0 ? v.retry_after : 0;
	if (v.ok) return 0;
	final_error(&x, &v);
	return -1;
}
