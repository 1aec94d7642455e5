/*
 * prov_builtin.c - the offline `builtin` providers for planning, scripting,
 * the automatic script review, and metadata.
 *
 * They are honest templates, not a language model: every output says so
 * ("generator": "builtin-template", an HTML comment in script.md), and they
 * are built only from the idea (topic, brief, key_points, target_audience,
 * target_length_minutes), the channel's persona and style guide, and the
 * reviewer's notes on a re-run.
 *
 * Invariants:
 *  - Deterministic: the same inputs give byte-identical files, so a re-run
 *    after a crash (delivery is at-least-once) changes nothing.  Variety comes
 *    from a hash of the topic, never from time or randomness.
 *  - Text taken from users never breaks the script format: it is folded to
 *    one line, '[' ']' become '(' ')', and '<' '>' are dropped (no marker,
 *    comment or HTML injection; YouTube also refuses '<' '>' in titles).
 *  - Narration is never shorter than prompt_target_words() allows (70), so the espeak video
 *    lasts at least ~20 s; otherwise it scales at 150 words a minute.
 *  - Files are written atomically; each provider reports what it wrote.
 */
#define _GNU_SOURCE
#include "provider.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECTION_MAX_SENTENCES 5000 /* only a guard; the word budget stops first */
#define TITLE_MAX_CHARS 100
#define DESCRIPTION_MAX_BYTES 4900 /* YouTube allows 5000 */
#define TAGS_MAX 15
#define TAGS_MAX_CHARS 500
#define FILE_MAX ((size_t)4 * 1024 * 1024)

/* Everything the templates draw on, cleaned once. */
struct tpl {
	char *topic, *topic_ref, *brief, *audience;
	char *name, *channel, *niche, *tone, *sign_off, *notes;
	char **points;
	size_t npoints;
	double minutes;
	int target_words;
	int question;       /* the topic is a question */
	int asks_questions; /* a persona quirk mentions questions */
	unsigned variant;   /* hash of the topic picks phrasings */
};

/* ---- small text helpers ------------------------------------------------ */

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* One line of user text made safe for script.md and metadata: whitespace
 * folded, brackets softened, angle brackets and leading markdown dropped. */
static char *clean_text(const char *s, size_t max_chars)
{
	struct sbuf b = { 0 };
	int space = 0;

	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '<' || c == '>' || c < 0x20 || c == 0x7f) {
			space = space || is_ws(c);
			continue;
		}
		if (c == ' ' || (b.len == 0 && strchr("#-*+", c))) {
			space = 1;
			continue;
		}
		if (space && b.len) sb_add(&b, " ", 1);
		space = 0;
		sb_add(&b, c == '[' ? "(" : c == ']' ? ")" : s, 1);
	}
	if (!b.s) return xstrdup("");
	if (max_chars) utf8_cut_words(b.s, max_chars);
	return b.s;
}

static char *clean_json(const cJSON *j, const char *path, size_t max_chars)
{
	const char *s = json_str(j, path, NULL);

	return s ? clean_text(s, max_chars) : NULL;
}

/* "tech_reviews" reads better as "tech reviews". */
static char *humanise(char *s)
{
	for (char *p = s; p && *p; p++)
		if (*p == '_') *p = ' ';
	return s;
}

static void strip_final_stop(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && strchr(".;:, ", s[n - 1])) s[--n] = 0;
}

/* Append a sentence, adding a full stop when it has no terminator. */
static void sb_sentence(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (!n) return;
	if (b->len && b->s[b->len - 1] != '\n') sb_add(b, " ", 1);
	sb_puts(b, s);
	if (!strchr(".!?\"')", s[n - 1])) sb_add(b, ".", 1);
}

static int word_count(const char *s)
{
	int n = 0, in = 0;

	for (; s && *s; s++) {
		if (is_ws((unsigned char)*s))
			in = 0;
		else if (!in)
			in = 1, n++;
	}
	return n;
}

