/* Unit tests: http.c helpers (Retry-After, classification, provider error
 * messages, headers, CA bundle order) and credentials.c key rules. */
#define _GNU_SOURCE
#include "daemon.h"
#include "provider.h"
#include "tap.h"
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/acog-test-http-XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(path);
	return 0;
}

static void http_date(double offset, char *out, size_t n)
{
	time_t t = (time_t)(time_now() + offset);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void test_retry_after(void)
{
	char date[64];
	double d;
	ok(http_parse_retry_after("2") == 2, "Retry-After: 2");
	ok(fabs(http_parse_retry_after("0.25") - 0.25) < 1e-9, "Retry-After: 0.25 (fractional)");
	ok(http_parse_retry_after(" 3 \r\n") == 3, "blanks around the value");
	ok(http_parse_retry_after("0") == 0, "zero");
	ok(http_parse_retry_after("99999999") == 86400, "absurd values are bounded");
	ok(http_parse_retry_after(NULL) == -1 && http_parse_retry_after("") == -1, "NULL and empty are bad");
	ok(http_parse_retry_after("-1") == -1 && http_parse_retry_after("1e3") == -1 &&
		   http_parse_retry_after("0x10") == -1 && http_parse_retry_after("soon") == -1 &&
		   http_parse_retry_after("inf") == -1 && http_parse_retry_after("1.2.3") == -1,
	   "junk is bad");
	http_date(10, date, sizeof date);
	d = http_parse_retry_after(date);
	ok(d > 8 && d <= 10.01, "IMF-fixdate 10 s ahead -> %.2f", d);
	ok(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT") == 0, "a past date means now");
	ok(http_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT") == 0, "RFC 850 date");
	ok(http_parse_retry_after("Sun Nov  6 08:49:37 1994") == 0, "asctime date");
}

static void test_classify(void)
{
	static const long yes[] = { 0, 408, 409, 429, 500, 502, 503, 504 };
	static const long no[] = { 200, 204, 308, 400, 401, 403, 404, 413, 422, 501, 505 };
	int good = 1;
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) good &= http_classify(yes[i], NULL) == 1;
	ok(good, "transport, 408, 409, 429, 500, 502, 503, 504 are retriable");
	good = 1;
	for (size_t i = 0; i < sizeof no / sizeof *no; i++) good &= http_classify(no[i], "{}") == 0;
	ok(good, "2xx, 3xx, other 4xx, 501, 505 are permanent");
	ok(http_classify(429, "{\"error\":{\"message\":\"Rate limit reached\",\"code\":\"rate_limit_exceeded\"}}") == 1,
	   "429 rate limit retries");
	ok(http_classify(429,
			 "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\"}}") ==
		   0,
	   "429 insufficient_quota is permanent");
	ok(http_classify(429, "{\"detail\":{\"status\":\"quota_exceeded\",\"message\":\"no credits\"}}") == 0,
	   "429 quota_exceeded is permanent");
	ok(http_classify(429, "{\"error\":{\"errors\":[{\"reason\":\"quotaExceeded\"}]}}") == 0,
	   "429 quotaExceeded is permanent");
	ok(http_classify(401, "{\"detail\":{\"status\":\"quota_exceeded\"}}") == 0, "401 never retries");
}

static void msg_is(const char *body, const char *want)
{
	char *m = http_error_message(body);
	ok(want ? m && strcmp(m, want) == 0 : m == NULL, "%.60s -> %s", body ? body : "NULL", m ? m : "NULL");
	free(m);
}

static void test_messages(void)
{
	msg_is("{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\","
	       "\"param\":null,\"code\":\"invalid_api_key\"}}",
	       "Incorrect API key provided (invalid_api_key)");
	msg_is("{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\",\"code\":null}}",
	       "You exceeded your current quota (insufficient_quota)");
	msg_is("{\"error\":{\"code\":503,\"message\":\"Loading model\",\"type\":\"unavailable_error\"}}",
	       "Loading model (unavailable_error)");
	msg_is("{\"object\":\"error\",\"message\":\"The model `x` does not exist.\",\"type\":\"NotFoundError\","
	       "\"param\":null,\"code\":404}",
	       "The model `x` does not exist. (NotFoundError)");
	msg_is("{\"error\":\"Invalid API key\"}", "Invalid API key");
	msg_is("{\"error\":\"Validation of body failed\",\"issues\":[{\"path\":[\"promptText\"],\"message\":\"Too long\"},"
	       "{\"path\":[\"ratio\"],\"message\":\"Invalid enum value\"}]}",
	       "Validation of body failed: promptText: Too long; ratio: Invalid enum value");
	msg_is("{\"detail\":{\"type\":\"validation_error\",\"code\":\"voice_not_found\",\"message\":\"A voice with the "
	       "voice_id abc was not found.\",\"status\":\"voice_not_found\",\"request_id\":\"r1\",\"param\":null}}",
	       "A voice with the voice_id abc was not found. (voice_not_found)");
	msg_is("{\"detail\":{\"status\":\"quota_exceeded\",\"message\":\"This request exceeds your quota.\"}}",
	       "This request exceeds your quota. (quota_exceeded)");
	msg_is("{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"text\"],\"msg\":\"Field required\"},"
	       "{\"loc\":[\"body\",\"voice_settings\",\"stability\"],\"msg\":\"must be <= 1\"}]}",
	       "body.text: Field required; body.voice_settings.stability: must be <= 1");
	msg_is("{\"detail\":\"Not Found\"}", "Not Found");
	msg_is("{\"code\":400112,\"message\":\"Unauthorized\",\"data\":null}", "Unauthorized");
	msg_is("{\"error\":{\"code\":403,\"message\":\"The request cannot be completed because you have exceeded your "
	       "quota.\",\"errors\":[{\"message\":\"m\",\"domain\":\"youtube.quota\",\"reason\":\"quotaExceeded\"}]}}",
	       "The request cannot be completed because you have exceeded your quota. (quotaExceeded)");
	msg_is("{\"message\":\"You are being rate limited.\",\"retry_after\":0.5,\"global\":false}",
	       "You are being rate limited.");
	msg_is("{\"error\":{\"message\":\"two\\nlines\"}}", "two lines");
	msg_is("no_text", NULL);
	msg_is("<html>502 Bad Gateway</html>", NULL);
	msg_is("[]", NULL);
	msg_is("{\"error\":{}}", NULL);
	msg_is(NULL, NULL);
}

static void test_header(void)
{
	struct http_resp r = { 0 };
	char v[64];
	sb_puts(&r.headers,
		"HTTP/1.1 429 Too Many Requests\r\nRetry-After:  2 \r\nx-should-retry: false\r\n"
		"Content-Type: application/json\r\n\r\n");
	ok(http_header(&r, "retry-after", v, sizeof v) && strcmp(v, "2") == 0, "header value trimmed, name caseless");
	ok(http_header(&r, "X-Should-Retry", v, sizeof v) && strcmp(v, "false") == 0, "x-should-retry");
	ok(http_header(&r, "retry-after-ms", v, sizeof v) == NULL, "a prefix is not a match");
	ok(http_header(&r, "Content-Type", v, 5) && strcmp(v, "appl") == 0, "value cut to the buffer");
	http_resp_free(&r);
}

static char *write_file(const char *name, const char *text, mode_t mode)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	chmod(p, mode);
	return p;
}

static void test_ca_file(void)
{
	cJSON *g = cJSON_CreateObject();
	char why[600], *a = write_file("a.pem", "x", 0644), *b = write_file("b.pem", "x", 0644);
	const char *r;
	unsetenv("SSL_CERT_FILE");
	r = http_ca_file(g, why, sizeof why);
	if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0)
		ok(r && strcmp(r, "/etc/ssl/certs/ca-certificates.crt") == 0, "Debian bundle by default: %s", why);
	else
		ok(r || (strstr(why, "/etc/pki/tls/certs/ca-bundle.crt") && strstr(why, "/etc/ssl/cert.pem")),
		   "a distro bundle, or every place looked named: %s", why);
	setenv("SSL_CERT_FILE", b, 1);
	r = http_ca_file(g, why, sizeof why);
	ok(r && strcmp(r, b) == 0, "SSL_CERT_FILE before the distro paths");
	cJSON_AddStringToObject(g, "ca_file", a);
	r = http_ca_file(g, why, sizeof why);
	ok(r && strcmp(r, a) == 0, "acog.yaml ca_file before SSL_CERT_FILE");
	cJSON_ReplaceItemInObject(g, "ca_file", cJSON_CreateString("/nonexistent/ca.pem"));
	r = http_ca_file(g, why, sizeof why);
	ok(!r && strstr(why, "/nonexistent/ca.pem") && strstr(why, "acog.yaml"), "a missing ca_file is an error: %s",
	   why);
	cJSON_DeleteItemFromObject(g, "ca_file");
	setenv("SSL_CERT_FILE", "/nonexistent/env.pem", 1);
	r = http_ca_file(g, why, sizeof why);
	ok(!r && strstr(why, "SSL_CERT_FILE=/nonexistent/env.pem"), "a missing SSL_CERT_FILE is an error: %s", why);
	unsetenv("SSL_CERT_FILE");
	ok(http_ca_file(NULL, NULL, 0) != NULL || access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0,
	   "NULL global and no why buffer");
	cJSON_Delete(g);
	free(a);
	free(b);
}

