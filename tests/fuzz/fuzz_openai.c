/*
 * fuzz_openai.c - answers of an OpenAI-compatible server, from the body on:
 * the envelope (answer_parse: choices, message, usage and the cost row),
 * then the stage's check of the content (JSON against the schema, a script
 * with markers, prose shared out over the plan: src/prompt.c) and, when it
 * passes, the file the stage writes.  src/prov_openai.c is included: its
 * parsers are static.  The first byte picks the stage.
 */
#include "../../src/prov_openai.c"
#include "fuzz.h"

static const char plan[] = "{\"hook\":\"h\",\"sections\":[{\"title\":\"a\",\"points\":[\"x\"],"
			   "\"broll\":\"sky\"},{\"title\":\"b\",\"points\":[\"y\"]}],\"target_minutes\":2}";

static void check(struct chat *c, const struct answer *a)
{
	char *problem = answer_problem(c, a);
	if (!problem) {
		(void)c->sp->write(c);
		return;
	}
	c->messages = cJSON_CreateArray();
	feedback(c, a, problem);
	cJSON_Delete(c->messages);
	free(problem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct spec *const specs[] = { &spec_planning, &spec_scripting, &spec_metadata };
	static const cJSON *idea;
	struct stage_ctx ctx = { .root = fuzz_dir(), .episode_id = "fuzz", .episode_dir = fuzz_dir() };
	struct chat c = { .ctx = &ctx, .model = "m" };
	struct http_resp r = { .status = 200 };
	struct answer a;

	if (!idea) {
		idea = cJSON_Parse("{\"channel\":\"c\",\"topic\":\"t\"}");
		fuzz_write("plan.json", (const uint8_t *)plan, sizeof plan - 1);
	}
	if (size < 1) return 0;
	c.sp = specs[data[0] % 3];
	ctx.stage = c.sp->stage, ctx.idea = idea;
	c.schema = cJSON_Parse(prompt_schema(c.sp->stage));
	sb_add(&r.body, (const char *)data + 1, size - 1);
	answer_parse(&c, &r, &a, 1);
	check(&c, &a);
	free(a.content), free(a.refusal);
	http_resp_free(&r);
	cJSON_Delete(c.schema), cJSON_Delete(c.doc), cJSON_Delete(ctx.costs), cJSON_Delete(ctx.outputs);
	free(c.text);
	return 0;
}