static unsigned fnv1a(const char *s)
{
	unsigned h = 2166136261u;

	for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int str_has(const char *hay, const char *needle)
{
	return hay && needle && strcasestr(hay, needle) != NULL;
}

static int arr_has_word(const cJSON *arr, const char *word)
{
	const cJSON *it;

	cJSON_ArrayForEach (it, arr)
		if (cJSON_IsString(it) && str_has(it->valuestring, word)) return 1;
	return 0;
}

static void add_str(cJSON *arr, const char *s)
{
	cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

static char *path_in(const struct stage_ctx *ctx, const char *name)
{
	return xasprintf("%s/%s", ctx->episode_dir, name);
}

/* ---- the template context ---------------------------------------------- */

static void tpl_points(struct tpl *t, const cJSON *arr)
{
	const cJSON *it;

	cJSON_ArrayForEach (it, arr) {
		char *p = cJSON_IsString(it) ? clean_text(it->valuestring, 300) : NULL;
		if (p && *p) {
			t->points = xrealloc(t->points, (t->npoints + 1) * sizeof *t->points);
			t->points[t->npoints++] = p;
		} else {
			free(p);
		}
	}
}

static void tpl_load(struct tpl *t, const struct stage_ctx *ctx, const cJSON *plan)
{
	const cJSON *ch = ctx->channel;
	const char *notes = ctx->reviewer_notes ? ctx->reviewer_notes : json_str(plan, "reviewer_notes", NULL);
	size_t n;

	memset(t, 0, sizeof *t);
	t->topic = clean_text(json_str(plan, "topic", json_str(ctx->idea, "topic", "")), 300);
	n = strlen(t->topic);
	t->question = n > 0 && t->topic[n - 1] == '?';
	t->topic_ref = xstrdup(t->question ? "this question" : t->topic);
	strip_final_stop(t->topic_ref);
	if (!*t->topic_ref) { /* a topic of only punctuation */
		free(t->topic), free(t->topic_ref);
		t->topic = xstrdup("Untitled episode");
		t->topic_ref = xstrdup("this topic");
	}
	t->brief = clean_json(ctx->idea, "brief", 400);
	t->audience = clean_json(ctx->idea, "target_audience", 200);
	t->name = clean_json(ch, "persona.name", 100);
	t->channel = clean_json(ch, "name", 100);
	t->niche = humanise(clean_json(ch, "niche", 100));
	t->tone = humanise(clean_json(ch, "style_guide.tone", 100));
	t->sign_off = clean_json(ch, "persona.sign_off", 300);
	t->notes = notes && *notes ? clean_text(notes, 300) : NULL;
	t->asks_questions = arr_has_word(json_get(ch, "persona.quirks"), "question");
	tpl_points(t, json_get(ctx->idea, "key_points"));
	t->minutes = prompt_target_minutes(ctx, plan);
	t->target_words = prompt_target_words(t->minutes);
	t->variant = fnv1a(t->topic);
}

static void tpl_free(struct tpl *t)
{
	free(t->topic), free(t->topic_ref), free(t->brief), free(t->audience);
	free(t->name), free(t->channel), free(t->niche), free(t->tone);
	free(t->sign_off), free(t->notes);
	for (size_t i = 0; i < t->npoints; i++) free(t->points[i]);
	free(t->points);
	memset(t, 0, sizeof *t);
}

/* ---- planning ----------------------------------------------------------- */

static char *plan_hook(const struct tpl *t)
{
	static const char *const ask[] = {
		"%s The answer is stranger, and simpler, than you might think.",
		"%s Most people never stop to ask, but the answer says a lot.",
		"%s Stay with me, because the answer is worth it.",
	};
	static const char *const say[] = {
		"Today's topic: %s. It matters more than it seems.",
		"Here is something worth a few minutes of your time: %s.",
		"Let's take a closer look at %s, because there is more to it than you think.",
	};
	return xasprintf((t->question ? ask : say)[t->variant % 3], t->question ? t->topic : t->topic_ref);
}

static char *plan_intro(const struct tpl *t)
{
	struct sbuf b = { 0 };
	const char *what = t->brief && *t->brief ? t->brief : t->topic_ref;

	if (t->name)
		sb_printf(&b, "I'm %s.", t->name);
	else
		sb_printf(&b, "Welcome to %s.", t->channel ? t->channel : "the channel");
	if (t->minutes <= 1.0)
		sb_puts(&b, " In the next minute: ");
	else
		sb_printf(&b, " In the next %.0f minutes: ", t->minutes);
	sb_puts(&b, what);
	if (!strchr(".!?", b.s[b.len - 1])) sb_add(&b, ".", 1);
	if (t->audience && *t->audience && !str_has(t->brief, t->audience))
		sb_printf(&b, " This one is for %s.", t->audience);
	return b.s;
}

/* Words a title should not end on ("... full of stars would"). */
static int weak_word(const char *w, size_t n)
{
	static const char *const weak[] = { "a",     "an",    "the",  "of",    "to",    "in",   "on",  "at",
					    "by",    "for",   "with", "and",   "or",    "but",  "so",  "that",
					    "which", "would", "will", "can",   "could", "is",   "are", "be",
					    "our",   "your",  "its",  "their", "from",  "into", NULL };

	for (const char *const *p = weak; *p; p++)
		if (strlen(*p) == n && !strncasecmp(*p, w, n)) return 1;
	return 0;
}

/* A section title: its point up to eight words, cut early at a comma that
 * closes a clause of four words or more, never ending on a weak word. */
static char *short_title(const char *point)
{
	char *s = xstrdup(point), *p = s, *last;
	int words = 1;

	for (; *p; p++) {
		if (*p != ' ') continue;
		if ((p[-1] == ',' && words >= 4) || words == 8) break;
		words++;
	}
	*p = 0;
	strip_final_stop(s);
	while (words > 2 && (last = strrchr(s, ' ')) && weak_word(last + 1, strlen(last + 1))) {
		*last = 0;
		strip_final_stop(s);
		words--;
	}
	return s;
}

static cJSON *plan_section(const char *title, const char *summary, char **pts, size_t n)
{
	cJSON *s = cJSON_CreateObject(), *kp = cJSON_AddArrayToObject(s, "key_points");

	cJSON_AddStringToObject(s, "title", title);
	cJSON_AddStringToObject(s, "summary", summary);
	for (size_t i = 0; i < n; i++) add_str(kp, pts[i]);
	return s;
}

/* Without key points the template has only the idea itself to go on. */
static void plan_generic_sections(const struct tpl *t, cJSON *secs, cJSON *broll)
{
	char *p[3];

	p[0] = xasprintf(t->question ? "The question: %s" : "What this is about: %s", t->topic);
	p[1] = xasprintf("The key idea behind %s", t->brief && *t->brief ? t->brief : t->topic_ref);
	p[2] = xasprintf("Why it matters to %s", t->audience && *t->audience ? t->audience : "you");
	cJSON_AddItemToArray(secs,
			     plan_section(t->question ? "The question" : "The topic", "Sets up the topic.", &p[0], 1));
	cJSON_AddItemToArray(secs, plan_section("The key idea", "Explains the central idea.", &p[1], 1));
	cJSON_AddItemToArray(secs, plan_section("Why it matters", "Connects it to the viewer.", &p[2], 1));
	add_str(broll, t->topic_ref);
	add_str(broll, t->brief && *t->brief ? t->brief : t->topic_ref);
	add_str(broll, t->niche ? t->niche : t->topic_ref);
	for (int i = 0; i < 3; i++) free(p[i]);
}

/* One section per key point, at most sections_target (default 6); extra
 * points join the sections round-robin so none is lost. */
static void plan_sections(const struct tpl *t, const struct stage_ctx *ctx, cJSON *secs, cJSON *broll)
{
	double want = json_num(ctx->channel, "style_guide.structure_preferences.sections_target", 6);
	size_t nsec = want < 1 ? 1 : want > 12 ? 12 : (size_t)want;

	if (t->npoints == 0) {
		plan_generic_sections(t, secs, broll);
		return;
	}
	if (nsec > t->npoints) nsec = t->npoints;
	for (size_t i = 0; i < nsec; i++) {
		char **pts = xcalloc(t->npoints, sizeof *pts), *title = short_title(t->points[i]);
		char *summary = xasprintf("Explains: %s", t->points[i]);
		size_t n = 0;
		for (size_t k = i; k < t->npoints; k += nsec) pts[n++] = t->points[k];
		cJSON_AddItemToArray(secs, plan_section(title, summary, pts, n));
		add_str(broll, title);
		free(pts), free(title), free(summary);
	}
}

static void plan_ctas(const struct tpl *t, cJSON *ctas)
{
	char *s;

	if (t->niche)
		s = xasprintf("If this was useful, subscribe to %s for more about %s.",
			      t->channel ? t->channel : "the channel", t->niche);
	else
		s = xasprintf("If this was useful, subscribe to %s for more.", t->channel ? t->channel : "the channel");
	add_str(ctas, s);
	add_str(ctas, "Tell us in the comments what you want explained next.");
	free(s);
}

static cJSON *plan_build(const struct tpl *t, const struct stage_ctx *ctx)
{
	cJSON *p = cJSON_CreateObject(), *facts;
	char *hook = plan_hook(t), *intro = plan_intro(t);

	cJSON_AddStringToObject(p, "generator", "builtin-template");
	cJSON_AddStringToObject(p, "note",
				"Written from templates, not by a language model: "
				"review and edit before publishing.");
	cJSON_AddStringToObject(p, "topic", t->topic);
	cJSON_AddStringToObject(p, "hook", hook);
	cJSON_AddStringToObject(p, "intro", intro);
	plan_sections(t, ctx, cJSON_AddArrayToObject(p, "sections"), cJSON_AddArrayToObject(p, "broll_suggestions"));
	facts = cJSON_AddArrayToObject(p, "key_facts");
	for (size_t i = 0; i < t->npoints; i++) add_str(facts, t->points[i]);
	plan_ctas(t, cJSON_AddArrayToObject(p, "ctas"));
	cJSON_AddNumberToObject(p, "target_length_minutes", t->minutes);
	cJSON_AddNumberToObject(p, "target_words", t->target_words);
	if (t->tone) cJSON_AddStringToObject(p, "tone", t->tone);
	if (json_get(ctx->channel, "style_guide.rules"))
		cJSON_AddItemToObject(p, "style_rules",
				      cJSON_Duplicate(json_get(ctx->channel, "style_guide.rules"), 1));
	if (ctx->reviewer_notes) cJSON_AddStringToObject(p, "reviewer_notes", ctx->reviewer_notes);
	cJSON_AddNumberToObject(p, "revision", prompt_plan_revision(ctx));
	free(hook), free(intro);
	return p;
}

enum stage_rc prov_planning_builtin(struct stage_ctx *ctx)
{
	struct tpl t;
	cJSON *plan;
	char *path = path_in(ctx, "plan.json");
	enum stage_rc rc = STAGE_OK;

	tpl_load(&t, ctx, NULL);
	plan = plan_build(&t, ctx);
	if (json_write_file(path, plan) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "cannot write %s: %s", path, err_msg());
	else
		stage_output(ctx, "plan", "plan.json", "application/json", -1);
	cJSON_Delete(plan);
	tpl_free(&t);
	free(path);
	return rc;
}

/* ---- scripting ---------------------------------------------------------- */

static cJSON *load_plan(struct stage_ctx *ctx, enum stage_rc *rc)
{
	char *path = path_in(ctx, "plan.json");
	cJSON *plan = json_load_file(path, FILE_MAX);

	if (plan && !cJSON_IsObject(plan)) {
		err_set("%s is not a JSON object", path);
		cJSON_Delete(plan);
		plan = NULL;
	}
	if (!plan)
		*rc = stage_fail(ctx, STAGE_FAIL,
				 "%s; run planning again "
				 "(acog-batch retry %s --from planning)",
				 err_msg(), ctx->episode_id);
	free(path);
	return plan;
}

/* The n-th sentence of a section.  The first ones mention each key point;
 * then come fixed connective sentences; then, for long targets, padding
 * that revisits the points in turn.  Sentences ending in user text get
 * their full stop from sb_sentence, so "...: Why?" never becomes "?.". */
static char *section_sentence(const struct tpl *t, char **kp, size_t nk, size_t sec, size_t nsec, size_t n)
{
	static const char *const pad[] = {
		"Let's look at that again, a little more slowly: %s",
		"Ask yourself how that fits with what you already know about %s",
		"It is easy to skip over this, but the details matter here.",
		"If that sounds surprising, good: it means you are thinking about it.",
		"Pause for a moment and picture it.",
		"In other words: %s",
	};
	const char *fmt, *arg;

	if (n < nk)
		return xasprintf(n                         ? "Also: %s"
					 : sec == 0        ? "Let's start here: %s"
					 : sec + 1 == nsec ? "One last point: %s"
							   : "Next: %s",
				 kp[n]);
	n -= nk;
	if (n == 0) return xasprintf("Why does this matter? Because it changes how we think about %s", t->topic_ref);
	if (n == 1)
		return t->audience && *t->audience
			? xasprintf("For %s, this is the part worth remembering.", t->audience)
			: xstrdup("This is the part worth remembering.");
	if (n == 2)
		return xstrdup(sec + 1 == nsec ? "Keep that in mind as we wrap up."
					       : "Keep that in mind, because the next part builds on it.");
	n -= 3;
	fmt = pad[n % 6];
	arg = n % 6 == 1 ? t->topic_ref : kp[(n / 6) % nk];
	return xasprintf(fmt, arg);
}

/* Collect a section's points as cleaned strings; fall back to its summary
 * or title when a plan from another generator has none. */
static size_t section_points(const cJSON *sec, const char *fallback, char ***out)
{
	const cJSON *kps = cJSON_GetObjectItem(sec, "key_points"), *it;
	size_t n = 0;

	*out = xcalloc((size_t)cJSON_GetArraySize(kps) + 1, sizeof **out);
	cJSON_ArrayForEach (it, kps) {
		char *p = cJSON_IsString(it) ? clean_text(it->valuestring, 300) : NULL;
		if (p) strip_final_stop(p);
		if (p && *p)
			(*out)[n++] = p;
		else
			free(p);
	}
	if (n == 0) {
		const char *s = json_str(sec, "summary", json_str(sec, "title", fallback));
		(*out)[n] = clean_text(s, 300);
		strip_final_stop((*out)[n++]);
	}
	return n;
}

static void scripting_section(struct sbuf *b, const struct tpl *t, const cJSON *plan, size_t sec, size_t nsec,
			      int budget)
{
	const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(plan, "sections"), (int)sec);
	const char *sug = json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(plan, "broll_suggestions"), (int)sec), "",
				   NULL);
	char **kp, *desc;
	size_t nk = section_points(s, t->topic_ref, &kp), n;
	int words = 0;

	if (!sug || !*sug) sug = json_str(s, "title", t->topic_ref);
	desc = clean_text(sug, 120);
	sb_printf(b, "\n[BROLL: %s]\n[VOICEOVER]\n", *desc ? desc : t->topic_ref);
	for (n = 0; n < nk || n < 2 || (words < budget && n < SECTION_MAX_SENTENCES); n++) {
		char *line = section_sentence(t, kp, nk, sec, nsec, n);
		words += word_count(line);
		sb_sentence(b, line);
		free(line);
	}
	sb_add(b, "\n", 1);
	for (size_t i = 0; i < nk; i++) free(kp[i]);
	free(kp);
	free(desc);
}

