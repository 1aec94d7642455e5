/*
 * youtube.h - YouTube publishing on the stage-child side: the resumable
 * upload (youtube_upload.c), its API calls and follow-up steps
 * (youtube_api.c), metadata checks (youtube_meta.c), OAuth tokens
 * (oauth.c) and the quota ledger (quota.c).  The upload stage
 * (prov_youtube.c) and `acog-batch upload BUNDLE` both call
 * youtube_publish(); neither includes sqlite3.h.
 */
#ifndef ACOG_YOUTUBE_H
#define ACOG_YOUTUBE_H
#include "provider.h"

/* Durable per-upload state (session URI, video id, done-marks).  The stage
 * uses the provider-state store; another caller may keep it elsewhere, but
 * set() must be durable before it returns. */
struct yt_store {
	void *arg;
	const char *(*get)(void *arg, const char *key); /* NULL when unset */
	int (*set)(void *arg, const char *key, const char *value);
};

/* One video to publish.  ctx supplies the root, acog.yaml (ctx->global),
 * the provider options (ctx->provider: client_id, privacy, chunk_mib, ...),
 * logs, HTTP and the hold/error fields of the result. */
struct yt_job {
	struct stage_ctx *ctx;
	const char *channel;    /* channel id: token file, quota ledger, holds */
	const char *video;      /* the video file (final.mp4) */
	const char *thumbnail;  /* NULL = none */
	const char *captions;   /* subtitles.srt, or NULL */
	const cJSON *meta;      /* metadata.json: final_title (or title), description, tags */
	const char *publish_at; /* ISO 8601 UTC or NULL: status.publishAt (privacy private) */
	const char *marker;     /* unique per episode; put in the description to find the video again */
	struct yt_store store;
	/* results */
	char video_id[64], url[128], published_at[32];
};
/* STAGE_OK when the video exists and every follow-up step is done;
 * otherwise RETRY/FAIL/HOLD with ctx->error (and ctx->hold_*) set. */
enum stage_rc youtube_publish(struct yt_job *job);

/* Provider-state keys (SCOPE_EPISODE rows of the upload stage). */
#define YT_KEY_SESSION "yt_session"   /* resumable session URI */
#define YT_KEY_PROGRESS "yt_progress" /* "SENT/TOTAL" bytes the server holds */
#define YT_KEY_VIDEO "yt_video_id"
#define YT_KEY_TIME "yt_published_at"
#define YT_KEY_THUMB "yt_thumbnail_done"
#define YT_KEY_PLAYLIST "yt_playlist_done"
#define YT_KEY_CAPTIONS "yt_captions_done"

/* ---- oauth.c: tokens ---------------------------------------------------- */
struct oauth {
	char *client_id, *client_secret, *refresh_token, *token_url, *token_file;
	char *access;   /* current access token, registered for redaction */
	double expires; /* time_now() it expires */
};
/* Reads client_id, the client secret and the refresh token file. */
int oauth_load(struct oauth *o, struct stage_ctx *ctx, const char *channel);
void oauth_free(struct oauth *o);
/* A valid access token (refreshed when it expires within 5 min, or when
 * force is set): STAGE_OK, or a hold (invalid_grant) / failure in ctx. */
enum stage_rc oauth_access(struct oauth *o, struct stage_ctx *ctx, const char *channel, int force);
char *oauth_token_file(const char *root, const cJSON *provider, const char *channel); /* absolute */
/* Stores a refresh token (0600, durable) with its issue time beside it. */
int oauth_token_store(const char *path, const char *token);
double oauth_token_age_days(const char *path); /* -1 when unknown */
/* POSTs a form to the token endpoint; 0 with *json (malloc'd) on 200. */
int oauth_token_post(struct stage_ctx *ctx, const char *url, const char *form, cJSON **json, struct http_resp *resp);
char *oauth_form_escape(const char *s);
/* The scopes the configured features need, space-separated (static). */
const char *oauth_scopes(const cJSON *provider);

/* ---- quota.c: the per-channel, per-Pacific-day ledger ----------------- */
double quota_now(void);                         /* wall clock (test offset under -DACOG_TEST) */
void quota_pacific_day(double t, char out[11]); /* YYYY-MM-DD in America/Los_Angeles */
double quota_next_reset(double t);              /* the next Pacific midnight after t */
/* A bucket's daily limit ("upload": videos.insert calls, "default": units),
 * from acog.yaml youtube_quota or the documented default. */
int quota_limit(const cJSON *global, const char *bucket);
/* Charges a call (method as in acog.yaml youtube_quota.cost, e.g.
 * "thumbnails_set") before it is made: STAGE_OK, or a quota hold. */
enum stage_rc quota_take(struct stage_ctx *ctx, const char *channel, const char *method);
/* A quotaExceeded answer: mark the bucket spent and hold until the reset. */
enum stage_rc quota_spent(struct stage_ctx *ctx, const char *channel, const char *method);

/* stagedb.c: one short transaction that checks and records units against
 * limit in (channel, day, bucket).  0 recorded (*used = units used after),
 * 1 not enough left (nothing recorded unless force, which records it
 * anyway), -1 error. */
int stagedb_quota_use(const char *root, const char *channel, const char *bucket, const char *day, int units, int limit,
		      int force, int *used);

/* ---- youtube_meta.c: the video resource --------------------------------- */
/* The video resource (snippet + status) from metadata and the options, or
 * NULL with err_set naming the limit exceeded. */
cJSON *yt_meta_resource(const struct yt_job *job);

/* ---- youtube_api.c: authorised API calls and follow-up steps ---------- */
struct yt_api {
	struct yt_job *job;
	struct oauth auth;
	const char *base; /* api_base */
};
/* One API call with the Bearer token, its quota charged first, one refresh
 * and one retry on 401.  STAGE_OK with the answer in resp (2xx or an
 * answer listed in q->answers); else the error decided by errors[0].reason. */
enum stage_rc yt_call(struct yt_api *a, const char *method, struct http_req *q, struct http_resp *resp);
enum stage_rc yt_find_by_marker(struct yt_api *a, char *id, size_t n); /* id[0] = 0: none */
enum stage_rc yt_follow_ups(struct yt_api *a);

/* ---- youtube_upload.c ---------------------------------------------------- */
enum stage_rc yt_upload(struct yt_api *a);
int yt_store_set(struct yt_job *job, const char *key, const char *value);
const char *yt_store_get(const struct yt_job *job, const char *key);

#endif
