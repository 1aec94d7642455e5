/*
 * prompt.c - what the language-model stages ask for and what they accept:
 * the prompt templates filled in as chat messages, the JSON Schemas of the
 * answers, and the check of an answer against its schema.
 *
 * A stage's template is channels/<id>/prompts/<stage>.txt when that file
 * exists, else the built-in prompts/<stage>.txt compiled in by
 * prompts_blob.c.  "=== system ===" / "=== user ===" lines split it into the
 * system and user messages; {{name}} placeholders are filled from the idea,
 * the channel, plan.json, script.md and the reviewer's notes (the list is in
 * prompts/README.md).
 *
 * Invariants:
 *  - The split is made before substitution, and substituted values are
 *    never expanded again, so text from users cannot add a message or a
 *    placeholder.
 *  - An unknown placeholder stays as written (and is logged), so a typo in
 *    a template is visible in the prompt, not silently empty.
 *  - What the stage cannot do without is added even when a channel's
 *    template leaves it out: the JSON Schema (JSON mode needs the word
 *    "JSON" in the prompt) and the reviewer's notes.
 */
#define _GNU_SOURCE
#include "provider.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FILE_MAX ((size_t)4 * 1024 * 1024)
#define TEMPLATE_MAX ((size_t)256 * 1024)
#define WORDS_PER_MINUTE 150 /* as the builtin templates and the script review */
#define SCRIPT_MIN_WORDS 70

double prompt_target_minutes(const struct stage_ctx *ctx, const cJSON *plan)
{
	double m = json_num(plan, "target_length_minutes", -1);

	if (m <= 0) m = json_num(ctx->idea, "target_length_minutes", -1);
	if (m <= 0) m = json_num(ctx->channel, "style_guide.target_length_minutes", -1);
	if (m <= 0 || isnan(m)) m = 1;
	return m > 180 ? 180 : m;
}

/* Same notes as the plan on disk: same revision (a crash re-run); new notes
 * (a reject with notes): the next revision.  Shared by every planner. */
int prompt_plan_revision(const struct stage_ctx *ctx)
{
	char *path = xasprintf("%s/plan.json", ctx->episode_dir);
	cJSON *old = fsio_exists(path) ? json_load_file(path, FILE_MAX) : NULL;
	int rev = (int)json_num(old, "revision", 0);
	const char *notes = ctx->reviewer_notes, *old_notes = json_str(old, "reviewer_notes", NULL);

	if (rev < 1)
		rev = 1;
	else if ((notes || old_notes) && (!notes || !old_notes || strcmp(notes, old_notes)))
		rev++;
	cJSON_Delete(old);
	free(path);
	return rev;
}

int prompt_target_words(double minutes)
{
	int w = (int)lround(minutes * WORDS_PER_MINUTE);

	return w < SCRIPT_MIN_WORDS ? SCRIPT_MIN_WORDS : w;
}

static const char *builtin_template(const char *stage)
{
	if (!strcmp(stage, "planning")) return prompt_planning_txt;
	if (!strcmp(stage, "scripting")) return prompt_scripting_txt;
	if (!strcmp(stage, "metadata")) return prompt_metadata_txt;
	return NULL;
}

static char *template_load(struct stage_ctx *ctx)
{
	char *path = xasprintf("%s/prompts/%s.txt", ctx->channel_dir, ctx->stage);
	const char *builtin = builtin_template(ctx->stage);
	char *t = NULL;
	size_t len;

	if (fsio_exists(path)) {
		t = fsio_read(path, TEMPLATE_MAX, &len);
		if (t && !utf8_valid(t, len)) {
			err_set("%s is not valid UTF-8", path);
			free(t), t = NULL;
		}
		if (t) stage_log(ctx, "info", "prompt template %s", path);
	} else if (builtin) {
		t = xstrdup(builtin);
	} else {
		err_set("no prompt template for stage %s: write %s", ctx->stage, path);
	}
	free(path);
	return t;
}