static char *scripting_opening(const struct tpl *t, const cJSON *plan)
{
	struct sbuf b = { 0 };
	char *hook = clean_json(plan, "hook", 0), *intro = clean_json(plan, "intro", 0);

	sb_sentence(&b, hook && *hook ? hook : t->topic);
	if (intro && *intro) sb_sentence(&b, intro);
	if (t->notes)
		sb_printf(&b, " This version was revised after review, with this note in mind: %s%s", t->notes,
			  strchr(".!?", t->notes[strlen(t->notes) - 1]) ? "" : ".");
	free(hook), free(intro);
	return b.s ? b.s : xstrdup(t->topic);
}

static char *scripting_closing(const struct tpl *t, const cJSON *plan)
{
	struct sbuf b = { 0 };
	char *cta = clean_json(cJSON_GetArrayItem(cJSON_GetObjectItem(plan, "ctas"), 0), "", 0);

	if (t->question)
		sb_sentence(&b, "So that is the answer to our question");
	else
		sb_printf(&b, "That is %s, in a nutshell.", t->topic_ref);
	if (cta && *cta) sb_sentence(&b, cta);
	if (t->asks_questions)
		sb_sentence(&b, "Here is something to think about: where else do you see the same idea at work?");
	if (t->sign_off && *t->sign_off) sb_sentence(&b, t->sign_off);
	free(cta);
	return b.s;
}

