/*
 * pipeline.c - what happens to an episode when a stage starts, completes,
 * fails or must be retried.  Each function is one short transaction that
 * never spans a child process or a network call; the ticket is moved after
 * the commit (spool_sync_ticket), and start-up reconciliation repairs a crash
 * between the two.  Updates are compare-and-set on the job's status, so a
 * result that arrives for a cancelled job changes nothing.
 */
#include "daemon.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int pipeline_audit(sqlite3 *db, const char *episode_id, const char *action, const char *actor_type,
		   const char *actor, const cJSON *old_values, const cJSON *new_values)
{
	char id[37], *o = old_values ? json_print(old_values) : NULL, *n = new_values ? json_print(new_values) : NULL;
	int rc;
	uuid_new(id);
	rc = db_exec(db, "INSERT INTO audit_logs (id, entity_type, entity_id, action, actor_type, actor_id,"
		     " old_values, new_values) VALUES (?, 'episode', ?, ?, ?, ?, ?, ?)", "sssssss",
		     id, episode_id, action, actor_type, actor, o, n);
	free(o);
	free(n);
	return rc;
}

static int set_location(sqlite3 *db, struct episode *e, const char *status, const char *stage,
			const char *location, const char *gate)
{
	snprintf(e->status, sizeof e->status, "%s", status);
	snprintf(e->stage, sizeof e->stage, "%s", stage);
	snprintf(e->location, sizeof e->location, "%s", location);
	free(e->gate_pending);
	e->gate_pending = gate ? xstrdup(gate) : NULL;
	return db_exec(db, "UPDATE episodes SET status = ?, stage = ?, location = ?, gate_pending = ?,"
		       " hold_reason = NULL, hold_until = NULL WHERE id = ?", "sssss",
		       status, stage, location, gate, e->id);
}

static int publish(sqlite3 *db, struct episode *e)
{
	char *p = xasprintf("%s/publish.json", e->dir);
	cJSON *pub = json_load_file(p, 1 << 20);
	char now[32];
	int rc;
	free(p);
	time_iso(time_now(), now);
	rc = set_location(db, e, "published", "upload", "published", NULL);
	if (rc == 0)
		rc = db_exec(db, "UPDATE episodes SET published_at = ?, published_url = ? WHERE id = ?", "sss",
			     now, json_str(pub, "url", NULL), e->id);
	cJSON_Delete(pub);
	return rc;
}

int pipeline_enter(sqlite3 *db, struct config *c, struct episode *e, const struct stage_def *s)
{
	struct channel *ch = config_channel(c, e->channel);
	char job[37];
	if (!s) return publish(db, e);
	if (!ch) return err_set("channel %s is not loaded; fix channels/%s/channel.yaml", e->channel, e->channel);
	if (s->kind == STAGE_GATE) {
		if (!config_gate(ch, s->name)) return pipeline_enter(db, c, e, stage_next(s));
		return set_location(db, e, s->ep_status, s->name, s->name, s->name);
	}
	if (set_location(db, e, s->ep_status, s->name, s->name, NULL) < 0) return -1;
	if (db_exec(db, "UPDATE jobs SET status = 'cancelled' WHERE episode_id = ? AND status = 'queued'",
		    "s", e->id) < 0)
		return -1;
	/* A new job of the stage starts with a clean provider state unless the
	 * stage's state belongs to the whole episode (an upload's video id). */
	if (s->scope == SCOPE_JOB &&
	    db_exec(db, "DELETE FROM provider_state WHERE episode_id = ? AND stage = ?", "ss", e->id, s->name) < 0)
		return -1;
	return job_create(db, e->id, s->name, config_max_retries(c, ch), NULL, job);
}