static int is_part_line(const char *line, size_t n, const char *name)
{
	char want[32];

	while (n && isspace((unsigned char)line[n - 1])) n--;
	snprintf(want, sizeof want, "=== %s ===", name);
	return n == strlen(want) && !strncasecmp(line, want, n);
}

static void trim_sb(struct sbuf *b)
{
	size_t skip = 0;

	while (b->len && isspace((unsigned char)b->s[b->len - 1])) b->s[--b->len] = 0;
	while (skip < b->len && isspace((unsigned char)b->s[skip])) skip++;
	if (skip) {
		memmove(b->s, b->s + skip, b->len - skip + 1);
		b->len -= skip;
	}
}

/* Text outside a system part is the user message. */
static void template_split(const char *t, struct sbuf *sys, struct sbuf *user)
{
	struct sbuf *cur = user;

	for (const char *p = t; *p;) {
		const char *e = strchrnul(p, '\n');
		size_t n = (size_t)(e - p);
		if (is_part_line(p, n, "system"))
			cur = sys;
		else if (is_part_line(p, n, "user"))
			cur = user;
		else
			sb_add(cur, p, n), sb_add(cur, "\n", 1);
		p = *e ? e + 1 : e;
	}
	trim_sb(sys), trim_sb(user);
}

/* {{name}} -> vars.name.  used records each name seen: true when known,
 * false when it was left as written. */
static char *render(const char *t, const cJSON *vars, cJSON *used)
{
	struct sbuf b = { 0 };
	const char *p = t, *open, *close;

	while ((open = strstr(p, "{{")) && (close = strstr(open + 2, "}}"))) {
		const char *n = open + 2, *ne = close, *v;
		char name[48];
		size_t len;
		while (n < ne && *n == ' ') n++;
		while (ne > n && ne[-1] == ' ') ne--;
		len = (size_t)(ne - n);
		sb_add(&b, p, (size_t)(open - p));
		if (len == 0 || len >= sizeof name || strspn(n, "abcdefghijklmnopqrstuvwxyz_") < len) {
			sb_add(&b, open, 2); /* not a placeholder, e.g. JSON in the prompt */
			p = open + 2;
			continue;
		}
		memcpy(name, n, len);
		name[len] = 0;
		v = json_str(vars, name, NULL);
		sb_add(&b, v ? v : open, v ? strlen(v) : (size_t)(close + 2 - open));
		if (!cJSON_GetObjectItemCaseSensitive(used, name)) cJSON_AddBoolToObject(used, name, v != NULL);
		p = close + 2;
	}
	sb_puts(&b, p);
	return b.s ? b.s : xstrdup("");
}

static void var_json(cJSON *vars, const char *name, const cJSON *j)
{
	char *s = j ? json_print(j) : xstrdup("{}");

	cJSON_AddStringToObject(vars, name, s);
	free(s);
}

static char *episode_file(const struct stage_ctx *ctx, const char *file)
{
	char *path = xasprintf("%s/%s", ctx->episode_dir, file);
	char *s = fsio_exists(path) ? fsio_read(path, FILE_MAX, NULL) : NULL;

	free(path);
	return s ? s : xstrdup("");
}

static void var_take(cJSON *vars, const char *name, char *value)
{
	cJSON_AddStringToObject(vars, name, value);
	free(value);
}