static char *scripting_build(const struct tpl *t, const cJSON *plan)
{
	struct sbuf b = { 0 };
	char *open = scripting_opening(t, plan), *close = scripting_closing(t, plan);
	size_t nsec = (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(plan, "sections"));
	int budget = t->target_words - word_count(open) - word_count(close);

	sb_printf(&b,
		  "# %s\n<!-- Written by the acog-batch builtin template from plan.json "
		  "(revision %d), not by a language model. Edit freely before review. -->\n",
		  t->topic, (int)json_num(plan, "revision", 1));
	if (t->notes) sb_printf(&b, "<!-- Reviewer notes addressed in this version: %s -->\n", t->notes);
	sb_printf(&b, "\n[AVATAR]\n%s\n", open);
	/* A plan without sections (from another generator) still gets one
	 * section about the topic, so the narration reaches its length. */
	if (nsec == 0) nsec = 1;
	for (size_t i = 0; i < nsec; i++) scripting_section(&b, t, plan, i, nsec, budget / (int)nsec);
	sb_printf(&b, "\n[AVATAR]\n%s\n", close);
	free(open), free(close);
	return b.s;
}

enum stage_rc prov_scripting_builtin(struct stage_ctx *ctx)
{
	enum stage_rc rc = STAGE_OK;
	cJSON *plan = load_plan(ctx, &rc);
	char *path = path_in(ctx, "script.md"), *text = NULL;
	struct tpl t;

