/*
 * pulse.c - trend intake.  JSON trend events dropped into spool/pulse/ (one
 * object or an array per file) become pulse_events rows; every channel whose
 * channel.yaml has a `pulse:` block turns the events that pass its rules
 * into ideas written to spool/incoming/, which then take the usual path.
 *
 * The rules of ideas apply: a file that is not valid goes to spool/rejected/
 * with a reason naming the event and the field; a file whose events are all
 * known already is rejected as a duplicate; an accepted file is kept,
 * byte for byte, in spool/pulse-done/.
 *
 * Crash model: the rows are committed first (unprocessed); then, per event,
 * its ideas are written (one fixed name per event and channel, not written
 * when the episode exists already) and the row is marked processed with its
 * outcome; last the file moves to spool/pulse-done/.  A crash anywhere is
 * finished when the file is scanned again at start-up, and no idea is made
 * twice: the idea's idempotency_key is the event's id.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PULSE_MAX_EVENTS 1000

struct pulse_ev {
	const cJSON *json;
	char key[80]; /* source_id, or "sha256:" and the event's content hash */
	char id[37];  /* pulse_events.id */
};

/* ---- validation -------------------------------------------------------- */

enum field_type { F_TEXT, F_URL, F_TAGS, F_SCORE, F_TIME };
/* clang-format off */
static const struct field {
	const char *name;
	enum field_type type;
	int required;
	size_t max; /* bytes of a string, or entries of a list */
} fields[] = {
	{ "source", F_TEXT, 1, 100 },        { "title", F_TEXT, 1, 500 },
	{ "summary", F_TEXT, 0, 20000 },     { "url", F_URL, 0, 1000 },
	{ "topic_tags", F_TAGS, 0, 50 },     { "relevance_score", F_SCORE, 0, 0 },
	{ "published_at", F_TIME, 0, 0 },    { "source_id", F_TEXT, 0, 200 },
};
/* clang-format on */

static int check_tags(const struct field *f, const cJSON *v)
{
	const cJSON *t;
	int i = 0;
	if (!cJSON_IsArray(v)) return err_set("%s: expected a list of strings", f->name);
	cJSON_ArrayForEach (t, v) {
		if (!cJSON_IsString(t) || !*t->valuestring || strlen(t->valuestring) > 100)
			return err_set("%s[%d]: expected a non-empty string of at most 100 bytes", f->name, i);
		i++;
	}
	return (size_t)i > f->max ? err_set("%s: at most %zu tags", f->name, f->max) : 0;
}

static int check_field(const struct field *f, const cJSON *v)
{
	if (!v || cJSON_IsNull(v)) return f->required ? err_set("%s: required field is missing", f->name) : 0;
	switch (f->type) {
	case F_TAGS: return check_tags(f, v);
	case F_SCORE:
		if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1))
			return err_set("%s: expected a number from 0 to 1", f->name);
		return 0;
	case F_TIME:
		if (!cJSON_IsString(v) || cadence_parse_instant(v->valuestring) < 0)
			return err_set("%s: expected an ISO-8601 time like 2026-11-29T08:00:00Z", f->name);
		return 0;
	default: break;
	}
	if (!cJSON_IsString(v) || !*v->valuestring) return err_set("%s: expected a non-empty string", f->name);
	if (strlen(v->valuestring) > f->max) return err_set("%s: longer than %zu bytes", f->name, f->max);
	if (f->type == F_URL && strncmp(v->valuestring, "https://", 8) && strncmp(v->valuestring, "http://", 7))
		return err_set("%s: expected an http:// or https:// address", f->name);
	return 0;
}

static int check_event(const cJSON *e)
{
	if (!cJSON_IsObject(e)) return err_set("expected a JSON object with source and title");
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
		if (check_field(&fields[i], cJSON_GetObjectItemCaseSensitive(e, fields[i].name)) < 0) return -1;
	return 0;
}

/* The events of a document (an object or a list of them); -1 names the bad one. */
static int collect(const cJSON *doc, struct pulse_ev **out, int *n)
{
	int count = cJSON_IsArray(doc) ? cJSON_GetArraySize(doc) : 1, i = 0;
	const cJSON *e;
	if (count == 0) return err_set("the list holds no events");
	if (count > PULSE_MAX_EVENTS) return err_set("%d events; a file may hold at most %d", count, PULSE_MAX_EVENTS);
	*out = xcalloc((size_t)count, sizeof **out);
	*n = count;
	if (!cJSON_IsArray(doc)) {
		(*out)[0].json = doc;
		return check_event(doc);
	}
	cJSON_ArrayForEach (e, doc) {
		(*out)[i].json = e;
		if (check_event(e) < 0) {
			char *why = xstrdup(err_msg());
			err_set("event %d of %d: %s", i + 1, count, why);
			free(why);
			return -1;
		}
		i++;
	}
	return 0;
}