int pipeline_start_job(sqlite3 *db, const struct job_ref *j, const char *provider)
{
	char now[32];
	int changed;
	time_iso(time_now(), now);
	if (db_exec(db, "UPDATE jobs SET status = 'running', started_at = ?, provider = ?, completed_at = NULL"
		    " WHERE id = ? AND status = 'queued'", "sss", now, provider, j->id) < 0)
		return -1;
	changed = sqlite3_changes(db);
	return changed == 1 ? 0 : err_set("job %s is no longer queued", j->id);
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
	rc = db_exec(db, "UPDATE assets SET deleted_at = ?, is_primary = 0 WHERE episode_id = ? AND deleted_at IS NULL"
		     " AND (uri = ? OR (? AND type = ? AND is_primary = 1))", "sssis", now, e->id, rel, primary, type);
	uuid_new(id);
	if (rc == 0)
		rc = db_exec(db, "INSERT INTO assets (id, episode_id, type, name, uri, storage_key, provider, mime_type,"
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
	cJSON_ArrayForEach(o, costs) {
		char id[37];
		double usd = json_num(o, "cost_usd", 0);
		uuid_new(id);
		if (db_exec(db, "INSERT INTO cost_entries (id, episode_id, channel_id, provider, operation_type,"
			    " cost_cents, units_consumed, unit_type, provider_ref, cost_usd, job_id)"
			    " VALUES (?,?,?,?,?,?,?,?,?,?,?)", "sssssidssds", id, e->id, e->channel_db_id,
			    json_str(o, "provider", "?"), json_str(o, "operation", j->stage), (int)lround(usd * 100),
			    json_num(o, "units", 0), json_str(o, "unit_type", NULL), json_str(o, "provider_ref", NULL),
			    usd, j->id) < 0)
			return -1;
		total += usd;
	}
	return db_exec(db, "UPDATE jobs SET cost_usd = COALESCE(cost_usd, 0) + ? WHERE id = ?", "ds", total, j->id);
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
	if (rc == 0 && record_costs(db, &e, j, costs) == 0) rc = db_commit(db);
	else { db_rollback(db); rc = -1; }
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
	st = db_prep(db, "SELECT COALESCE(MAX(version_number), 0) FROM episode_versions WHERE episode_id = ?"
		     " AND version_type = ?", "ss", e->id, type);
	if (st && sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	uuid_new(id);
	rc = db_exec(db, "INSERT INTO episode_versions (id, episode_id, version_type, version_number, content,"
		     " changed_by, change_reason) VALUES (?,?,?,?,?,?,?)", "sssisss", id, e->id, type, n + 1,
		     content, e->review_notes ? "reviewer" : "system",
		     e->review_notes ? e->review_notes : "generated");
	if (rc == 0 && strcmp(type, "script") == 0)
		rc = db_exec(db, "UPDATE episodes SET script = ? WHERE id = ?", "ss", text, e->id);
	else if (rc == 0 && strcmp(type, "plan") == 0)
		rc = db_exec(db, "UPDATE episodes SET plan = ? WHERE id = ?", "ss", content, e->id);
	else if (rc == 0)
		rc = db_exec(db, "UPDATE episodes SET metadata = ?, title = COALESCE(?, title) WHERE id = ?", "sss",
			     content, json_str(j, "final_title", NULL), e->id);
	cJSON_Delete(j);
	free(content);
	free(text);
	return rc;
}

static int record_outputs(sqlite3 *db, struct episode *e, const struct job_ref *j,
			  const cJSON *result)
{
	const cJSON *o;
	const char *prov = json_str(result, "provider", NULL);
	cJSON_ArrayForEach(o, json_get(result, "outputs")) {
		const char *type = json_str(o, "type", "");
		if (record_asset(db, e, o, prov) < 0) return -1;
		if ((!strcmp(type, "plan") || !strcmp(type, "script") || !strcmp(type, "metadata")) &&
		    record_version(db, e, type, json_str(o, "path", "")) < 0)
			return -1;
	}
	return record_costs(db, e, j, json_get(result, "costs"));
}

static int finish_job(sqlite3 *db, const struct job_ref *j, const char *status, const char *error,
		      const cJSON *result)
{
	char now[32], *res = result ? json_print(result) : NULL;
	int rc;
	time_iso(time_now(), now);
	rc = db_exec(db, "UPDATE jobs SET status = ?, completed_at = ?, error_message = ?, result = ?,"
		     " input_hash = COALESCE(?, input_hash), cached = ? WHERE id = ? AND status = 'running'", "sssssis",
		     status, now, error, res, json_str(result, "input_hash", NULL), json_bool(result, "cached", 0), j->id);
	free(res);
	if (rc == 0 && sqlite3_changes(db) != 1) return err_set("job %s was cancelled meanwhile", j->id);
	return rc;
}

int pipeline_sync(sqlite3 *db, struct config *c, const char *episode_id)
{
	struct episode e;
	int rc;
	if (episode_load(db, c->root, episode_id, &e) < 0) return -1;
	rc = spool_sync_ticket(c->root, &e);
	episode_free(&e);
	return rc;
}

int pipeline_complete(sqlite3 *db, struct config *c, const struct job_ref *j, const cJSON *result)
{
	struct episode e;
	const struct stage_def *s = stage_find(j->stage);
	struct channel *ch;
	int rc = -1;

	if (episode_load(db, c->root, j->episode_id, &e) < 0) return -1;
	ch = config_channel(c, e.channel);
	if (db_begin(db) < 0) goto out;
	if (finish_job(db, j, "completed", NULL, result) < 0 || record_outputs(db, &e, j, result) < 0)
		goto fail;
	if (!strcmp(j->stage, "script_review") && ch && config_gate(ch, "script_review"))
		rc = set_location(db, &e, s->ep_status, s->name, s->name, "script_review");
	else
		rc = pipeline_enter(db, c, &e, stage_next(s));
	if (rc < 0 || db_exec(db, "UPDATE episodes SET last_error = NULL WHERE id = ?", "s", e.id) < 0 ||
	    db_commit(db) < 0)
		goto fail;
	log_info(e.id, e.dir, "stage.completed", "%s completed; next: %s%s", j->stage, e.location,
		 e.gate_pending ? " (waiting for approval)" : "");
	rc = spool_sync_ticket(c->root, &e);
	goto out;
fail:
	rc = -1;
	db_rollback(db);
out:
	episode_free(&e);
	return rc;
}

static void write_failed_note(struct config *c, const struct episode *e, const char *error)
{
	char *name = xasprintf("%s.error", e->ticket), *p = spool_path(c->root, "failed", name);
	char *text = xasprintf("episode %s (%s) failed at stage %s:\n%s\n\nAfter fixing the cause, run:\n"
			       "  acog-batch retry %s            # re-run %s\n"
			       "  acog-batch retry %s --from STAGE\n",
			       e->id, e->title ? e->title : "", e->stage, error, e->ticket, e->stage, e->ticket);
	if (fsio_write_atomic_str(p, text) < 0) log_error(e->id, e->dir, "spool.error_file", "%s", err_msg());
	free(text);
	free(p);
	free(name);
}

int pipeline_fail(sqlite3 *db, struct config *c, const struct job_ref *j, const char *error)
{
	struct episode e;
	int rc = -1;
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return -1;
	if (db_begin(db) < 0) goto out;
	if (finish_job(db, j, "failed", error, NULL) < 0 ||
	    set_location(db, &e, "failed", j->stage, "failed", NULL) < 0 ||
	    db_exec(db, "UPDATE episodes SET last_error = ? WHERE id = ?", "ss", error, e.id) < 0 ||
	    db_commit(db) < 0) {
		db_rollback(db);
		goto out;
	}
	log_error(e.id, e.dir, "stage.failed", "%s failed for good: %s", j->stage, error);
	alert_send(c, "episode_failed", e.id, "episode %s (%s) failed at %s: %s", e.ticket,
		   e.title ? e.title : "", j->stage, error);
	write_failed_note(c, &e, error);
	rc = spool_sync_ticket(c->root, &e);
out:
	episode_free(&e);
	return rc;
}

int pipeline_retry_or_fail(sqlite3 *db, struct config *c, const struct job_ref *j,
			   const char *error, double retry_after, int count_attempt)
{
	struct episode e;
	struct channel *ch;
	double delay, at;
	char when[32];
	int rc = -1;

	if (count_attempt && j->retry_count >= j->max_retries)
		return pipeline_fail(db, c, j, error);
	if (episode_load(db, c->root, j->episode_id, &e) < 0) return -1;
	ch = config_channel(c, e.channel);
	/* A pending async job is polled when the provider says; a failure backs off. */
	delay = count_attempt ? job_backoff(j->retry_count, config_retry_base(c, ch), config_retry_max(c, ch)) : 0;
	if (retry_after > delay) delay = retry_after;
	at = time_now() + delay;
	time_iso(at, when);
	if (db_begin(db) < 0) goto out;
	if (db_exec(db, "UPDATE jobs SET status = 'queued', retry_count = retry_count + ?, next_attempt_at = ?,"
		    " error_message = ? WHERE id = ? AND status = 'running'", "isss",
		    count_attempt ? 1 : 0, when, error, j->id) < 0 ||
	    sqlite3_changes(db) != 1 ||
	    db_exec(db, "UPDATE episodes SET last_error = ?, retry_count = retry_count + ? WHERE id = ?", "sis",
		    error, count_attempt ? 1 : 0, e.id) < 0 ||
	    db_commit(db) < 0) {
		db_rollback(db);
		goto out;
	}
	log_warn(e.id, e.dir, "stage.retry", "%s will be retried at %s (attempt %d of %d): %s", j->stage, when,
		 j->retry_count + 2, j->max_retries + 1, error);
	{	/* the ticket's mtime shows the schedule, as in Postfix's deferred queue */
		char *p = spool_path(c->root, e.location, e.ticket);
		fsio_set_mtime(p, at);
		free(p);
	}
	rc = 0;
out:
	episode_free(&e);
	return rc;
}

int pipeline_requeue_running(sqlite3 *db)
{
	if (db_exec(db, "UPDATE jobs SET status = 'queued', next_attempt_at = NULL WHERE status = 'running'", NULL) < 0)
		return -1;
	if (sqlite3_changes(db) > 0)
		log_info(NULL, NULL, "daemon.requeued", "%d job(s) that were running when the daemon stopped are queued again",
			 sqlite3_changes(db));
	return 0;
}