	if (!plan) goto out;
	tpl_load(&t, ctx, plan);
	text = scripting_build(&t, plan);
	tpl_free(&t);
	if (fsio_write_atomic_str(path, text) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "cannot write %s: %s", path, err_msg());
	else
		stage_output(ctx, "script", "script.md", "text/markdown", -1);
out:
	cJSON_Delete(plan);
	free(text);
	free(path);
	return rc;
}

/* ---- script_review: automatic checks ------------------------------------ */

static void problem(struct sbuf *pr, int *np, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Number each problem so a long error still reads as a list. */
static void problem(struct sbuf *pr, int *np, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) abort();
	va_end(ap);
	++*np;
	sb_printf(pr, "%s(%d) %s", *np > 1 ? "; " : "", *np, msg);
	free(msg);
}

/* Find [AVATAR] and [BROLL...] markers line by line, noting empty b-roll
 * descriptions with their line numbers.  Returns the number of markers. */
static int review_markers(const char *text, struct sbuf *problems, int *nproblems)
{
	int markers = 0, line = 1;

	for (const char *p = text; *p; line++) {
		const char *end = strchrnul(p, '\n'), *q = p, *close;
		char name[16];
		size_t n = 0;
		while (q < end && is_ws((unsigned char)*q)) q++;
		close = q < end && *q == '[' ? memchr(q, ']', (size_t)(end - q)) : NULL;
		for (q = close ? q + 1 : close; q && q < close && *q != ':'; q++)
			if (isalpha((unsigned char)*q) && n + 1 < sizeof name)
				name[n++] = (char)toupper((unsigned char)*q);
		name[n] = 0;
		if (close && (!strcmp(name, "AVATAR") || !strcmp(name, "BROLL"))) markers++;
		if (close && !strcmp(name, "BROLL") && (*q != ':' || q + 1 + strspn(q + 1, " \t") >= close))
			problem(problems, nproblems,
				"line %d: [BROLL] has no description; write "
				"what should be shown, e.g. [BROLL: stars over a desert]",
				line);
		p = *end ? end + 1 : end;
	}
	return markers;
}