static cJSON *vars_build(const struct stage_ctx *ctx, const char *schema)
{
	cJSON *v = cJSON_CreateObject();
	char *plan_text = episode_file(ctx, "plan.json");
	cJSON *plan = cJSON_Parse(plan_text);
	double min = prompt_target_minutes(ctx, cJSON_IsObject(plan) ? plan : NULL);
	struct sbuf kp = { 0 };
	const cJSON *it;

	cJSON_AddStringToObject(v, "topic", json_str(ctx->idea, "topic", ""));
	cJSON_AddStringToObject(v, "brief", json_str(ctx->idea, "brief", ""));
	cJSON_AddStringToObject(v, "target_audience", json_str(ctx->idea, "target_audience", ""));
	cJSON_ArrayForEach (it, json_get(ctx->idea, "key_points"))
		if (cJSON_IsString(it)) sb_printf(&kp, "- %s\n", it->valuestring);
	cJSON_AddStringToObject(v, "key_points", kp.s ? kp.s : "");
	var_take(v, "target_length_minutes", xasprintf("%g", min));
	var_take(v, "target_words", xasprintf("%d", prompt_target_words(min)));
	var_json(v, "persona", json_get(ctx->channel, "persona"));
	var_json(v, "style_guide", json_get(ctx->channel, "style_guide"));
	cJSON_AddStringToObject(v, "channel_name", json_str(ctx->channel, "name", json_str(ctx->channel, "id", "")));
	cJSON_AddStringToObject(v, "niche", json_str(ctx->channel, "niche", ""));
	var_take(v, "plan", plan_text);
	var_take(v, "script", episode_file(ctx, "script.md"));
	cJSON_AddStringToObject(v, "reviewer_notes", ctx->reviewer_notes ? ctx->reviewer_notes : "");
	cJSON_AddStringToObject(v, "schema", schema ? schema : "");
	cJSON_Delete(plan);
	sb_free(&kp);
	return v;
}

void prompt_add_message(cJSON *msgs, const char *role, const char *content)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "role", role);
	cJSON_AddStringToObject(m, "content", content);
	cJSON_AddItemToArray(msgs, m);
}

/* The earlier episodes of the series, one line each with their key facts. */
static void series_text(const cJSON *series, struct sbuf *user)
{
	const cJSON *ep, *f;
	sb_printf(user,
		  "\n\nThis video is episode %d of the series \"%s\". Build on the earlier episodes;"
		  " do not repeat what they covered. The earlier episodes and their key facts:",
		  (int)json_num(series, "number", 0), json_str(series, "name", ""));
	cJSON_ArrayForEach (ep, json_get(series, "earlier")) {
		sb_printf(user, "\n%d. %s", (int)json_num(ep, "number", 0), json_str(ep, "title", ""));
		cJSON_ArrayForEach (f, json_get(ep, "key_facts"))
			if (cJSON_IsString(f)) sb_printf(user, "\n   - %s", f->valuestring);
	}
}

/* context.json (context.c): what the daemon hands on from other episodes. */
static void context_text(const struct stage_ctx *ctx, struct sbuf *user)
{
	char *text = episode_file(ctx, "context.json");
	cJSON *c = cJSON_Parse(text), *fo = cJSON_GetObjectItemCaseSensitive(c, "follows");
	if (json_get(c, "series")) series_text(json_get(c, "series"), user);
	if (fo) {
		char *plan = json_print(json_get(fo, "plan")), *meta = json_print(json_get(fo, "metadata"));
		sb_printf(user,
			  "\n\nThis video follows up the episode \"%s\". Continue from it; its plan and"
			  " its metadata, as JSON:\n%s\n%s",
			  json_str(fo, "title", ""), plan, meta);
		free(plan);
		free(meta);
	}
	cJSON_Delete(c);
	free(text);
}

static void user_extras(struct stage_ctx *ctx, struct sbuf *user, const char *schema, const cJSON *used)
{
	const char *notes = ctx->reviewer_notes;
	const cJSON *it;

	if (stage_reads(stage_find(ctx->stage), "context.json")) context_text(ctx, user);
	if (schema && !cJSON_IsTrue(json_get(used, "schema")))
		sb_printf(user, "\n\nAnswer with only a JSON object that matches this JSON Schema:\n%s", schema);
	if (notes && *notes && !cJSON_IsTrue(json_get(used, "reviewer_notes")))
		sb_printf(user,
			  "\n\nA reviewer rejected the previous version with these notes; "
			  "address every one of them:\n%s",
			  notes);
	cJSON_ArrayForEach (it, used)
		if (cJSON_IsFalse(it))
			stage_log(ctx, "warn", "prompt template: unknown placeholder {{%s}} left as is", it->string);
}

