/*
 * idea.c - validation of idea files.  Every message names the field (or the
 * line and column) and says what is expected, because it ends up in
 * spool/rejected/<name>.error for a person to act on.  Unknown fields are
 * kept: the whole document is stored with the episode.
 */
#include "base.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sources[] = { "manual", "pulse", "series", "followup", "repurpose", NULL };
static const struct {
	const char *name;
	int value;
} priorities[] = { { "low", -10 }, { "normal", 0 }, { "high", 10 }, { "urgent", 20 }, { NULL, 0 } };

static void position(const char *text, size_t off, int *line, int *col)
{
	*line = *col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			++*line;
			*col = 1;
		} else
			++*col;
	}
}

static int parse_error(const char *text, size_t len, const char *at)
{
	size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : len;
	int line, col;
	position(text, off, &line, &col);
	if (off >= len)
		return err_set("line %d, column %d: the JSON ends too early (unclosed brace, bracket or string?)", line,
			       col);
	return err_set("line %d, column %d: invalid JSON near '%.20s'", line, col, text + off);
}

int idea_priority_value(const cJSON *p, int *out)
{
	if (!p || cJSON_IsNull(p)) {
		*out = 0;
		return 0;
	}
	if (cJSON_IsNumber(p)) {
		if (p->valuedouble != floor(p->valuedouble) || fabs(p->valuedouble) > 1000)
			return err_set("priority: %g is not a whole number between -1000 and 1000", p->valuedouble);
		*out = (int)p->valuedouble;
		return 0;
	}
	if (cJSON_IsString(p))
		for (int i = 0; priorities[i].name; i++)
			if (strcmp(p->valuestring, priorities[i].name) == 0) {
				*out = priorities[i].value;
				return 0;
			}
	return err_set("priority: expected one of low, normal, high, urgent or an integer");
}

static int opt_string(const cJSON *doc, const char *key, size_t max)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
	if (!v || cJSON_IsNull(v)) return 0;
	if (!cJSON_IsString(v)) return err_set("%s: expected a string", key);
	if (strlen(v->valuestring) > max) return err_set("%s: longer than %zu bytes", key, max);
	return 0;
}

static int check_channel(const cJSON *doc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "channel");
	if (!v) return err_set("channel: required field is missing (the id of a folder in channels/)");
	if (!cJSON_IsString(v)) return err_set("channel: expected a string naming a channel");
	if (!path_component_ok(v->valuestring) || strchr(v->valuestring, '\\'))
		return err_set("channel: '%.100s' is not a valid channel id; it would escape the channels/ folder",
			       v->valuestring);
	return 0;
}

static int check_topic(const cJSON *doc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "topic");
	const char *p;
	if (!v) return err_set("topic: required field is missing");
	if (!cJSON_IsString(v)) return err_set("topic: expected a string");
	for (p = v->valuestring; *p == ' ' || *p == '\t' || *p == '\n'; p++)
		;
	if (!*p) return err_set("topic: must not be empty");
	if (strlen(v->valuestring) > 500) return err_set("topic: longer than 500 bytes");
	return 0;
}

static int check_key_points(const cJSON *doc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "key_points"), *e;
	int i = 0;
	if (!v || cJSON_IsNull(v)) return 0;
	if (!cJSON_IsArray(v)) return err_set("key_points: expected an array of strings");
	cJSON_ArrayForEach (e, v) {
		if (!cJSON_IsString(e)) return err_set("key_points[%d]: expected a string", i);
		i++;
	}
	if (i > 50) return err_set("key_points: at most 50 points");
	return 0;
}

static int check_length(const cJSON *doc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "target_length_minutes");
	if (!v || cJSON_IsNull(v)) return 0;
	if (!cJSON_IsNumber(v)) return err_set("target_length_minutes: expected a number");
	if (!(v->valuedouble > 0 && v->valuedouble <= 180))
		return err_set("target_length_minutes: %g is outside 0 < minutes <= 180", v->valuedouble);
	return 0;
}

static int check_source(const cJSON *doc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "idea_source");
	if (!v || cJSON_IsNull(v)) return 0;
	if (cJSON_IsString(v))
		for (int i = 0; sources[i]; i++)
			if (strcmp(v->valuestring, sources[i]) == 0) return 0;
	return err_set("idea_source: expected one of manual, pulse, series, followup, repurpose");
}

static int check_publish_at(const cJSON *doc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "publish_at");
	if (!v || cJSON_IsNull(v)) return 0;
	if (!cJSON_IsString(v) || cadence_parse_instant(v->valuestring) < 0)
		return err_set("publish_at: expected an ISO-8601 time with Z or an offset, like "
			       "2026-12-01T15:00:00Z or 2026-12-01T16:00:00+01:00");
	return 0;
}

