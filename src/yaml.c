/*
 * yaml.c - loads a YAML file (channel.yaml, acog.yaml) into cJSON with
 * libyaml's event parser.  Plain scalars that look like numbers, booleans
 * or null become those JSON types; quoted scalars stay strings.  Anchors
 * and aliases are refused: configuration should say things once.
 */
#include "base.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static cJSON *scalar_to_json(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	char *end;
	double d;
	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return cJSON_CreateString(v);
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "yes")) return cJSON_CreateTrue();
	if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "no")) return cJSON_CreateFalse();
	if (!strcmp(v, "null") || !strcmp(v, "~") || !*v) return cJSON_CreateNull();
	errno = 0;
	d = strtod(v, &end);
	if (*v && !*end && errno == 0 && strspn(v, "0123456789+-.eE") == strlen(v)) return cJSON_CreateNumber(d);
	return cJSON_CreateString(v);
}

struct yctx {
	yaml_parser_t p;
	const char *path;
	const char *text; /* the whole input: a reader error has only a byte offset */
	size_t len;
};

static int next(struct yctx *y, yaml_event_t *ev)
{
	size_t line, col;
	if (yaml_parser_parse(&y->p, ev)) return 0;
	line = y->p.problem_mark.line;
	col = y->p.problem_mark.column;
	if (y->p.error == YAML_READER_ERROR) { /* bad UTF-8, a control character: only an offset is set */
		line = col = 0;
		for (size_t i = 0; i < y->p.problem_offset && i < y->len; i++) {
			col++;
			if (y->text[i] == '\n') {
				line++;
				col = 0;
			}
		}
	}
	return err_set("%s: line %zu, column %zu: %s", y->path, line + 1, col + 1,
		       y->p.problem ? y->p.problem : "YAML error");
}

static cJSON *parse_node(struct yctx *y, yaml_event_t *ev);

static cJSON *parse_mapping(struct yctx *y)
{
	cJSON *obj = cJSON_CreateObject();
	for (;;) {
		yaml_event_t k, v;
		cJSON *val;
		if (next(y, &k) < 0) goto fail;
		if (k.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&k);
			return obj;
		}
		if (k.type != YAML_SCALAR_EVENT) {
			err_set("%s: line %zu: mapping keys must be plain words", y->path, k.start_mark.line + 1);
			yaml_event_delete(&k);
			goto fail;
		}
		if (next(y, &v) < 0) {
			yaml_event_delete(&k);
			goto fail;
		}
		val = parse_node(y, &v);
		yaml_event_delete(&v);
		if (!val) {
			yaml_event_delete(&k);
			goto fail;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(obj, (const char *)k.data.scalar.value);
		cJSON_AddItemToObject(obj, (const char *)k.data.scalar.value, val);
		yaml_event_delete(&k);
	}
fail:
	cJSON_Delete(obj);
	return NULL;
}

static cJSON *parse_sequence(struct yctx *y)
{
	cJSON *arr = cJSON_CreateArray();
	for (;;) {
		yaml_event_t ev;
		cJSON *val;
		if (next(y, &ev) < 0) goto fail;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return arr;
		}
		val = parse_node(y, &ev);
		yaml_event_delete(&ev);
		if (!val) goto fail;
		cJSON_AddItemToArray(arr, val);
	}
fail:
	cJSON_Delete(arr);
	return NULL;
}

static cJSON *parse_node(struct yctx *y, yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT: return scalar_to_json(ev);
	case YAML_MAPPING_START_EVENT: return parse_mapping(y);
	case YAML_SEQUENCE_START_EVENT: return parse_sequence(y);
	case YAML_ALIAS_EVENT:
		err_set("%s: line %zu: YAML aliases are not supported; write the value out", y->path,
			ev->start_mark.line + 1);
		return NULL;
	default: err_set("%s: line %zu: unexpected YAML structure", y->path, ev->start_mark.line + 1); return NULL;
	}
}

cJSON *yaml_load_file(const char *path)
{
	struct yctx y = { .path = path };
	size_t len;
	char *text = fsio_read(path, 1 << 20, &len);
	cJSON *root = NULL;
	yaml_event_t ev;
	int failed = 0;

	if (!text) return NULL;
	yaml_parser_initialize(&y.p);
	yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
	y.text = text;
	y.len = len;
	for (;;) {
		if (next(&y, &ev) < 0) {
			cJSON_Delete(root);
			root = NULL;
			failed = 1;
			break;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
		    ev.type == YAML_SCALAR_EVENT) {
			cJSON *n = root ? NULL : parse_node(&y, &ev);
			yaml_event_delete(&ev);
			if (!n) {
				if (root) err_set("%s: only one YAML document is allowed", path);
				cJSON_Delete(root);
				root = NULL;
				failed = 1;
				break;
			}
			root = n;
			continue;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&y.p);
	free(text);
	if (!root && !failed) root = cJSON_CreateObject(); /* an empty file says nothing */
	if (root && cJSON_IsNull(root)) {
		cJSON_Delete(root);
		root = cJSON_CreateObject();
	}
	if (root && !cJSON_IsObject(root)) {
		cJSON_Delete(root);
		err_set("%s: the top level must be a mapping of keys to values", path);
		return NULL;
	}
	return root;
}