static int narration_words(const char *text)
{
	struct script s;
	int words = 0;

	if (script_parse(text, &s) < 0) return 0;
	for (size_t i = 0; i < s.n; i++) words += word_count(s.seg[i].text);
	script_free(&s);
	return words;
}

static double review_target_words(struct stage_ctx *ctx)
{
	char *path = path_in(ctx, "plan.json");
	cJSON *plan = fsio_exists(path) ? json_load_file(path, FILE_MAX) : NULL;
	double words = prompt_target_words(prompt_target_minutes(ctx, plan));

	cJSON_Delete(plan);
	free(path);
	return words;
}

static void review_problems(struct stage_ctx *ctx, const char *text, struct sbuf *pr, int *np)
{
	double target = review_target_words(ctx);
	int words = narration_words(text);

	if (review_markers(text, pr, np) == 0) problem(pr, np, "no [AVATAR] or [BROLL: ...] marker; mark each segment");
	if (words < 0.3 * target || words > 3.0 * target)
		problem(pr, np,
			"narration has %d words but the target is about %.0f "
			"(allowed %.0f-%.0f); shorten or lengthen it",
			words, target, 0.3 * target, 3.0 * target);
}

enum stage_rc prov_script_review_checks(struct stage_ctx *ctx)
{
	char *path = path_in(ctx, "script.md"), *text = fsio_read(path, FILE_MAX, NULL);
	struct sbuf pr = { 0 };
	int np = 0;
	enum stage_rc rc = STAGE_OK;