cJSON *prompt_messages(struct stage_ctx *ctx)
{
	const char *schema = prompt_schema(ctx->stage);
	struct sbuf sys = { 0 }, user = { 0 };
	char *t = template_load(ctx), *s, *u;
	cJSON *vars, *used, *msgs;

	if (!t) return NULL;
	template_split(t, &sys, &user);
	vars = vars_build(ctx, schema);
	used = cJSON_CreateObject();
	s = render(sys.s ? sys.s : "", vars, used);
	u = render(user.s ? user.s : "", vars, used);
	sb_free(&user);
	sb_puts(&user, u);
	user_extras(ctx, &user, schema, used);
	msgs = cJSON_CreateArray();
	if (*s) prompt_add_message(msgs, "system", s);
	prompt_add_message(msgs, "user", user.s);
	free(t), free(s), free(u);
	sb_free(&sys), sb_free(&user);
	cJSON_Delete(vars), cJSON_Delete(used);
	return msgs;
}

/* ---- what the answers must be ------------------------------------------- */

/* Strict-mode JSON Schemas (every key required, no others). */
static const char plan_schema[] =
	"{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"hook\",\"intro\","
	"\"sections\",\"key_facts\",\"ctas\",\"broll_suggestions\"],\"properties\":{"
	"\"hook\":{\"type\":\"string\"},\"intro\":{\"type\":\"string\"},"
	"\"sections\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"additionalProperties\":false,"
	"\"required\":[\"title\",\"summary\",\"key_points\"],\"properties\":{\"title\":{\"type\":\"string\"},"
	"\"summary\":{\"type\":\"string\"},\"key_points\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}},"
	"\"key_facts\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
	"\"ctas\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
	"\"broll_suggestions\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}}}";

static const char meta_schema[] = "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"final_title\","
				  "\"description\",\"tags\",\"thumbnail_prompt\"],\"properties\":{"
				  "\"final_title\":{\"type\":\"string\"},\"description\":{\"type\":\"string\"},"
				  "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
				  "\"thumbnail_prompt\":{\"type\":\"string\"}}}";

/* The script as segments; prompt_script_from_json() turns it into script.md. */
static const char script_schema[] =
	"{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"title\",\"segments\"],"
	"\"properties\":{\"title\":{\"type\":\"string\"},\"segments\":{\"type\":\"array\",\"items\":{"
	"\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"visual\",\"broll_description\","
	"\"narration\"],\"properties\":{\"visual\":{\"type\":\"string\",\"enum\":[\"avatar\",\"broll\"]},"
	"\"broll_description\":{\"type\":\"string\"},\"narration\":{\"type\":\"string\"}}}}}}";

const char *prompt_schema(const char *stage)
{
	static const struct {
		const char *stage, *schema;
	} schemas[] = {
		{ "planning", plan_schema },
		{ "scripting", script_schema },
		{ "metadata", meta_schema },
	};
	for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++)
		if (!strcmp(stage, schemas[i].stage)) return schemas[i].schema;
	return NULL;
}

/* Models like to wrap answers in ``` fences; the content is inside. */
char *prompt_strip_fence(const char *s)
{
	const char *start, *end;

	while (isspace((unsigned char)*s)) s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1])) end--;
	if (strncmp(s, "```", 3) || end - s < 6 || strncmp(end - 3, "```", 3))
		return xasprintf("%.*s", (int)(end - s), s);
	start = strchr(s, '\n');
	if (!start || start >= end - 3) return xasprintf("%.*s", (int)(end - s), s);
	return xasprintf("%.*s", (int)(end - 3 - (start + 1)), start + 1);
}

/* A string of the schema's enum, when it has one. */
static char *enum_problem(const cJSON *v, const cJSON *s, const char *where)
{
	const cJSON *e, *it;

	if (!cJSON_IsArray(e = json_get(s, "enum"))) return NULL;
	cJSON_ArrayForEach (it, e)
		if (cJSON_IsString(it) && !strcmp(it->valuestring, v->valuestring)) return NULL;
	return xasprintf("%s: \"%.60s\" is not one of the allowed values", where, v->valuestring);
}

