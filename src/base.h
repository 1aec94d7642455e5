/*
 * base.h - what both sides of the process boundary share: utilities, durable
 * files, logs, JSON/YAML, the stage table, configuration, child processes.
 * It never includes sqlite3.h: the stage child sees the database only through
 * stagedb.c (declared in provider.h).  daemon.h is the daemon side, provider.h
 * the stage-child side.
 *
 * Error convention everywhere: functions return 0 (or a valid pointer) on
 * success and -1 (or NULL) on failure after calling err_set() or
 * err_set_kind(), which keep a single human-readable message that says what
 * failed and what to do, and its kind.  The caller decides whether to log it,
 * store it in a job row, or print it; a command exits with err_exit().
 */
#ifndef ACOG_BASE_H
#define ACOG_BASE_H

#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

/* A result that must not be dropped: an error would pass unnoticed.  Where
 * ignoring one is right, the call is written `(void)!call(...)` (GCC does not
 * accept a plain (void) cast here) with a comment saying why. */
#define MUST_USE __attribute__((warn_unused_result))

#define ACOG_VERSION "0.1.0"
#define ACOG_PATH_MAX 4096
#define IDEA_MAX_BYTES (1024 * 1024)

/* sysexits.h values, spelled out so the contract is visible here. */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 64,
	EXIT_DATAERR = 65,
	EXIT_NOINPUT = 66,
	EXIT_UNAVAILABLE = 69,
	EXIT_SOFTWARE = 70,
	EXIT_OSERR = 71,
	EXIT_CANTCREAT = 73,
	EXIT_IOERR = 74,
	EXIT_TEMPFAIL = 75,
	EXIT_NOPERM = 77,
	EXIT_CONFIG = 78
};

/* What kind of error the last err_set_kind() raised: whose problem it is and
 * whether trying again can help.  err_exit() turns it into the sysexits code
 * through one table in util.c; err_set() raises an unspecified error, and the
 * command decides what an unspecified failure of its own means. */
enum err_kind {
	ERR_UNSPEC,      /* err_set(): the caller's context decides */
	ERR_SOFTWARE,    /* a bug: 70 */
	ERR_USAGE,       /* a bad command line: 64 */
	ERR_DATAERR,     /* the request does not fit the data (not at a gate, ambiguous): 65 */
	ERR_NOINPUT,     /* no such episode, file or database: 66 */
	ERR_UNAVAILABLE, /* a tool or service we need is missing: 69 */
	ERR_CANTCREAT,   /* cannot create an output: 73 */
	ERR_IOERR,       /* reading, writing or syncing failed (disk full): 74 */
	ERR_TEMPFAIL,    /* busy or locked; try again later: 75 */
	ERR_NOPERM,      /* permission denied: 77 */
	ERR_CONFIG,      /* acog.yaml or a channel.yaml is wrong: 78 */
	ERR_NKINDS
};

