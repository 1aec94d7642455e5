/*
 * cost.c - prices, and which provider calls are paid.  Prices come from
 * acog.yaml `prices:` with the defaults below (documented in README.md).
 * Whether a call is paid is the registry row's function of the options; the
 * one rule for "a server on this machine is free" is cost_url_is_local
 * (libcurl's URL parser, never a substring match).
 * What a channel spent and its budget are the daemon's (budget.c).
 */
#include "provider.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* clang-format off: a table keeps one row per line */
static const struct {
	const char *provider, *item, *key;
	double price;
} defaults[] = { { "elevenlabs", "chars", "per_1k_chars", 0.30 }, /* per 1000 characters */
		 { "heygen", "minutes", "per_minute", 1.00 },
		 { "runway", "gen4.5", "per_second", 0.12 },
		 { "runway", "gen4_turbo", "per_second", 0.05 },
		 { "runway", "veo3", "per_second", 0.40 },
		 { "runway", "veo3.1", "per_second", 0.40 },
		 { "runway", "veo3.1_fast", "per_second", 0.15 },
		 { "runway", "*", "per_second", 0.12 },
		 { "openai", "*", "output_per_1k", 0.0006 },
		 { NULL, NULL, NULL, 0 } };
/* clang-format on */

double cost_price(const cJSON *global, const char *provider, const char *item, double units)
{
	char path[256];
	const cJSON *j;
	for (int i = 0; defaults[i].provider; i++) {
		if (strcmp(defaults[i].provider, provider) ||
		    (strcmp(defaults[i].item, item) && strcmp(defaults[i].item, "*")))
			continue;
		/* acog.yaml: prices.<provider>.<key> or prices.<provider>.<item>.<key> */
		snprintf(path, sizeof path, "prices.%s.%s", provider, defaults[i].key);
		j = json_get(global, path);
		if (!cJSON_IsNumber(j)) {
			snprintf(path, sizeof path, "prices.%s", provider);
			/* a model name like gen4.5 is one key, not a dotted path */
			j = cJSON_GetObjectItemCaseSensitive(json_get(global, path), item);
			j = cJSON_IsObject(j) ? cJSON_GetObjectItem(j, defaults[i].key) : j;
		}
		{
			double p = cJSON_IsNumber(j) ? j->valuedouble : defaults[i].price;
			return strstr(defaults[i].key, "1k") ? units / 1000.0 * p : units * p;
		}
	}
	return 0;
}

/* Is this host this machine?  localhost (and names under .localhost),
 * 127.0.0.0/8, ::1 and ::ffff:127.x.  Names are never resolved: a remote name
 * that happens to resolve to 127.0.0.1 is still treated as remote (paid). */
static int host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char buf[64];
	size_t n = strlen(host);
	if (n && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = 0;
		if (inet_pton(AF_INET6, buf, &a6) != 1) return 0;
		return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	}
	if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
	if (n && host[n - 1] == '.') n--; /* "localhost." is the same name */
	return (n == 9 && !strncasecmp(host, "localhost", 9)) ||
		(n > 10 && !strncasecmp(host + n - 10, ".localhost", 10));
}

int cost_url_is_local(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	int local = 0;
	if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		local = host_is_loopback(host);
	curl_free(host);
	curl_url_cleanup(u);
	return local;
}

int cost_paid_always(const struct provider_def *p, const cJSON *opts)
{
	(void)p;
	(void)opts;
	return 1;
}

int cost_paid_unless_local(const struct provider_def *p, const cJSON *opts)
{
	const cJSON *local = cJSON_GetObjectItemCaseSensitive(opts, "local");
	if (cJSON_IsBool(local)) return !cJSON_IsTrue(local);
	return !cost_url_is_local(provider_opt_str(p, opts, "base_url"));
}

/* Paid providers: what the registry row says for these options; a provider
 * the registry does not know runs nothing, so costs nothing. */
int cost_is_paid(const cJSON *provider)
{
	const struct provider_def *p = provider_find(NULL, json_str(provider, "name", ""));
	return p && p->paid && p->paid(p, provider);
}
