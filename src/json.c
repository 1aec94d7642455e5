/*
 * json.c - small helpers around cJSON: dotted-path lookups with defaults,
 * printing, and loading/saving files through the durable write.
 */
#include "base.h"
#include <stdlib.h>
#include <string.h>

const cJSON *json_get(const cJSON *obj, const char *path)
{
	char key[128];
	while (obj && path && *path) {
		const char *dot = strchr(path, '.');
		size_t n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof key || !cJSON_IsObject(obj)) return NULL;
		memcpy(key, path, n);
		key[n] = 0;
		obj = cJSON_GetObjectItemCaseSensitive(obj, key);
		path = dot ? dot + 1 : NULL;
	}
	return obj;
}

const char *json_str(const cJSON *obj, const char *path, const char *def)
{
	const cJSON *j = json_get(obj, path);
	return cJSON_IsString(j) && j->valuestring ? j->valuestring : def;
}

double json_num(const cJSON *obj, const char *path, double def)
{
	const cJSON *j = json_get(obj, path);
	return cJSON_IsNumber(j) ? j->valuedouble : def;
}

int json_bool(const cJSON *obj, const char *path, int def)
{
	const cJSON *j = json_get(obj, path);
	if (cJSON_IsBool(j)) return cJSON_IsTrue(j);
	if (cJSON_IsNumber(j)) return j->valuedouble != 0;
	return def;
}

char *json_print(const cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);
	if (!s) abort();
	return s;
}

char *json_pretty(const cJSON *j)
{
	char *s = cJSON_Print(j), *out;
	if (!s) abort();
	out = xasprintf("%s\n", s);
	cJSON_free(s);
	return out;
}

cJSON *json_load_file(const char *path, size_t max)
{
	size_t len;
	char *text = fsio_read(path, max, &len);
	const char *end = NULL;
	cJSON *j;
	if (!text) return NULL;
	j = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!j) {
		size_t off = end ? (size_t)(end - text) : 0;
		if (!end || off > len) {
			const char *ep = cJSON_GetErrorPtr();
			off = ep && ep >= text && ep <= text + len ? (size_t)(ep - text) : 0;
		}
		err_set("%s is not valid JSON near byte %zu", path, off);
	}
	free(text);
	return j;
}

int json_write_file(const char *path, const cJSON *j)
{
	char *s = json_pretty(j);
	int rc = fsio_write_atomic_str(path, s);
	free(s);
	return rc;
}
