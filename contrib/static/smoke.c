/*
 * smoke.c — proves that the static dependency set of acog-batch links and works.
 *
 * Usage: smoke URL [CAFILE|-] [DNS_SERVER]
 *
 * Fetches URL with libcurl (CAFILE, unless "-", becomes CURLOPT_CAINFO; DNS_SERVER, such as
 * 127.0.0.1:5353, becomes CURLOPT_DNS_SERVERS, which only c-ares builds accept), parses the body
 * as JSON with cJSON, opens an in-memory SQLite database, parses a line of YAML with
 * libyaml and generates a UUID with libuuid, then prints the version of every library and
 * which resolver libcurl uses.  It exits 0 only if every step worked and the resolver is
 * c-ares: a statically linked glibc program must never reach getaddrinfo(), which would
 * dlopen the NSS modules of whatever glibc the target machine happens to have.
 *
 * Built by contrib/static/build-deps.sh with the flags it writes to flags.mk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <curl/curl.h>
#include <sqlite3.h>
#include <uuid/uuid.h>
#include <yaml.h>

struct buf {
	char *data;
	size_t len;
};

/* Keeps the whole body in memory; the smoke test fetches a few bytes only. */
static size_t smoke_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (b->len + n + 1 > 1 << 20) return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	if ((p = realloc(b->data, b->len + n + 1)) == NULL) return 0;
	memcpy(p + b->len, ptr, n);
	b->data = p;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int smoke_resolver(void)
{
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	int async = (vi->features & CURL_VERSION_ASYNCHDNS) != 0;

	printf("curl:      %s\n", curl_version());
	printf("libcurl:   %s, ssl %s, zlib %s\n", vi->version, vi->ssl_version ? vi->ssl_version : "none",
	       vi->libz_version ? vi->libz_version : "none");
	printf("resolver:  %s, c-ares %s\n", async ? "asynchronous (CURL_VERSION_ASYNCHDNS)" : "synchronous",
	       vi->ares ? vi->ares : "absent");
	if (!async || vi->ares == NULL) {
		fprintf(stderr, "smoke: libcurl does not resolve with c-ares\n");
		return -1;
	}
	return 0;
}

static int smoke_fetch(const char *url, const char *cafile, const char *dns, struct buf *body)
{
	CURL *h;
	CURLcode rc;
	long status = 0;
	char *ip = NULL;
	char err[CURL_ERROR_SIZE] = "";

	if ((h = curl_easy_init()) == NULL) return -1;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, smoke_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (cafile != NULL && strcmp(cafile, "-") != 0) curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
	/* Never fall back to the system's name servers if the option is refused. */
	if (dns != NULL && (rc = curl_easy_setopt(h, CURLOPT_DNS_SERVERS, dns)) != CURLE_OK) {
		fprintf(stderr, "smoke: CURLOPT_DNS_SERVERS: %s\n", curl_easy_strerror(rc));
		curl_easy_cleanup(h);
		return -1;
	}
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip);
		printf("fetch:     %s -> %s, HTTP %ld, %zu bytes%s%s\n", url, ip ? ip : "?", status, body->len,
		       dns ? ", names from DNS server " : "", dns ? dns : "");
	}
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		fprintf(stderr, "smoke: %s: %s\n", url, err[0] ? err : curl_easy_strerror(rc));
		return -1;
	}
	return status == 200 ? 0 : -1;
}

static int smoke_json(const struct buf *body)
{
	cJSON *doc, *msg;
	int ok;

	printf("cjson:     %s\n", cJSON_Version());
	if ((doc = cJSON_Parse(body->data ? body->data : "")) == NULL) {
		fprintf(stderr, "smoke: body is not JSON\n");
		return -1;
	}
	msg = cJSON_GetObjectItemCaseSensitive(doc, "message");
	ok = cJSON_IsString(msg);
	printf("json:      message=%s\n", ok ? msg->valuestring : "(missing)");
	cJSON_Delete(doc);
	return ok ? 0 : -1;
}

static int smoke_sqlite(void)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int rc = -1;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK) return -1;
	if (sqlite3_prepare_v2(db, "SELECT sqlite_version()", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			printf("sqlite3:   %s (:memory: open)\n", sqlite3_column_text(st, 0));
			rc = 0;
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return rc;
}

static int smoke_yaml(void)
{
	static const unsigned char doc[] = "id: demo\nvideo: {fps: 30}\n";
	yaml_parser_t p;
	yaml_event_t ev;
	int events = 0, done = 0;

	if (!yaml_parser_initialize(&p)) return -1;
	yaml_parser_set_input_string(&p, doc, sizeof(doc) - 1);
	while (!done) {
		if (!yaml_parser_parse(&p, &ev)) {
			yaml_parser_delete(&p);
			return -1;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		events++;
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	printf("libyaml:   %s (%d events)\n", yaml_get_version_string(), events);
	return 0;
}

static int smoke_uuid(void)
{
	uuid_t u;
	char s[37];

	uuid_generate(u);
	uuid_unparse_lower(u, s);
	printf("libuuid:   %s\n", s);
	return uuid_is_null(u) ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct buf body = { NULL, 0 };
	int rc = 0;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: smoke URL [CAFILE|-] [DNS_SERVER]\n");
		return 64;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 70;
	if (smoke_resolver() == -1) rc = 1;
	if (smoke_fetch(argv[1], argc >= 3 ? argv[2] : NULL, argc == 4 ? argv[3] : NULL, &body) == -1 ||
	    smoke_json(&body) == -1)
		rc = 1;
	if (smoke_sqlite() == -1 || smoke_yaml() == -1 || smoke_uuid() == -1) rc = 1;
	free(body.data);
	curl_global_cleanup();
	printf("result:    %s\n", rc == 0 ? "ok" : "FAILED");
	return rc;
}
