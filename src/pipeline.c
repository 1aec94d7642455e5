/*
 * pipeline.c - what a stage's outcome does to its episode: the event it
 * sends to the state machine (state.c) and what is recorded with it (assets,
 * versions, costs) in the same short transaction, which never spans a child
 * process or a network call.  The ticket is moved after the commit
 * (state_after), and start-up reconciliation repairs a crash between the
 * two.  Every update is compare-and-set, so a result that arrives for a
 * cancelled job changes nothing.
 */
#include "daemon.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const struct state_args daemon_args = { .actor_type = STATE_DAEMON, .actor = "daemon" };

enum pipeline_arrival pipeline_arrive(const struct channel *ch, const struct stage_def *s, struct state_args *a)
{
	/* A channel that failed to load keeps its gates shut: a person decides. */
	while (s && s->kind == STAGE_GATE && ch && !config_gate(ch, s->name)) s = stage_next(s);
	a->stage = s;
	a->gate = s && s->kind == STAGE_GATE ? s->name : NULL;
	return !s ? ARRIVE_END : s->kind == STAGE_GATE ? ARRIVE_GATE : ARRIVE_WORK;
}

/* Stage s is done: its own gate (gate_after) if the channel turned it on,
 * else wherever the next stage leads. */
static enum ep_event done_event(const struct channel *ch, const struct stage_def *s, struct state_args *a)
{
	static const enum ep_event ev[] = {
		[ARRIVE_WORK] = EV_DONE, [ARRIVE_GATE] = EV_DONE_GATE, [ARRIVE_END] = EV_DONE_LAST
	};
	if (s->gate_after && (!ch || config_gate(ch, s->gate_after))) {
		a->stage = s;
		a->gate = s->gate_after;
		return EV_DONE_GATE;
	}
	return ev[pipeline_arrive(ch, stage_next(s), a)];
}

static int record_published(sqlite3 *db, const struct episode *e)
{
	char *p = xasprintf("%s/publish.json", e->dir), now[32];
	cJSON *pub = fsio_exists(p) ? json_load_file(p, 1 << 20) : NULL;
	int rc;
	free(p);
	time_iso(time_now(), now);
	rc = db_exec(db, "UPDATE episodes SET published_at = ?, published_url = ?," DB_TOUCH " WHERE id = ?", "sss",
		     now, json_str(pub, "url", NULL), e->id);
	cJSON_Delete(pub);
	return rc;
}

/* Loads job j's episode into e and sends it ev; on success the caller frees e. */
static int send_event(sqlite3 *db, struct config *c, const struct job_ref *j, enum ep_event ev, struct state_args *a,
		      struct episode *e)
{
	a->job = j;
	if (episode_load(db, c->root, j->episode_id, e) < 0) return -1;
	if (state_do(db, c, e, ev, a) == 0) return 0;
	episode_free(e);
	return -1;
}

int pipeline_start_job(sqlite3 *db, struct config *c, const struct job_ref *j, const char *provider)
{
	struct episode e;
	struct state_args a = daemon_args;
	a.provider = provider;
	if (send_event(db, c, j, EV_START, &a, &e) < 0) return -1;
	episode_free(&e);
	return 0;
}

static int record_asset(sqlite3 *db, struct episode *e, const cJSON *o, const char *provider)
{
	const char *type = json_str(o, "type", ""), *path = json_str(o, "path", "");
	int primary = strcmp(type, "avatar_video") != 0 && strcmp(type, "b_roll") != 0;
	char id[37], *full, *rel, now[32];
	struct stat st;
	long long size = -1;
	int rc;

	if (!path_component_ok(path) && (strstr(path, "..") || path[0] == '/'))
		return err_set("provider reported an output outside the episode folder: %s", path);
	full = xasprintf("%s/%s", e->dir, path);
	rel = xasprintf("channels/%s/episodes/%s/%s", e->channel, e->id, path);
	if (stat(full, &st) == 0) size = st.st_size;
	free(full);
	time_iso(time_now(), now);
	rc = db_exec(db,
		     "UPDATE assets SET deleted_at = ?, is_primary = 0 WHERE episode_id = ? AND deleted_at IS NULL"
		     " AND (uri = ? OR (? AND type = ? AND is_primary = 1))",
		     "sssis", now, e->id, rel, primary, type);
	uuid_new(id);
	if (rc == 0)
		rc = db_exec(db,
			     "INSERT INTO assets (id, episode_id, type, name, uri, storage_key, provider, mime_type,"
			     " file_size_bytes, duration_ms, is_primary) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
			     "ssssssssIii", id, e->id, type, path, rel, rel, provider, json_str(o, "mime", NULL),
			     (int64_t)size, (int)json_num(o, "duration_ms", 0), primary);
	free(rel);
	return rc;
}

