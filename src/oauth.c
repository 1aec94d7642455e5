/*
 * oauth.c - Google OAuth tokens for the YouTube provider.
 *
 * The refresh token lives in one file (refresh_token_file, default
 * channels/<id>/secrets/youtube-refresh-token under the root), mode 0600,
 * the token alone on one line, written only by `acog-batch auth` through
 * the durable commit; beside it "<file>.issued" holds the time it was
 * issued, because a token of an OAuth app in Testing mode dies after 7
 * days (warned from day 5).  The access token is kept in memory only,
 * refreshed 5 minutes before it expires, or at once after a 401.  Every
 * secret is registered for redaction before anything could print it.
 * invalid_grant means a person must authorise again: the channel's uploads
 * are held (kind auth), not failed.
 */
#define _GNU_SOURCE
#include "youtube.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_URL "https://oauth2.googleapis.com/token"
#define SCOPE_BASE "https://www.googleapis.com/auth/"

char *oauth_token_file(const char *root, const cJSON *provider, const char *channel)
{
	const char *f = json_str(provider, "refresh_token_file", NULL);
	if (!f || !*f) return xasprintf("%s/channels/%s/secrets/youtube-refresh-token", root, channel);
	return f[0] == '/' ? xstrdup(f) : xasprintf("%s/%s", root, f);
}

int oauth_load(struct oauth *o, struct stage_ctx *ctx, const char *channel)
{
	memset(o, 0, sizeof *o);
	o->token_url = xstrdup(json_str(ctx->provider, "token_url", TOKEN_URL));
	o->token_file = oauth_token_file(ctx->root, ctx->provider, channel);
	o->client_id = xstrdup(json_str(ctx->provider, "client_id", ""));
	if (!o->client_id[0]) return err_set("providers.upload: set client_id (the OAuth client of a Desktop app)");
	if (!(o->client_secret = credential_get(ctx, "client_secret"))) return -1;
	log_redact_add(o->client_secret);
	return 0;
}

void oauth_free(struct oauth *o)
{
	free(o->client_id), free(o->client_secret), free(o->refresh_token);
	free(o->token_url), free(o->token_file), free(o->access);
	memset(o, 0, sizeof *o);
}

char *oauth_form_escape(const char *s)
{
	struct sbuf b = { 0 };
	sb_percent_escape(&b, s, "-._~");
	return b.s;
}

int oauth_token_post(struct stage_ctx *ctx, const char *url, const char *form, cJSON **json, struct http_resp *resp)
{
	static const char *const hdrs[] = { "Content-Type: application/x-www-form-urlencoded", NULL };
	struct http_req q = http_post("youtube", url, hdrs, form);
	q.max_attempts = 3;
	*json = NULL;
	if (http_request(&ctx->http, &q, resp) < 0) return -1;
	if (!(*json = cJSON_Parse(resp->body.s))) return err_set("%s answered something that is not JSON", url);
	return 0;
}

/* The answer's error code ("invalid_grant", ...) or "". */
static const char *oauth_error(const struct http_resp *r)
{
	static char code[64];
	cJSON *j = cJSON_Parse(r->body.s);
	snprintf(code, sizeof code, "%s", json_str(j, "error", ""));
	cJSON_Delete(j);
	return code;
}

static enum stage_rc refresh(struct oauth *o, struct stage_ctx *ctx, const char *channel)
{
	char *id = oauth_form_escape(o->client_id), *sec = oauth_form_escape(o->client_secret);
	char *rt = oauth_form_escape(o->refresh_token);
	char *form = xasprintf("client_id=%s&client_secret=%s&refresh_token=%s&grant_type=refresh_token", id, sec, rt);
	struct http_resp r;
	cJSON *j = NULL;
	enum stage_rc rc = STAGE_OK;
	log_redact_add(rt), log_redact_add(sec);
	if (oauth_token_post(ctx, o->token_url, form, &j, &r) < 0) {
		if (r.status == 400 && !strcmp(oauth_error(&r), "invalid_grant"))
			rc = stage_hold(ctx, "auth", 0, 1,
					"YouTube refused the refresh token of channel %s "
					"(invalid_grant: revoked, unused for six months, or a Testing-mode app's "
					"7-day expiry); re-authorise with `acog-batch auth youtube %s`",
					channel, channel);
		else
			rc = stage_fail(ctx, r.status == 401 || r.status == 400 ? STAGE_FAIL : STAGE_RETRY,
					"YouTube token refresh: %s", r.error[0] ? r.error : err_msg());
	} else if (!json_str(j, "access_token", NULL)) {
		rc = stage_fail(ctx, STAGE_RETRY, "YouTube token refresh: the answer has no access_token");
	} else {
		free(o->access);
		o->access = xstrdup(json_str(j, "access_token", ""));
		log_redact_add(o->access);
		o->expires = time_now() + json_num(j, "expires_in", 3599);
	}
	cJSON_Delete(j);
	http_resp_free(&r);
	free(id), free(sec), free(rt), free(form);
	return rc;
}

