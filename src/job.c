/*
 * job.c - job rows.  A job is one stage run for one episode; it is retried
 * in place (retry_count grows, next_attempt_at holds the deadline) until it
 * completes, fails for good, or is cancelled.  Which status follows which is
 * state.c's job table; this file writes the columns each change carries.
 */
#include "daemon.h"
#include <math.h>
#include <stdlib.h>

int job_create(sqlite3 *db, const char *episode_id, const char *stage, int max_retries, const char *input_params,
	       char out_id[37])
{
	uuid_new_ordered(out_id);
	return db_exec(db,
		       "INSERT INTO jobs (id, episode_id, stage, status, max_retries, input_params)"
		       " VALUES (?, ?, ?, 'queued', ?, ?)",
		       "sssis", out_id, episode_id, stage, max_retries, input_params ? input_params : "{}");
}

/* Called by state.c once the status changed (compare-and-set) in the same transaction. */
int job_record(sqlite3 *db, const char *id, enum job_event ev, const struct state_args *a)
{
	char now[32], at[32], *res;
	int rc;
	time_iso(time_now(), now);
	switch (ev) {
	case JOB_EV_START:
		return db_exec(db, "UPDATE jobs SET started_at = ?, provider = ?, completed_at = NULL WHERE id = ?",
			       "sss", now, a->provider, id);
	case JOB_EV_SUCCEED:
		res = a->result ? json_print(a->result) : NULL;
		rc = db_exec(db,
			     "UPDATE jobs SET completed_at = ?, error_message = NULL, result = ?,"
			     " input_hash = COALESCE(?, input_hash), cached = ? WHERE id = ?",
			     "sssis", now, res, json_str(a->result, "input_hash", NULL),
			     json_bool(a->result, "cached", 0), id);
		free(res);
		return rc;
	case JOB_EV_FAIL:
		return db_exec(db, "UPDATE jobs SET completed_at = ?, error_message = ? WHERE id = ?", "sss", now,
			       a->reason, id);
	case JOB_EV_RETRY:
		time_iso(a->retry_at, at);
		return db_exec(db,
			       "UPDATE jobs SET retry_count = retry_count + ?, next_attempt_at = ?,"
			       " error_message = ? WHERE id = ?",
			       "isss", a->count_attempt ? 1 : 0, at, a->reason, id);
	case JOB_EV_REQUEUE: return db_exec(db, "UPDATE jobs SET next_attempt_at = NULL WHERE id = ?", "s", id);
	default: /* a cancelled job keeps what it had */ return 0;
	}
}

/* Exponential backoff with jitter: a random delay in [d/2, d], d = base*2^n capped. */
double job_backoff(int retry_count, double base, double cap)
{
	double d = base * pow(2.0, retry_count > 30 ? 30 : retry_count);
	double r = (double)(rand_u64() % 1000000) / 1000000.0;
	if (d > cap) d = cap;
	return d / 2 + r * d / 2;
}
