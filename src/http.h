/*
 * http.h - the one HTTP layer (libcurl), shared by the stage child's
 * providers and the daemon's alerts.
 */
#ifndef ACOG_HTTP_H
#define ACOG_HTTP_H
#include "base.h"

/* ---- http.c: the one HTTP layer every provider uses (libcurl) ---------- */
/* Where a request runs: what it needs of the configuration and where its
 * log lines go.  Providers pass &ctx->http (filled by the stage child);
 * alerts fill one from the daemon's configuration. */
struct http_env {
	const char *root;      /* lock files of the limits under <root>/spool/tmp; NULL = no limits */
	const cJSON *global;   /* acog.yaml: limits, http, ca_file; may be NULL */
	const cJSON *provider; /* the provider's options: timeout, rps, concurrency; may be NULL */
	const char *episode_id, *episode_dir, *stage; /* the log lines' episode and event; may be NULL */
};
struct http_req {
	const char *provider; /* names the limits (acog.yaml limits.<provider>) and the logs */
	const char *method;   /* GET, POST, PUT, DELETE */
	const char *url;
	const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
	const char *body;           /* request body or NULL */
	size_t body_len;
	const char *body_file;   /* or: the body streamed from this file (never read into memory) */
	off_t body_offset;       /* its first byte */
	off_t body_length;       /* its length; 0 = up to the end of the file */
	const long *answers;     /* statuses that are answers, not errors ({308, 0}); may be NULL */
	const char *download_to; /* stream a 2xx body into this file (fsio_commit: whole or nothing) */
	size_t max_response;     /* in-memory body limit; 0 = 16 MiB */
	int timeout_s;           /* whole request; 0 = 120 */
	int connect_timeout_s;   /* 0 = 10 */
	int max_attempts;        /* 0 = 4; 1 = never retry */
	int not_idempotent;      /* 1: resent only after an answer proving nothing was done */
};
struct http_resp {
	long status; /* 0 when no HTTP answer arrived */
	struct sbuf body;
	struct sbuf headers; /* raw response headers of the last answer */
	int retriable;       /* the final failure could succeed later */
	int maybe_ran;       /* not_idempotent, not resent: it may have been carried out */
	double retry_after;  /* seconds the server asked us to wait, 0 = none */
	int attempts;
	char error[768]; /* transport error, or the provider's own message */
};
/* 0 when the final answer is 2xx or one of req->answers (resp->status says
 * which); -1 otherwise, with resp->error saying why.  env may be NULL: no
 * limits, no logs, the CA bundle from SSL_CERT_FILE or the distro paths. */
struct http_req http_post(const char *provider, const char *url, const char *const *headers, const char *body);
MUST_USE int http_request(const struct http_env *env, const struct http_req *req, struct http_resp *resp);
void http_resp_free(struct http_resp *resp);
const char *http_header(const struct http_resp *resp, const char *name, char *out, size_t n);
MUST_USE double http_parse_retry_after(const char *value); /* seconds, fractional, HTTP-date; -1 bad */
MUST_USE int http_classify(long status, const char *body); /* 1 retriable, 0 permanent */
MUST_USE char *http_error_message(const char *body);       /* the provider's message from its error JSON */
MUST_USE const char *http_ca_file(const cJSON *global, char *why, size_t n); /* NULL: none found, why says where */

#endif
