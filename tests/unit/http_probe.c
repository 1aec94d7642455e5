/*
 * http_probe.c - a driver for tests/test_http.py: one http_request() call
 * through src/http.c, as a provider would make it, with the answer printed
 * as one JSON line on stdout:
 *   {"rc","status","retriable","maybe_ran","retry_after","attempts","error",
 *    "body_len","body","headers","ms","maxrss_kib"}
 * (headers: the raw response headers; maxrss_kib: the process's peak
 * resident size, getrusage ru_maxrss).
 *
 *   http_probe.bin --root DIR --url URL [--method M] [--body JSON]
 *       [--body-file FILE [--body-offset N] [--body-length N]]
 *       [--answers 308,...] [--header "Name: value"]... [--download FILE]
 *       [--max-attempts N] [--ca FILE] [--timeout S] [--max-response BYTES]
 *       [--provider NAME] [--not-idempotent]
 *   http_probe.bin --root DIR --alert KIND [--episode ID] [--message TEXT]
 *
 * acog.yaml under --root, if present, is the global configuration (limits,
 * http, ca_file); --ca overrides its ca_file.  Header values of
 * Authorization, xi-api-key and x-api-key are registered for redaction, as
 * credential_get() does for a real provider.  The per-attempt log lines go
 * to stderr.  --alert calls alert_send() with acog.yaml's alerts settings
 * and prints {"ms"}: how long the caller was held up.  Without arguments it prints an empty TAP plan, so the unit
 * test runner (which runs every .bin in tests/unit) passes over it.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "provider.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#define MAX_HEADERS 32
#define MAX_ANSWERS 8

struct args {
	const char *root, *url, *method, *body, *download, *ca, *provider, *alert, *episode, *message, *body_file;
	const char *headers[MAX_HEADERS + 1];
	long answers[MAX_ANSWERS + 1];
	int nheaders, max_attempts, timeout, not_idempotent;
	size_t max_response;
	off_t body_offset, body_length;
};

static void redact_header(const char *h)
{
	static const char *const secret[] = { "authorization:", "xi-api-key:", "x-api-key:", NULL };
	for (int i = 0; secret[i]; i++)
		if (strncasecmp(h, secret[i], strlen(secret[i])) == 0) {
			const char *v = h + strlen(secret[i]);
			while (*v == ' ') v++;
			log_redact_add(v);
			if (strncasecmp(v, "Bearer ", 7) == 0) log_redact_add(v + 7);
		}
}

static void parse_answers(const char *v, long *out)
{
	char *end;
	int n = 0;
	while (*v && n < MAX_ANSWERS) {
		out[n++] = strtol(v, &end, 10);
		v = *end == ',' ? end + 1 : end + strlen(end);
	}
	out[n] = 0;
}

static int parse(int argc, char **argv, struct args *a)
{
	memset(a, 0, sizeof *a);
	a->provider = "openai";
	for (int i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(k, "--not-idempotent")) {
			a->not_idempotent = 1;
			continue;
		}
		if (!v) return fprintf(stderr, "http_probe: %s needs a value\n", k), -1;
		i++;
		if (!strcmp(k, "--root"))
			a->root = v;
		else if (!strcmp(k, "--url"))
			a->url = v;
		else if (!strcmp(k, "--method"))
			a->method = v;
		else if (!strcmp(k, "--body"))
			a->body = v;
		else if (!strcmp(k, "--download"))
			a->download = v;
		else if (!strcmp(k, "--ca"))
			a->ca = v;
		else if (!strcmp(k, "--provider"))
			a->provider = v;
		else if (!strcmp(k, "--alert"))
			a->alert = v;
		else if (!strcmp(k, "--episode"))
			a->episode = v;
		else if (!strcmp(k, "--message"))
			a->message = v;
		else if (!strcmp(k, "--max-attempts"))
			a->max_attempts = atoi(v);
		else if (!strcmp(k, "--timeout"))
			a->timeout = atoi(v);
		else if (!strcmp(k, "--max-response"))
			a->max_response = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--body-file"))
			a->body_file = v;
		else if (!strcmp(k, "--body-offset"))
			a->body_offset = strtoll(v, NULL, 10);
		else if (!strcmp(k, "--body-length"))
			a->body_length = strtoll(v, NULL, 10);
		else if (!strcmp(k, "--answers"))
			parse_answers(v, a->answers);
		else if (!strcmp(k, "--header") && a->nheaders < MAX_HEADERS) {
			a->headers[a->nheaders++] = v;
			redact_header(v);
		} else
			return fprintf(stderr, "http_probe: unknown option %s\n", k), -1;
	}
	if (!a->root || (!a->url && !a->alert))
		return fprintf(stderr, "http_probe: --root and --url (or --alert) are required\n"), -1;
	return 0;
}

static cJSON *load_global(const struct args *a)
{
	char *path = xasprintf("%s/acog.yaml", a->root);
	cJSON *g = fsio_exists(path) ? yaml_load_file(path) : cJSON_CreateObject();
	free(path);
	if (!g) {
		fprintf(stderr, "http_probe: %s\n", err_msg());
		return NULL;
	}
	if (a->ca) {
		cJSON_DeleteItemFromObjectCaseSensitive(g, "ca_file");
		cJSON_AddStringToObject(g, "ca_file", a->ca);
	}
	return g;
}

static void print_result(int rc, const struct http_resp *r, const struct args *a, double ms)
{
	cJSON *o = cJSON_CreateObject();
	struct rusage ru;
	char *s;
	size_t len = r->body.len;
	if (rc == 0 && a->download) {
		char *data = fsio_read(a->download, (size_t)1 << 32, &len);
		free(data);
	}
	cJSON_AddNumberToObject(o, "rc", rc);
	cJSON_AddNumberToObject(o, "status", (double)r->status);
	cJSON_AddBoolToObject(o, "retriable", r->retriable);
	cJSON_AddBoolToObject(o, "maybe_ran", r->maybe_ran);
	cJSON_AddNumberToObject(o, "retry_after", r->retry_after);
	cJSON_AddNumberToObject(o, "attempts", r->attempts);
	cJSON_AddStringToObject(o, "error", r->error);
	cJSON_AddNumberToObject(o, "body_len", (double)len);
	cJSON_AddStringToObject(o, "body", r->body.len <= 65536 && r->body.s ? r->body.s : "");
	cJSON_AddStringToObject(o, "headers", r->headers.s ? r->headers.s : "");
	cJSON_AddNumberToObject(o, "ms", ms);
	getrusage(RUSAGE_SELF, &ru);
	cJSON_AddNumberToObject(o, "maxrss_kib", (double)ru.ru_maxrss);
	s = json_print(o);
	printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
}

static int alert(const struct args *a, cJSON *global)
{
	struct config c = { .root = (char *)a->root, .global = global };
	double t0 = time_mono();
	alert_send(&c, a->alert, a->episode, "%s", a->message ? a->message : "test alert");
	printf("{\"ms\":%.1f}\n", (time_mono() - t0) * 1000);
	cJSON_Delete(global);
	return 0;
}

int main(int argc, char **argv)
{
	struct args a;
	struct http_env env = { 0 };
	struct http_req req = { 0 };
	struct http_resp resp;
	cJSON *global, *provider;
	double t0;
	int rc;
	if (argc == 1) return printf("1..0 # SKIP http_probe is a driver for tests/test_http.py\n"), 0;
	if (parse(argc, argv, &a) < 0 || !(global = load_global(&a))) return EXIT_USAGE;
	if (a.alert) return alert(&a, global);
	provider = cJSON_CreateObject();
	cJSON_AddStringToObject(provider, "name", a.provider);
	env = (struct http_env){ .root = a.root, .global = global, .provider = provider, .stage = "probe" };
	req = (struct http_req){ .provider = a.provider,
				 .method = a.method,
				 .url = a.url,
				 .headers = a.headers,
				 .body = a.body,
				 .body_len = a.body ? strlen(a.body) : 0,
				 .download_to = a.download,
				 .body_file = a.body_file,
				 .body_offset = a.body_offset,
				 .body_length = a.body_length,
				 .answers = a.answers[0] ? a.answers : NULL,
				 .max_response = a.max_response,
				 .timeout_s = a.timeout,
				 .max_attempts = a.max_attempts,
				 .not_idempotent = a.not_idempotent };
	t0 = time_mono();
	rc = http_request(&env, &req, &resp);
	print_result(rc, &resp, &a, (time_mono() - t0) * 1000);
	http_resp_free(&resp);
	cJSON_Delete(provider);
	cJSON_Delete(global);
	return rc == 0 ? 0 : 1;
}