static void warn_age(struct oauth *o, struct stage_ctx *ctx, const char *channel)
{
	double days = oauth_token_age_days(o->token_file);
	if (days >= json_num(ctx->provider, "token_warn_days", 5))
		stage_log(ctx, "warn",
			  "the YouTube refresh token of channel %s is %.0f days old; tokens of an "
			  "OAuth app in Testing mode die after 7 days: publish the consent screen, then run "
			  "`acog-batch auth youtube %s`",
			  channel, days, channel);
}

enum stage_rc oauth_access(struct oauth *o, struct stage_ctx *ctx, const char *channel, int force)
{
	if (!o->refresh_token) {
		if (!fsio_exists(o->token_file))
			return stage_hold(ctx, "auth", 0, 1,
					  "channel %s has no YouTube refresh token (%s); "
					  "re-authorise with `acog-batch auth youtube %s`",
					  channel, o->token_file, channel);
		if (!(o->refresh_token = credential_read_file(o->token_file)))
			return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
		log_redact_add(o->refresh_token);
		warn_age(o, ctx, channel);
	}
	if (!force && o->access && time_now() < o->expires - 300) return STAGE_OK;
	return refresh(o, ctx, channel);
}

int oauth_token_store(const char *path, const char *token)
{
	char *tmp = NULL, *line = xasprintf("%s\n", token), *issued = xasprintf("%s.issued", path), now[32];
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd, rc = -1;
	if (slash) *slash = 0;
	if (!fsio_is_dir(dir) && (fsio_mkdirs(dir) < 0 || chmod(dir, 0700) < 0)) { /* a new folder: ours alone */
		err_set_errno("cannot create %s", dir);
		goto out;
	}
	if ((fd = fsio_tmp_open(path, &tmp)) < 0) goto out;
	if (fchmod(fd, 0600) < 0 || fsio_write_all(fd, line, strlen(line)) < 0) {
		err_set_errno("cannot write %s", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (fsio_commit(fd, tmp, path, FSIO_REPLACE) < 0) goto out;
	time_iso(time_now(), now);
	rc = fsio_write_atomic_str(issued, now);
out:
	free(tmp), free(line), free(issued), free(dir);
	return rc;
}

double oauth_token_age_days(const char *path)
{
	char *issued = xasprintf("%s.issued", path);
	char *s = fsio_exists(issued) ? fsio_read(issued, 64, NULL) : NULL;
	double t = s ? time_parse_iso(s) : -1;
	free(issued), free(s);
	return t < 0 ? -1 : (time_now() - t) / 86400;
}

/* youtube.upload covers videos.insert and thumbnails.set; youtube.readonly
 * lets the uploader find a video it may already have made (channels.list,
 * playlistItems.list); playlists need youtube, captions youtube.force-ssl.
 * The device flow allows only youtube (and readonly): see cmd_auth.c. */
const char *oauth_scopes(const cJSON *provider)
{
	if (json_bool(provider, "captions", 0))
		return SCOPE_BASE "youtube.upload " SCOPE_BASE "youtube.readonly " SCOPE_BASE "youtube.force-ssl";
	if (json_str(provider, "playlist_id", NULL))
		return SCOPE_BASE "youtube.upload " SCOPE_BASE "youtube.readonly " SCOPE_BASE "youtube";
	return SCOPE_BASE "youtube.upload " SCOPE_BASE "youtube.readonly";
}
