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
	const char *episode_dir; /* absolute; also the cwd */
	const char *channel_dir; /* absolute channels/<id> */
	const char *stage;
	const cJSON *channel;       /* channel.yaml as JSON */
	const cJSON *global;        /* acog.yaml as JSON */
	const cJSON *provider;      /* providers.<stage>, normalised, has "name" */
	const cJSON *idea;          /* idea.json */
	const char *reviewer_notes; /* set on a re-run after reject, else NULL */
	int attempt;                /* 1 for the first run */
	const cJSON *state;         /* provider state stored so far ({} when none); see stage_state_set */
	const char *job_id;         /* jobs.id of this run */
	int timeout_s;
	struct http_env http; /* for http_request(&ctx->http, ...): root, global, provider, logs */
	/* results */
	cJSON *outputs; /* [{type,path,mime,duration_ms,...}] */
	cJSON *costs;   /* [{provider,operation,units,unit_type,cost_usd}] */
	char error[1024];
	double retry_after; /* seconds, 0 = use backoff */
	char hold_kind[16]; /* STAGE_HOLD: quota, upload_limit, auth, ... */
	double hold_until;  /* STAGE_HOLD: wall-clock time it resumes by itself; 0 = when a person acts */
	int hold_channel;   /* STAGE_HOLD: holds this stage for every episode of the channel */
};
typedef enum stage_rc (*provider_fn)(struct stage_ctx *ctx);

/* ---- provider.c: the provider registry ----------------------------------- */
/* One row per stage and provider: its run function, the options it reads
 * (checked when a channel loads: provider_opts.c), whether a call is paid,
 * and an optional extra check.  Adding a provider is its own file (run
 * function, options table, declared below), one row in provider.c and one
 * Makefile entry. */
enum opt_type {
	OPT_STRING,
	OPT_NUMBER,
	OPT_INTEGER,
	OPT_BOOL,
	OPT_PATH,
	OPT_SECRET_FILE,
	OPT_ENV_NAME,
	OPT_ENUM,
	OPT_URL,
	OPT_OBJECT,
	OPT_ARRAY,
	OPT_TYPE_COUNT
};
struct provider_opt {
	const char *key;
	enum opt_type type;
	const char *def;    /* the default as channel.yaml would spell it; NULL: none (unset means something) */
	double min, max;    /* number, integer: inclusive range; string: max length in max; 0, 0: none */
	const char *values; /* enum: the allowed values, "a|b|c" */
	const char *help;   /* one line */
};
struct provider_def;
typedef int (*provider_paid_fn)(const struct provider_def *p, const cJSON *opts);
typedef int (*provider_check_fn)(const cJSON *opts); /* 0, or -1 with err_set saying what to change */
enum { PROV_NOTES = 1 }; /* reviewer notes reach it whatever the stage (they change its result) */
struct provider_def {
	const char *stage; /* a work stage of stage_table, or "*" for any */
	const char *name;
	provider_fn run;
	const struct provider_opt *opts[3]; /* its own options first (they win), then shared sets */
	provider_paid_fn paid;              /* NULL: never paid */
	provider_check_fn check;            /* NULL: the options table says it all */
	unsigned flags;
};
extern const struct provider_def provider_table[];
/* The row of name for stage (NULL: for any stage), or NULL. */
MUST_USE const struct provider_def *provider_find(const char *stage, const char *name);
MUST_USE provider_fn provider_lookup(const char *stage, const char *name);
MUST_USE const struct provider_def *provider_of(const struct stage_ctx *ctx);

/* Option sets shared by several rows, and each provider's own table. */
extern const struct provider_opt http_opts[];       /* provider_opts.c: what http.c reads */
extern const struct provider_opt publish_opts[];    /* provider_opts.c: upload settings */
extern const struct provider_opt credential_opts[]; /* credentials.c: api_key_env / api_key_file */
extern const struct provider_opt espeak_opts[], flite_opts[], festival_opts[], still_opts[], directory_opts[],
	command_opts[];
extern const struct provider_opt openai_opts[], elevenlabs_opts[], heygen_opts[], runway_opts[];
extern const struct provider_opt youtube_opts[]; /* prov_youtube.c */
extern const struct provider_opt library_opts[]; /* prov_broll.c */
MUST_USE int command_check(const cJSON *opts);