	if (!text) {
		rc = stage_fail(ctx, STAGE_FAIL,
				"%s; run scripting again "
				"(acog-batch retry %s --from scripting)",
				err_msg(), ctx->episode_id);
		goto out;
	}
	review_problems(ctx, text, &pr, &np);
	if (np)
		rc = stage_fail(ctx, STAGE_FAIL,
				"%s failed %d automatic check%s: %s. Edit it and run "
				"acog-batch retry %s --from script_review",
				path, np, np > 1 ? "s" : "", pr.s, ctx->episode_id);
	else
		stage_log(ctx, "info", "script.md passed the automatic checks (%d words)", narration_words(text));
out:
	sb_free(&pr);
	free(text);
	free(path);
	return rc;
}

/* ---- metadata ----------------------------------------------------------- */

static char *meta_title(const struct tpl *t, const struct stage_ctx *ctx)
{
	char *path = path_in(ctx, "script.md"), *text = fsio_read(path, FILE_MAX, NULL);
	struct script s = { 0 };
	char *title;

	/* A title a person edited into script.md wins over the idea's topic. */
	if (text) script_parse(text, &s);
	title = clean_text(s.title && *s.title ? s.title : t->topic, TITLE_MAX_CHARS);
	script_free(&s);
	free(text);
	free(path);
	return title;
}

static char *meta_description(const struct tpl *t, const cJSON *plan)
{
	struct sbuf b = { 0 };
	const cJSON *it;
	char *cta = clean_json(cJSON_GetArrayItem(cJSON_GetObjectItem(plan, "ctas"), 0), "", 0);

	sb_sentence(&b, t->brief && *t->brief ? t->brief : t->topic);
	sb_puts(&b, "\n\nIn this video:\n");
	for (size_t i = 0; i < t->npoints; i++) sb_printf(&b, "- %s\n", t->points[i]);
	if (t->npoints == 0)
		cJSON_ArrayForEach (it, cJSON_GetObjectItem(plan, "sections"))
			sb_printf(&b, "- %s\n", json_str(it, "title", ""));
	if (cta && *cta) sb_printf(&b, "\n%s\n", cta);
	if (t->sign_off && *t->sign_off)
		sb_printf(&b, "\n%s\n", t->sign_off);
	else if (t->name)
		sb_printf(&b, "\n\xe2\x80\x94 %s%s%s\n", t->name, t->channel ? ", " : "", t->channel ? t->channel : "");
	free(cta);
	if (b.len > DESCRIPTION_MAX_BYTES) {
		size_t n = DESCRIPTION_MAX_BYTES;
		while (n > 0 && ((unsigned char)b.s[n] & 0xc0) == 0x80) n--; /* never cut a UTF-8 sequence in half */
		b.s[n] = 0;
	}
	return b.s;
}

