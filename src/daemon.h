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
extern const char schema_sql[];                          /* schema.sql, compiled in */
MUST_USE sqlite3 *db_open(const char *root, int create); /* applies schema / migrations */
void db_close(sqlite3 *db);
/* The daemon's connection: WAL checkpoints move to a thread, off the commit path. */
void db_checkpoint_aside(sqlite3 *db, const char *root);
void db_checkpoint_hold(int hold); /* 1 while an idea waits for its ticket */
MUST_USE int db_begin(sqlite3 *db);
MUST_USE int db_commit(sqlite3 *db);
void db_rollback(sqlite3 *db);
/* Prepare and bind: fmt letters s=const char* (NULL binds NULL), i=int,
 * I=int64, d=double. Returns a statement ready for sqlite3_step, or NULL. */
MUST_USE sqlite3_stmt *db_stmt(sqlite3 *db, int cache, const char *sql, const char *fmt, ...);
#define db_prep(db, sql, ...) db_stmt((db), 0, (sql), __VA_ARGS__)
/* The same from the statement cache (sql must be a string literal): give it
 * back with db_done, never sqlite3_finalize.  For statements run per event. */
#define db_get(db, sql, ...) db_stmt((db), 1, (sql), __VA_ARGS__)
void db_done(sqlite3_stmt *st);
/* Part of every UPDATE of episodes and jobs, which have no updated_at
 * trigger (schema.sql): "UPDATE jobs SET status = ?," DB_TOUCH " WHERE ...". */
#define DB_TOUCH " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
MUST_USE int db_exec(sqlite3 *db, const char *sql, const char *fmt, ...); /* no rows */
MUST_USE char *db_col_str(sqlite3_stmt *st, int col);                     /* malloc'd copy or NULL */
/* The first column of the first row: malloc'd text (NULL when none); as an ISO-8601 time (0 when none). */
MUST_USE char *db_first(sqlite3 *db, const char *sql, const char *fmt, ...);
MUST_USE double db_time(sqlite3 *db, const char *sql, const char *fmt, ...);
/* The first column of every row, collected before the caller changes rows. */
MUST_USE size_t db_strings(sqlite3 *db, char ***out, const char *sql, const char *fmt, ...);
void db_strings_free(char **v, size_t n);
MUST_USE int db_sync_channels(sqlite3 *db, struct config *c);

/* ---- episode.c: episode rows ------------------------------------------ */
struct episode {
	char id[37];
	char channel[128]; /* channel slug */
	char channel_db_id[37];
	char ticket[200];
	char status[32];
	char stage[32];     /* current or last pipeline stage */
	char location[32];  /* spool folder the ticket belongs in */
	char state[16];     /* state.c's name for where it stands (queued, held, ...) */
	char *gate_pending; /* gate awaiting a human, or NULL */
	char *hold_kind;    /* held or cancelled: the kind of hold (state.c) */
	char *hold_reason;
	char *hold_until; /* ISO; NULL = until a person acts */
	char *last_error;
	char *review_notes;
	char *title;
	int priority;
	char created_at[32];
	char *dir; /* absolute channels/<c>/episodes/<id> */
};
void episode_free(struct episode *e);
MUST_USE int episode_load(sqlite3 *db, const char *root, const char *id, struct episode *e);
/* Accepts a UUID, a unique prefix, or a ticket name. */
MUST_USE int episode_resolve(sqlite3 *db, const char *root, const char *ref, struct episode *e);
MUST_USE char *episode_dir(const char *root, const char *channel, const char *id);

/* ---- spool.c: tickets ------------------------------------------------- */
MUST_USE int spool_init_dirs(const char *root);
MUST_USE char *spool_path(const char *root, const char *dir, const char *name);
MUST_USE int spool_write_ticket(const char *root, const struct episode *e);
/* The first ticket of an episode just born: written without a search. */
MUST_USE int spool_write_new_ticket(const char *root, const struct episode *e);
/* Put the ticket where the database says it belongs; find it wherever it is. */
MUST_USE int spool_sync_ticket(const char *root, const struct episode *e);
/* The note beside a ticket in held/ (<ticket>.reason) or failed/ (<ticket>.error). */
MUST_USE int spool_write_note(const char *root, const struct episode *e);
MUST_USE int spool_reconcile(sqlite3 *db, const char *root);
MUST_USE int spool_mark_clean(sqlite3 *db); /* at a clean stop: the next start reconciles less */
MUST_USE int spool_reject(const char *root, const char *name, const char *reason);
MUST_USE int spool_scan(sqlite3 *db, struct config *c, const char *dir, int (*wanted)(const char *name),
			int (*take)(sqlite3 *db, struct config *c, const char *name));
