/* Unit tests: the provider registry (provider.c) and the stage table
 * (stage.c) are consistent with each other and with themselves; the option
 * checker (provider_opts.c) and the paid rule (cost.c) behave as documented. */
#include "provider.h"
#include "tap.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t ntables(const struct provider_def *p)
{
	size_t t = 0;
	while (t < sizeof p->opts / sizeof p->opts[0] && p->opts[t]) t++;
	return t;
}

/* One option: a known type, help, values for an enum, a sane range, and a
 * default (when it has one) that the loader's own check accepts. */
static int opt_ok(const struct provider_opt *o, const char **why)
{
	cJSON *def = provider_opt_default(o);
	int good = 0;
	if (!provider_opt_type_name(o->type))
		*why = "unknown type";
	else if (!o->help || !*o->help)
		*why = "no help";
	else if ((o->type == OPT_ENUM) != (o->values != NULL))
		*why = "values only, and always, for an enum";
	else if (o->min > o->max)
		*why = "min above max";
	else if (o->def && !def)
		*why = "default does not parse";
	else if (def && provider_opt_check_value(o, def) < 0)
		*why = err_msg();
	else
		good = 1;
	cJSON_Delete(def);
	return good;
}

static void test_options(void)
{
	for (const struct provider_def *p = provider_table; p->stage; p++)
		for (size_t t = 0; t < ntables(p); t++)
			for (const struct provider_opt *o = p->opts[t]; o->key; o++) {
				const char *why = "";
				int dup = 0;
				for (const struct provider_opt *q = p->opts[t]; q < o; q++)
					dup |= !strcmp(q->key, o->key);
				ok(opt_ok(o, &why) && !dup && strcmp(o->key, "name"), "%s/%s option %s: %s%s", p->stage,
				   p->name, o->key, why, dup ? " (listed twice)" : "");
			}
}

static void test_rows(void)
{
	for (const struct provider_def *p = provider_table; p->stage; p++) {
		const struct stage_def *s = stage_find(p->stage);
		const struct provider_def *first = provider_find(NULL, p->name);
		ok(!strcmp(p->stage, "*") || (s && s->kind == STAGE_WORK), "%s/%s: a work stage of the stage table",
		   p->stage, p->name);
		ok(p->run != NULL, "%s/%s has a run function", p->stage, p->name);
		ok(first->paid == p->paid && first->opts[0] == p->opts[0] && first->check == p->check,
		   "%s/%s: rows of one name share options, paid and check", p->stage, p->name);
		ok(provider_find(p->stage, p->name) == p || !strcmp(p->stage, "*"), "%s/%s: one row per stage and name",
		   p->stage, p->name);
	}
	for (size_t i = 0; i < stage_count; i++) {
		const struct stage_def *s = &stage_table[i];
		if (s->kind == STAGE_GATE)
			ok(s->default_provider == NULL, "gate %s has no provider", s->name);
		else
			ok(provider_find(s->name, s->default_provider) != NULL, "%s: default provider %s is registered",
			   s->name, s->default_provider);
	}
}

/* Every option at its default passes the loader's check, as a whole map. */
static void test_defaults_load(void)
{
	for (const struct provider_def *p = provider_table; p->stage; p++) {
		cJSON *o = cJSON_CreateObject();
		struct sbuf errs = { 0 };
		int n;
		cJSON_AddStringToObject(o, "name", p->name);
		for (size_t t = 0; t < ntables(p); t++)
			for (const struct provider_opt *op = p->opts[t]; op->key; op++) {
				cJSON *d = provider_opt_default(op);
				if (d && !cJSON_GetObjectItemCaseSensitive(o, op->key))
					cJSON_AddItemToObject(o, op->key, d);
				else
					cJSON_Delete(d);
			}
		if (p->check && provider_opt_find(p, "argv"))
			cJSON_AddItemToObject(o, "argv", cJSON_CreateStringArray((const char *[]){ "x" }, 1));
		n = provider_opts_check(strcmp(p->stage, "*") ? p->stage : "audio", o, &errs);
		ok(n == 0, "%s/%s with every default loads%s%s", p->stage, p->name, n ? ": " : "", n ? errs.s : "");
		sb_free(&errs);
		cJSON_Delete(o);
	}
}

/* What the loader says for one providers.<stage> map (YAML's JSON subset). */
static int says(const char *stage, const char *json, const char *want)
{
	cJSON *o = cJSON_Parse(json);
	struct sbuf errs = { 0 };
	int n = provider_opts_check(stage, o, &errs), good = want ? n > 0 && strstr(errs.s, want) : n == 0;
	if (!good) printf("# %s %s -> %d: %s\n", stage, json, n, errs.s ? errs.s : "");
	sb_free(&errs);
	cJSON_Delete(o);
	return good;
}

