/*
 * config.c - acog.yaml (optional, global) and channels/<id>/channel.yaml.
 * A channel that fails to load is left out and its error kept, so ideas for
 * it are rejected with the reason instead of being lost, and the daemon runs
 * on for every other channel.  Lookups fall back channel -> acog.yaml ->
 * built-in default.
 */
#define _GNU_SOURCE
#include "provider.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int channel_id_ok(const char *s)
{
	if (!*s || strlen(s) > 100) return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_')) return 0;
	return 1;
}

static int provider_value_ok(const cJSON *v)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
	return cJSON_IsString(v) || (cJSON_IsObject(v) && (!name || cJSON_IsString(name)));
}

static int seconds_ok(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble > 0;
}

static int switch_ok(const cJSON *v)
{
	return cJSON_IsBool(v) || cJSON_IsNumber(v);
}

/* The maps of channel.yaml keyed by stage or gate names, so that a
 * misspelt name ("audoi") is reported instead of silently ignored. */
static const struct section {
	const char *name;
	int gates;         /* keyed by gate names, else by work stage names */
	const char *extra; /* one more key it takes */
	int (*value_ok)(const cJSON *v);
	const char *want;
	/* clang-format off: a table keeps one row per line */
} sections[] = {
	{ "providers", 0, NULL, provider_value_ok, "a provider name or a map with name: and its options" },
	{ "timeouts", 0, "default", seconds_ok, "a number of seconds above 0" },
	{ "gates", 1, NULL, switch_ok, "true or false" },
};
/* clang-format on */

static void section_names(const struct section *sec, const char **names, size_t max)
{
	size_t n = sec->gates ? stage_gates(names, max - 2) : 0;
	for (size_t i = 0; !sec->gates && i < stage_count && n < max - 2; i++)
		if (stage_table[i].kind == STAGE_WORK) names[n++] = stage_table[i].name;
	if (sec->extra) names[n++] = sec->extra;
	names[n] = NULL;
}

static void check_section(const struct section *sec, const cJSON *map, struct sbuf *errs)
{
	const char *names[64], *hint;
	const cJSON *v;
	if (!map) return;
	if (!cJSON_IsObject(map)) {
		sb_printf(errs, "%s%s must be a map", errs->len ? "; " : "", sec->name);
		return;
	}
	section_names(sec, names, 64);
	cJSON_ArrayForEach (v, map) {
		size_t k = 0;
		while (names[k] && strcmp(names[k], v->string)) k++;
		hint = names[k] ? NULL : provider_opts_suggest(v->string, names);
		if (!names[k])
			sb_printf(errs, "%s%s.%s: not a %s name%s%s%s", errs->len ? "; " : "", sec->name, v->string,
				  sec->gates ? "gate" : "stage", hint ? "; did you mean \"" : "", hint ? hint : "",
				  hint ? "\"?" : "");
		else if (!sec->value_ok(v))
			sb_printf(errs, "%s%s.%s: use %s", errs->len ? "; " : "", sec->name, v->string, sec->want);
	}
}

/* The stage and gate maps, then every providers.<stage> against the
 * registry: every problem of the file in one message ("; " between them),
 * one line of load_errors. */
static int check_channel(const struct channel *ch, const char *path)
{
	struct sbuf errs = { 0 };
	int rc;
	for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
		check_section(&sections[i], json_get(ch->cfg, sections[i].name), &errs);
	pulse_rules_check(json_get(ch->cfg, "pulse"), &errs);
	visuals_check(ch->cfg, &errs);
	for (size_t i = 0; i < stage_count; i++) {
		cJSON *opts;
		if (stage_table[i].kind != STAGE_WORK) continue;
		opts = config_provider(ch, stage_table[i].name);
		(void)!provider_opts_check(stage_table[i].name, opts, &errs); /* the problems are in errs */
		cJSON_Delete(opts);
	}
	if (captions_check(ch->cfg) < 0) sb_printf(&errs, "%s%s", errs.len ? "; " : "", err_msg());
	rc = errs.len ? err_set("%s: %s", path, errs.s) : 0;
	sb_free(&errs);
	return rc;
}

static int load_channel(struct config *c, const char *id, struct channel *ch)
{
	char *path;
	const char *cid;
	memset(ch, 0, sizeof *ch);
	if (!channel_id_ok(id))
		return err_set("channels/%s: a channel folder name may hold only a-z, 0-9, '-' and '_'", id);
	ch->dir = xasprintf("%s/channels/%s", c->root, id);
	snprintf(ch->id, sizeof ch->id, "%.100s", id);
	path = xasprintf("%s/channel.yaml", ch->dir);
	ch->cfg = yaml_load_file(path);
	if (!ch->cfg) goto fail;
	cid = json_str(ch->cfg, "id", id);
	if (strcmp(cid, id) != 0) {
		err_set("%s: id '%s' does not match its folder name '%s'", path, cid, id);
		goto fail;
	}
	if (check_channel(ch, path) < 0) goto fail;
	free(path);
	return 0;
fail:
	free(path);
	cJSON_Delete(ch->cfg);
	free(ch->dir);
	memset(ch, 0, sizeof *ch);
	return -1;
}