MUST_USE int spool_keep(const char *root, const char *src, const char *dir); /* into spool/<dir>/, a free name */

/* ---- ingest.c -------------------------------------------------------- */
/* Examine one file in spool/incoming. Returns 0 when it was handled (made an
 * episode or rejected), 1 when it is not ready yet (skip for now), -1 on an
 * internal error (file left in place, retried later). */
MUST_USE int ingest_file(sqlite3 *db, struct config *c, const char *name);
/* Group commit: up to INGEST_BATCH ideas per transaction and per sync. */
#define INGEST_BATCH 256
MUST_USE int ingest_batch(sqlite3 *db, struct config *c, char **names, int n); /* how many failed */
MUST_USE int ingest_scan(sqlite3 *db, struct config *c);
/* repurpose.c: idea_source repurpose (from: EPISODE).  check: validates from
 * (-1 + err_set) and sets *start when the idea is one; copy: brings the
 * source's paid work into the new episode's folder (repeatable). */
MUST_USE int repurpose_check(sqlite3 *db, struct config *c, const struct channel *ch, const cJSON *idea,
			     const struct stage_def **start);
MUST_USE int repurpose_copy(sqlite3 *db, struct config *c, const struct episode *e, const char *idea_text);

/* ---- context.c: series and follow-up facts for planning (context.json) -- */
MUST_USE int context_write(sqlite3 *db, const char *root, const char *episode_id, const char *episode_dir);

/* ---- pulse.c: trend events in spool/pulse/ become ideas by channel rules - */
MUST_USE int pulse_file(sqlite3 *db, struct config *c, const char *name);
MUST_USE int pulse_scan(sqlite3 *db, struct config *c);
MUST_USE int ingest_finish_pending(sqlite3 *db, struct config *c);

/* ---- job.c: job rows ---------------------------------------------------- */
/* A job is one stage run; state.c decides its transitions, job.c writes them. */
enum job_event { JOB_EV_NONE, JOB_EV_START, JOB_EV_SUCCEED, JOB_EV_RETRY, JOB_EV_FAIL, JOB_EV_CANCEL, JOB_EV_REQUEUE };
struct job_ref {
	char id[37];
	char episode_id[37];
	char stage[32];
	int retry_count, max_retries;
};
struct state_args;
MUST_USE int job_create(sqlite3 *db, const char *episode_id, const char *stage, int max_retries,
			const char *input_params, char out_id[37]);
/* The columns an event changes besides status (started_at, result, deadline...). */
MUST_USE int job_record(sqlite3 *db, const char *job_id, const char *from, const char *to, enum job_event ev,
			const struct state_args *a);
MUST_USE double job_backoff(int retry_count, double base, double cap); /* with jitter */

/* ---- state.c: the one state machine for episodes and their jobs -------- */
/* Every change of an episode's state (and of its job's) is one row of a
 * state x event table, applied by state_apply inside the caller's short
 * transaction with a compare-and-set update and an audit row; the files and
 * alerts it implies (ticket move, held/<ticket>.reason, failed/<ticket>.error,
 * alert) are done after the commit by state_after. */
enum ep_state { ST_NEW, ST_QUEUED, ST_RUNNING, ST_AWAITING, ST_HELD, ST_FAILED, ST_CANCELLED, ST_PUBLISHED, ST_COUNT };
enum ep_event {
	EV_INGEST,
	EV_START,
	EV_DONE,
	EV_DONE_GATE,
	EV_DONE_LAST,
	EV_DEFER,
	EV_FAIL,
	EV_HOLD,
	EV_RELEASE,
	EV_APPROVE,
	EV_APPROVE_GATE,
	EV_APPROVE_LAST,
	EV_REJECT,
	EV_REWIND,
	EV_RESUME,
	EV_CANCEL,
	EV_REQUEUE,
	EV_PAUSE,   /* `pause`: a user hold that keeps the job and every file */
	EV_UNPAUSE, /* `resume`: the paused job goes on */
	EV_RESTORE, /* `versions --restore`: re-run from the stage after the version's */
	EV_COUNT
};
/* Side effects of a transition.  FX_NEWJOB is done inside the transaction,
 * the others after the commit. */