static void test_check(void)
{
	ok(says("audio", "{\"name\":\"elevenlabs\",\"voice_idd\":\"x\"}",
		"providers.audio (elevenlabs): unknown option \"voice_idd\"; did you mean \"voice_id\"?"),
	   "a misspelt option is named, with the closest known one");
	ok(says("audio", "{\"name\":\"espeak\",\"speed\":\"fast\"}", "option \"speed\" must be a whole number"),
	   "a wrong type is named");
	ok(says("audio", "{\"name\":\"espeak\",\"speed\":900}", "option \"speed\" is 900; use 80 to 500"),
	   "a value out of range is named with the range");
	ok(says("audio", "{\"name\":\"espeak\",\"speed\":165.5}", "whole number"), "an integer option refuses 165.5");
	ok(says("avatar", "{\"name\":\"still\",\"motion\":\"spin\"}", "use one of voice, zoom, static"),
	   "an enum names its values");
	ok(says("planning", "{\"name\":\"openai\",\"base_url\":\"ftp://x\"}", "http:// or https://"), "a URL");
	ok(says("audio", "{\"name\":\"espek\"}", "unknown provider 'espek' for this stage; did you mean 'espeak'?"),
	   "an unknown provider for the stage, with a suggestion");
	ok(says("audio", "{\"name\":\"still\"}", "unknown provider 'still'"), "a provider of another stage");
	ok(says("broll", "{\"name\":\"command\"}", "needs argv"), "the row's own check runs");
	ok(says("broll", "{\"name\":\"command\",\"argv\":[\"/bin/true\",5]}", "argv[1]"), "argv holds strings");
	ok(says("planning", "{\"name\":\"openai\",\"api_key_env\":\"OPENAI_API_KEY\",\"rps\":2,\"timeout\":30}", NULL),
	   "shared HTTP and key options are accepted");
	ok(says("audio", "{\"name\":\"espeak\",\"rps\":2}", "unknown option \"rps\""),
	   "an offline provider does not take HTTP options");
	ok(provider_opts_suggest("tiemout", (const char *[]){ "timeout", "model", NULL }) != NULL &&
		   provider_opts_suggest("colour", (const char *[]){ "timeout", "model", NULL }) == NULL,
	   "suggestions only for near misses");
}

static int paid(const char *json)
{
	cJSON *o = cJSON_Parse(json);
	int p = cost_is_paid(o);
	cJSON_Delete(o);
	return p;
}

static void test_paid(void)
{
	static const struct {
		const char *url;
		int local;
	} urls[] = {
		{ "http://127.0.0.1:8080/v1", 1 },
		{ "http://127.5.6.7/v1", 1 },
		{ "http://[::1]:11434/v1", 1 },
		{ "http://LocalHost:8080", 1 },
		{ "http://localhost./v1", 1 },
		{ "http://[::ffff:127.0.0.1]/", 1 },
		{ "https://api.openai.com/v1", 0 },
		{ "http://localhost.example.com/v1", 0 },
		{ "http://localhost@example.com/v1", 0 },
		{ "http://127.0.0.1.example.com/", 0 },
		{ "http://10.0.0.5:8080/v1", 0 },
		{ "not a url", 0 },
	};
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
		ok(cost_url_is_local(urls[i].url) == urls[i].local, "%s is %s", urls[i].url,
		   urls[i].local ? "this machine" : "remote");
	ok(paid("{\"name\":\"openai\"}"), "openai at its default base_url is paid");
	ok(!paid("{\"name\":\"openai\",\"base_url\":\"http://127.0.0.1:8080/v1\"}"), "a local server is free");
	ok(paid("{\"name\":\"openai\",\"base_url\":\"http://127.0.0.1:8080/v1\",\"local\":false}"), "local: false");
	ok(!paid("{\"name\":\"openai\",\"base_url\":\"https://api.openai.com/v1\",\"local\":true}"), "local: true");
	ok(paid("{\"name\":\"elevenlabs\"}") && paid("{\"name\":\"heygen\"}") && paid("{\"name\":\"runway\"}"),
	   "the cloud-only providers are paid");
	ok(!paid("{\"name\":\"espeak\"}") && !paid("{\"name\":\"command\"}") && !paid("{\"name\":\"nope\"}"),
	   "offline, command and unknown providers are free");
}

static void test_stages(void)
{
	const char *gates[4];
	for (size_t i = 0; i < stage_count; i++) {
		const struct stage_def *s = &stage_table[i];
		for (size_t k = 0; k < sizeof s->inputs / sizeof s->inputs[0] && s->inputs[k]; k++) {
			const struct stage_def *from = stage_producer(s->inputs[k]);
			/* idea.json (ingest) and context.json (the worker, just before the stage) come from the daemon */
			ok(!strcmp(s->inputs[k], "idea.json") || !strcmp(s->inputs[k], "context.json") ||
				   (from && from < s),
			   "%s reads %s, made before it", s->name, s->inputs[k]);
		}
		for (const struct stage_file *f = s->outputs; f->name; f++)
			ok(stage_producer(f->name) == s && (!f->versioned || f->asset_type), "%s alone writes %s",
			   s->name, f->name);
	}
	ok(stage_is_versioned(NULL, "plan") && stage_is_versioned(stage_find("scripting"), "script") &&
		   !stage_is_versioned(NULL, "audio") && !stage_is_versioned(stage_find("planning"), "script"),
	   "versioned outputs: plan, script, metadata");
	ok(!strcmp(stage_output_find(NULL, "thumbnail")->name, "thumbnail.png"), "the thumbnail asset's file");
	ok(stage_gates(gates, 4) == 2 && !strcmp(gates[0], "script_review") && !strcmp(gates[1], "review"),
	   "gates in pipeline order");
	ok(stage_gate_default("review") == 1 && stage_gate_default("script_review") == 0 &&
		   stage_gate_default("audio") == -1,
	   "gate defaults");
	{
		char *r = stage_rerunnable_names(), *t = stage_asset_types();
		ok(!strcmp(r, "planning, scripting, script_review, metadata, audio, avatar, broll, assembly"),
		   "re-runnable: %s", r);
		ok(!strcmp(t, "plan, script, metadata, audio, avatar_video, b_roll, assembled_video, thumbnail"),
		   "asset types: %s", t);
		free(r);
		free(t);
	}
}

int main(void)
{
	test_options();
	test_rows();
	test_defaults_load();
	test_check();
	test_paid();
	test_stages();
	return tap_done();
}