/* The subset of JSON Schema our schemas use: object/required, array/items,
 * string/enum.  Returns the first problem, naming where it is. */
static char *schema_problem(const cJSON *v, const cJSON *s, const char *where)
{
	const char *type = json_str(s, "type", "");
	const cJSON *it;
	char *p = NULL;
	int i = 0;

	if (!strcmp(type, "string"))
		return cJSON_IsString(v) ? enum_problem(v, s, where) : xasprintf("%s: expected a string", where);
	if (!strcmp(type, "array")) {
		if (!cJSON_IsArray(v)) return xasprintf("%s: expected an array", where);
		cJSON_ArrayForEach (it, v) {
			char *w = xasprintf("%s[%d]", where, i++);
			p = schema_problem(it, json_get(s, "items"), w);
			free(w);
			if (p) return p;
		}
		return NULL;
	}
	if (!cJSON_IsObject(v)) return xasprintf("%s: expected a JSON object", where);
	cJSON_ArrayForEach (it, json_get(s, "required")) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, it->valuestring);
		char *w = !strcmp(where, "the answer") ? xstrdup(it->valuestring)
						       : xasprintf("%s.%s", where, it->valuestring);
		p = f ? schema_problem(f, json_get(json_get(s, "properties"), it->valuestring), w)
		      : xasprintf("the key \"%s\" is missing", w);
		free(w);
		if (p) return p;
	}
	return NULL;
}

/* The answer as JSON of the stage's schema: NULL and *doc, or the problem
 * to send back to the model. */
char *prompt_json_problem(const char *answer, const cJSON *schema, cJSON **doc)
{
	char *text = prompt_strip_fence(answer), *p;
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithOpts(text, &end, 1);

	*doc = NULL;
	if (!j)
		p = xasprintf("it is not valid JSON (error near byte %zu)", end ? (size_t)(end - text) : (size_t)0);
	else if (!(p = schema_problem(j, schema, "the answer")))
		*doc = j, j = NULL;
	cJSON_Delete(j);
	free(text);
	return p;
}

/* ---- script.md from an answer ------------------------------------------- */

/* Model text on one line, whitespace folded; in a marker's argument no
 * brackets (a ']' would end the marker early). */
static void line_add(struct sbuf *b, const char *s, int marker_arg)
{
	size_t start = b->len;
	int space = 0;

	for (; *s; s++) {
		if (isspace((unsigned char)*s) || (marker_arg && (*s == '[' || *s == ']'))) {
			space = 1;
			continue;
		}
		if (space && b->len > start) sb_add(b, " ", 1);
		space = 0;
		sb_add(b, s, 1);
	}
}

/* One segment: its marker line, then the narration on the next line (on
 * the marker's own line when it starts with what src/script.c would read
 * as a heading or a marker).  0 when there is nothing to say. */
static int segment_add(struct sbuf *b, const char *broll, const char *narration)
{
	struct sbuf n = { 0 };

	line_add(&n, narration, 0);
	if (!n.len) return 0;
	if (broll) {
		sb_puts(b, "[BROLL: ");
		line_add(b, broll, 1);
		sb_puts(b, "]");
	} else {
		sb_puts(b, "[AVATAR]");
	}
	sb_printf(b, "%s%s\n\n", strchr("#[", n.s[0]) ? " " : "\n", n.s);
	sb_free(&n);
	return 1;
}

static void title_add(struct sbuf *b, const char *title)
{
	struct sbuf t = { 0 };

	line_add(&t, title ? title : "", 0);
	if (t.len) sb_printf(b, "# %s\n\n", t.s);
	sb_free(&t);
}

/* script.md text from an answer of the scripting schema: NULL and *text,
 * or the problem to send back to the model. */
