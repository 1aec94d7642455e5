/*
 * provider_opts.c - provider options against the registry (provider.c).
 * When a channel loads, each providers.<stage> map is checked here: an
 * unknown key (with the closest known one as a hint), a wrong type, a value
 * out of range or not among the allowed ones is reported with the file, the
 * provider and the key, and config.c leaves the channel out with that
 * reason.  At run time a provider reads an option or its registry default
 * through provider_opt_str / provider_opt_num, so a default is written once.
 */
#include "provider.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What http.c reads from every HTTP provider's options (rps and
 * concurrency only fill in what acog.yaml limits.<provider> leaves unset). */
/* clang-format off: a table keeps one row per line */
const struct provider_opt http_opts[] = {
	{ "timeout", OPT_NUMBER, "120", 1, 3600, NULL, "seconds one HTTP request may take" },
	{ "rps", OPT_NUMBER, NULL, 0, 1000, NULL, "requests per second across all stages (acog.yaml limits win)" },
	{ "concurrency", OPT_INTEGER, NULL, 0, 64, NULL, "requests at once across all stages (acog.yaml limits win)" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

/* The publish settings every upload provider takes: youtube sends them with
 * the upload, directory carries them in the bundle's settings.json for the
 * connected machine's uploader. */
/* clang-format off: a table keeps one row per line */
const struct provider_opt publish_opts[] = {
	{ "privacy", OPT_ENUM, "private", 0, 0, "private|unlisted|public", "status.privacyStatus on upload" },
	{ "category_id", OPT_STRING, NULL, 0, 8, NULL, "snippet.categoryId on upload, e.g. \"22\"" },
	{ "default_language", OPT_STRING, NULL, 0, 16, NULL, "snippet.defaultLanguage (and the captions' language)" },
	{ "playlist_id", OPT_STRING, NULL, 0, 64, NULL, "playlist to add each video to on upload" },
	{ "made_for_kids", OPT_BOOL, "false", 0, 0, NULL, "status.selfDeclaredMadeForKids on upload" },
	{ "synthetic_media", OPT_BOOL, "true", 0, 0, NULL, "status.containsSyntheticMedia on upload" },
	{ "notify_subscribers", OPT_BOOL, "true", 0, 0, NULL, "notifySubscribers on upload" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

#define KEYS_MAX 64
#define KEY_LEN 48 /* longer names get no suggestion */

static int type_is(const cJSON *v, int want, const char *what)
{
	char *shown;
	if (want) return 0;
	shown = json_print(v);
	if (strlen(shown) > 60) memcpy(shown + 57, "...", 4);
	err_set("must be %s, not %s", what, shown);
	free(shown);
	return -1;
}

static int range_ok(const struct provider_opt *o, double v)
{
	if ((o->min == 0 && o->max == 0) || (v >= o->min && v <= o->max)) return 0;
	return err_set("is %.15g; use %.15g to %.15g", v, o->min, o->max);
}

static int check_number(const struct provider_opt *o, const cJSON *v)
{
	return type_is(v, cJSON_IsNumber(v) && isfinite(v->valuedouble), "a number") ? -1 : range_ok(o, v->valuedouble);
}

static int check_integer(const struct provider_opt *o, const cJSON *v)
{
	if (type_is(v, cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble), "a whole number") < 0) return -1;
	return range_ok(o, v->valuedouble);
}

static int check_bool(const struct provider_opt *o, const cJSON *v)
{
	(void)o;
	return type_is(v, cJSON_IsBool(v), "true or false");
}

/* Text without control characters, not longer than max (when set). */
static int check_string(const struct provider_opt *o, const cJSON *v)
{
	size_t max = o->max > 0 ? (size_t)o->max : ACOG_PATH_MAX;
	if (type_is(v, cJSON_IsString(v), "text") < 0) return -1;
	for (const char *p = v->valuestring; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) return err_set("holds a control character");
	if (strlen(v->valuestring) > max) return err_set("is longer than %zu characters", max);
	return 0;
}

static int check_path(const struct provider_opt *o, const cJSON *v)
{
	if (check_string(o, v) < 0) return -1;
	return v->valuestring[0] ? 0 : err_set("is empty; name a file or folder");
}

static int check_env_name(const struct provider_opt *o, const cJSON *v)
{
	const char *s;
	if (check_string(o, v) < 0) return -1;
	s = v->valuestring;
	if (*s && !(*s >= '0' && *s <= '9') &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s))
		return 0;
	/* The value is not repeated: it is often the key itself, pasted in by mistake. */
	return err_set("is not the name of an environment variable (letters, digits and _); put the key in the "
		       "daemon's environment and name the variable here, never the key itself");
}

static int enum_has(const char *values, const char *s)
{
	size_t n = strlen(s);
	for (const char *p = values; p; p = strchr(p, '|') ? strchr(p, '|') + 1 : NULL)
		if (!strncmp(p, s, n) && (p[n] == '|' || !p[n])) return 1;
	return 0;
}

static int check_enum(const struct provider_opt *o, const cJSON *v)
{
	struct sbuf list = { 0 };
	if (type_is(v, cJSON_IsString(v), "text") < 0) return -1;
	if (*v->valuestring && !strchr(v->valuestring, '|') && enum_has(o->values, v->valuestring)) return 0;
	for (const char *p = o->values; *p; p++)
		if (*p == '|')
			sb_puts(&list, ", ");
		else
			sb_add(&list, p, 1);
	err_set("is \"%.80s\"; use one of %s", v->valuestring, list.s);
	sb_free(&list);
	return -1;
}

static int check_url(const struct provider_opt *o, const cJSON *v)
{
	const char *s;
	if (check_string(o, v) < 0) return -1;
	s = v->valuestring;
	if ((!strncmp(s, "http://", 7) && s[7]) || (!strncmp(s, "https://", 8) && s[8])) return 0;
	return err_set("is \"%.80s\"; use an http:// or https:// URL", s);
}

static int check_object(const struct provider_opt *o, const cJSON *v)
{
	(void)o;
	return type_is(v, cJSON_IsObject(v), "a map");
}

static int check_array(const struct provider_opt *o, const cJSON *v)
{
	(void)o;
	return type_is(v, cJSON_IsArray(v), "a list");
}

/* Indexed by enum opt_type. */
static const struct {
	const char *name;
	int (*check)(const struct provider_opt *o, const cJSON *v);
	/* clang-format off: a table keeps one row per line */
} types[OPT_TYPE_COUNT] = {
	[OPT_STRING] = { "text", check_string },
	[OPT_NUMBER] = { "number", check_number },
	[OPT_INTEGER] = { "whole number", check_integer },
	[OPT_BOOL] = { "true or false", check_bool },
	[OPT_PATH] = { "path", check_path },
	[OPT_SECRET_FILE] = { "secret file (mode 0600)", check_path },
	[OPT_ENV_NAME] = { "environment variable name", check_env_name },
	[OPT_ENUM] = { "one of", check_enum },
	[OPT_URL] = { "http(s) URL", check_url },
	[OPT_OBJECT] = { "map", check_object },
	[OPT_ARRAY] = { "list", check_array },
};
/* clang-format on */

const char *provider_opt_type_name(enum opt_type t)
{
	return (unsigned)t < OPT_TYPE_COUNT && types[t].name ? types[t].name : NULL;
}

/* 0, or -1 with err_set saying what is wrong with v ("is 900; use 80 to 500"). */
int provider_opt_check_value(const struct provider_opt *o, const cJSON *v)
{
	if ((unsigned)o->type >= OPT_TYPE_COUNT || !types[o->type].check)
		return err_set("has no known type (%d)", (int)o->type);
	return types[o->type].check(o, v);
}

/* The default as a JSON value (NULL when there is none). */
cJSON *provider_opt_default(const struct provider_opt *o)
{
	if (!o->def) return NULL;
	switch (o->type) {
	case OPT_NUMBER:
	case OPT_INTEGER: return cJSON_CreateNumber(strtod(o->def, NULL));
	case OPT_BOOL: return cJSON_CreateBool(!strcmp(o->def, "true"));
	case OPT_OBJECT:
	case OPT_ARRAY: return cJSON_Parse(o->def);
	default: return cJSON_CreateString(o->def);
	}
}

const struct provider_opt *provider_opt_find(const struct provider_def *p, const char *key)
{
	for (size_t t = 0; p && key && t < sizeof p->opts / sizeof p->opts[0] && p->opts[t]; t++)
		for (const struct provider_opt *o = p->opts[t]; o->key; o++)
			if (!strcmp(o->key, key)) return o;
	return NULL;
}

const char *provider_opt_str(const struct provider_def *p, const cJSON *opts, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
	const struct provider_opt *o;
	if (cJSON_IsString(v)) return v->valuestring;
	o = provider_opt_find(p, key);
	return o ? o->def : NULL;
}

double provider_opt_num(const struct provider_def *p, const cJSON *opts, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
	const struct provider_opt *o;
	if (cJSON_IsNumber(v)) return v->valuedouble;
	o = provider_opt_find(p, key);
	return o && o->def ? strtod(o->def, NULL) : NAN;
}

/* Edits between a and b, a swap of two neighbours counting as one (optimal
 * string alignment), for "did you mean". */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), d[KEY_LEN + 1][KEY_LEN + 1];
	if (la > KEY_LEN || lb > KEY_LEN) return (size_t)-1;
	for (size_t i = 0; i <= la; i++) d[i][0] = i;
	for (size_t j = 0; j <= lb; j++) d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

const char *provider_opts_suggest(const char *s, const char *const *names)
{
	const char *best = NULL;
	size_t bd = (size_t)-1, limit = strlen(s) < 6 ? 1 : 2;
	for (; *names; names++) {
		size_t d = distance(s, *names);
		if (d < bd) bd = d, best = *names;
	}
	return bd <= limit ? best : NULL;
}

static size_t opt_keys(const struct provider_def *p, const char **out)
{
	size_t n = 0;
	for (size_t t = 0; t < sizeof p->opts / sizeof p->opts[0] && p->opts[t]; t++)
		for (const struct provider_opt *o = p->opts[t]; o->key && n < KEYS_MAX; o++) out[n++] = o->key;
	out[n] = NULL;
	return n;
}

static void add_problem(struct sbuf *out, const char *stage, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add_problem(struct sbuf *out, const char *stage, const char *name, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sb_printf(out, "%sproviders.%s%s%s%s: %s", out->len ? "; " : "", stage, name ? " (" : "", name ? name : "",
		  name ? ")" : "", msg);
}

static int unknown_provider(const char *stage, const char *name, struct sbuf *out)
{
	const char *names[KEYS_MAX + 1], *hint;
	struct sbuf list = { 0 };
	size_t n = 0;
	for (const struct provider_def *p = provider_table; p->stage && n < KEYS_MAX; p++)
		if (!strcmp(p->stage, stage) || !strcmp(p->stage, "*")) {
			names[n++] = p->name;
			sb_printf(&list, "%s%s", list.len ? ", " : "", p->name);
		}
	names[n] = NULL;
	hint = provider_opts_suggest(name, names);
	if (hint)
		add_problem(out, stage, NULL,
			    "unknown provider '%s' for this stage; did you mean '%s'? "
			    "Providers: %s",
			    name, hint, list.s);
	else
		add_problem(out, stage, NULL, "unknown provider '%s' for this stage; use one of %s", name,
			    list.s ? list.s : "(none)");
	sb_free(&list);
	return 1;
}

static void unknown_option(const struct provider_def *p, const char *stage, const char *key, struct sbuf *out)
{
	const char *keys[KEYS_MAX + 1], *hint;
	opt_keys(p, keys);
	hint = provider_opts_suggest(key, keys);
	if (hint)
		add_problem(out, stage, p->name, "unknown option \"%s\"; did you mean \"%s\"?", key, hint);
	else
		add_problem(out, stage, p->name, "unknown option \"%s\" (see acog-batch(5) for %s's options)", key,
			    p->name);
}

int provider_opts_check(const char *stage, const cJSON *opts, struct sbuf *out)
{
	const char *name = json_str(opts, "name", "");
	const struct provider_def *p = provider_find(stage, name);
	const cJSON *v;
	int n = 0;
	if (!p) return unknown_provider(stage, name, out);
	cJSON_ArrayForEach (v, opts) {
		const struct provider_opt *o;
		if (!strcmp(v->string, "name")) continue;
		if (!(o = provider_opt_find(p, v->string))) {
			unknown_option(p, stage, v->string, out);
			n++;
		} else if (provider_opt_check_value(o, v) < 0) {
			add_problem(out, stage, p->name, "option \"%s\" %s", v->string, err_msg());
			n++;
		}
	}
	if (!n && p->check && p->check(opts) < 0) {
		add_problem(out, stage, p->name, "%s", err_msg());
		n++;
	}
	return n;
}