static int record_costs(sqlite3 *db, const struct episode *e, const struct job_ref *j, const cJSON *costs)
{
	const cJSON *o;
	double total = 0;
	cJSON_ArrayForEach (o, costs) {
		char id[37];
		double usd = json_num(o, "cost_usd", 0);
		uuid_new(id);
		if (db_exec(db,
			    "INSERT INTO cost_entries (id, episode_id, channel_id, provider, operation_type,"
			    " cost_cents, units_consumed, unit_type, provider_ref, cost_usd, job_id)"
			    " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
			    "sssssidssds", id, e->id, e->channel_db_id, json_str(o, "provider", "?"),
			    json_str(o, "operation", j->stage), (int)lround(usd * 100), json_num(o, "units", 0),
			    json_str(o, "unit_type", NULL), json_str(o, "provider_ref", NULL), usd, j->id) < 0)
			return -1;
		total += usd;
	}
	return db_exec(db, "UPDATE jobs SET cost_usd = COALESCE(cost_usd, 0) + ?," DB_TOUCH " WHERE id = ?", "ds",
		       total, j->id);
}

/* Calls that were paid for although the run did not complete (a retry, a
 * failure, an async job still pending) are recorded all the same. */
int pipeline_record_costs(sqlite3 *db, struct config *c, const struct job_ref *j, const cJSON *costs)
{
	struct episode e;
	int rc;
	if (cJSON_GetArraySize(costs) == 0) return 0;
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return -1;
	rc = db_begin(db);
	if (rc == 0 && record_costs(db, &e, j, costs) == 0)
		rc = db_commit(db);
	else {
		db_rollback(db);
		rc = -1;
	}
	episode_free(&e);
	return rc;
}

/* Keeps every plan/script/metadata a stage produced (episode_versions). */
static int record_version(sqlite3 *db, struct episode *e, const char *type, const char *file)
{
	char *p = xasprintf("%s/%s", e->dir, file), *text, *content, id[37];
	sqlite3_stmt *st;
	int n = 0, rc;
	cJSON *j;
	text = fsio_read(p, 16 << 20, NULL);
	free(p);
	if (!text) return 0;
	if (strcmp(type, "script") == 0) {
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "text", text);
	} else if (!(j = cJSON_Parse(text))) {
		free(text);
		return err_set("%s/%s is not valid JSON", e->dir, file);
	}
	content = json_print(j);
	st = db_get(db,
		    "SELECT COALESCE(MAX(version_number), 0) FROM episode_versions WHERE episode_id = ?"
		    " AND version_type = ?",
		    "ss", e->id, type);
	if (st && sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
	db_done(st);
	uuid_new(id);
	rc = db_exec(db,
		     "INSERT INTO episode_versions (id, episode_id, version_type, version_number, content,"
		     " changed_by, change_reason) VALUES (?,?,?,?,?,?,?)",
		     "sssisss", id, e->id, type, n + 1, content, e->review_notes ? "reviewer" : "system",
		     e->review_notes ? e->review_notes : "generated");
	if (rc == 0 && strcmp(type, "script") == 0)
		rc = db_exec(db, "UPDATE episodes SET script = ?," DB_TOUCH " WHERE id = ?", "ss", text, e->id);
	else if (rc == 0 && strcmp(type, "plan") == 0)
		rc = db_exec(db, "UPDATE episodes SET plan = ?," DB_TOUCH " WHERE id = ?", "ss", content, e->id);
	else if (rc == 0)
		rc = db_exec(db,
			     "UPDATE episodes SET metadata = ?, title = COALESCE(?, title)," DB_TOUCH " WHERE id = ?",
			     "sss", content, json_str(j, "final_title", NULL), e->id);
	cJSON_Delete(j);
	free(content);
	free(text);
	return rc;
}

static int record_outputs(sqlite3 *db, struct episode *e, const struct job_ref *j, const cJSON *result)
{
	const cJSON *o;
	const char *prov = json_str(result, "provider", NULL);
	cJSON_ArrayForEach (o, json_get(result, "outputs")) {
		const char *type = json_str(o, "type", "");
		if (record_asset(db, e, o, prov) < 0) return -1;
		if (stage_is_versioned(stage_find(j->stage), type) &&
		    record_version(db, e, type, json_str(o, "path", "")) < 0)
			return -1;
	}
	return record_costs(db, e, j, json_get(result, "costs"));
}

