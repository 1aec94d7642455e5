/*
 * qa_show.c - the QA report in `acog-batch show`: the verdict of the
 * episode's qa.json (written by the assembly stage, qa.c) and each check
 * that failed or warned, with its figure and threshold; in --json, the
 * report itself under "qa".  No report yet prints nothing.
 */
#include "daemon.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QA_JSON_MAX (1 << 20)

static cJSON *qa_load(const char *dir)
{
	char *path = xasprintf("%s/qa.json", dir);
	cJSON *j = fsio_exists(path) ? json_load_file(path, QA_JSON_MAX) : NULL;
	free(path);
	return j;
}

static void print_value(const cJSON *v, const char *unit)
{
	if (cJSON_IsNumber(v))
		printf("%g%s%s", v->valuedouble, *unit ? " " : "", unit);
	else if (cJSON_IsString(v))
		printf("%s", v->valuestring);
	else
		printf("not measured");
}

/* "qa       warn (16 checks)" and one line per check that is not a pass. */
void qa_show_print(const char *dir)
{
	cJSON *j = qa_load(dir);
	const cJSON *c, *checks = cJSON_GetObjectItemCaseSensitive(j, "checks");

	if (!j) return;
	printf("qa       %s (%d checks, %s/qa.json)\n", json_str(j, "verdict", "?"), cJSON_GetArraySize(checks), dir);
	cJSON_ArrayForEach (c, checks) {
		const char *st = json_str(c, "status", "");
		if (!strcmp(st, "pass")) continue;
		printf("  %-5s  %-20s ", st, json_str(c, "name", "?"));
		print_value(cJSON_GetObjectItemCaseSensitive(c, "value"), json_str(c, "unit", ""));
		printf(" (threshold %s): %s\n", json_str(c, "threshold", ""), json_str(c, "detail", ""));
	}
	cJSON_Delete(j);
}

/* show --json: the report under "qa" (absent until assembly wrote one). */
void qa_show_json(cJSON *o, const char *dir)
{
	cJSON *j = qa_load(dir);
	if (j) cJSON_AddItemToObject(o, "qa", j);
}