enum { FX_AUDIT = 1, FX_TICKET = 2, FX_REASON = 4, FX_ERROR = 8, FX_ALERT = 16, FX_MTIME = 32, FX_NEWJOB = 64 };
struct state_rule {
	enum ep_state from;
	enum ep_event ev;
	enum ep_state to;
	enum job_event job; /* what happens to the episode's active job */
	unsigned fx;
};
extern const struct state_rule state_rules[];
extern const size_t state_rule_count;
MUST_USE const struct state_rule *state_rule(enum ep_state from, enum ep_event ev); /* NULL = refused */
MUST_USE const char *job_transition(const char *status, enum job_event ev);         /* NULL = refused */
MUST_USE const char *state_name(enum ep_state s);
MUST_USE int state_parse(const char *name);              /* -1 when unknown */
const char *state_label(const char *state);              /* for `status`: awaiting-approval, ... */
MUST_USE const char *state_event_name(enum ep_event ev); /* the audit row's action */
MUST_USE int state_hold_kind_ok(const char *kind);       /* a kind the hold_kind column accepts */
MUST_USE int state_hold_paid_only(const char *kind);     /* a channel hold of this kind spares free stages */

/* Who acts: actor_type is STATE_DAEMON, STATE_USER (a CLI command, actor =
 * the user's name) or STATE_FILE (a decision file, actor = its reviewer). */
#define STATE_DAEMON "daemon"
#define STATE_USER "user"
#define STATE_FILE "decision_file"
struct state_args {
	const char *actor_type, *actor;
	const char *reason;            /* why: audit row, hold reason, error */
	const struct stage_def *stage; /* where an entering event goes; NULL = stays */
	const char *gate;              /* *_GATE events: the gate that waits */
	const char *hold_kind;         /* EV_HOLD (cancel and reject have their own) */
	double hold_until;             /* EV_HOLD: wall clock, 0 = until a person acts */
	const char *review_notes;      /* reject: handed to the re-run */
	const struct job_ref *job;     /* the daemon's job; NULL = the episode's active job */
	const char *provider;          /* EV_START */
	const cJSON *result;           /* EV_DONE*: the job's result */
	double retry_at;               /* EV_DEFER: when the job may run again */
	int count_attempt;             /* EV_DEFER: 1 = a failed attempt, 0 = still waiting */
	const cJSON *extra;            /* more for the audit row's new_values */
};
/* Inside an open transaction; *fx gets what state_after must do. */
MUST_USE int state_apply(sqlite3 *db, struct config *c, struct episode *e, enum ep_event ev, const struct state_args *a,
			 unsigned *fx);
void state_after(struct config *c, const struct episode *e, unsigned fx, const struct state_args *a);
/* Refuses with the table's reason when ev is not allowed in e's state. */
MUST_USE int state_check(const struct episode *e, enum ep_event ev);
/* One audit_logs row (action, who from a, old and new values) in the caller's transaction. */
MUST_USE int state_audit(sqlite3 *db, const struct episode *e, const char *action, const struct state_args *a,
			 const cJSON *old, const cJSON *new);
/* One transaction around state_apply, then state_after. */
MUST_USE int state_born(sqlite3 *db, struct config *c, const char *id, const struct state_args *a);
MUST_USE int state_do(sqlite3 *db, struct config *c, struct episode *e, enum ep_event ev, const struct state_args *a);
/* Lifts a channel-wide hold (a stage, or "*") of that kind and releases the
 * channel's episodes it held; actor "daemon" or a user's name.  The caller
 * wakes a running daemon (daemon_wake). */
MUST_USE int state_release_channel(sqlite3 *db, struct config *c, const char *channel, const char *stage,
				   const char *kind, const char *actor);

/* ---- pipeline.c: what a stage's outcome does to its episode ------------ */
/* Where an episode arrives when it enters stage s (NULL = past the last):
 * the stage's queue, a gate that is on, or the end; off gates are skipped.
 * Sets a->stage and a->gate. */
