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

/* Called by state.c in the transaction of the episode's compare-and-set:
 * the job's status goes from -> to, a compare-and-set too (no row changes,
 * sqlite3_changes() == 0, when it is no longer from), in the same statement
 * as the columns the change carries: one write of the row, not two. */
int job_record(sqlite3 *db, const char *id, const char *from, const char *to, enum job_event ev,
	       const struct state_args *a)
{
	char now[32], at[32], *res;
	int rc;
	time_iso(time_now(), now);
	switch (ev) {
	case JOB_EV_START:
		return db_exec(db,
			       "UPDATE jobs SET status = ?, started_at = ?, provider = ?, completed_at = NULL," DB_TOUCH
			       " WHERE id = ? AND status = ?",
			       "sssss", to, now, a->provider, id, from);
	case JOB_EV_SUCCEED:
		res = a->result ? json_print(a->result) : NULL;
		rc = db_exec(db,
			     "UPDATE jobs SET status = ?, completed_at = ?, error_message = NULL, result = ?,"
			     " input_hash = COALESCE(?, input_hash), cached = ?," DB_TOUCH
			     " WHERE id = ? AND status = ?",
			     "ssssiss", to, now, res, json_str(a->result, "input_hash", NULL),
			     json_bool(a->result, "cached", 0), id, from);
		free(res);
		return rc;
	case JOB_EV_FAIL:
		return db_exec(db,
			       "UPDATE jobs SET status = ?, completed_at = ?, error_message = ?," DB_TOUCH
			       " WHERE id = ? AND status = ?",
			       "sssss", to, now, a->reason, id, from);
	case JOB_EV_RETRY:
		time_iso(a->retry_at, at);
		return db_exec(db,
			       "UPDATE jobs SET status = ?, retry_count = retry_count + ?, next_attempt_at = ?,"
			       " error_message = ?," DB_TOUCH " WHERE id = ? AND status = ?",
			       "sissss", to, a->count_attempt ? 1 : 0, at, a->reason, id, from);
	case JOB_EV_REQUEUE:
		return db_exec(db,
			       "UPDATE jobs SET status = ?, next_attempt_at = NULL," DB_TOUCH
			       " WHERE id = ? AND status = ?",
			       "sss", to, id, from);
	default: /* a cancelled job keeps what it had */
		return db_exec(db, "UPDATE jobs SET status = ?," DB_TOUCH " WHERE id = ? AND status = ?", "sss", to, id,
			       from);
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
