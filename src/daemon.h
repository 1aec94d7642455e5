/*
 * daemon.h - the daemon side (and the CLI): the database, the spool, the
 * pipeline, the scheduler and the commands.  The only header that includes
 * sqlite3.h; stage-child code (provider.h) must never include it.
 */
#ifndef ACOG_DAEMON_H
#define ACOG_DAEMON_H
#include "base.h"
#include <sqlite3.h>

/* ---- db.c ------------------------------------------------------------ */
extern const char schema_sql[];               /* schema.sql, compiled in */
sqlite3 *db_open(const char *root, int create); /* applies schema / migrations */
void db_close(sqlite3 *db);
int db_begin(sqlite3 *db);
int db_commit(sqlite3 *db);
void db_rollback(sqlite3 *db);
/* Prepare and bind: fmt letters s=const char* (NULL binds NULL), i=int,
 * I=int64, d=double. Returns a statement ready for sqlite3_step, or NULL. */
sqlite3_stmt *db_prep(sqlite3 *db, const char *sql, const char *fmt, ...);
int db_exec(sqlite3 *db, const char *sql, const char *fmt, ...); /* no rows */
char *db_col_str(sqlite3_stmt *st, int col);  /* malloc'd copy or NULL */
int db_sync_channels(sqlite3 *db, struct config *c);

/* ---- episode.c: episode rows ------------------------------------------ */
struct episode {
	char id[37];
	char channel[128];       /* channel slug */
	char channel_db_id[37];
	char ticket[200];
	char status[32];
	char stage[32];          /* current or last pipeline stage */
	char location[32];       /* spool folder the ticket belongs in */
	char *gate_pending;      /* gate awaiting a human, or NULL */
	char *hold_reason;
	char *review_notes;
	char *title;
	int priority;
	char created_at[32];
	char *dir;               /* absolute channels/<c>/episodes/<id> */
};
void episode_free(struct episode *e);
int episode_load(sqlite3 *db, const char *root, const char *id, struct episode *e);
/* Accepts a UUID, a unique prefix, or a ticket name. */
int episode_resolve(sqlite3 *db, const char *root, const char *ref, struct episode *e);
char *episode_dir(const char *root, const char *channel, const char *id);

/* ---- spool.c: tickets ------------------------------------------------- */
int spool_init_dirs(const char *root);
char *spool_path(const char *root, const char *dir, const char *name);
int spool_write_ticket(const char *root, const struct episode *e);
/* Put the ticket where the database says it belongs; find it wherever it is. */
int spool_sync_ticket(const char *root, const struct episode *e);
int spool_reconcile(sqlite3 *db, const char *root);
int spool_reject(const char *root, const char *name, const char *reason);

/* ---- ingest.c -------------------------------------------------------- */
/* Examine one file in spool/incoming. Returns 0 when it was handled (made an
 * episode or rejected), 1 when it is not ready yet (skip for now), -1 on an
 * internal error (file left in place, retried later). */
int ingest_file(sqlite3 *db, struct config *c, const char *name);
int ingest_scan(sqlite3 *db, struct config *c);
int ingest_finish_pending(sqlite3 *db, struct config *c);

/* ---- job.c: job rows and their state machine --------------------------- */
enum job_event { JOB_EV_START, JOB_EV_SUCCEED, JOB_EV_RETRY, JOB_EV_FAIL,
		 JOB_EV_CANCEL, JOB_EV_REQUEUE };
/* Returns the new status for (status, event) or NULL if not allowed. */
const char *job_transition(const char *status, enum job_event ev);
int job_create(sqlite3 *db, const char *episode_id, const char *stage,
	       int max_retries, const char *input_params, char out_id[37]);
double job_backoff(int retry_count, double base, double cap); /* with jitter */

/* ---- pipeline.c: moving episodes between stages (short transactions) --- */
struct job_ref { char id[37]; char episode_id[37]; char stage[32]; int retry_count, max_retries; };
/* Inside an open transaction: put the episode at stage s (creating its job, or
 * waiting at a gate, or skipping a gate the channel turned off). */
int pipeline_enter(sqlite3 *db, struct config *c, struct episode *e, const struct stage_def *s);
int pipeline_start_job(sqlite3 *db, const struct job_ref *j, const char *provider);
int pipeline_complete(sqlite3 *db, struct config *c, const struct job_ref *j, const cJSON *result);
int pipeline_retry_or_fail(sqlite3 *db, struct config *c, const struct job_ref *j,
			   const char *error, double retry_after, int count_attempt);
int pipeline_fail(sqlite3 *db, struct config *c, const struct job_ref *j, const char *error);
int pipeline_record_costs(sqlite3 *db, struct config *c, const struct job_ref *j, const cJSON *costs);
int pipeline_requeue_running(sqlite3 *db);
int pipeline_audit(sqlite3 *db, const char *episode_id, const char *action, const char *actor_type,
		   const char *actor, const cJSON *old_values, const cJSON *new_values);
