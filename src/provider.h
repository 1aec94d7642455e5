/*
 * provider.h - the stage-child side: what a provider may use.  Code that
 * includes this header runs in the forked stage child and must not include
 * sqlite3.h or daemon.h; its only database touches go through stagedb.c.
 */
#ifndef ACOG_PROVIDER_H
#define ACOG_PROVIDER_H
#include "base.h"
#include "http.h"

/* ---- provider.c: the interface every provider implements --------------- */
/* STAGE_HOLD: the stage cannot go on until a time or a person (quota spent,
 * re-authorisation needed); the episode is held with hold_kind, not failed. */
enum stage_rc { STAGE_OK = 0, STAGE_RETRY = 1, STAGE_FAIL = 2, STAGE_PENDING = 3, STAGE_HOLD = 4 };

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
	const cJSON *state;        /* provider state stored so far ({} when none); see stage_state_set */
	const char *job_id;          /* jobs.id of this run */
	int timeout_s;
	/* results */
	cJSON *outputs;            /* [{type,path,mime,duration_ms,...}] */
	cJSON *costs;              /* [{provider,operation,units,unit_type,cost_usd}] */
	char error[1024];
	double retry_after;        /* seconds, 0 = use backoff */
	char hold_kind[16];        /* STAGE_HOLD: quota, upload_limit, auth, ... */
	double hold_until;         /* STAGE_HOLD: wall-clock time it resumes by itself; 0 = when a person acts */
	int hold_channel;          /* STAGE_HOLD: holds this stage for every episode of the channel */
};
typedef enum stage_rc (*provider_fn)(struct stage_ctx *ctx);
struct provider_def { const char *stage; const char *name; provider_fn run; };
extern const struct provider_def provider_table[];
provider_fn provider_lookup(const char *stage, const char *name);
enum stage_rc stage_fail(struct stage_ctx *ctx, enum stage_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Holds the episode (STAGE_HOLD) with a kind, an optional release time and
 * a reason in ctx->error saying what to do. */
enum stage_rc stage_hold(struct stage_ctx *ctx, const char *kind, double until, int channel_wide,
			 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void stage_output(struct stage_ctx *ctx, const char *type, const char *path,
		  const char *mime, long duration_ms);
void stage_cost(struct stage_ctx *ctx, const char *provider, const char *operation,
		double units, const char *unit_type, double cost_usd);
/* The durable provider-state store: a value set here is in the database
 * before the call returns (it survives SIGKILL of the child or the daemon)
 * and is in ctx->state on every later attempt.  Its lifetime is the stage
 * row's state_scope: one job (cleared when the stage is entered again) or
 * the whole episode. */
int stage_state_set(struct stage_ctx *ctx, const char *key, const char *value);
const char *stage_state_get(const struct stage_ctx *ctx, const char *key);   /* NULL when unset or empty */
void stage_log(struct stage_ctx *ctx, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* schedule_file.c: when an upload publishes, as 2026-12-01T14:00:00Z, or ""
 * for at once (none set, or already past: then it logs so).  -1 on error. */
int schedule_publish_time(struct stage_ctx *ctx, char out[32]);

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
enum stage_rc prov_upload_youtube(struct stage_ctx *ctx);
enum stage_rc prov_command(struct stage_ctx *ctx);
enum stage_rc prov_planning_openai(struct stage_ctx *ctx);
enum stage_rc prov_scripting_openai(struct stage_ctx *ctx);
enum stage_rc prov_metadata_openai(struct stage_ctx *ctx);
enum stage_rc prov_audio_elevenlabs(struct stage_ctx *ctx);
enum stage_rc prov_avatar_heygen(struct stage_ctx *ctx);
enum stage_rc prov_broll_runway(struct stage_ctx *ctx);

/* ---- stagedb.c: the stage child's only database access ---------------- */
int stagedb_state_set(const char *root, const char *episode_id, const char *stage, const char *key,
		      const char *value);

/* A completed run of this job's stage with the same input hash: its result
 * JSON text and job id (both malloc'd), or NULL. */
char *stagedb_cached_result(const char *root, const char *job_id, const char *input_hash, char **from_job);

/* ---- stage_child.c: the stage child process ------------------------------ */
cJSON *stage_input_json(const struct stage_ctx *ctx);   /* what the daemon sends on fd 0 */
int stage_child_main(void);                            /* `acog-batch __stage` */

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

/* ---- credentials.c: API keys ------------------------------------------- */
/* From the provider options <what>_env (an environment variable name) or
 * <what>_file (under the root, mode 0600 or refused); what = NULL means
 * "api_key" (api_key_env / api_key_file), "client_secret" reads
 * client_secret_env / client_secret_file.  The key is
 * registered for redaction before it is returned.  NULL + err_set. */
char *credential_get(const struct stage_ctx *ctx, const char *what);

/* ---- cost.c: prices, budgets --------------------------------------------- */
/* Price of units for provider/item from acog.yaml prices (documented defaults). */
double cost_price(const cJSON *global, const char *provider, const char *item, double units);
int cost_is_paid(const cJSON *provider);    /* calls a billing API */

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

#endif
