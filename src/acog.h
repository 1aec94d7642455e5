/*
 * acog.h - the one internal header of acog-batch: prototypes grouped by file.
 *
 * Error convention everywhere: functions return 0 (or a valid pointer) on
 * success and -1 (or NULL) on failure after calling err_set(), which keeps a
 * single human-readable message that says what failed and what to do.  The
 * caller decides whether to log it, store it in a job row, or print it.
 */
#ifndef ACOG_H
#define ACOG_H

#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>
#include <sqlite3.h>

#define ACOG_VERSION "0.1.0"
#define ACOG_PATH_MAX 4096
#define IDEA_MAX_BYTES (1024 * 1024)

/* sysexits.h values, spelled out so the contract is visible here. */
enum {
	EXIT_OK = 0, EXIT_USAGE = 64, EXIT_DATAERR = 65, EXIT_NOINPUT = 66,
	EXIT_UNAVAILABLE = 69, EXIT_SOFTWARE = 70, EXIT_CANTCREAT = 73,
	EXIT_IOERR = 74, EXIT_TEMPFAIL = 75, EXIT_CONFIG = 78
};

/* ---- util.c ---------------------------------------------------------- */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int err_set_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_msg(void);
double time_now(void);                       /* wall clock, seconds */
double time_mono(void);                      /* CLOCK_MONOTONIC, seconds */
void time_iso(double t, char out[32]);       /* 2026-11-21T10:00:00.123Z */
double time_parse_iso(const char *s);        /* -1 when not ISO-8601 UTC */
void uuid_new(char out[37]);
void slugify(const char *in, char *out, size_t outsz);
int utf8_valid(const char *s, size_t len);
void utf8_cut_words(char *s, size_t max_codepoints);   /* in place, at a word if it can */
int path_component_ok(const char *s);        /* no '/', not '.', '..', no control chars */
uint64_t rand_u64(void);

/* A growable string. */
struct sbuf { char *s; size_t len, cap; };
void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(struct sbuf *b);

/* ---- sha256.c -------------------------------------------------------- */
struct sha256 { uint32_t h[8]; unsigned char buf[64]; size_t used; uint64_t len; };
void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t n);
void sha256_final(struct sha256 *s, char out[65]);
void sha256_hex(const void *data, size_t len, char out[65]);
int sha256_file_update(struct sha256 *s, const char *path);

/* ---- fsio.c: the one durable write and the one durable move ---------- */
int fsio_write_atomic(const char *path, const void *data, size_t len);
int fsio_write_atomic_str(const char *path, const char *s);
int fsio_move(const char *from, const char *to);      /* never overwrites */
int fsio_copy_atomic(const char *from, const char *to);
int fsio_fsync_dir(const char *dir);
int fsio_mkdirs(const char *path);
char *fsio_read(const char *path, size_t max, size_t *len_out);
int fsio_exists(const char *path);
int fsio_is_dir(const char *path);
int fsio_set_mtime(const char *path, double t);
int fsio_unlink_durable(const char *path);  /* only for our own files */