/* ---- provider_opts.c: options checked against the registry, read with defaults */
/* Checks providers.<stage> (normalised, with "name") of a channel: appends
 * "providers.STAGE (NAME): problem" to out for each problem ("; " between
 * them) and returns how many it found. */
MUST_USE int provider_opts_check(const char *stage, const cJSON *opts, struct sbuf *out);
MUST_USE const struct provider_opt *provider_opt_find(const struct provider_def *p, const char *key);
/* An option's value, else its registry default: NULL / NAN when neither. */
MUST_USE const char *provider_opt_str(const struct provider_def *p, const cJSON *opts, const char *key);
MUST_USE double provider_opt_num(const struct provider_def *p, const cJSON *opts, const char *key);
MUST_USE const char *provider_opt_type_name(enum opt_type t);
MUST_USE int provider_opt_check_value(const struct provider_opt *o, const cJSON *v); /* -1 + err_set("is 9; use ...") */
MUST_USE cJSON *provider_opt_default(const struct provider_opt *o);                  /* NULL when it has none */
/* The closest of names (NULL-terminated) to s, when it is close enough to be a typo; else NULL. */
MUST_USE const char *provider_opts_suggest(const char *s, const char *const *names);
enum stage_rc stage_fail(struct stage_ctx *ctx, enum stage_rc rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Holds the episode (STAGE_HOLD) with a kind, an optional release time and
 * a reason in ctx->error saying what to do. */
enum stage_rc stage_hold(struct stage_ctx *ctx, const char *kind, double until, int channel_wide, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void stage_output(struct stage_ctx *ctx, const char *type, const char *path, const char *mime, long duration_ms);
void stage_cost(struct stage_ctx *ctx, const char *provider, const char *operation, double units, const char *unit_type,
		double cost_usd);
/* The durable provider-state store: a value set here is in the database
 * before the call returns (it survives SIGKILL of the child or the daemon)
 * and is in ctx->state on every later attempt.  Its lifetime is the stage
 * row's state_scope: one job (cleared when the stage is entered again) or
 * the whole episode. */
MUST_USE int stage_state_set(struct stage_ctx *ctx, const char *key, const char *value);
MUST_USE const char *stage_state_get(const struct stage_ctx *ctx, const char *key); /* NULL when unset or empty */
void stage_log(struct stage_ctx *ctx, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* ctx's provider option, else its registry default (NULL / NAN when neither). */
const char *stage_opt_str(const struct stage_ctx *ctx, const char *key);
double stage_opt_num(const struct stage_ctx *ctx, const char *key);
/* schedule_file.c: when an upload publishes, as 2026-12-01T14:00:00Z, or ""
 * for at once (none set, or already past: then it logs so).  -1 on error. */
int schedule_publish_time(struct stage_ctx *ctx, char out[32]);

/* Provider implementations (one file each, registered in provider.c). */
MUST_USE enum stage_rc prov_planning_builtin(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_scripting_builtin(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_script_review_checks(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_metadata_builtin(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_audio_espeak(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_audio_flite(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_audio_festival(struct stage_ctx *ctx);
const char *festival_best_voice(void); /* the best festival voice installed, or NULL */
MUST_USE enum stage_rc prov_avatar_none(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_avatar_still(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_broll_generated(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_broll_library(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_assembly_ffmpeg(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_upload_directory(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_upload_youtube(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_command(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_planning_openai(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_scripting_openai(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_metadata_openai(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_audio_elevenlabs(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_avatar_heygen(struct stage_ctx *ctx);
MUST_USE enum stage_rc prov_broll_runway(struct stage_ctx *ctx);

/* ---- stagedb.c: the stage child's only database access ---------------- */
MUST_USE int stagedb_state_set(const char *root, const char *episode_id, const char *stage, const char *key,
			       const char *value);
/* Every mark of a paid request of the episode's stage cleared (STATE_MARK_GLOBS). */
MUST_USE int stagedb_marks_spend(const char *root, const char *episode_id, const char *stage);

/* A completed run of this job's stage with the same input hash: its result
 * JSON text and job id (both malloc'd), or NULL. */
MUST_USE char *stagedb_cached_result(const char *root, const char *job_id, const char *input_hash, char **from_job);

/* ---- stage_child.c: the stage child process ------------------------------ */
MUST_USE cJSON *stage_input_json(const struct stage_ctx *ctx); /* what the daemon sends on fd 0 */
/* adds ctx's input field (a stage_ctx member name) to o under key; an absent one as null */
void stage_ctx_put(cJSON *o, const struct stage_ctx *ctx, const char *field, const char *key);
MUST_USE int stage_child_main(void); /* `acog-batch __stage` */

/* ---- prompt.c / prompts_blob.c: prompt templates and answer schemas ---- */
extern const char prompt_planning_txt[], prompt_scripting_txt[], prompt_metadata_txt[];
MUST_USE cJSON *prompt_messages(struct stage_ctx *ctx);
void prompt_add_message(cJSON *msgs, const char *role, const char *content);
MUST_USE double prompt_target_minutes(const struct stage_ctx *ctx, const cJSON *plan);
MUST_USE int prompt_target_words(double minutes);
MUST_USE int prompt_plan_revision(const struct stage_ctx *ctx);
MUST_USE const char *prompt_schema(const char *stage); /* the answer's JSON Schema; NULL: none */
MUST_USE char *prompt_strip_fence(const char *answer);
MUST_USE char *prompt_json_problem(const char *answer, const cJSON *schema, cJSON **doc);
/* script.md text from a scripting answer: from the schema's JSON, or from
 * prose (one b-roll segment per plan section).  NULL and *text, or the
 * problem to send back to the model. */
MUST_USE char *prompt_script_from_json(const cJSON *doc, char **text);
MUST_USE char *prompt_script_from_prose(const char *prose, const cJSON *plan, int min_words, char **text, int *nseg);

/* ---- cache.c: never pay twice (runs in the stage child) ---------------- */
void cache_key(const struct stage_ctx *ctx, char out[65]);
MUST_USE cJSON *cache_lookup(const struct stage_ctx *ctx, const char *key);
void cache_seal(struct stage_ctx *ctx);

/* ---- recover.c: marks of paid requests in flight (never pay twice) ------ */
#define RECOVER_CLOCK_SLACK_S 2 /* our clock ahead of a provider's by at most this many seconds */
#define RECOVER_NEXT_TIME "; the next attempt looks for it at the provider before paying again"
MUST_USE cJSON *recover_mark(const struct stage_ctx *ctx, const char *key); /* the stored mark, or NULL */
MUST_USE cJSON *recover_mark_new(void);                                     /* {"since": now} */
MUST_USE int recover_mark_set(struct stage_ctx *ctx, const char *key, const cJSON *mark);
void recover_mark_done(struct stage_ctx *ctx, const char *key, cJSON *mark, const char *id);
void recover_mark_clear(struct stage_ctx *ctx, const char *key);
/* The provider failed the stage itself: its answers are spent, so a
 * person's retry asks afresh (every STATE_MARK_GLOBS key cleared). */
void recover_marks_spent(struct stage_ctx *ctx);
MUST_USE int recover_id_ok(const char *id);
/* A look-up that failed (r is freed): STAGE_RETRY when it may pass later
 * (paying again now could pay twice), else logged and STAGE_OK: send again. */
MUST_USE enum stage_rc recover_lookup_failed(struct stage_ctx *ctx, struct http_resp *r, const char *what);
/* Nothing found for mark: STAGE_PENDING (ctx->retry_after set) while the
 * earlier request may still be running (younger than timeout_s), else STAGE_OK. */
MUST_USE enum stage_rc recover_wait(struct stage_ctx *ctx, const cJSON *mark, int timeout_s, const char *what);
/* A GET that costs nothing (a look-up): as http_request. */
MUST_USE int recover_get(struct stage_ctx *ctx, const char *prov, const char *url, const char *const *hdrs,
			 int timeout_s, struct http_resp *r);

/* ---- credentials.c: API keys ------------------------------------------- */
/* From the provider options <what>_env (an environment variable name) or
 * <what>_file (under the root, mode 0600 or refused); what = NULL means
 * "api_key" (api_key_env / api_key_file), "client_secret" reads
 * client_secret_env / client_secret_file.  The key is
 * registered for redaction before it is returned.  NULL + err_set. */
MUST_USE char *credential_get(const struct stage_ctx *ctx, const char *what);

/* ---- cost.c: prices, budgets --------------------------------------------- */
/* Price of units for provider/item from acog.yaml prices (documented defaults). */
MUST_USE double cost_price(const cJSON *global, const char *provider, const char *item, double units);
/* Paid: the registry row of providers.<stage> says, as a function of its options. */
MUST_USE int cost_is_paid(const cJSON *provider);
/* The one "is it on this machine" rule: url's host (parsed by curl_url) is
 * localhost, in 127.0.0.0/8 or ::1. */
MUST_USE int cost_url_is_local(const char *url);
MUST_USE int cost_paid_always(const struct provider_def *p, const cJSON *opts);
/* Paid unless the option local says otherwise or base_url is on this machine. */
MUST_USE int cost_paid_unless_local(const struct provider_def *p, const cJSON *opts);

/* ---- media.c: ffmpeg/ffprobe helpers shared by media providers ---------- */
MUST_USE double media_duration(const char *path);       /* ffprobe; -1 on error */
MUST_USE double media_video_duration(const char *path); /* of its first video stream; -1 on error */
/* ffprobe's values of one -show_entries (sel: -select_streams, or NULL), malloc'd; NULL on error. */
MUST_USE char *media_probe(const char *path, const char *sel, const char *entries);
const char *media_font(void); /* a TTF for drawtext */
/* video.short_clip: how a clip shorter than its segment fills it. */
enum media_short { MEDIA_SHORT_HOLD, MEDIA_SHORT_LOOP, MEDIA_SHORT_STILL };
extern const char *const media_short_names[]; /* "hold", "loop", "still", NULL */
struct media_frame {
	int w, h, fps, crf, burn;
	const char *preset;
	enum media_short short_clip;
};
struct media_argv {
	char **v;
	size_t n, cap;
};
struct media_seg {
	int index, broll;
	const char *desc;
	double start, end;
};
struct media_timeline {
	cJSON *json;
	struct media_seg *seg;
	size_t n;
	double duration;
};
MUST_USE int media_commit(const char *tmp, const char *final);
MUST_USE int media_frame_get(const cJSON *channel, struct media_frame *f);
void media_argv_add(struct media_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void media_argv_opt(struct media_argv *a, const char *opt, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void media_argv_words(struct media_argv *a, const char *words);
void media_argv_free(struct media_argv *a);
/* Runs ffmpeg or espeak-ng; success also means the file it was to write
 * (ffmpeg: its last argument; espeak-ng: -w) exists, is not empty and,
 * unless raw samples, is readable by ffprobe. */
MUST_USE enum stage_rc media_run(struct stage_ctx *ctx, struct media_argv *a, const char *what);
/* media_bg.c: fn(ctx, arg) in a forked copy of the stage process while
 * the caller goes on; media_bg_join() waits for it and returns its result
 * (its message in ctx->error).  fn may run children and write files and
 * log lines, never touch the database. */
typedef enum stage_rc (*media_bg_fn)(struct stage_ctx *ctx, void *arg);
struct media_bg {
	pid_t pid; /* -1: fn ran inline (no fork), its result is rc */
	int fd;
	enum stage_rc rc;
};
void media_bg_start(struct stage_ctx *ctx, struct media_bg *bg, media_bg_fn fn, void *arg);
MUST_USE enum stage_rc media_bg_join(struct stage_ctx *ctx, struct media_bg *bg);
MUST_USE char *media_filter_escape(const char *s);
MUST_USE char *media_wrap(const char *text, int cols, int max_lines);
MUST_USE int media_write_scratch(const char *path, const char *text);
MUST_USE int media_timeline_load(struct media_timeline *t);
void media_timeline_free(struct media_timeline *t);
MUST_USE long media_seg_frames(const struct media_seg *s, int fps);
MUST_USE enum stage_rc media_make_clip(struct stage_ctx *ctx, const struct media_frame *f, struct media_argv *in,
				       const char *filter, long frames, const char *final, const char *asset_type);
MUST_USE int media_prune_clips(const char *dir, const struct media_timeline *t, int broll);

/* ---- broll_gen.c: generated b-roll as a recipe assembly renders ------- */
#define BROLL_KINDS 4 /* gradients, mandelbrot, life, cellauto */
struct broll_recipe {
	int kind;
	uint32_t seed;
	char *text; /* the description, wrapped */
};
MUST_USE char *broll_recipe_path(int index);
MUST_USE char *broll_gen_source(const struct media_frame *f, const struct broll_recipe *r, const char **scale);
MUST_USE char *broll_gen_filter(const struct media_frame *f, const char *scale, const char *font, const char *textfile);
MUST_USE int broll_recipe_save(const char *path, const struct broll_recipe *r);
MUST_USE int broll_recipe_load(const char *path, struct broll_recipe *r);
void broll_recipe_free(struct broll_recipe *r);
/* prov_broll.c: segment s as generated b-roll (the nth such segment picks
 * the picture), its recipe written and reported as the stage's b_roll. */
MUST_USE enum stage_rc broll_gen_segment(struct stage_ctx *ctx, const struct media_frame *f, const struct media_seg *s,
					 int nth);

/* ---- avatar_gen.c: the offline presenter as a recipe assembly renders - */
enum avatar_motion { AVATAR_VOICE, AVATAR_ZOOM, AVATAR_STATIC, AVATAR_MOTIONS };
#define AVATAR_STILL "avatar/still.png" /* the channel's picture, fitted by the avatar stage */
extern const char *const avatar_motion_names[AVATAR_MOTIONS + 1];
MUST_USE char *avatar_recipe_path(int index);
MUST_USE int avatar_motion_parse(const char *name); /* -1: not a motion */
MUST_USE char *avatar_fit_filter(const struct media_frame *f, enum avatar_motion m);
MUST_USE char *avatar_gen_filter(const struct media_frame *f, enum avatar_motion m, const struct media_seg *s,
				 long frames, int input, const char *audio);
MUST_USE int avatar_recipe_save(const char *path, enum avatar_motion m);
MUST_USE int avatar_recipe_load(const char *path, enum avatar_motion *m);

/* ---- chanfile.c: files channel.yaml names, kept inside the channel folder */
MUST_USE int chanfile_inside(const char *dir, const char *path); /* both resolved */
MUST_USE char *chanfile_path(const char *channel_dir, const char *rel, const char *what);

/* ---- music.c: the music bed mixed under the narration (assembly) ------ */
MUST_USE enum stage_rc music_mix(struct stage_ctx *ctx, struct media_argv *a, struct sbuf *g, int bed_input,
				 char **map);

/* ---- shorts.c: the 9:16 Shorts cut (shorts.mp4, shorts_metadata.json) -- */
MUST_USE int shorts_wanted(const struct stage_ctx *ctx);
MUST_USE int shorts_only(const struct stage_ctx *ctx); /* publish the Shorts cut alone (a repurpose) */
void shorts_frame(const struct media_frame *f, struct media_frame *tall);
MUST_USE double shorts_cut(const struct stage_ctx *ctx, const cJSON *timeline);
MUST_USE enum stage_rc shorts_commit(struct stage_ctx *ctx, const char *tmp, const struct media_frame *tall,
				     double cut);

/* ---- thumbnail.c: thumbnail.png (title on a band, clear of the picture) */
struct thumb_spec {
	const char *title, *font;
	const char *clip; /* picture: a frame of this clip at seek seconds; NULL: a gradient only */
	double seek;
};
MUST_USE enum stage_rc thumbnail_make(struct stage_ctx *ctx, const struct media_frame *f, const struct thumb_spec *t,
				      const char *out);

/* ---- clip_jobs.c: the per-segment clip-job loop (heygen, runway) ------- */
struct clip_jobs;
struct clip_seg;
struct clip_jobs_prov {
	const char *name;                  /* "heygen": credentials, limits, logs, prices, cost rows */
	const char *dir;                   /* clip folder: "avatar" or "broll" */
	const char *asset_type;            /* stage_output type: "avatar_video" or "b_roll" */
	int broll;                         /* its segments: 1 b-roll, 0 avatar */
	double poll_default, wait_default; /* poll_seconds, max_wait_seconds */
	const char *operation, *unit_type; /* cost rows */
	/* What a segment's clip depends on (malloc'd; its sha256 is kept beside the clip). */
	char *(*fingerprint)(struct clip_jobs *r, const struct media_seg *s);
	/* Submits one segment through clip_jobs_create(): STAGE_OK with *id
	 * (malloc'd), or a failure in ctx->error. */
	enum stage_rc (*submit)(struct clip_jobs *r, const struct media_seg *s, char **id);
	/* Polling a job: clip_jobs.c GETs status_url (malloc'd) through get (the
	 * provider's headers and checks; *j the answer on STAGE_OK), and status
	 * reads the answer: STAGE_OK when finished (*url malloc'd, *units, *usd),
	 * STAGE_PENDING, or a failure in ctx->error. */
	const char *clip; /* what a clip is called in messages: "avatar video", "b-roll" */
	char *(*status_url)(const struct clip_jobs *r, const char *id);
	enum stage_rc (*get)(struct clip_jobs *r, struct http_req *q, const char *what, cJSON **j);
	enum stage_rc (*status)(struct clip_jobs *r, const struct media_seg *s, const char *id, const cJSON *j,
				char **url, double *units, double *usd);
	void (*cancel)(struct clip_jobs *r, const char *id); /* optional: after max_wait_seconds */
	/* Optional (clip_recover.c): looks a submission up at the provider by
	 * the tag it was sent with (json_str(mark, "tag")), back to the mark's
	 * "since": STAGE_OK with *id (malloc'd) when found, or *id NULL when the
	 * provider has none; STAGE_RETRY when the look-up may pass later;
	 * STAGE_FAIL when it cannot tell (ctx->error says why). */
	enum stage_rc (*find)(struct clip_jobs *r, const cJSON *mark, char **id);
	/* Optional: renders segment s offline instead (Runway: generated
	 * b-roll), for a submission in doubt that cannot be looked up and
	 * must not be paid for twice (option in_doubt: offline). */
	enum stage_rc (*offline)(struct clip_jobs *r, const struct media_seg *s);
};
struct clip_jobs {
	struct stage_ctx *ctx;
	const struct clip_jobs_prov *p;
	cJSON *jobs; /* ctx->state plus what this run stored */
	char *key;   /* the API key (registered for redaction) */
	struct media_frame frame;
	struct media_timeline tl;
	struct clip_seg *seg;  /* one per timeline segment */
	double poll_s, wait_s; /* poll_seconds, max_wait_seconds */
	int timeout_s;         /* per API request (option timeout) */
	int recover;           /* p->find and the option recover is not "none" */
	int offline;           /* p->offline and the option in_doubt is not "fail" */
	char doubt[32];        /* clip_jobs_create: when a create whose answer proved nothing was sent */
	cJSON *mark;           /* clip_recover.c: the mark of the submission being made, else NULL */
};
MUST_USE enum stage_rc clip_jobs_stage(struct stage_ctx *ctx, const struct clip_jobs_prov *p);
MUST_USE const char *clip_jobs_get(const struct clip_jobs *r, int seg, const char *what); /* seg-NN[_what] */
MUST_USE int clip_jobs_set(struct clip_jobs *r, int seg, const char *what, const char *value);
/* One API request (STAGE_RETRY when it can succeed later, else STAGE_FAIL);
 * clip_jobs_create() is the job-creating one, never sent twice. */
MUST_USE enum stage_rc clip_jobs_http(struct clip_jobs *r, struct http_req *q, const char *what, cJSON **json);
MUST_USE enum stage_rc clip_jobs_create(struct clip_jobs *r, int seg, struct http_req *q, const char *what,
					cJSON **json);
MUST_USE int clip_jobs_id_ok(const char *id);
/* The id at path in an answer (rc: how the request went), checked with clip_jobs_id_ok. */
MUST_USE enum stage_rc clip_jobs_answer_id(struct clip_jobs *r, enum stage_rc rc, const cJSON *j, const char *path,
					   const char *what, char **id);

/* ---- clip_recover.c: never pay twice for a clip job whose id was lost -- */
/* The tag to send with the job-creating request of the submission being
 * made (HeyGen: the title), or NULL when recovery is off. */
MUST_USE const char *clip_recover_tag(const struct clip_jobs *r);
void clip_recover_begin(struct clip_jobs *r, int seg, const char *fp); /* r->mark for a submission */
MUST_USE int clip_recover_store(struct clip_jobs *r, int seg);         /* r->mark stored: before the request */
void clip_recover_done(struct clip_jobs *r, int seg, const char *id);  /* the mark gets the job's id */
void clip_recover_clear(struct clip_jobs *r, int seg);                 /* nothing in doubt any more */
void clip_recover_end(struct clip_jobs *r);                            /* frees r->mark */
/* An earlier submission of segment seg (same fp) found: STAGE_OK with *id
 * (malloc'd), or *id NULL when none is in doubt (a mark settled as absent
 * clears seg-NN_sent); else STAGE_PENDING, STAGE_RETRY, or STAGE_FAIL (in
 * doubt: ctx->error says why, *since when it was sent). */
MUST_USE enum stage_rc clip_recover_find(struct clip_jobs *r, int seg, const char *fp, char **id, double *since);

/* ---- qa*.c: the QA report (qa.json) and loudness of the assembly stage -- */
extern const struct provider_opt assembly_opts[];
MUST_USE int assembly_check(const cJSON *opts); /* qa_checks names and policies */
struct qa_span {
	double start, end;
};
struct qa_spans {
	struct qa_span *v;
	size_t n, cap;
};
struct qa_media { /* measured in the finished video; NAN: not measured */
	double lufs, true_peak, lra, audio_s, video_s, fps;
	struct qa_spans black, freeze, silence;
	char vcodec[32], acodec[32], pix_fmt[32];
	int w, h, sample_rate, faststart;
};
struct qa_narration { /* loudness pass one (ebur128, or loudnorm) and astats on the narration */
	double input_i, input_tp, input_lra, input_thresh, offset;
	double peak_db, clipped, samples; /* clipped: samples at full scale */
};
struct qa_cue {
	double start, end;
	char *text;
};
struct qa_cues {
	struct qa_cue *v;
	size_t n, cap;
};
struct qa_words {
	char **v;
	size_t n, cap;
};
void qa_spans_add(struct qa_spans *s, double start, double end);
MUST_USE char *qa_ffmpeg_log(const char *const argv[], const char *what, int timeout_s); /* its stderr */
/* files: NULL, or the two files of the encode's qa_video_chain() (then the picture is not decoded again). */
MUST_USE int qa_measure(const char *video, struct qa_media *m, double silence_db, int timeout_s,
			const char *const *files);
MUST_USE char *qa_video_chain(const char *vin, const char *ob, const char *of, const char *const files[2]);
void qa_media_free(struct qa_media *m);
MUST_USE int qa_loudness_measure(const char *audio, double target_i, double target_tp, struct qa_narration *n,
				 int timeout_s);
MUST_USE char *qa_loudness_filter(const struct qa_narration *n, double target_i, double target_tp);
MUST_USE int qa_srt_load(const char *path, struct qa_cues *c);
void qa_said_load(const cJSON *timeline, struct qa_cues *c);
void qa_cues_free(struct qa_cues *c);
void qa_words_add(struct qa_words *w, const char *text);
MUST_USE size_t qa_words_found(const struct qa_words *want, struct qa_words *have);
void qa_words_free(struct qa_words *w);
/* Measures video, writes qa.json, and fails the stage when a failing check says so. */
MUST_USE enum stage_rc qa_run(struct stage_ctx *ctx, const char *video, const struct media_frame *f,
			      const struct qa_narration *n, const cJSON *timeline, const char *const *files);

/* ---- narration.c: audio.wav, subtitles.srt, timeline.json ------------- */
struct script;
struct media_pcm {
	int16_t *s;
	size_t n, cap;
	unsigned rate;
};
struct media_cue {
	double start, end;
	const char *text;
};
/* seg_start[i]: when segment i is first heard.  Written in the cwd (the episode folder). */
MUST_USE int narration_write(const struct script *sc, const struct media_pcm *pcm, const struct media_cue *cue,
			     size_t ncue, const double *seg_start, const struct media_frame *f);

/* ---- words.c: word timings (words.json) ---------------------------------- */
struct media_word {
	double start, end;
	char *text;
	int seg;   /* 0-based segment */
	int timed; /* by the engine (1) or estimated (0) */
};
struct media_words {
	struct media_word *w;
	size_t n;
};
/* The whitespace-separated words of text (each malloc'd); how many. */
MUST_USE size_t words_split(const char *text, char ***out);
MUST_USE double words_syllables(const char *word); /* about how many: vowel groups, digits */
/* Words of a sentence heard from start to end, timed by syllable share. */
void words_estimate(struct media_words *ws, const char *text, int seg, double start, double end);
/* Words of a sentence timed by the engine (t0/t1: one per word of text, in
 * order): 1; when the engine's words do not match text's, estimated: 0. */
int words_place(struct media_words *ws, const char *text, int seg, const double *t0, const double *t1, size_t nt,
		double start, double end);
MUST_USE int words_write(const struct media_words *ws, const char *path);
MUST_USE size_t words_timed(const struct media_words *ws);
void words_clear(struct media_words *ws);

/* ---- captions.c: captions.ass from words.json, in the channel's style ---- */
/* Writes path for the assembly stage to burn: 1 written, 0 no words.json
 * (burn subtitles.srt instead), -1 + err_set (a channel.yaml captions
 * option, or an unreadable words.json). */
MUST_USE int captions_ass_write(const cJSON *channel, const struct media_frame *f, const char *path);
/* The channel's captions options, checked when it loads: -1 + err_set. */
MUST_USE int captions_check(const cJSON *channel);

/* ---- caption_band.c: captions drawn only where they change ------------- */
/* Where burned captions can appear, in pixels of the frame.  In: the style
 * (captions_band(), or assembly's for subtitles.srt); out: the band and
 * what was found, from caption_band_graph(). */
struct caption_band {
	int align, size, margin_v; /* ASS numpad alignment (2 bottom, 5 middle, 8 top); line height; margin */
	double outline;
	int cols;        /* characters a line holds, a low guess, for the cues libass wraps */
	char canvas[16]; /* 0xRRGGBB: the outline colour (the canvas libass draws on) */
	int y, h, lines; /* out: the band; the most lines a cue takes */
	size_t drawn;    /* out: the frames libass draws */
};
/* The style of captions.ass as captions_ass_write() writes it for f: -1 + err_set. */
MUST_USE int captions_band(const cJSON *channel, const struct media_frame *f, struct caption_band *b);
/* The caption branch of the assembly graph, from the video [in] of frames
 * frames to overlay's output (the chain goes on after it): "subtitles=ARGS"
 * drawn on only the frames where FILE (captions.ass or subtitles.srt)
 * changes, blended in its band.  NULL + err_set saying why the plain
 * subtitles filter must be used instead. */
MUST_USE char *caption_band_graph(const char *file, const char *args, const struct media_frame *f, long frames,
				  const char *in, struct caption_band *b);
/* The frames where what file shows changes, sorted, frame 0 first (*out,
 * malloc'd), and the most lines one cue takes (cols: characters a wrapped
 * line holds): their count, or -1 + err_set naming the file, line and problem. */
MUST_USE long caption_band_changes(const char *file, const struct media_frame *f, long frames, int cols, long **out,
				   int *lines);
/* The first frame libass draws at time ms or later, as the subtitles filter asks it. */
MUST_USE long caption_band_frame(long long ms, int fps);

/* ---- tts_offline.c: the audio stage of the offline voices --------------- */
struct tts_words { /* an engine's word times, in seconds of its own audio */
	double *t0, *t1;
	size_t n;
};
struct tts_engine {
	const char *name; /* "espeak-ng": messages */
	/* Synthesises sentence num's text into *w (16-bit mono), and when it
	 * can, times its whitespace-separated words in *tw. */
	enum stage_rc (*synth)(struct stage_ctx *ctx, void *opts, int num, const char *text, struct media_pcm *w,
			       struct tts_words *tw);
	/* Optional, before synth: all n sentences at once (sentence num is
	 * text[num - 1]), for an engine slow to start. */
	enum stage_rc (*batch)(struct stage_ctx *ctx, void *opts, char *const *text, size_t n);
};
MUST_USE enum stage_rc tts_offline(struct stage_ctx *ctx, const struct tts_engine *e, void *opts, int gap_ms);
MUST_USE int tts_wav_read(const char *path, struct media_pcm *w);
/* First audible sample and one past the last: 0 when none is. */
MUST_USE int tts_audible_span(const struct media_pcm *w, size_t *first, size_t *last);
MUST_USE char *tts_scratch(int num, const char *ext); /* a scratch file name for sentence num */
/* Runs an engine (pkg: its Debian package, for the message); out: its stdout. */
MUST_USE enum stage_rc tts_run(struct stage_ctx *ctx, const char *const argv[], const char *pkg, struct sbuf *out);
void tts_words_add(struct tts_words *tw, double t0, double t1);
void tts_words_free(struct tts_words *tw);

#endif
