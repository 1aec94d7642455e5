/*
 * job.c - job rows and their state machine.  A job is one stage run for one
 * episode; it is retried in place (retry_count grows, next_attempt_at holds
 * the deadline) until it completes, fails for good, or is cancelled.
 */
#include "daemon.h"
#include <math.h>
#include <string.h>

/* state x event -> state; NULL = not allowed. */
static const struct { const char *from; enum job_event ev; const char *to; } transitions[] = {
	{ "queued", JOB_EV_START, "running" },
	{ "queued", JOB_EV_CANCEL, "cancelled" },
	{ "queued", JOB_EV_FAIL, "failed" },
	{ "running", JOB_EV_SUCCEED, "completed" },
	{ "running", JOB_EV_RETRY, "queued" },
	{ "running", JOB_EV_FAIL, "failed" },
	{ "running", JOB_EV_CANCEL, "cancelled" },
	{ "running", JOB_EV_REQUEUE, "queued" },   /* daemon died while it ran */
	{ NULL, 0, NULL }
};

const char *job_transition(const char *status, enum job_event ev)
{
	for (int i = 0; transitions[i].from; i++)
		if (transitions[i].ev == ev && strcmp(transitions[i].from, status) == 0)
			return transitions[i].to;
	return NULL;
}

int job_create(sqlite3 *db, const char *episode_id, const char *stage, int max_retries,
	       const char *input_params, char out_id[37])
{
	uuid_new(out_id);
	return db_exec(db, "INSERT INTO jobs (id, episode_id, stage, status, max_retries, input_params)"
		       " VALUES (?, ?, ?, 'queued', ?, ?)", "sssis", out_id, episode_id, stage,
		       max_retries, input_params ? input_params : "{}");
}

/* Exponential backoff with jitter: a random delay in [d/2, d], d = base*2^n capped. */
double job_backoff(int retry_count, double base, double cap)
{
	double d = base * pow(2.0, retry_count > 30 ? 30 : retry_count);
	double r = (double)(rand_u64() % 1000000) / 1000000.0;
	if (d > cap) d = cap;
	return d / 2 + r * d / 2;
}