/* ---- storing ----------------------------------------------------------- */

/* A COUNT(*) answer from db_first, freed. */
static int count_of(char *s)
{
	int n = s ? atoi(s) : 0;
	free(s);
	return n;
}

static void event_key(struct pulse_ev *ev)
{
	const char *sid = json_str(ev->json, "source_id", NULL);
	char *canon, h[65];
	if (sid) {
		snprintf(ev->key, sizeof ev->key, "%.79s", sid);
		return;
	}
	canon = json_print(ev->json);
	hash_hex(canon, strlen(canon), h);
	free(canon);
	snprintf(ev->key, sizeof ev->key, "sha256:%s", h);
}

static int insert_event(sqlite3 *db, const char *file, struct pulse_ev *ev)
{
	const cJSON *tags = json_get(ev->json, "topic_tags"), *score = json_get(ev->json, "relevance_score");
	char *payload = json_print(ev->json), *tags_json = tags ? json_print(tags) : NULL, id[37], sc[32];
	const char *src = json_str(ev->json, "source", "");
	sqlite3_stmt *st;
	int rc;
	uuid_new(id);
	snprintf(sc, sizeof sc, "%.17g", score ? score->valuedouble : 0);
	rc = db_exec(db,
		     "INSERT INTO pulse_events (id, source, source_id, source_url, payload, topic_tags,"
		     " relevance_score, event_timestamp, source_file) VALUES (?,?,?,?,?,?,?,?,?)"
		     " ON CONFLICT (source, source_id) DO NOTHING",
		     "sssssssss", id, src, ev->key, json_str(ev->json, "url", NULL), payload, tags_json,
		     score ? sc : NULL, json_str(ev->json, "published_at", NULL), file);
	free(payload);
	free(tags_json);
	if (rc < 0) return -1;
	st = db_prep(db, "SELECT id FROM pulse_events WHERE source = ? AND source_id = ?", "ss", src, ev->key);
	rc = st && sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
	if (rc == 0) snprintf(ev->id, sizeof ev->id, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc;
}

/* All the file's events in one transaction; returns how many were new. */
static int store_events(sqlite3 *db, const char *file, struct pulse_ev *ev, int n)
{
	int before = count_of(db_first(db, "SELECT COUNT(*) FROM pulse_events", NULL)), after;
	if (db_begin(db) < 0) return -1;
	for (int i = 0; i < n; i++) {
		event_key(&ev[i]);
		if (insert_event(db, file, &ev[i]) < 0) {
			db_rollback(db);
			return -1;
		}
	}
	if (db_commit(db) < 0) return -1;
	after = count_of(db_first(db, "SELECT COUNT(*) FROM pulse_events", NULL));
	return after - before;
}

static int processed(sqlite3 *db, const char *id)
{
	return count_of(db_first(db, "SELECT COUNT(*) FROM pulse_events WHERE id = ? AND is_processed = 1", "s", id)) >
		0;
}

/* ---- each channel's rules ---------------------------------------------- */

static int has_tag(const cJSON *tags, const char *tag)
{
	const cJSON *t;
	cJSON_ArrayForEach (t, tags)
		if (cJSON_IsString(t) && !strcasecmp(t->valuestring, tag)) return 1;
	return 0;
}

/* The first tag of list that the event has (or, with none = 1, lacks them all). */
static const char *tag_hit(const cJSON *list, const cJSON *tags)
{
	const cJSON *t;
	cJSON_ArrayForEach (t, list)
		if (cJSON_IsString(t) && has_tag(tags, t->valuestring)) return t->valuestring;
	return NULL;
}

static int ideas_today(sqlite3 *db, const char *channel)
{
	char day[32];
	time_iso(floor(time_now() / 86400) * 86400, day);
	return count_of(db_first(db,
				 "SELECT COUNT(*) FROM pulse_events p, json_each(p.matched_channels) m"
				 " WHERE p.processed_at >= ? AND m.value = ?",
				 "ss", day, channel));
}

/* Why the channel's rules turn the event down (into why), or 0 if they take it. */
static int turned_down(sqlite3 *db, const struct channel *ch, const cJSON *rules, const cJSON *ev, char *why, size_t n)
{
	const cJSON *tags = json_get(ev, "topic_tags"), *want = json_get(rules, "tags");
	const char *hit = tag_hit(json_get(rules, "exclude_tags"), tags);
	double score = json_num(ev, "relevance_score", 0), min = json_num(rules, "min_relevance", 0);
	int cap = (int)json_num(rules, "max_ideas_per_day", 1000000);
	if (hit) return snprintf(why, n, "tag '%s' is excluded", hit), 1;
	if (cJSON_GetArraySize(want) > 0 && !tag_hit(want, tags)) return snprintf(why, n, "no wanted tag"), 1;
	if (score < min) return snprintf(why, n, "relevance %.2f < %.2f", score, min), 1;
	if (ideas_today(db, ch->id) >= cap) return snprintf(why, n, "daily limit of %d pulse ideas reached", cap), 1;
	return 0;
}

static cJSON *idea_for(const struct channel *ch, const cJSON *rules, const cJSON *ev, const char *id)
{
	cJSON *idea = cJSON_CreateObject();
	char key[64], topic[501];
	snprintf(topic, sizeof topic, "%s", json_str(ev, "title", ""));
	snprintf(key, sizeof key, "pulse:%s", id);
	cJSON_AddStringToObject(idea, "channel", ch->id);
	cJSON_AddStringToObject(idea, "topic", topic);
	if (json_get(ev, "summary")) cJSON_AddStringToObject(idea, "brief", json_str(ev, "summary", ""));
	cJSON_AddStringToObject(idea, "idea_source", "pulse");
	cJSON_AddStringToObject(idea, "pulse_event_id", id);
	cJSON_AddStringToObject(idea, "idempotency_key", key);
	if (json_get(ev, "url")) cJSON_AddStringToObject(idea, "source_url", json_str(ev, "url", ""));
	if (json_get(rules, "priority"))
		cJSON_AddItemToObject(idea, "priority", cJSON_Duplicate(json_get(rules, "priority"), 1));
	return idea;
}

/* Writes the channel's idea for the event, unless its episode exists already. */
static int write_idea(sqlite3 *db, struct config *c, const struct channel *ch, const cJSON *rules,
		      const struct pulse_ev *ev, char *name, size_t n)
{
	char key[64], *path, *text;
	cJSON *idea;
	int rc = 0;
	snprintf(key, sizeof key, "pulse:%s", ev->id);
	snprintf(name, n, "pulse-%.8s-%s.json", ev->id, ch->id);
	if (count_of(db_first(db, "SELECT COUNT(*) FROM episodes WHERE channel_id = ? AND idempotency_key = ?", "ss",
			      ch->db_id, key)) > 0)
		return 0;
	idea = idea_for(ch, rules, ev->json, ev->id);
	text = json_pretty(idea);
	path = spool_path(c->root, "incoming", name);
	rc = fsio_write_atomic_str(path, text);
	free(path);
	free(text);
	cJSON_Delete(idea);
	return rc;
}

/* Runs every channel's rules on one event and records the outcome. */
static int decide(sqlite3 *db, struct config *c, const struct pulse_ev *ev)
{
	struct sbuf outcome = { 0 };
	cJSON *matched = cJSON_CreateArray();
	char *mj;
	int rc = 0;
	for (size_t i = 0; i < c->nch && rc == 0; i++) {
		const cJSON *rules = json_get(c->ch[i].cfg, "pulse");
		char why[160], name[200];
		if (!cJSON_IsObject(rules)) continue;
		if (turned_down(db, &c->ch[i], rules, ev->json, why, sizeof why)) {
			sb_printf(&outcome, "%s%s: %s", outcome.len ? "; " : "", c->ch[i].id, why);
			continue;
		}
		rc = write_idea(db, c, &c->ch[i], rules, ev, name, sizeof name);
		cJSON_AddItemToArray(matched, cJSON_CreateString(c->ch[i].id));
		sb_printf(&outcome, "%s%s: idea %s", outcome.len ? "; " : "", c->ch[i].id, name);
	}
	if (!outcome.len) sb_puts(&outcome, "no channel has pulse rules");
	mj = json_print(matched);
	if (rc == 0)
		rc = db_exec(db,
			     "UPDATE pulse_events SET is_processed = 1, processed_at = strftime('%Y-%m-%dT%H:%M:%fZ','now'),"
			     " matched_channels = ?, outcome = ? WHERE id = ? AND is_processed = 0",
			     "sss", mj, outcome.s, ev->id);
	free(mj);
	sb_free(&outcome);
	cJSON_Delete(matched);
	return rc;
}

/* ---- a file ------------------------------------------------------------ */

static int reject(struct config *c, const char *name, const char *why)
{
	char *src = spool_path(c->root, "pulse", name), *reason = xasprintf("spool/pulse/%s: %s", name, why);
	int rc;
	log_warn(NULL, NULL, "pulse.rejected", "%s", reason);
	rc = spool_reject(c->root, src, reason);
	if (rc < 0) log_error(NULL, NULL, "pulse.reject_failed", "%s", err_msg());
	free(reason);
	free(src);
	return rc;
}

/* Stores, decides and files away the parsed events of one file. */
static int take_events(sqlite3 *db, struct config *c, const char *name, struct pulse_ev *ev, int n)
{
	int fresh = store_events(db, name, ev, n), open_ = 0, rc = 0;
	char *src, why[200];
	if (fresh < 0) return -1;
	for (int i = 0; i < n; i++) open_ += !processed(db, ev[i].id);
	if (open_ == 0) {
		snprintf(why, sizeof why,
			 "duplicate: every event in it is known already (the first is pulse event %.8s); "
			 "nothing new was made",
			 ev[0].id);
		return reject(c, name, why);
	}
	for (int i = 0; i < n && rc == 0; i++)
		if (!processed(db, ev[i].id)) rc = decide(db, c, &ev[i]);
	if (rc < 0) return -1;
	src = spool_path(c->root, "pulse", name);
	rc = spool_keep(c->root, src, "pulse-done");
	free(src);
	if (rc == 0)
		log_info(NULL, NULL, "pulse.accepted", "spool/pulse/%s: %d events, %d new; kept in spool/pulse-done/",
			 name, n, fresh);
	return rc;
}

int pulse_file(sqlite3 *db, struct config *c, const char *name)
{
	struct pulse_ev *ev = NULL;
	char *path, *text;
	cJSON *doc = NULL;
	size_t len;
	int rc, gone, n = 0;

	if (name[0] == '.') return 1;
	path = spool_path(c->root, "pulse", name);
	text = intake_read(path, &len, &gone);
	free(path);
	if (!text && gone) return 0; /* gone already: the event was stale */
	if (text) doc = json_doc_parse(text, len, "a pulse file holds a trend event or a list of them");
	if (doc && collect(doc, &ev, &n) == 0)
		rc = take_events(db, c, name, ev, n);
	else
		rc = reject(c, name, err_msg());
	free(ev);
	cJSON_Delete(doc);
	free(text);
	return rc;
}

int pulse_scan(sqlite3 *db, struct config *c)
{
	return spool_scan(db, c, "pulse", NULL, pulse_file);
}

/* ---- channel.yaml's pulse: block --------------------------------------- */

static int tag_list_ok(const cJSON *v)
{
	const cJSON *t;
	if (!cJSON_IsArray(v)) return 0;
	cJSON_ArrayForEach (t, v)
		if (!cJSON_IsString(t)) return 0;
	return 1;
}

void pulse_rules_check(const cJSON *rules, struct sbuf *errs)
{
	const cJSON *v;
	int prio;
	if (!rules) return;
	if (!cJSON_IsObject(rules)) {
		sb_printf(errs, "%spulse must be a map", errs->len ? "; " : "");
		return;
	}
	cJSON_ArrayForEach (v, rules) {
		const char *k = v->string, *bad = NULL;
		if (!strcmp(k, "min_relevance"))
			bad = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 1 ? NULL
											      : "a number from 0 to 1";
		else if (!strcmp(k, "tags") || !strcmp(k, "exclude_tags"))
			bad = tag_list_ok(v) ? NULL : "a list of tags";
		else if (!strcmp(k, "max_ideas_per_day"))
			bad = cJSON_IsNumber(v) && v->valuedouble >= 0 ? NULL : "a whole number of ideas, 0 or more";
		else if (!strcmp(k, "priority"))
			bad = idea_priority_value(v, &prio) == 0 ? NULL : "low, normal, high, urgent or an integer";
		else
			bad = "nothing: not a pulse rule (min_relevance, tags, exclude_tags, max_ideas_per_day, priority)";
		if (bad) sb_printf(errs, "%spulse.%s: use %s", errs->len ? "; " : "", k, bad);
	}
}