int pipeline_sync(sqlite3 *db, struct config *c, const char *episode_id);

/* ---- review.c: approve / reject / retry / cancel (CLI and dropped files) */
int review_approve(sqlite3 *db, struct config *c, const char *ref, const char *by, const char *notes);
int review_reject(sqlite3 *db, struct config *c, const char *ref, const char *by,
		  const char *reason, const char *to_stage);
int review_retry(sqlite3 *db, struct config *c, const char *ref, const char *from_stage);
int review_cancel(sqlite3 *db, struct config *c, const char *ref);
int review_file(sqlite3 *db, struct config *c, const char *gate_dir, const char *name);
int review_scan(sqlite3 *db, struct config *c);

/* ---- schedule.c: the publishing slot, assigned at approval ------------- */
/* Sets episodes.scheduled_at and schedule.json (idea publish_at, else the
 * channel cadence's next free slot); keeps a slot already assigned.  Call
 * inside the approval transaction. */
int schedule_assign(sqlite3 *db, struct config *c, const char *episode_id);

/* ---- bundle_import.c: a verified bundle queued at this machine's upload stage */
/* 0 = imported (msg says so), 1 = already known here (msg says how), -1 = error. */
int bundle_import(sqlite3 *db, struct config *c, const char *bundle, const cJSON *m, const char *manifest_sha,
		  char *msg, size_t n);

/* ---- sched.c: which queued job runs next ------------------------------ */
struct sched;
struct sched *sched_new(void);
void sched_free(struct sched *s);
/* Picks the next runnable job: higher priority first, then older; a channel
 * passed over too often gets the next slot so none can starve. 1 = found. */
int sched_pick(struct sched *s, sqlite3 *db, struct job_ref *out);
double sched_next_deadline(sqlite3 *db);    /* earliest future retry, 0 if none */
int sched_pending(sqlite3 *db);             /* queued jobs, any deadline */

/* ---- worker.c: a stage run in a forked, isolated child ------------------ */
struct run {
	pid_t pid;
	int fd;                   /* the child's report pipe */
	struct job_ref job;
	double deadline;          /* monotonic */
	int timeout_s;
	int timed_out;
	int killed_for_cancel;
	struct sbuf buf;
};
int worker_start(sqlite3 *db, struct config *c, const struct job_ref *j, struct run *r);
void worker_read(struct run *r);          /* drain what the child has sent */
/* Called once the child was reaped; records the outcome in the database. */
void worker_finish(sqlite3 *db, struct config *c, struct run *r, int wstatus);

/* ---- daemon.c ----------------------------------------------------------- */
struct daemon_opts { int drain; int jobs; };
int daemon_run(const char *root, const struct daemon_opts *o);
int daemon_lock(const char *root, int *fd_out);   /* 1 = another daemon runs */
void daemon_wake(const char *root);               /* tell a running daemon to look again */

/* ---- cmd_*.c: the commands; each returns a sysexits code --------------- */
struct cli { const char *root; int argc; char **argv; };
const char *cli_flag(struct cli *a, const char *name);   /* --name VALUE */
int cli_has(struct cli *a, const char *name);             /* --name */
const char *cli_arg(struct cli *a, int i);                /* i-th non-flag */
int cmd_init(struct cli *a);
int cmd_run(struct cli *a);
int cmd_status(struct cli *a);
int cmd_show(struct cli *a);
int cmd_approve(struct cli *a);
int cmd_reject(struct cli *a);
int cmd_retry(struct cli *a);
int cmd_cancel(struct cli *a);
int cmd_costs(struct cli *a);
int cmd_doctor(struct cli *a);
int cmd_keygen(struct cli *a);
int cmd_upload(struct cli *a);
int cmd_auth(struct cli *a);             /* cmd_auth.c */
extern const char demo_channel_yaml[];
extern const char demo_idea_json[];

/* ---- cost.c (daemon side): spend and budget state ------------------------ */
double cost_spent_today(sqlite3 *db, const char *channel_db_id);
/* Checks the channel's budget_daily_usd: 0 ok, 1 warn (80%), 2 hold (100%). */
int cost_budget_state(sqlite3 *db, const struct channel *ch, double *spent, double *budget);
void cost_next_day(char out[32]);           /* next midnight UTC, ISO */

/* ---- budget.c: holds for channels over their daily budget (daemon) ---- */
int budget_gate(sqlite3 *db, struct config *c, const struct job_ref *j);  /* 1 = held */
void budget_release(sqlite3 *db, struct config *c);
double budget_next_release(sqlite3 *db);     /* wall-clock time, 0 = none */

#endif