char *prompt_script_from_json(const cJSON *doc, char **text)
{
	struct sbuf b = { 0 };
	const cJSON *seg;
	int n = 0;

	title_add(&b, json_str(doc, "title", NULL));
	cJSON_ArrayForEach (seg, json_get(doc, "segments")) {
		int broll = !strcmp(json_str(seg, "visual", ""), "broll");
		n += segment_add(&b, broll ? json_str(seg, "broll_description", "") : NULL,
				 json_str(seg, "narration", ""));
	}
	*text = n ? b.s : NULL;
	if (n) return NULL;
	sb_free(&b);
	return xstrdup("no segment has any narration; put the spoken words in \"narration\"");
}

static size_t words_in(const char *s)
{
	size_t n = *s != 0;

	for (; *s; s++) n += *s == ' ';
	return n;
}

/* Plan section k's b-roll: its suggestion, else the section's title. */
static const char *section_broll(const cJSON *plan, int k)
{
	const cJSON *sug = cJSON_GetArrayItem(json_get(plan, "broll_suggestions"), k);

	if (cJSON_IsString(sug) && sug->valuestring[strspn(sug->valuestring, " \t\r\n")]) return sug->valuestring;
	return json_str(cJSON_GetArrayItem(json_get(plan, "sections"), k), "title", "");
}

/* The narration of a prose answer: what script.c would narrate (headings,
 * comments, bullets and emphasis left out), in one line; *title its "# ". */
static char *prose_narration(const char *prose, char **title)
{
	struct script s;
	struct sbuf all = { 0 };

	script_parse(prose, &s);
	for (size_t i = 0; i < s.n; i++) sb_printf(&all, "%s%s", all.len ? " " : "", s.seg[i].text);
	*title = s.title ? xstrdup(s.title) : NULL;
	script_free(&s);
	return all.s ? all.s : xstrdup("");
}

/* Shares the sentences out, in order and about evenly by words, over nseg
 * segments, section k's shown with its b-roll. */
static void prose_segments(struct sbuf *b, char **sent, size_t ns, size_t total, const cJSON *plan, int nseg)
{
	size_t done = 0, j = 0;

	for (int k = 0; k < nseg; k++) {
		struct sbuf n = { 0 };
		size_t goal = total * (size_t)(k + 1) / (size_t)nseg;
		do {
			sb_printf(&n, "%s%s", n.len ? " " : "", sent[j]);
			done += words_in(sent[j++]);
		} while (j < ns && (k == nseg - 1 || (ns - j > (size_t)(nseg - k - 1) && done < goal)));
		segment_add(b, section_broll(plan, k), n.s);
		sb_free(&n);
	}
}

/* script.md text from an answer in prose: one b-roll segment per section of
 * the plan (fewer when there are fewer sentences), each shown with the
 * plan's b-roll suggestion for it.  NULL and *text (*nseg segments), or
 * the problem when it has fewer than min_words words. */
char *prompt_script_from_prose(const char *prose, const cJSON *plan, int min_words, char **text, int *nseg)
{
	char *title, *all = prose_narration(prose, &title), **sent = NULL, *p = NULL;
	size_t ns = script_sentences(all, &sent), total = words_in(all);
	int sections = cJSON_GetArraySize(json_get(plan, "sections"));
	size_t want = sections > 1 ? (size_t)sections : 1;
	struct sbuf b = { 0 };

	*text = NULL;
	*nseg = (int)(want < ns ? want : ns);
	if (total < (size_t)min_words || !ns) {
		p = xasprintf("it is neither the JSON script nor a script with [AVATAR]/[BROLL: ...] "
			      "markers, and as prose it has %zu words, too few for the script (about %d "
			      "or more)",
			      total, min_words);
	} else {
		title_add(&b, title);
		prose_segments(&b, sent, ns, total, plan, *nseg);
		*text = b.s;
	}
	for (size_t i = 0; i < ns; i++) free(sent[i]);
	free(sent), free(all), free(title);
	return p;
}