static char *key_with(const char *opt, const char *value)
{
	cJSON *prov = cJSON_CreateObject();
	struct stage_ctx ctx = { .root = dir, .stage = "audio", .provider = prov };
	char *k;
	cJSON_AddStringToObject(prov, opt, value);
	k = credential_get(&ctx, "api_key");
	cJSON_Delete(prov);
	return k;
}

static void test_credentials(void)
{
	char *k, *p, *link, *log;
	size_t len;
	setenv("ACOG_TEST_KEY", "sk-env-0123456789", 1);
	k = key_with("api_key_env", "ACOG_TEST_KEY");
	ok(k && strcmp(k, "sk-env-0123456789") == 0, "key from the environment");
	free(k);
	k = key_with("api_key_env", "ACOG_TEST_MISSING");
	ok(!k && strstr(err_msg(), "set ACOG_TEST_MISSING in the daemon's environment (providers.audio.api_key_env)"),
	   "missing variable: %s", err_msg());
	free(write_file("k600", "sk-file-abcdef123\n", 0600));
	k = key_with("api_key_file", "k600");
	ok(k && strcmp(k, "sk-file-abcdef123") == 0, "0600 file, newline stripped");
	free(k);
	free(write_file("k400", "sk-file-r-abcdef\r\n", 0400));
	k = key_with("api_key_file", "k400");
	ok(k && strcmp(k, "sk-file-r-abcdef") == 0, "0400 file, CRLF stripped");
	free(k);
	p = write_file("k644", "sk-open\n", 0644);
	k = key_with("api_key_file", "k644");
	ok(!k && strstr(err_msg(), "chmod 600 ") && strstr(err_msg(), p), "0644 refused: %s", err_msg());
	link = xasprintf("%s/klink", dir);
	ok(symlink("k600", link) == 0 && !key_with("api_key_file", "klink") && strstr(err_msg(), "symbolic link"),
	   "a symlink is refused: %s", err_msg());
	free(write_file("kempty", "\n", 0600));
	ok(!key_with("api_key_file", "kempty") && strstr(err_msg(), "empty"), "empty file refused: %s", err_msg());
	free(write_file("ktwo", "sk-one\nsk-two\n", 0600));
	ok(!key_with("api_key_file", "ktwo") && strstr(err_msg(), "line break"), "two lines refused: %s", err_msg());
	ok(!key_with("model", "x") && strstr(err_msg(), "api_key_env"), "no key option: %s", err_msg());
	log = xasprintf("%s/log.jsonl", dir);
	log_set_stderr(0);
	log_ev("info", NULL, dir, "test", "key sk-file-abcdef123 and sk-env-0123456789");
	free(p);
	p = fsio_read(log, 65536, &len);
	ok(p && !strstr(p, "sk-file-abcdef123") && !strstr(p, "sk-env-0123456789") && strstr(p, "[REDACTED]"),
	   "keys are registered for redaction");
	free(p);
	free(log);
	free(link);
}

int main(void)
{
	if (!mkdtemp(dir)) return 1;
	test_retry_after();
	test_classify();
	test_messages();
	test_header();
	test_ca_file();
	test_credentials();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
