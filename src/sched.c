/*
 * sched.c - choosing the next job.  Queued jobs whose deadline has passed are
 * ordered by episode priority (higher first), then episode age (older
 * first), so an urgent episode runs through its stages before a low one
 * starts.  Fairness: every pick passes over the other channels that had
 * runnable work; a channel passed over as many times as there are such
 * channels gets the next slot whatever its priority.  Only episodes in the
 * state machine's 'queued' state run: held ones wait for their release, and
 * a series episode's planning waits for the earlier ones' (WAITS_FOR_EARLIER).
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct skip {
	char channel[37];
	int skipped;
};
struct sched {
	struct skip *v;
	size_t n;
};

struct sched *sched_new(void)
{
	return xcalloc(1, sizeof(struct sched));
}

void sched_free(struct sched *s)
{
	if (!s) return;
	free(s->v);
	free(s);
}

static struct skip *skip_for(struct sched *s, const char *channel)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].channel, channel)) return &s->v[i];
	s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
	memset(&s->v[s->n], 0, sizeof *s->v);
	snprintf(s->v[s->n].channel, sizeof s->v[s->n].channel, "%s", channel);
	return &s->v[s->n++];
}

/* A queued planning job waits while an earlier episode of its series has
 * not finished planning, or the episode it follows has not finished its
 * metadata: context.c hands their facts on.  Failed, cancelled and
 * published episodes are not waited for. */
#define WAITS_FOR_EARLIER \
	" (j.stage = 'planning' AND EXISTS (SELECT 1 FROM episodes p WHERE p.deleted_at IS NULL" \
	" AND p.state NOT IN ('failed', 'cancelled', 'published') AND ((e.series IS NOT NULL" \
	" AND p.channel_id = e.channel_id AND p.series = e.series AND p.series_number < e.series_number)" \
	" OR p.id = e.follows_id) AND NOT EXISTS (SELECT 1 FROM jobs pj WHERE pj.episode_id = p.id" \
	" AND pj.status = 'completed' AND pj.stage = CASE WHEN p.id = e.follows_id THEN 'metadata' ELSE 'planning' END)))"

struct cand {
	struct job_ref job;
	char channel[37];
	int priority;
	char created[32];
};

/* The channel's next job: the first row of idx_episodes_queue that has a
 * due queued job, so a pick costs the same with 10 or 100,000 queued. */
static int best_of_channel(sqlite3 *db, const char *channel, const char *now, struct cand *c)
{
	sqlite3_stmt *st = db_get(db,
				  "SELECT j.id, j.episode_id, j.stage, j.retry_count, j.max_retries, e.priority,"
				  " e.created_at FROM episodes e INDEXED BY idx_episodes_queue CROSS JOIN jobs j"
				  " ON j.episode_id = e.id WHERE e.channel_id = ? AND e.state = 'queued'"
				  " AND e.ingest_done = 1 AND j.status = 'queued'"
				  " AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= ?) AND NOT" WAITS_FOR_EARLIER
				  " ORDER BY e.priority DESC, e.created_at ASC LIMIT 1",
				  "ss", channel, now);
	int found = st && sqlite3_step(st) == SQLITE_ROW;
	if (found) {
		memset(c, 0, sizeof *c);
		snprintf(c->job.id, 37, "%s", sqlite3_column_text(st, 0));
		snprintf(c->job.episode_id, 37, "%s", sqlite3_column_text(st, 1));
		snprintf(c->job.stage, 32, "%s", sqlite3_column_text(st, 2));
		c->job.retry_count = sqlite3_column_int(st, 3);
		c->job.max_retries = sqlite3_column_int(st, 4);
		c->priority = sqlite3_column_int(st, 5);
		snprintf(c->created, sizeof c->created, "%s", sqlite3_column_text(st, 6));
		snprintf(c->channel, 37, "%s", channel);
	}
	db_done(st);
	return found;
}

/* Global priority order: higher priority first, then the older episode. */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->priority != y->priority) return x->priority > y->priority ? -1 : 1;
	return strcmp(x->created, y->created);
}

static size_t best_per_channel(sqlite3 *db, struct cand **out)
{
	char now[32], **ch;
	size_t nch = db_strings(db, &ch, "SELECT id FROM channels ORDER BY id", NULL), n = 0;
	struct cand *v = xcalloc(nch + 1, sizeof *v);
	time_iso(time_now(), now);
	for (size_t i = 0; i < nch; i++)
		if (best_of_channel(db, ch[i], now, &v[n])) n++;
	db_strings_free(ch, nch);
	qsort(v, n, sizeof *v, cand_cmp);
	*out = v;
	return n;
}

int sched_pick(struct sched *s, sqlite3 *db, struct job_ref *out)
{
	struct cand *v;
	size_t n = best_per_channel(db, &v), pick = 0;
	if (n == 0) {
		free(v);
		return 0;
	}
	/* v is in global priority order; a starved channel jumps the queue. */
	for (size_t i = 0; i < n; i++)
		if (skip_for(s, v[i].channel)->skipped >= (int)n) {
			pick = i;
			break;
		}
	for (size_t i = 0; i < n; i++)
		skip_for(s, v[i].channel)->skipped = i == pick ? 0 : skip_for(s, v[i].channel)->skipped + 1;
	*out = v[pick].job;
	free(v);
	return 1;
}

double sched_next_deadline(sqlite3 *db)
{
	char now[32];
	time_iso(time_now(), now);
	return db_time(db, "SELECT MIN(next_attempt_at) FROM jobs WHERE status = 'queued' AND next_attempt_at > ?", "s",
		       now);
}

int sched_pending(sqlite3 *db)
{
	sqlite3_stmt *st = db_prep(db,
				   "SELECT COUNT(*) FROM jobs j JOIN episodes e ON e.id = j.episode_id"
				   " WHERE j.status IN ('queued', 'running') AND e.state IN ('queued', 'running')"
				   " AND NOT" WAITS_FOR_EARLIER,
				   NULL);
	int n = 0;
	if (st && sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}