enum pipeline_arrival { ARRIVE_WORK, ARRIVE_GATE, ARRIVE_END };
MUST_USE enum pipeline_arrival pipeline_arrive(const struct channel *ch, const struct stage_def *s,
					       struct state_args *a);
MUST_USE int pipeline_start_job(sqlite3 *db, struct config *c, const struct job_ref *j, const char *provider);
MUST_USE int pipeline_complete(sqlite3 *db, struct config *c, const struct job_ref *j, const cJSON *result);
MUST_USE int pipeline_retry_or_fail(sqlite3 *db, struct config *c, const struct job_ref *j, const char *error,
				    double retry_after, int count_attempt);
MUST_USE int pipeline_fail(sqlite3 *db, struct config *c, const struct job_ref *j, const char *error);
/* STAGE_HOLD: the episode is held; channel_wide holds the stage for the whole channel. */
MUST_USE int pipeline_hold(sqlite3 *db, struct config *c, const struct job_ref *j, const char *kind, double until,
			   int channel_wide, const char *reason);
MUST_USE int pipeline_record_costs(sqlite3 *db, struct config *c, const struct job_ref *j, const cJSON *costs);
MUST_USE int pipeline_requeue_running(sqlite3 *db, struct config *c);
int pipeline_requeue(sqlite3 *db, struct config *c, const char *id, const char *reason);

/* ---- review.c: approve / reject / retry / cancel (CLI and dropped files) */
/* Each is one event of state.c; the CLI ones are audited as the user. */
MUST_USE int review_approve(sqlite3 *db, struct config *c, const char *ref, const char *by, const char *notes);
MUST_USE int review_reject(sqlite3 *db, struct config *c, const char *ref, const char *by, const char *reason,
			   const char *to_stage);
MUST_USE int review_retry(sqlite3 *db, struct config *c, const char *ref, const char *from_stage);
MUST_USE int review_cancel(sqlite3 *db, struct config *c, const char *ref);
MUST_USE int review_file(sqlite3 *db, struct config *c, const char *gate_dir, const char *name);
MUST_USE int review_scan(sqlite3 *db, struct config *c);

/* ---- manage.c: edit, pause, resume, restore (each audited) -------------- */
struct manage_edit {
	int has_priority, priority;
	const char *publish_at; /* ISO-8601 UTC, or NULL */
	const char *title;      /* or NULL */
};
struct manage_version {
	char type[16]; /* plan, script, metadata */
	int number;
	char *content; /* episode_versions.content (malloc'd) */
};
MUST_USE int manage_edit(sqlite3 *db, struct config *c, const char *ref, const struct manage_edit *ed);
MUST_USE int manage_pause(sqlite3 *db, struct config *c, const char *ref);
MUST_USE int manage_resume(sqlite3 *db, struct config *c, const char *ref);
/* spec: "TYPE:N", or "N" when one type has a version N. */
MUST_USE int manage_version_get(sqlite3 *db, const char *episode_id, const char *spec, struct manage_version *v);
MUST_USE char *manage_version_text(const struct manage_version *v); /* the file's text (malloc'd) */
/* Makes the version current (file, column, a new version row) and re-runs the stages after it. */
MUST_USE int manage_restore(sqlite3 *db, struct config *c, const char *ref, const char *spec);
/* diff.c: a unified diff (LCS of lines, 3 lines of context) appended to out. */
MUST_USE int diff_unified(const char *a_name, const char *a_text, const char *b_name, const char *b_text,
			  struct sbuf *out);

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
MUST_USE struct sched *sched_new(void);
void sched_free(struct sched *s);
/* Picks the next runnable job: higher priority first, then older; a channel
 * passed over too often gets the next slot so none can starve. 1 = found. */
MUST_USE int sched_pick(struct sched *s, sqlite3 *db, struct job_ref *out);
MUST_USE double sched_next_deadline(sqlite3 *db); /* earliest future retry, 0 if none */
MUST_USE int sched_pending(sqlite3 *db);          /* queued jobs, any deadline */

