/*
 * http.h - the one HTTP layer (libcurl), shared by the stage child's
 * providers and the daemon's alerts.
 */
#ifndef ACOG_HTTP_H
#define ACOG_HTTP_H
#include "base.h"

struct stage_ctx;
/* ---- http.c: the one HTTP layer every provider uses (libcurl) ---------- */
struct http_req {
	const char *provider;          /* names the limits (acog.yaml limits.<provider>) and the logs */
	const char *method;            /* GET, POST, PUT, DELETE */
	const char *url;
	const char *const *headers;    /* "Name: value" strings, NULL-terminated; may be NULL */
	const char *body;              /* request body or NULL */
	size_t body_len;
	const char *download_to;       /* stream a 2xx body into this file (atomic: tmp, fsync, rename) */
	size_t max_response;           /* in-memory body limit; 0 = 16 MiB */
	int timeout_s;                 /* whole request; 0 = 120 */
	int connect_timeout_s;         /* 0 = 10 */
	int max_attempts;              /* 0 = 4; 1 = never retry */
	int not_idempotent;            /* 1: never resend after the request may have reached the server */
	/* Interim (branch yt) until branch http lands with the same contract: */
	const char *body_file;         /* stream the body from this file ... */
	long long body_offset;         /* ... starting here ... */
	long long body_length;         /* ... this many bytes (0 allowed) */
	const long *answers;           /* 0-terminated statuses returned as success (e.g. {308, 0}) */
};
struct http_resp {
	long status;                   /* 0 when no HTTP answer arrived */
	struct sbuf body;
	struct sbuf headers;           /* raw response headers of the last answer */
	int retriable;                 /* the final failure could succeed later */
	double retry_after;            /* seconds the server asked us to wait, 0 = none */
	int attempts;
	char error[768];               /* transport error, or the provider's own message */
};
/* 0 when the final answer is 2xx; -1 otherwise, with resp->error saying why. */
int http_request(const struct stage_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_resp_free(struct http_resp *resp);
const char *http_header(const struct http_resp *resp, const char *name, char *out, size_t n);
double http_parse_retry_after(const char *value);   /* seconds, fractional, HTTP-date; -1 bad */
int http_classify(long status, const char *body);   /* 1 retriable, 0 permanent */
char *http_error_message(const char *body);         /* the provider's message from its error JSON */
const char *http_ca_file(const cJSON *global, char *why, size_t n); /* NULL: none found, why says where */

#endif