/* ---- util.c ---------------------------------------------------------- */
MUST_USE void *xmalloc(size_t n);
MUST_USE void *xcalloc(size_t n, size_t size);
MUST_USE void *xrealloc(void *p, size_t n);
MUST_USE char *xstrdup(const char *s);
MUST_USE char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int err_set_kind(enum err_kind k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message gets ": strerror(errno)" and the kind errno implies (ENOENT: no
 * input, EACCES/EPERM/EROFS: no permission, ENOSPC/EIO: I/O, EAGAIN: busy...). */
int err_set_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_msg(void);
enum err_kind err_kind(void);
MUST_USE enum err_kind err_kind_of_errno(int e);
int err_exit_code(enum err_kind k, int unspecified); /* sysexits code of a kind */
int err_exit(int unspecified);                       /* sysexits code of the last error; `unspecified` for ERR_UNSPEC */
double time_now(void);                               /* wall clock, seconds */
double time_mono(void);                              /* CLOCK_MONOTONIC, seconds */
void time_iso(double t, char out[32]);               /* 2026-11-21T10:00:00.123Z */
MUST_USE double time_parse_iso(const char *s);       /* -1 when not ISO-8601 UTC */
void uuid_new(char out[37]);
void uuid_new_ordered(char out[37]); /* time-ordered (v7): for ids nobody types */
void slugify(const char *in, char *out, size_t outsz);
MUST_USE int utf8_valid(const char *s, size_t len);
void utf8_cut_words(char *s, size_t max_codepoints); /* in place, at a word if it can */
MUST_USE int path_component_ok(const char *s);       /* no '/', not '.', '..', no control chars */
uint64_t rand_u64(void);

/* A growable string. */
struct sbuf {
	char *s;
	size_t len, cap;
};
void sb_add(struct sbuf *b, const char *s, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sb_percent_escape(struct sbuf *b, const char *s, const char *keep);
void sb_free(struct sbuf *b);

/* ---- hash.c: SHA-256 (libcrypto) as 64 hex digits -------------------- */
struct evp_md_ctx_st; /* OpenSSL's EVP_MD_CTX, opaque here */
struct hash {
	struct evp_md_ctx_st *ctx;
};
void hash_init(struct hash *h);
void hash_update(struct hash *h, const void *data, size_t n);
void hash_final_hex(struct hash *h, char out[65]); /* also frees the context */
void hash_free(struct hash *h);                    /* abandon a hash (error paths) */
void hash_hex(const void *data, size_t len, char out[65]);
MUST_USE int hash_file_update(struct hash *h, const char *path); /* streams the file */
MUST_USE int hash_file(const char *path, char out[65]);

/* ---- base64.c: RFC 4648 decoding (libcrypto) --------------------------- */
/* Standard or URL-safe alphabet, padding optional, whitespace ignored;
 * appends the bytes to out, or returns -1 with err_set. */
MUST_USE int base64_decode(const char *in, struct sbuf *out);

/* ---- fsio.c: the one durable commit, listing, reading ---------------- */
/* The one durable commit.  fsio_tmp_open creates final's temporary name,
 * ".<name>.<pid>.tmp" in final's folder (fsio_tmp_name; every scanner skips
 * dot-names; tmpclean removes those of dead processes).  fsio_commit fsyncs
 * and closes fd (a file's or a folder's; -1: the caller already synced and
 * closed it), renames tmp to final (RENAME_NOREPLACE unless FSIO_REPLACE;
 * errno EEXIST when final exists) and fsyncs final's folder.  On failure
 * tmp is discarded. */
enum { FSIO_NOREPLACE = 0, FSIO_REPLACE = 1 };
MUST_USE char *fsio_tmp_name(const char *final);
MUST_USE char *fsio_tmp_name_ext(const char *final, const char *ext);
MUST_USE long fsio_tmp_pid(const char *name); /* pid in a temporary name, 0: not one */
MUST_USE int fsio_tmp_open(const char *final, char **tmp_out);
MUST_USE int fsio_commit(int fd, const char *tmp, const char *final, int flags);
MUST_USE int fsio_write_all(int fd, const void *data, size_t len); /* -1 with errno */
MUST_USE int fsio_write_atomic(const char *path, const void *data, size_t len);
MUST_USE int fsio_write_atomic_str(const char *path, const char *s);
/* final becomes a second name of the file at src, through the durable
 * commit (its data synced too), when that is still the file want describes,
 * ours, with no other name: 1 done (*got: its status once linked), 0 not
 * taken (the caller copies the bytes instead), -1 failed.  No inode is
 * made, and removing src afterwards frees none. */
struct stat;
MUST_USE int fsio_link_commit(const char *src, const char *final, const struct stat *want, struct stat *got);
MUST_USE long long fsio_copy(const char *from, const char *to, int flags, struct hash *h);
MUST_USE int fsio_move(const char *from, const char *to); /* never overwrites */
MUST_USE int fsio_discard(const char *tmp);               /* a temporary file, or folder of files */
MUST_USE int fsio_fsync_dir(const char *dir);
/* Group commit: the commits between begin and end become durable together,
 * at end (one syncfs of dir's file system); nothing is durable before. */
void fsio_defer_begin(void);
MUST_USE int fsio_defer_end(const char *dir);
MUST_USE int fsio_mkdirs(const char *path);
struct stat;
MUST_USE int fsio_open_regular(const char *path, struct stat *st, const char *what, const char *symlink_hint);
MUST_USE char *fsio_read(const char *path, size_t max, size_t *len_out);
struct stat;
MUST_USE char *fsio_read_st(const char *path, size_t max, size_t *len_out, struct stat *st);
MUST_USE char *fsio_read_fd(int fd, const struct stat *st, const char *path, size_t max, size_t *len_out);
MUST_USE int fsio_exists(const char *path);
MUST_USE int fsio_is_dir(const char *path);
MUST_USE int fsio_set_mtime(const char *path, double t);
MUST_USE int fsio_unlink_durable(const char *path); /* only for our own files */
/* Sorted names of a folder (scandir), without dot-names unless keep takes
 * them; the count, or -1 with errno.  Free with fsio_list_free. */
MUST_USE int fsio_list(const char *dir, char ***names, int (*keep)(const char *name));
void fsio_list_free(char **names, int n); /* also after a failed fsio_list */
/* Test builds (-DACOG_TEST) only: each durable point (a file committed,
 * moved or unlinked durably, an SQLite commit: db_test_hook) is counted
 * across processes in the file $ACOG_CRASH_COUNT (what each was in
 * $ACOG_CRASH_COUNT.log), and the process aborts right after the Nth when
 * $ACOG_CRASH_AFTER=N: the crash-point sweep of tests/test_crash_matrix.py. */
#ifdef ACOG_TEST
void fsio_durable(const char *what);
struct sqlite3;
void db_test_hook(struct sqlite3 *db);
#else
#define fsio_durable(what) ((void)0)
#define db_test_hook(db) ((void)0)
#endif

/* ---- log.c: JSON lines on stderr, and per episode -------------------- */
void log_set_stderr(int enabled);
void log_ev(const char *level, const char *episode_id, const char *episode_dir, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
#define log_info(ep, dir, ev, ...) log_ev("info", ep, dir, ev, __VA_ARGS__)
#define log_warn(ep, dir, ev, ...) log_ev("warn", ep, dir, ev, __VA_ARGS__)
#define log_error(ep, dir, ev, ...) log_ev("error", ep, dir, ev, __VA_ARGS__)
void log_redact_add(const char *secret); /* never print this string */

/* ---- json.c: small helpers around cJSON ------------------------------ */
const cJSON *json_get(const cJSON *obj, const char *dotted_path);
const char *json_str(const cJSON *obj, const char *path, const char *def);
double json_num(const cJSON *obj, const char *path, double def);
int json_bool(const cJSON *obj, const char *path, int def);
MUST_USE char *json_print(const cJSON *j);                      /* compact, malloc'd */
MUST_USE char *json_pretty(const cJSON *j);                     /* indented, malloc'd, ends with \n */
MUST_USE cJSON *json_load_file(const char *path, size_t max);   /* err_set on failure */
MUST_USE int json_write_file(const char *path, const cJSON *j); /* atomic, pretty */

/* ---- yaml.c: YAML -> cJSON ------------------------------------------- */
MUST_USE cJSON *yaml_load_file(const char *path); /* err_set names file, line, column */

/* ---- stage.c: the stage contract table --------------------------------- */
/* Everything about a stage is its row: adding a stage or a gate is one row
 * plus its providers.  The row order is the pipeline order. */
enum stage_kind { STAGE_WORK, STAGE_GATE };
enum state_scope { SCOPE_JOB, SCOPE_EPISODE }; /* lifetime of provider_state rows */
/* A provider_state key so prefixed outlives its job even in a SCOPE_JOB
 * stage: a person's retry still sees it (clip_recover.c's marks of paid
 * submissions, looked up before paying again). */
#define STATE_KEY_EPISODE "episode:"
/* The marks of synchronous paid requests (recover.c: "chat-<tag>", the
 * chat tags' seed "chat-seed", "tts-<hash>"): a person's retry of a job
 * that died without a result keeps them (state.c), so the new job looks
 * the lost answers up instead of paying for them again. */
#define STATE_MARK_GLOBS "(key GLOB 'chat-*' OR key GLOB 'tts-*')"
struct stage_file {
	const char *name;       /* file in the episode folder ("dir/" = every file in it) */
	const char *asset_type; /* assets.type, NULL = not an asset */
	const char *mime;
	int required;  /* a run must produce it (the command provider checks) */
	int versioned; /* kept in episode_versions (plan, script, metadata) */
};
struct stage_def {
	const char *name;      /* pipeline_stage value, also the spool folder */
	enum stage_kind kind;  /* work (a provider runs) or gate (a person decides; on by default) */
	const char *ep_status; /* episodes.status while here */
	const char *default_provider;
	int timeout_s;         /* default per-stage timeout */
	const char *inputs[8]; /* what it reads from the episode folder (cache key) */
	struct stage_file outputs[6];
	int notes_matter;       /* reviewer notes change its result (cache key, re-runs) */
	int rerunnable;         /* reject --to may name it */
	const char *gate_after; /* optional gate after it, off unless the channel turns it on */
	enum state_scope scope;
};
extern const struct stage_def stage_table[];
extern const size_t stage_count;
MUST_USE const struct stage_def *stage_find(const char *name);
MUST_USE int stage_reads(const struct stage_def *s, const char *file); /* file is one of its inputs */
MUST_USE const struct stage_def *stage_next(const struct stage_def *s);
MUST_USE int stage_index(const char *name);
/* The output of stage s (NULL: of any stage) recorded as asset_type, or NULL. */
MUST_USE const struct stage_file *stage_output_find(const struct stage_def *s, const char *asset_type);
MUST_USE int stage_is_versioned(const struct stage_def *s, const char *asset_type); /* s NULL: any stage */
MUST_USE const struct stage_def *stage_producer(const char *file); /* the stage that writes it, or NULL */
/* Gates (spool folders a person acts in) in pipeline order; returns how many. */
MUST_USE size_t stage_gates(const char **out, size_t max);
MUST_USE int stage_gate_default(const char *gate); /* 1 on, 0 off unless a channel says so, -1 not a gate */
MUST_USE char *stage_rerunnable_names(void);       /* "planning, scripting, ..." (malloc'd) */
MUST_USE char *stage_asset_types(void);            /* every asset type, once each (malloc'd) */
/* spool folders that are not stages */
extern const char *const spool_other_dirs[];

/* ---- config.c: acog.yaml and channels/<id>/channel.yaml -------------- */
struct channel {
	char id[128];   /* folder name, also channels.slug */
	char db_id[37]; /* channels.id */
	char *dir;      /* absolute channels/<id> */
	cJSON *cfg;     /* channel.yaml as JSON */
};
struct config {
	char *root;    /* absolute */
	cJSON *global; /* acog.yaml as JSON ({} when absent) */
	struct channel *ch;
	size_t nch;
	char *load_errors; /* channels that failed to load, one per line */
};
MUST_USE int config_load(struct config *c, const char *root);
void config_free(struct config *c);
MUST_USE struct channel *config_channel(struct config *c, const char *id);
void pulse_rules_check(const cJSON *rules, struct sbuf *errs); /* pulse.c: channel.yaml's pulse: block */
void visuals_check(const cJSON *cfg, struct sbuf *errs);       /* music.c: channel.yaml's music: and shorts: */
/* providers.<stage> normalised to an object with at least "name". Caller frees. */
MUST_USE cJSON *config_provider(const struct channel *ch, const char *stage);
MUST_USE int config_gate(const struct channel *ch, const char *gate); /* script_review/review */
/* The gate to wait at after stage s completes, when the channel turns it on; else NULL. */
MUST_USE const char *config_gate_after(const struct channel *ch, const struct stage_def *s);
MUST_USE int config_timeout(const struct config *c, const struct channel *ch, const char *stage);
MUST_USE int config_max_retries(const struct config *c, const struct channel *ch);
MUST_USE double config_retry_base(const struct config *c, const struct channel *ch);
MUST_USE double config_retry_max(const struct config *c, const struct channel *ch);

/* ---- tmpclean.c: the one cleaner of temporaries ------------------------ */
/* Removes (and logs) the temporaries in dir whose process is gone; returns
 * how many, or -1.  tmpclean_startup sweeps the spool, the channel folders
 * (episodes, default outboxes) and configured outboxes. */
MUST_USE int tmpclean_dir(const char *dir);
void tmpclean_startup(const struct config *c);
MUST_USE char *directory_outbox(const char *channel_dir, const cJSON *provider); /* prov_directory.c */

/* ---- idea.c: validation of idea files ---------------------------------- */
struct idea {
	cJSON *json; /* the whole parsed document */
	const char *channel, *topic, *idempotency_key, *idea_source;
	int priority;
};
/* On failure err_msg() holds "field: reason" or "line L, column C: reason". */
MUST_USE int idea_parse(const char *text, size_t len, struct idea *out);
/* intake.c: a dropped input file (regular, not a symlink, at most 1 MiB);
 * NULL with err_set; *gone = 1 when it no longer exists or is still open
 * for writing (nothing to do yet). */
MUST_USE char *intake_read(const char *path, size_t *len, int *gone);
/* intake_read, and *st the status of the file the bytes came from. */
MUST_USE char *intake_read_st(const char *path, size_t *len, int *gone, struct stat *st);
MUST_USE cJSON *json_doc_parse(const char *text, size_t len, const char *what); /* NULL with err_set */
MUST_USE int idea_priority_value(const cJSON *p, int *out);

/* ---- cadence.c: publishing slots in a time zone, ISO-8601 instants ------ */
#define CADENCE_MAX_TIMES 24
struct cadence {
	unsigned days;                  /* bit 0 = Sunday ... bit 6 = Saturday */
	int minutes[CADENCE_MAX_TIMES]; /* local wall times, minutes after midnight, sorted */
	int ntimes;
	char zone[64]; /* tz database name */
};
/* "DAYS TIMES ZONE" (see cadence.c); err_msg() names the cadence and the word. */
int cadence_parse(const char *text, struct cadence *cad);
/* The first slot strictly after `after` (Unix seconds); the caller's TZ is kept. */
double cadence_next(const struct cadence *cad, double after);
/* 2026-12-01T15:00:00Z, 2026-12-01T16:00:00.5+01:00 -> Unix seconds; -1 when not one. */
double cadence_parse_instant(const char *s);
void cadence_iso(double t, char out[32]); /* 2026-12-01T15:00:00Z */

/* ---- schedule_file.c: schedule.json, the slot handed to upload providers */
/* schedule.json in the episode folder: {"publish_at": ISO-Z, "source": "idea"|"cadence"}.
 * Written by the daemon when the episode is approved; read by upload providers. */
int schedule_file_write(const char *episode_dir, const char *publish_at, const char *source);
/* The time to publish at, or 0 to publish at once (none set, or already past:
 * then *past is set so the caller logs it).  -1 with err_set when unreadable. */
double schedule_file_read(const char *episode_dir, const cJSON *idea, double now, int *past);

/* ---- ed25519.c: bundle signing keys and signatures (libcrypto) --------- */
/* Writes DIR/acog-signing.key (0600) and DIR/acog-signing.pub (0644); never overwrites. */
int ed25519_keygen(const char *dir, char **priv_path, char **pub_path);
char *ed25519_sign(const char *key_file, const void *data, size_t len); /* base64, malloc'd */
/* 1 = the signature verifies with the public key in pub_file, 0 = it does not, -1 = error. */
int ed25519_verify(const char *pub_file, const void *data, size_t len, const char *sig_b64);

/* ---- bundle.c: checking an air-gapped hand-off bundle ------------------- */
/* The parsed manifest when every file matches it (and the signature verifies
 * with one of trusted, a NULL-terminated list of public key files, when any
 * is given); NULL with err_set naming the file and the reason otherwise. */
cJSON *bundle_verify(const char *dir, const char *const *trusted);
/* Streams from to to (replaced durably), refusing a copy whose SHA-256 is not want_sha. */
int bundle_copy_file(const char *from, const char *to, const char *want_sha);

/* ---- proc.c: children via execve, never a shell ----------------------- */
struct proc_opts {
	const char *cwd;        /* NULL = inherit */
	const char *stdin_data; /* NULL = /dev/null */
	size_t stdin_len;
	struct sbuf *stdout_buf; /* NULL = /dev/null */
	size_t stdout_max;       /* 0 = 16 MiB */
	int stderr_fd;           /* -1 = /dev/null */
	int timeout_s;           /* 0 = none */
};
/* Returns the exit status (0..255), 128+signal when killed, or -1 with
 * err_set when it could not start or timed out (timed_out set). */
MUST_USE int proc_run(const char *const argv[], const struct proc_opts *o, int *timed_out);
/* A close-on-exec descriptor that polls readable when pid exits, or -1 (no pidfd_open). */
int proc_pidfd(pid_t pid);
MUST_USE const char *proc_find(const char *name); /* search PATH; NULL if absent */

/* ---- script.c: script.md segments -------------------------------------- */
enum seg_visual { SEG_AVATAR, SEG_BROLL };
struct segment {
	enum seg_visual visual;
	char *broll; /* description for SEG_BROLL */
	char *text;  /* narration, markers stripped */
};
struct script {
	struct segment *seg;
	size_t n;
	char *title;
};
/* Always leaves *out valid (empty when text is NULL): callers may ignore the result. */
int script_parse(const char *text, struct script *out);
void script_free(struct script *s);
/* Split narration into sentences (malloc'd array of malloc'd strings). */
MUST_USE size_t script_sentences(const char *text, char ***out);

/* ---- credentials.c (shared): secrets kept in files -------------------- */
/* A secret kept in a file: regular, not a symlink, mode 0600/0400, one line. */
MUST_USE char *credential_read_file(const char *path);

/* ---- alert.c: optional webhook alerts (never block the pipeline) --------- */
void alert_send(const struct config *c, const char *kind, const char *episode_id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
