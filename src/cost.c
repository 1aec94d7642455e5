/*
 * cost.c - prices, and which provider calls are paid.  Prices come from
 * acog.yaml `prices:` with the defaults below (documented in README.md).
 * What a channel spent and its budget are the daemon's (budget.c).
 */
#include "provider.h"
#include <stdio.h>
#include <string.h>

static const struct { const char *provider, *item, *key; double price; } defaults[] = {
	{ "elevenlabs", "chars", "per_1k_chars", 0.30 },      /* per 1000 characters */
	{ "heygen", "minutes", "per_minute", 1.00 },
	{ "runway", "gen4.5", "per_second", 0.12 },
	{ "runway", "gen4_turbo", "per_second", 0.05 },
	{ "runway", "veo3", "per_second", 0.40 },
	{ "runway", "veo3.1", "per_second", 0.40 },
	{ "runway", "veo3.1_fast", "per_second", 0.15 },
	{ "runway", "*", "per_second", 0.12 },
	{ "openai", "*", "output_per_1k", 0.0006 },
	{ NULL, NULL, NULL, 0 }
};

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

/* Paid providers: everything that calls a billing API.  A local
 * OpenAI-compatible server (or `local: true`) costs nothing. */
int cost_is_paid(const cJSON *provider)
{
	const char *name = json_str(provider, "name", "");
	const char *url = json_str(provider, "base_url", "");
	const cJSON *local = json_get(provider, "local");
	if (!strcmp(name, "openai") && cJSON_IsBool(local)) return !cJSON_IsTrue(local);
	if (!strcmp(name, "openai"))
		return !json_bool(provider, "local", 0) && !strstr(url, "://127.") && !strstr(url, "://localhost");
	return !strcmp(name, "elevenlabs") || !strcmp(name, "heygen") || !strcmp(name, "runway");
}