/* ---- worker.c: a stage run in a forked, isolated child ------------------ */
struct run {
	pid_t pid;
	int fd; /* the child's report pipe */
	struct job_ref job;
	double deadline; /* monotonic */
	int timeout_s;
	int timed_out;
	int killed_for_cancel;
	int killed_for_stop; /* by a second stop request: requeued, no attempt counted */
	struct sbuf buf;
};
MUST_USE int worker_start(sqlite3 *db, struct config *c, const struct job_ref *j, struct run *r);
void worker_read(struct run *r); /* drain what the child has sent */
/* Called once the child was reaped; records the outcome in the database. */
int worker_finish(sqlite3 *db, struct config *c, struct run *r, int wstatus); /* -1: not recorded */

/* ---- metrics.c: the Prometheus text format -------------------------------- */
void metrics_text(sqlite3 *db, const struct config *c, struct sbuf *b);
MUST_USE char *metrics_path(const struct config *c); /* acog.yaml metrics_file, or NULL */
/* Writes metrics_file through the durable commit when the text differs from *last. */
MUST_USE int metrics_write(sqlite3 *db, const struct config *c, char **last);

/* ---- notify.c: systemd's notify protocol over $NOTIFY_SOCKET --------------- */
void notify_send(const char *msg);                     /* READY=1, STOPPING=1 ... */
void notify_status(int running, int queued, int held); /* sent only when it changed */

/* ---- daemon.c ----------------------------------------------------------- */
struct daemon_opts {
	int drain;
	int jobs;
};
MUST_USE int daemon_run(const char *root, const struct daemon_opts *o);
MUST_USE int daemon_lock(const char *root, int *fd_out); /* 1 = another daemon runs */
void daemon_wake(const char *root);                      /* tell a running daemon to look again */

/* ---- cmd_*.c: the commands; each returns a sysexits code --------------- */
/* Every option any command takes, once (main.c's table says which command
 * takes which).  main.c parses the command line with getopt_long into a
 * struct cli before a handler runs: a handler never sees an unknown option, a
 * missing value or a wrong number of operands. */
enum cli_opt {
	CLI_JSON,
	CLI_DEMO,
	CLI_DRAIN,
	CLI_JOBS,
	CLI_BY,
	CLI_NOTES,
	CLI_REASON,
	CLI_TO,
	CLI_FROM,
	CLI_DEVICE,
	CLI_PORT,
	CLI_OUT,
	CLI_TRUST,
	CLI_PRIORITY,
	CLI_PUBLISH_AT,
	CLI_TITLE,
	CLI_DIFF,
	CLI_RESTORE,
	CLI_SINCE,
	CLI_CHANNEL,
	CLI_STAGE,
	CLI_STATE,
	CLI_ALL,
	CLI_WATCH,
	CLI_REPAIR,
	CLI_NOPTS
};
struct cli {
	const char *root; /* absolute when it exists */
	const char *command;
	const char *opt[CLI_NOPTS]; /* the value given; "" for a flag; NULL when absent */
	long num[CLI_NOPTS];        /* the value of a numeric option, checked against its range */
	int argc;                   /* operands, in order, options and "--" taken out */
	char **argv;
};
const char *cli_opt(const struct cli *a, enum cli_opt o); /* value, or NULL */
int cli_has(const struct cli *a, enum cli_opt o);
long cli_num(const struct cli *a, enum cli_opt o, long def);
const char *cli_arg(const struct cli *a, int i); /* i-th operand, or NULL */
/* cmd_review.c: opens the database and configuration, runs fn on the first
 * operand, wakes a running daemon when fn succeeded; the exit code. */