static int check_key(const cJSON *doc)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "idempotency_key");
	if (!v || cJSON_IsNull(v)) return 0;
	if (!cJSON_IsString(v) || !*v->valuestring) return err_set("idempotency_key: expected a non-empty string");
	if (strlen(v->valuestring) > 200) return err_set("idempotency_key: longer than 200 bytes");
	return 0;
}

/* What cJSON lets through but JSON (RFC 8259) does not, or what would read
 * differently in C: a raw control character inside a string, and "\u0000",
 * which decodes to a NUL that ends the C string ("t\u0000/../x" would be
 * read as channel "t" while the stored document says otherwise). */
static int check_strings(const char *text, size_t len)
{
	int in_str = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];
		if (ch == '"')
			in_str = !in_str;
		else if (in_str && ch < 0x20) {
			int line, col;
			position(text, i, &line, &col);
			return err_set("line %d, column %d: invalid JSON: a raw control character (0x%02x) inside a "
				       "string; escape it (\\n, \\t, \\u00XX)",
				       line, col, ch);
		} else if (in_str && ch == '\\') {
			if (i + 5 < len && memcmp(text + i + 1, "u0000", 5) == 0)
				return err_set("the file contains a \\u0000 escape; NUL characters are not allowed");
			i++;
		}
	}
	return 0;
}

/* Two values for one key: parsers disagree on which wins, so the idea is
 * ambiguous (cJSON reads the first, many tools the last). */
static const char *duplicate_key(const cJSON *node)
{
	const cJSON *a, *b;
	const char *d;
	for (a = node ? node->child : NULL; a; a = a->next) {
		if (cJSON_IsObject(node))
			for (b = a->next; b; b = b->next)
				if (strcmp(a->string, b->string) == 0) return a->string;
		if ((d = duplicate_key(a))) return d;
	}
	return NULL;
}

/* The JSON text of a spool input (idea or pulse file) as a document; what
 * says what the file should hold, for the empty-file message. */
cJSON *json_doc_parse(const char *text, size_t len, const char *what)
{
	const char *end = NULL;
	char *copy;
	cJSON *doc;
	if (len == 0) return err_set("the file is empty; %s", what), NULL;
	if (memchr(text, 0, len))
		return err_set("the file contains NUL bytes; it must be UTF-8 JSON text (ideas, pulse events)"), NULL;
	if (!utf8_valid(text, len)) return err_set("the file is not valid UTF-8"), NULL;
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		return err_set("the file starts with a byte order mark (EF BB BF); save it as UTF-8 without BOM"), NULL;
	/* cJSON's length-limited parser trips on trailing whitespace; parse a NUL-terminated copy */
	copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len] = 0;
	doc = cJSON_ParseWithOpts(copy, &end, 1);
	if (!doc)
		(void)!parse_error(copy, len, end ? end : cJSON_GetErrorPtr()); /* the message is the result */
	else if (check_strings(copy, len) < 0 ||
		 (duplicate_key(doc) &&
		  err_set("duplicate key '%.100s': each key may appear once per object", duplicate_key(doc)) < 0)) {
		cJSON_Delete(doc);
		doc = NULL;
	}
	free(copy);
	return doc;
}

int idea_parse(const char *text, size_t len, struct idea *out)
{
	cJSON *doc;
	memset(out, 0, sizeof *out);
	if (!(doc = json_doc_parse(text, len, "an idea is a JSON object with channel and topic"))) return -1;
	if (!cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		return err_set("the top level must be a JSON object with channel and topic");
	}
	if (check_channel(doc) < 0 || check_topic(doc) < 0 || opt_string(doc, "brief", 20000) < 0 ||
	    opt_string(doc, "target_audience", 2000) < 0 || opt_string(doc, "series", 100) < 0 ||
	    opt_string(doc, "follows", 200) < 0 || check_key_points(doc) < 0 || check_length(doc) < 0 ||
	    check_source(doc) < 0 || check_publish_at(doc) < 0 || check_key(doc) < 0 ||
	    idea_priority_value(cJSON_GetObjectItemCaseSensitive(doc, "priority"), &out->priority) < 0) {
		cJSON_Delete(doc);
		return -1;
	}
	out->json = doc;
	out->channel = cJSON_GetObjectItemCaseSensitive(doc, "channel")->valuestring;
	out->topic = cJSON_GetObjectItemCaseSensitive(doc, "topic")->valuestring;
	out->idempotency_key = json_str(doc, "idempotency_key", NULL);
	out->idea_source = json_str(doc, "idea_source", "manual");
	return 0;
}
