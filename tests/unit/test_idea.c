/* Unit tests: idea.c validation messages. */
#include "daemon.h"
#include "provider.h"
#include "tap.h"
#include <string.h>

static int rejects(const char *text, const char *expect)
{
	struct idea i;
	if (idea_parse(text, strlen(text), &i) == 0) {
		cJSON_Delete(i.json);
		return 0;
	}
	return strstr(err_msg(), expect) != NULL;
}

int main(void)
{
	struct idea i;
	const char *good = "{\"channel\":\"demo\",\"topic\":\"Stars\",\"priority\":\"urgent\",\"extra\":{\"kept\":1}}";
	ok(idea_parse(good, strlen(good), &i) == 0, "minimal idea accepted");
	ok(i.priority == 20 && !strcmp(i.channel, "demo") && !strcmp(i.idea_source, "manual"), "fields and defaults");
	ok(cJSON_GetObjectItem(i.json, "extra") != NULL, "unknown fields kept");
	cJSON_Delete(i.json);
	ok(rejects("{\"topic\":\"x\"}", "channel: required"), "missing channel");
	ok(rejects("{\"channel\":\"demo\"}", "topic: required"), "missing topic");
	ok(rejects("{\"channel\":\"demo\",\n \"topic\": }", "line 2, column 11"), "line and column: %s", err_msg());
	ok(rejects("{\"channel\":\"demo\",\"topic\":\"x\"", "ends too early"), "truncated: %s", err_msg());
	ok(rejects("[1,2]", "top level must be a JSON object"), "array at top level");
	ok(rejects("{\"channel\":\"../etc\",\"topic\":\"x\"}", "escape"), "path escape");
	ok(rejects("{\"channel\":5,\"topic\":\"x\"}", "channel: expected a string"), "channel type");
	ok(rejects("{\"channel\":\"d\",\"topic\":\"x\",\"priority\":\"asap\"}", "priority"), "bad priority name");
	ok(rejects("{\"channel\":\"d\",\"topic\":\"x\",\"priority\":1.5}", "whole number"), "fractional priority");
	ok(rejects("{\"channel\":\"d\",\"topic\":\"x\",\"idea_source\":\"tv\"}", "idea_source"), "bad idea_source");
	ok(rejects("{\"channel\":\"d\",\"topic\":\"x\",\"publish_at\":\"tomorrow\"}", "publish_at"), "bad publish_at");
	ok(rejects("{\"channel\":\"d\",\"topic\":\"x\",\"key_points\":[1]}", "key_points[0]"), "bad key point");
	ok(rejects("{\"channel\":\"d\",\"topic\":\"x\",\"target_length_minutes\":-2}", "target_length_minutes"),
	   "bad length");
	ok(rejects("{\"channel\":\"d\",\"topic\":\"  \"}", "topic: must not be empty"), "blank topic");
	ok(rejects("{\"channel\":\"d\",\"topic\":\"\xff\"}", "UTF-8"), "invalid UTF-8");
	ok(rejects("", "empty"), "empty file");
	return tap_done();
}