static int cmp_channel(const void *a, const void *b)
{
	return strcmp(((const struct channel *)a)->id, ((const struct channel *)b)->id);
}

int config_load(struct config *c, const char *root)
{
	char *p = xasprintf("%s/acog.yaml", root), *chdir_path;
	struct sbuf errs = { 0 };
	DIR *d;
	struct dirent *de;

	memset(c, 0, sizeof *c);
	c->root = xstrdup(root);
	c->global = fsio_exists(p) ? yaml_load_file(p) : cJSON_CreateObject();
	free(p);
	if (!c->global) return -1;
	chdir_path = xasprintf("%s/channels", root);
	d = opendir(chdir_path);
	free(chdir_path);
	while (d && (de = readdir(d)) != NULL) {
		struct channel ch;
		char *yml;
		if (de->d_name[0] == '.') continue;
		yml = xasprintf("%s/channels/%s/channel.yaml", root, de->d_name);
		if (!fsio_exists(yml)) {
			free(yml);
			continue;
		}
		free(yml);
		if (load_channel(c, de->d_name, &ch) < 0) {
			sb_printf(&errs, "%s\t%s\n", de->d_name, err_msg());
			continue;
		}
		c->ch = xrealloc(c->ch, (c->nch + 1) * sizeof *c->ch);
		c->ch[c->nch++] = ch;
	}
	if (d) closedir(d);
	if (c->nch) qsort(c->ch, c->nch, sizeof *c->ch, cmp_channel); /* ch is NULL when none loaded */
	c->load_errors = errs.s;
	return 0;
}

void config_free(struct config *c)
{
	for (size_t i = 0; i < c->nch; i++) {
		cJSON_Delete(c->ch[i].cfg);
		free(c->ch[i].dir);
	}
	free(c->ch);
	cJSON_Delete(c->global);
	free(c->root);
	free(c->load_errors);
	memset(c, 0, sizeof *c);
}

struct channel *config_channel(struct config *c, const char *id)
{
	for (size_t i = 0; id && i < c->nch; i++)
		if (strcmp(c->ch[i].id, id) == 0) return &c->ch[i];
	return NULL;
}

cJSON *config_provider(const struct channel *ch, const char *stage)
{
	const struct stage_def *s = stage_find(stage);
	const cJSON *p = json_get(json_get(ch->cfg, "providers"), stage);
	cJSON *out;
	if (cJSON_IsObject(p)) {
		out = cJSON_Duplicate(p, 1);
		if (!cJSON_IsString(cJSON_GetObjectItem(out, "name"))) {
			cJSON_DeleteItemFromObject(out, "name");
			cJSON_AddStringToObject(out, "name", s && s->default_provider ? s->default_provider : "");
		}
		return out;
	}
	out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "name",
				cJSON_IsString(p)                  ? p->valuestring
					: s && s->default_provider ? s->default_provider
								   : "");
	return out;
}

int config_gate(const struct channel *ch, const char *gate)
{
	return json_bool(json_get(ch->cfg, "gates"), gate, stage_gate_default(gate) == 1);
}

const char *config_gate_after(const struct channel *ch, const struct stage_def *s)
{
	return s && s->gate_after && config_gate(ch, s->gate_after) ? s->gate_after : NULL;
}

static double lookup_num(const struct config *c, const struct channel *ch, const char *path, double def)
{
	double v = json_num(ch ? ch->cfg : NULL, path, -1);
	if (v >= 0) return v;
	v = json_num(c->global, path, -1);
	return v >= 0 ? v : def;
}

int config_timeout(const struct config *c, const struct channel *ch, const char *stage)
{
	const struct stage_def *s = stage_find(stage);
	char key[64];
	double v;
	snprintf(key, sizeof key, "timeouts.%s", stage);
	v = lookup_num(c, ch, key, -1);
	if (v < 0) v = lookup_num(c, ch, "timeouts.default", s ? s->timeout_s : 600);
	return v < 1 ? 1 : (int)v;
}

int config_max_retries(const struct config *c, const struct channel *ch)
{
	return (int)lookup_num(c, ch, "retry.max_retries", 3);
}

double config_retry_base(const struct config *c, const struct channel *ch)
{
	return lookup_num(c, ch, "retry.base_seconds", 2);
}

double config_retry_max(const struct config *c, const struct channel *ch)
{
	return lookup_num(c, ch, "retry.max_seconds", 300);
}