static int is_stopword(const char *w)
{
	static const char *const stop[] = { "the",   "and",   "for",    "with", "from",  "are",   "was",  "were",
					    "been",  "its",   "this",   "that", "these", "those", "why",  "what",
					    "how",   "when",  "where",  "who",  "which", "does",  "did",  "can",
					    "could", "would", "should", "will", "your",  "you",   "our",  "about",
					    "into",  "than",  "then",   "not",  "just",  "all",   "any",  "more",
					    "most",  "very",  "really", "has",  "have",  "had",   "out",  "over",
					    "under", "there", "their",  "they", "them",  "some",  "such", "only",
					    "also",  "but",   "get",    "got",  "is",    NULL };

	for (const char *const *s = stop; *s; s++)
		if (!strcmp(*s, w)) return 1;
	return 0;
}

/* YouTube counts a tag with a space as if it were quoted, plus a comma. */
static size_t tag_cost(const char *tag)
{
	return strlen(tag) + 1 + (strchr(tag, ' ') ? 2 : 0);
}

static void tag_add(cJSON *tags, size_t *total, const char *tag)
{
	const cJSON *it;

	if (!*tag || cJSON_GetArraySize(tags) >= TAGS_MAX || *total + tag_cost(tag) > TAGS_MAX_CHARS) return;
	cJSON_ArrayForEach (it, tags)
		if (!strcmp(it->valuestring, tag)) return;
	*total += tag_cost(tag);
	add_str(tags, tag);
}

/* Lower-case ASCII words of three or more letters (UTF-8 letters are kept
 * as they are), minus stopwords; a word too long for a tag is skipped. */
static void tag_words(cJSON *tags, size_t *total, const char *text)
{
	char w[64];
	size_t n = 0;
	int too_long = 0;

	for (const char *p = text;; p++) {
		unsigned char c = (unsigned char)*p;
		if (isalnum(c) || c >= 0x80) {
			if (n + 1 < sizeof w)
				w[n++] = (char)tolower(c);
			else
				too_long = 1;
			continue;
		}
		w[n] = 0;
		if (n >= 3 && !too_long && !is_stopword(w) && utf8_valid(w, n)) tag_add(tags, total, w);
		n = 0, too_long = 0;
		if (!c) break;
	}
}

static cJSON *meta_tags(const struct tpl *t)
{
	cJSON *tags = cJSON_CreateArray();
	size_t total = 0;
	char *niche = t->niche ? xstrdup(t->niche) : NULL;

	for (char *p = niche; p && *p; p++) *p = (char)tolower((unsigned char)*p);
	if (niche && strlen(niche) <= 100) tag_add(tags, &total, niche);
	tag_words(tags, &total, t->topic);
	free(niche);
	return tags;
}

static char *meta_thumbnail(const struct tpl *t, const char *title, const cJSON *plan)
{
	const char *subject = json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(plan, "broll_suggestions"), 0), "",
				       t->topic_ref);
	char *clean = clean_text(subject, 200), *out;

	out = xasprintf("Eye-catching 16:9 YouTube thumbnail for \"%s\": %s. Style: %s. "
			"One clear subject, high contrast, little or no text.",
			title, clean, t->tone ? t->tone : "clean and friendly");
	free(clean);
	return out;
}

enum stage_rc prov_metadata_builtin(struct stage_ctx *ctx)
{
	char *ppath = path_in(ctx, "plan.json"), *path = path_in(ctx, "metadata.json");
	cJSON *plan = fsio_exists(ppath) ? json_load_file(ppath, FILE_MAX) : NULL;
	cJSON *m = cJSON_CreateObject();
	char *title, *desc, *thumb;
	struct tpl t;
	enum stage_rc rc = STAGE_OK;

	tpl_load(&t, ctx, plan);
	title = meta_title(&t, ctx);
	desc = meta_description(&t, plan);
	thumb = meta_thumbnail(&t, title, plan);
	cJSON_AddStringToObject(m, "final_title", title);
	cJSON_AddStringToObject(m, "description", desc);
	cJSON_AddItemToObject(m, "tags", meta_tags(&t));
	cJSON_AddStringToObject(m, "thumbnail_prompt", thumb);
	cJSON_AddStringToObject(m, "generator", "builtin-template");
	if (json_write_file(path, m) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "cannot write %s: %s", path, err_msg());
	else
		stage_output(ctx, "metadata", "metadata.json", "application/json", -1);
	tpl_free(&t);
	cJSON_Delete(m), cJSON_Delete(plan);
	free(title), free(desc), free(thumb), free(ppath), free(path);
	return rc;
}