/* ---- log.c: JSON lines on stderr, and per episode -------------------- */
void log_set_stderr(int enabled);
void log_ev(const char *level, const char *episode_id, const char *episode_dir,
	    const char *event, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define log_info(ep, dir, ev, ...) log_ev("info", ep, dir, ev, __VA_ARGS__)
#define log_warn(ep, dir, ev, ...) log_ev("warn", ep, dir, ev, __VA_ARGS__)
#define log_error(ep, dir, ev, ...) log_ev("error", ep, dir, ev, __VA_ARGS__)
void log_redact_add(const char *secret);    /* never print this string */

/* ---- json.c: small helpers around cJSON ------------------------------ */
const cJSON *json_get(const cJSON *obj, const char *dotted_path);
const char *json_str(const cJSON *obj, const char *path, const char *def);
double json_num(const cJSON *obj, const char *path, double def);
int json_bool(const cJSON *obj, const char *path, int def);
char *json_print(const cJSON *j);           /* compact, malloc'd */
char *json_pretty(const cJSON *j);          /* indented, malloc'd, ends with \n */
cJSON *json_load_file(const char *path, size_t max);  /* err_set on failure */
int json_write_file(const char *path, const cJSON *j); /* atomic, pretty */

/* ---- yaml.c: YAML -> cJSON ------------------------------------------- */
cJSON *yaml_load_file(const char *path);    /* err_set names file, line, column */

/* ---- stage.c: the stage table ---------------------------------------- */
enum stage_kind { STAGE_WORK, STAGE_GATE };
struct stage_def {
	const char *name;        /* pipeline_stage value, also the spool folder */
	enum stage_kind kind;    /* review is a pure human gate */
	const char *ep_status;   /* episodes.status while here */
	const char *default_provider;
	int timeout_s;           /* default per-stage timeout */
};
extern const struct stage_def stage_table[];
extern const size_t stage_count;
const struct stage_def *stage_find(const char *name);
const struct stage_def *stage_next(const struct stage_def *s);
int stage_index(const char *name);
/* spool folders that are not stages */
extern const char *const spool_other_dirs[];

/* ---- config.c: acog.yaml and channels/<id>/channel.yaml -------------- */
struct channel {
	char id[128];            /* folder name, also channels.slug */
	char db_id[37];          /* channels.id */
	char *dir;               /* absolute channels/<id> */
	cJSON *cfg;              /* channel.yaml as JSON */
};
struct config {
	char *root;              /* absolute */
	cJSON *global;           /* acog.yaml as JSON ({} when absent) */
	struct channel *ch;
	size_t nch;
	char *load_errors;       /* channels that failed to load, one per line */
};
int config_load(struct config *c, const char *root);
void config_free(struct config *c);
struct channel *config_channel(struct config *c, const char *id);
/* providers.<stage> normalised to an object with at least "name". Caller frees. */
cJSON *config_provider(const struct channel *ch, const char *stage);
int config_gate(const struct channel *ch, const char *gate); /* script_review/review */
int config_timeout(const struct config *c, const struct channel *ch, const char *stage);
int config_max_retries(const struct config *c, const struct channel *ch);
double config_retry_base(const struct config *c, const struct channel *ch);
double config_retry_max(const struct config *c, const struct channel *ch);

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

/* ---- idea.c: validation of idea files ---------------------------------- */
struct idea {
	cJSON *json;             /* the whole parsed document */
	const char *channel, *topic, *idempotency_key, *idea_source;
	int priority;
};
/* On failure err_msg() holds "field: reason" or "line L, column C: reason". */
int idea_parse(const char *text, size_t len, struct idea *out);
int idea_priority_value(const cJSON *p, int *out);

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
extern int worker_close_in_child[8];   /* daemon fds a stage child must not keep */
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
extern const char demo_channel_yaml[];
extern const char demo_idea_json[];

/* ---- provider.c: the interface every provider implements --------------- */
enum stage_rc { STAGE_OK = 0, STAGE_RETRY = 1, STAGE_FAIL = 2, STAGE_PENDING = 3 };

/* Everything a provider needs.  It runs inside the forked stage child with
 * the episode folder as its working directory; it must not touch the
 * database.  It writes its files (atomically) into the episode folder and
 * reports them with stage_output(). */
struct stage_ctx {
	const char *root;
	const char *episode_id;
	const char *episode_dir;   /* absolute; also the cwd */
	const char *channel_dir;   /* absolute channels/<id> */
	const char *stage;
	const cJSON *channel;      /* channel.yaml as JSON */
	const cJSON *global;       /* acog.yaml as JSON */
	const cJSON *provider;     /* providers.<stage>, normalised, has "name" */
	const cJSON *idea;         /* idea.json */
	const char *reviewer_notes;/* set on a re-run after reject, else NULL */
	int attempt;               /* 1 for the first run */
	const char *provider_job_id; /* async providers: JSON {key: id} stored so far */
	const cJSON *provider_jobs;  /* the same, parsed ({} when none) */
	const char *job_id;          /* jobs.id of this run */
	int timeout_s;
	/* results */
	cJSON *outputs;            /* [{type,path,mime,duration_ms,...}] */
	cJSON *costs;              /* [{provider,operation,units,unit_type,cost_usd}] */
	char error[1024];
	double retry_after;        /* seconds, 0 = use backoff */
};
typedef enum stage_rc (*provider_fn)(struct stage_ctx *ctx);
struct provider_def { const char *stage; const char *name; provider_fn run; };
extern const struct provider_def provider_table[];
provider_fn provider_lookup(const char *stage, const char *name);
enum stage_rc stage_fail(struct stage_ctx *ctx, enum stage_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void stage_output(struct stage_ctx *ctx, const char *type, const char *path,
		  const char *mime, long duration_ms);
void stage_cost(struct stage_ctx *ctx, const char *provider, const char *operation,
		double units, const char *unit_type, double cost_usd);
/* Store an async provider's job id in the database at once, before the
 * provider waits on anything (its own short autocommit on a fresh
 * connection).  key names the piece of work (e.g. "seg-03"); the ids so far
 * are in ctx->provider_jobs on every later run of the same job. */
int stage_provider_job(struct stage_ctx *ctx, const char *key, const char *job_id);
void stage_log(struct stage_ctx *ctx, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The stage child's pipe to the daemon (JSON lines); -1 outside a stage. */
extern int stage_report_fd;

/* Provider implementations (one file each, registered in provider.c). */
enum stage_rc prov_planning_builtin(struct stage_ctx *ctx);
enum stage_rc prov_scripting_builtin(struct stage_ctx *ctx);
enum stage_rc prov_script_review_checks(struct stage_ctx *ctx);
enum stage_rc prov_metadata_builtin(struct stage_ctx *ctx);
enum stage_rc prov_audio_espeak(struct stage_ctx *ctx);
enum stage_rc prov_avatar_none(struct stage_ctx *ctx);
enum stage_rc prov_avatar_still(struct stage_ctx *ctx);
enum stage_rc prov_broll_generated(struct stage_ctx *ctx);
enum stage_rc prov_broll_library(struct stage_ctx *ctx);
enum stage_rc prov_assembly_ffmpeg(struct stage_ctx *ctx);
enum stage_rc prov_upload_directory(struct stage_ctx *ctx);
enum stage_rc prov_command(struct stage_ctx *ctx);
enum stage_rc prov_planning_openai(struct stage_ctx *ctx);
enum stage_rc prov_scripting_openai(struct stage_ctx *ctx);
enum stage_rc prov_metadata_openai(struct stage_ctx *ctx);
enum stage_rc prov_audio_elevenlabs(struct stage_ctx *ctx);
enum stage_rc prov_avatar_heygen(struct stage_ctx *ctx);
enum stage_rc prov_broll_runway(struct stage_ctx *ctx);

/* ---- prompt.c / prompts_blob.c: prompt templates and answer schemas ---- */
extern const char prompt_planning_txt[], prompt_scripting_txt[], prompt_metadata_txt[];
cJSON *prompt_messages(struct stage_ctx *ctx);
void prompt_add_message(cJSON *msgs, const char *role, const char *content);
double prompt_target_minutes(const struct stage_ctx *ctx, const cJSON *plan);
int prompt_target_words(double minutes);
int prompt_plan_revision(const struct stage_ctx *ctx);
const char *prompt_schema(const char *stage);      /* NULL for scripting */
char *prompt_strip_fence(const char *answer);
char *prompt_json_problem(const char *answer, const cJSON *schema, cJSON **doc);

/* ---- cache.c: never pay twice (runs in the stage child) ---------------- */
void cache_key(const struct stage_ctx *ctx, char out[65]);
cJSON *cache_lookup(const struct stage_ctx *ctx, const char *key);
void cache_seal(struct stage_ctx *ctx);

/* ---- http.c: the one HTTP layer every provider uses (libcurl) ---------- */
struct http_req {
	const char *provider;          /* names the limits (acog.yaml limits.<provider>) and the logs */
	const char *method;            /* GET, POST, PUT, DELETE */
	const char *url;
	const char *const *headers;    /* "Name: value" strings, NULL-terminated; may be NULL */
	const char *body;              /* request body or NULL */
	size_t body_len;
	const char *download_to;       /* stream a 2xx body into this file (atomic: tmp, fsync, rename) */
	size_t max_response;           /* in-memory body limit; 0 = 16 MiB */
	int timeout_s;                 /* whole request; 0 = 120 */
	int connect_timeout_s;         /* 0 = 10 */
	int max_attempts;              /* 0 = 4; 1 = never retry */
	int not_idempotent;            /* 1: never resend after the request may have reached the server */
};
struct http_resp {
	long status;                   /* 0 when no HTTP answer arrived */
	struct sbuf body;
	struct sbuf headers;           /* raw response headers of the last answer */
	int retriable;                 /* the final failure could succeed later */
	double retry_after;            /* seconds the server asked us to wait, 0 = none */
	int attempts;
	char error[768];               /* transport error, or the provider's own message */
};
/* 0 when the final answer is 2xx; -1 otherwise, with resp->error saying why. */
int http_request(const struct stage_ctx *ctx, const struct http_req *req, struct http_resp *resp);
void http_resp_free(struct http_resp *resp);
const char *http_header(const struct http_resp *resp, const char *name, char *out, size_t n);
double http_parse_retry_after(const char *value);   /* seconds, fractional, HTTP-date; -1 bad */
int http_classify(long status, const char *body);   /* 1 retriable, 0 permanent */
char *http_error_message(const char *body);         /* the provider's message from its error JSON */
const char *http_ca_file(const cJSON *global, char *why, size_t n); /* NULL: none found, why says where */

/* ---- credentials.c: API keys ------------------------------------------- */
/* From the provider options <what>_env (an environment variable name) or
 * <what>_file (under the root, mode 0600 or refused); what = NULL means
 * "api_key" (api_key_env / api_key_file), "client_secret" reads
 * client_secret_env / client_secret_file.  The key is
 * registered for redaction before it is returned.  NULL + err_set. */
char *credential_get(const struct stage_ctx *ctx, const char *what);
/* A secret kept in a file: regular, not a symlink, mode 0600/0400, one line. */
char *credential_read_file(const char *path);

/* ---- cost.c: prices, budgets --------------------------------------------- */
/* Price of units for provider/item from acog.yaml prices (documented defaults). */
double cost_price(const cJSON *global, const char *provider, const char *item, double units);
double cost_spent_today(sqlite3 *db, const char *channel_db_id);
/* Checks the channel's budget_daily_usd: 0 ok, 1 warn (80%), 2 hold (100%). */
int cost_budget_state(sqlite3 *db, const struct channel *ch, double *spent, double *budget);
void cost_next_day(char out[32]);           /* next midnight UTC, ISO */
int cost_is_paid(const cJSON *provider);    /* calls a billing API */

/* ---- budget.c: holds for channels over their daily budget (daemon) ---- */
int budget_gate(sqlite3 *db, struct config *c, const struct job_ref *j);  /* 1 = held */
void budget_release(sqlite3 *db, struct config *c);
double budget_next_release(sqlite3 *db);     /* wall-clock time, 0 = none */

/* ---- alert.c: optional webhook alerts (never block the pipeline) --------- */
void alert_send(const struct config *c, const char *kind, const char *episode_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- proc.c: children via execve, never a shell ----------------------- */
struct proc_opts {
	const char *cwd;           /* NULL = inherit */
	const char *stdin_data;    /* NULL = /dev/null */
	size_t stdin_len;
	struct sbuf *stdout_buf;   /* NULL = /dev/null */
	size_t stdout_max;         /* 0 = 16 MiB */
	int stderr_fd;             /* -1 = /dev/null */
	int timeout_s;             /* 0 = none */
};
/* Returns the exit status (0..255), 128+signal when killed, or -1 with
 * err_set when it could not start or timed out (timed_out set). */
int proc_run(const char *const argv[], const struct proc_opts *o, int *timed_out);
const char *proc_find(const char *name);      /* search PATH; NULL if absent */

/* ---- media.c: ffmpeg/ffprobe helpers shared by media providers ---------- */
double media_duration(const char *path);      /* ffprobe; -1 on error */
const char *media_font(void);                 /* a TTF for drawtext */
struct media_frame { int w, h, fps, crf, burn; const char *preset; };
struct media_argv { char **v; size_t n, cap; };
struct media_seg { int index, broll; const char *desc; double start, end; };
struct media_timeline { cJSON *json; struct media_seg *seg; size_t n; double duration; };
int media_commit(const char *tmp, const char *final);
int media_frame_get(const cJSON *channel, struct media_frame *f);
void media_argv_add(struct media_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void media_argv_opt(struct media_argv *a, const char *opt, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void media_argv_words(struct media_argv *a, const char *words);
void media_argv_free(struct media_argv *a);
enum stage_rc media_run(struct stage_ctx *ctx, struct media_argv *a, const char *what);
char *media_filter_escape(const char *s);
char *media_wrap(const char *text, int cols, int max_lines);
int media_write_scratch(const char *path, const char *text);
int media_timeline_load(struct media_timeline *t);
void media_timeline_free(struct media_timeline *t);
long media_seg_frames(const struct media_seg *s, int fps);
enum stage_rc media_make_clip(struct stage_ctx *ctx, const struct media_frame *f,
			      struct media_argv *in, const char *filter, long frames,
			      const char *final, const char *asset_type);
int media_prune_clips(const char *dir, const struct media_timeline *t, int broll);

/* ---- prov_heygen.c: the asynchronous-job loop (heygen, runway) --------- */
struct async_run;
struct async_seg;
struct async_prov {
	const char *name;            /* "heygen": credentials, limits, logs, prices, cost rows */
	const char *dir;             /* clip folder: "avatar" or "broll" */
	const char *asset_type;      /* stage_output type: "avatar_video" or "b_roll" */
	int broll;                   /* its segments: 1 b-roll, 0 avatar */
	double poll_default, wait_default;   /* poll_seconds, max_wait_seconds */
	const char *operation, *unit_type;   /* cost rows */
	/* What a segment's clip depends on (malloc'd; its sha256 is kept beside the clip). */
	char *(*fingerprint)(struct async_run *r, const struct media_seg *s);
	/* Submits one segment: STAGE_OK with *id (malloc'd), or a failure in ctx->error. */
	enum stage_rc (*submit)(struct async_run *r, const struct media_seg *s, char **id);
	/* One status request: STAGE_OK when finished (*url malloc'd, *units, *usd),
	 * STAGE_PENDING, or a failure in ctx->error. */
	enum stage_rc (*poll)(struct async_run *r, const struct media_seg *s, const char *id,
			      char **url, double *units, double *usd);
	void (*cancel)(struct async_run *r, const char *id);   /* optional: after max_wait_seconds */
};
struct async_run {
	struct stage_ctx *ctx;
	const struct async_prov *p;
	cJSON *jobs;                 /* ctx->provider_jobs plus what this run stored */
	char *key;                   /* the API key (registered for redaction) */
	struct media_frame frame;
	struct media_timeline tl;
	struct async_seg *seg;       /* one per timeline segment */
	double poll_s, wait_s;       /* poll_seconds, max_wait_seconds */
	int timeout_s;               /* per API request (option timeout) */
};
enum stage_rc async_stage(struct stage_ctx *ctx, const struct async_prov *p);
const char *async_get(const struct async_run *r, int seg, const char *what);  /* seg-NN[_what] */
int async_set(struct async_run *r, int seg, const char *what, const char *value);
enum stage_rc async_http(struct async_run *r, struct http_req *q, const char *what, cJSON **json);
enum stage_rc async_create(struct async_run *r, int seg, struct http_req *q, const char *what, cJSON **json);
int async_id_ok(const char *id);

/* ---- narration.c: audio.wav, subtitles.srt, timeline.json ------------- */
struct script;
struct media_pcm { int16_t *s; size_t n, cap; unsigned rate; };
struct media_cue { double start, end; const char *text; };
/* seg_start[i]: when segment i is first heard.  Written in the cwd (the episode folder). */
int narration_write(const struct script *sc, const struct media_pcm *pcm, const struct media_cue *cue,
		    size_t ncue, const double *seg_start, const struct media_frame *f);

/* ---- script.c: script.md segments -------------------------------------- */
enum seg_visual { SEG_AVATAR, SEG_BROLL };
struct segment {
	enum seg_visual visual;
	char *broll;             /* description for SEG_BROLL */
	char *text;              /* narration, markers stripped */
};
struct script { struct segment *seg; size_t n; char *title; };
int script_parse(const char *text, struct script *out);
void script_free(struct script *s);
/* Split narration into sentences (malloc'd array of malloc'd strings). */
size_t script_sentences(const char *text, char ***out);

#endif