typedef int (*cmd_db_fn)(sqlite3 *, struct config *, struct cli *, const char *ep);
MUST_USE int cmd_with_db(struct cli *a, const char *what, cmd_db_fn fn);
int cmd_said(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* prints when rc is 0 */
/* A command that runs fn on one episode with the database open (cmd_review.c's cmd_with_db). */
#define CMD_WITH_DB(name, fn) \
	int cmd_##name(struct cli *a) \
	{ \
		return cmd_with_db(a, #name, fn); \
	}
/* The command handlers, by file; main.c's command table names them. */
typedef int cmd_fn(struct cli *a);
MUST_USE cmd_fn cmd_init, cmd_run;                                                    /* cmd_run.c */
MUST_USE cmd_fn cmd_status, cmd_show, cmd_costs;                                      /* cmd_status.c */
MUST_USE cmd_fn cmd_approve, cmd_reject, cmd_retry, cmd_cancel;                       /* cmd_review.c */
MUST_USE cmd_fn cmd_edit, cmd_pause, cmd_resume, cmd_versions, cmd_audit;             /* cmd_manage.c */
MUST_USE cmd_fn cmd_metrics, cmd_pulse, cmd_doctor, cmd_keygen, cmd_upload, cmd_auth; /* one file each */
/* status_youtube.c: quota left and token age of each youtube channel (text);
 * youtube_token_old is the token's age in days once it deserves a warning,
 * else -1. */
void status_youtube(sqlite3 *db, const char *root);
MUST_USE int quota_used_today(sqlite3 *db, const char *channel, const char *bucket, const char *day);
MUST_USE double youtube_token_old(const char *root, const cJSON *provider, const char *channel);
/* Before an upload stage starts: alert once a day when the channel's token is old. */
void youtube_token_alert(const struct config *c, const struct channel *ch, const cJSON *provider,
			 const char *episode_id);
/* cmd_status.c: the report (counts, filtered episodes streamed row by row);
 * cmd_status_watch.c draws it again whenever a ticket moves (inotify). */
MUST_USE int status_print(sqlite3 *db, const char *root, const struct cli *a);
MUST_USE int status_watch(sqlite3 *db, const struct cli *a);
/* A JSON array streamed a row at a time: element i (0 opens the array), then the end after n. */
void status_json_row(sqlite3_stmt *st, int i);
void status_json_end(int n);
MUST_USE int cli_since(const char *s, char out[32]); /* --since: ISO time or 30m/2h/7d ago */
/* cmd_report.c: the static review pages.  report_refresh rewrites an
 * episode's page and the index under ROOT/report/ (the daemon, at a gate);
 * a failure is logged, never returned. */
MUST_USE int cmd_report(struct cli *a);
void report_refresh(sqlite3 *db, const char *root, const char *episode_id, const char *episode_dir);
MUST_USE cmd_fn cmd_backup, cmd_restore; /* cmd_backup.c */
MUST_USE cmd_fn cmd_fsck;                /* cmd_fsck.c */
extern const char demo_channel_yaml[];
/* voice_pick.c: the demo channel.yaml with the best offline voice installed (malloc'd). */
MUST_USE char *voice_pick_demo_yaml(const char *yaml);
extern const char demo_idea_json[];

/* ---- cost.c (daemon side): spend and budget state ------------------------ */
MUST_USE double cost_spent_today(sqlite3 *db, const char *channel_db_id);
/* Checks the channel's budget_daily_usd: 0 ok, 1 warn (80%), 2 hold (100%). */
MUST_USE int cost_budget_state(sqlite3 *db, const struct channel *ch, double *spent, double *budget);

/* ---- budget.c: daily budgets (daemon) ----------------------------------- */
/* 1 the first time today for this key (a channel id, or "kind:channel"), then 0. */
MUST_USE int budget_warn_once(const char *what);
/* 1 when stage j of channel ch is paid and the day's budget is spent; then
 * *reason (malloc'd) says so and *until is the next UTC midnight.  Warns
 * once a day at 80 %. */
MUST_USE int budget_spent(sqlite3 *db, struct config *c, const struct channel *ch, const char *episode_id,
			  char **reason, double *until);

/* ---- hold.c: channel-wide holds and releases at their time (daemon) ----- */
/* Holds e (EV_HOLD with a's kind, reason and time) in one transaction;
 * channel_stage (a stage, "*" = every stage, NULL = this episode only)
 * also holds that stage for the whole channel (channel_holds). */
MUST_USE int hold_episode(sqlite3 *db, struct config *c, struct episode *e, const struct state_args *a,
			  const char *channel_stage);
/* Before a job starts: a channel hold on its stage or a spent budget holds
 * the episode instead.  1 = held, 0 = it may start, -1 = it should be held
 * but could not be (logged). */
MUST_USE int hold_gate(sqlite3 *db, struct config *c, const struct job_ref *j);
/* Releases what is due: holds whose time came, budget holds the budget now allows. */
void hold_release_due(sqlite3 *db, struct config *c);
MUST_USE double hold_next_release(sqlite3 *db); /* the next future release, wall clock; 0 = none */

/* ---- qa_show.c: the QA report (qa.json) in show ------------------------ */
void qa_show_print(const char *episode_dir);
void qa_show_json(cJSON *o, const char *episode_dir);

#endif