int pipeline_complete(sqlite3 *db, struct config *c, const struct job_ref *j, const cJSON *result)
{
	struct episode e;
	const struct stage_def *s = stage_find(j->stage);
	struct state_args a = daemon_args;
	enum ep_event ev;
	unsigned fx = 0;
	int rc = -1;

	if (!s) return err_set("job %s is for an unknown stage %s", j->id, j->stage);
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return -1;
	a.job = j;
	a.result = result;
	ev = done_event(config_channel(c, e.channel), s, &a);
	if (db_begin(db) < 0) goto out;
	if (state_apply(db, c, &e, ev, &a, &fx) < 0 || record_outputs(db, &e, j, result) < 0 ||
	    (ev == EV_DONE_LAST && record_published(db, &e) < 0) || db_commit(db) < 0) {
		db_rollback(db);
		goto out;
	}
	log_info(e.id, e.dir, "stage.completed", "%s completed; next: %s%s", j->stage, e.location,
		 e.gate_pending ? " (waiting for approval)" : "");
	state_after(c, &e, fx, &a);
	if (e.gate_pending) report_refresh(db, c->root, e.id, e.dir); /* after the commit: a view for the reviewer */
	rc = 0;
out:
	episode_free(&e);
	return rc;
}

int pipeline_fail(sqlite3 *db, struct config *c, const struct job_ref *j, const char *error)
{
	struct episode e;
	struct state_args a = daemon_args;
	a.reason = error;
	if (send_event(db, c, j, EV_FAIL, &a, &e) < 0) return -1;
	log_error(e.id, e.dir, "stage.failed", "%s failed for good: %s", j->stage, error);
	episode_free(&e);
	return 0;
}

int pipeline_retry_or_fail(sqlite3 *db, struct config *c, const struct job_ref *j, const char *error,
			   double retry_after, int count_attempt)
{
	struct episode e;
	struct channel *ch;
	struct state_args a = daemon_args;
	double delay;
	char when[32];
	int rc;

	if (count_attempt && j->retry_count >= j->max_retries) return pipeline_fail(db, c, j, error);
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return -1;
	ch = config_channel(c, e.channel);
	/* A pending async job is polled when the provider says; a failure backs off. */
	delay = count_attempt ? job_backoff(j->retry_count, config_retry_base(c, ch), config_retry_max(c, ch)) : 0;
	if (retry_after > delay) delay = retry_after;
	a.job = j;
	a.reason = error;
	a.retry_at = time_now() + delay;
	a.count_attempt = count_attempt;
	time_iso(a.retry_at, when);
	rc = state_do(db, c, &e, EV_DEFER, &a);
	if (rc == 0)
		log_warn(e.id, e.dir, "stage.retry", "%s will be retried at %s (attempt %d of %d): %s", j->stage, when,
			 j->retry_count + 2, j->max_retries + 1, error);
	episode_free(&e);
	return rc;
}

int pipeline_hold(sqlite3 *db, struct config *c, const struct job_ref *j, const char *kind, double until,
		  int channel_wide, const char *reason)
{
	struct episode e;
	struct state_args a = daemon_args;
	int rc;
	if (!state_hold_kind_ok(kind)) {
		char *why = xasprintf("stage %s answered a hold of unknown kind '%s' (%s); a stage may hold with "
				      "budget, quota, upload_limit, auth or user",
				      j->stage, kind, reason);
		rc = pipeline_fail(db, c, j, why);
		free(why);
		return rc;
	}
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return -1;
	a.job = j;
	a.reason = reason;
	a.hold_kind = kind;
	a.hold_until = until;
	rc = hold_episode(db, c, &e, &a, channel_wide ? j->stage : NULL);
	episode_free(&e);
	return rc;
}

/* One running episode back to its stage's queue; 0, or -1 (logged). */
int pipeline_requeue(sqlite3 *db, struct config *c, const char *id, const char *reason)
{
	struct state_args a = daemon_args;
	struct episode e;
	int rc;
	a.reason = reason;
	if (episode_load(db, c->root, id, &e) < 0) return -1;
	if ((rc = state_do(db, c, &e, EV_REQUEUE, &a)) < 0) log_error(e.id, e.dir, "daemon.requeue", "%s", err_msg());
	episode_free(&e);
	return rc;
}

/* At start-up: what was running when the daemon stopped is queued again. */
int pipeline_requeue_running(sqlite3 *db, struct config *c)
{
	char **ids;
	size_t n = db_strings(db, &ids, "SELECT id FROM episodes WHERE state = 'running'", NULL);
	int done = 0;
	for (size_t i = 0; i < n; i++)
		if (pipeline_requeue(db, c, ids[i], "the daemon stopped while the stage ran") == 0) done++;
	db_strings_free(ids, n);
	if (done > 0)
		log_info(NULL, NULL, "daemon.requeued",
			 "%d job(s) that were running when the daemon stopped are queued again", done);
	return 0;
}
