/*
 * cmd_auth.c - `acog-batch auth youtube CHANNEL [--device]`: the one-time
 * OAuth set-up of a channel, on a headless machine.
 *
 * Loopback flow (default): prints the consent URL (PKCE S256 challenge and
 * a random state), listens on 127.0.0.1 at a random port for the browser's
 * redirect, and also reads the final redirect URL pasted on stdin (the
 * browser may be on another machine, where 127.0.0.1 is not us).  The
 * state must match; the code is exchanged with the verifier.
 * Device flow (--device): Google allows it only with the `youtube` scope
 * (enough for uploads and playlists, not captions); it prints a code to
 * enter at the verification URL and polls the token endpoint at the
 * interval Google asks for.
 * The refresh token is stored 0600 through the durable commit with its
 * issue time (oauth_token_store); the channel's `auth` holds are released
 * and a running daemon is woken.  No token is ever printed or logged.
 */
#define _GNU_SOURCE
#include "daemon.h"
#include "youtube.h"
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define AUTH_URL "https://accounts.google.com/o/oauth2/v2/auth"
#define DEVICE_URL "https://oauth2.googleapis.com/device/code"
#define DEVICE_SCOPE "https://www.googleapis.com/auth/youtube"

struct auth {
	struct stage_ctx ctx;
	struct oauth o;
	const char *channel;
	char verifier[64], challenge[64], state[40], redirect[64];
};

/* base64url without padding of n bytes. */
static void b64url(const unsigned char *in, int n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, n);
	while (len > 0 && out[len - 1] == '=') out[--len] = 0;
	for (char *p = out; *p; p++) *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

static int pkce_make(struct auth *a)
{
	unsigned char rnd[32], dig[32], st[16];
	unsigned int dn = 0;
	if (RAND_bytes(rnd, sizeof rnd) != 1 || RAND_bytes(st, sizeof st) != 1)
		return err_set("cannot get random bytes from libcrypto");
	b64url(rnd, sizeof rnd, a->verifier);
	if (EVP_Digest(a->verifier, strlen(a->verifier), dig, &dn, EVP_sha256(), NULL) != 1)
		return err_set("libcrypto SHA-256 failed");
	b64url(dig, (int)dn, a->challenge);
	for (int i = 0; i < 16; i++) snprintf(a->state + 2 * i, 3, "%02x", st[i]);
	return 0;
}

/* A query parameter's value, percent-decoded (malloc'd), or NULL. */
static char *query_param(const char *url, const char *name)
{
	const char *q = strchr(url, '?');
	size_t nl = strlen(name);
	for (const char *p = q; p && *p; p = strchr(p + 1, '&')) {
		const char *k = p + 1;
		if (strncmp(k, name, nl) || k[nl] != '=') continue;
		struct sbuf b = { 0 };
		sb_add(&b, "", 0);
		for (const char *v = k + nl + 1; *v && *v != '&' && *v != ' ' && *v != '#' && *v != '\r' && *v != '\n';
		     v++) {
			unsigned x;
			if (*v == '%' && sscanf(v + 1, "%2x", &x) == 1) {
				char c = (char)x;
				sb_add(&b, &c, 1);
				v += 2;
			} else
				sb_add(&b, *v == '+' ? " " : v, 1);
		}
		return b.s;
	}
	return NULL;
}

static int listen_loopback(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)*port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		err_set_errno("cannot listen on 127.0.0.1");
		if (fd >= 0) close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* One redirect request from the browser: its request line (malloc'd). */
static char *accept_redirect(int lfd)
{
	static const char page[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
				   "acog-batch received the answer; you can close this tab.\n";
	char buf[8192];
	ssize_t n;
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) return NULL;
	struct timeval tv = { 10, 0 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	n = read(c, buf, sizeof buf - 1);
	if (n > 0 && write(c, page, sizeof page - 1) < 0) n = -1; /* the browser's page only */
	close(c);
	if (n <= 0) return NULL;
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	return xstrdup(buf);
}

static char *read_line(void)
{
	char buf[8192];
	if (!fgets(buf, sizeof buf, stdin)) return NULL;
	buf[strcspn(buf, "\r\n")] = 0;
	return buf[0] ? xstrdup(buf) : NULL;
}

/* The redirect, from the browser or pasted: the code, with state checked. */
static char *wait_code(struct auth *a, int lfd)
{
	struct pollfd p[2] = { { lfd, POLLIN, 0 }, { 0, POLLIN, 0 } };
	int stdin_open = 1;
	for (;;) {
		char *line = NULL, *state, *code, *err;
		int refused;
		if (poll(p, stdin_open ? 2 : 1, -1) < 0 && errno != EINTR) return NULL;
		if (p[0].revents & POLLIN)
			line = accept_redirect(lfd);
		else if (stdin_open && (p[1].revents & (POLLIN | POLLHUP)) && !(line = read_line()) && feof(stdin))
			stdin_open = 0;
		if (!line || !strchr(line, '?')) {
			free(line);
			continue;
		}
		state = query_param(line, "state"), code = query_param(line, "code"), err = query_param(line, "error");
		free(line);
		refused = err != NULL;
		if (refused)
			fprintf(stderr, "acog-batch auth: Google answered error=%s; run auth again\n", err);
		else if (!state || strcmp(state, a->state))
			fprintf(stderr, "acog-batch auth: ignoring an answer whose state does not match\n");
		else if (code) {
			free(state);
			return code;
		}
		free(state), free(code), free(err);
		if (refused) return NULL;
	}
}

static int store_refresh(struct auth *a, cJSON *j)
{
	const char *rt = json_str(j, "refresh_token", NULL);
	if (!rt)
		return err_set("Google's answer has no refresh_token; remove acog-batch's access at "
			       "myaccount.google.com/permissions and run auth again");
	log_redact_add(rt);
	if (oauth_token_store(a->o.token_file, rt) < 0) return -1;
	printf("stored the refresh token of channel %s in %s (mode 0600)\n", a->channel, a->o.token_file);
	return 0;
}

static int exchange(struct auth *a, const char *form_fmt, const char *code)
{
	char *c = oauth_form_escape(code), *id = oauth_form_escape(a->o.client_id),
	     *sec = oauth_form_escape(a->o.client_secret);
	char *ru = oauth_form_escape(a->redirect), *form;
	struct http_resp r;
	cJSON *j = NULL;
	int rc;
	log_redact_add(c);
	form = xasprintf(form_fmt, c, id, sec, ru, a->verifier);
	rc = oauth_token_post(&a->ctx, a->o.token_url, form, &j, &r);
	if (rc < 0)
		err_set("token exchange failed: %s", r.error[0] ? r.error : err_msg());
	else
		rc = store_refresh(a, j);
	cJSON_Delete(j);
	http_resp_free(&r);
	free(c), free(id), free(sec), free(ru), free(form);
	return rc;
}

static int loopback_flow(struct auth *a, int port)
{
	int lfd = listen_loopback(&port), rc = -1;
	char *scope, *url, *code;
	if (lfd < 0 || pkce_make(a) < 0) goto out;
	snprintf(a->redirect, sizeof a->redirect, "http://127.0.0.1:%d", port);
	scope = oauth_form_escape(oauth_scopes(a->ctx.provider));
	url = xasprintf("%s?client_id=%s&redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A%d&response_type=code&scope=%s"
			"&code_challenge=%s&code_challenge_method=S256&state=%s&access_type=offline&prompt=consent",
			json_str(a->ctx.provider, "auth_url", AUTH_URL), a->o.client_id, port, scope, a->challenge,
			a->state);
	printf("Open this URL in a browser and allow access for channel %s:\n\n  %s\n\n"
	       "Waiting on %s for the redirect. If the browser runs on another machine, paste the\n"
	       "address it ends on (http://127.0.0.1:%d/?state=...&code=...) here and press Enter.\n",
	       a->channel, url, a->redirect, port);
	fflush(stdout);
	free(scope), free(url);
	if (!(code = wait_code(a, lfd))) {
		err_set("no authorisation code received");
		goto out;
	}
	rc = exchange(a,
		      "grant_type=authorization_code&code=%s&client_id=%s&client_secret=%s"
		      "&redirect_uri=%s&code_verifier=%s",
		      code);
	free(code);
out:
	if (lfd >= 0) close(lfd);
	return rc;
}

/* Polls the token endpoint for the device code; 1 pending, 0 done, -1 error. */
static int device_poll(struct auth *a, const char *device_code, double *interval)
{
	char *dc = oauth_form_escape(device_code), *id = oauth_form_escape(a->o.client_id);
	char *sec = oauth_form_escape(a->o.client_secret);
	char *form = xasprintf("client_id=%s&client_secret=%s&device_code=%s"
			       "&grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Adevice_code",
			       id, sec, dc);
	struct http_resp r;
	cJSON *j = NULL, *e;
	int rc = oauth_token_post(&a->ctx, a->o.token_url, form, &j, &r);
	if (rc == 0) {
		rc = store_refresh(a, j);
	} else if ((e = cJSON_Parse(r.body.s)) != NULL) {
		const char *code = json_str(e, "error", "");
		rc = !strcmp(code, "authorization_pending") ? 1
			: !strcmp(code, "slow_down")
			? (*interval += 5, 1)
			: err_set("device flow: Google answered %s", *code ? code : r.error);
		cJSON_Delete(e);
	} else {
		err_set("device flow: %s", r.error);
	}
	cJSON_Delete(j);
	http_resp_free(&r);
	free(dc), free(id), free(sec), free(form);
	return rc;
}

static int device_flow(struct auth *a)
{
	char *id = oauth_form_escape(a->o.client_id), *scope = oauth_form_escape(DEVICE_SCOPE);
	char *form = xasprintf("client_id=%s&scope=%s", id, scope);
	struct http_resp r;
	cJSON *j = NULL;
	int rc = oauth_token_post(&a->ctx, json_str(a->ctx.provider, "device_url", DEVICE_URL), form, &j, &r);
	double interval = json_num(j, "interval", 5), end = time_now() + json_num(j, "expires_in", 1800);
	if (json_bool(a->ctx.provider, "captions", 0))
		fprintf(stderr,
			"note: the device flow grants only the youtube scope; captions need the loopback flow\n");
	if (rc < 0)
		err_set("device flow: %s", r.error[0] ? r.error : err_msg());
	else
		printf("On any device, open %s and enter the code %s\n",
		       json_str(j, "verification_url", json_str(j, "verification_uri", "?")),
		       json_str(j, "user_code", "?")),
			fflush(stdout);
	if (rc == 0) rc = 1;
	while (rc == 1 && (rc = device_poll(a, json_str(j, "device_code", ""), &interval)) == 1) {
		struct timespec ts = { (time_t)interval, (long)((interval - (time_t)interval) * 1e9) };
		if (time_now() > end)
			rc = err_set("the device code expired; run auth again");
		else
			nanosleep(&ts, NULL); /* the protocol's own pace, in a foreground command */
	}
	cJSON_Delete(j);
	http_resp_free(&r);
	free(id), free(scope), free(form);
	return rc;
}

static int auth_setup(struct auth *a, struct config *c, const char *channel)
{
	struct channel *ch = config_channel(c, channel);
	if (!ch)
		return err_set("channel %s is not loaded; check channels/%s/channel.yaml (acog-batch doctor)", channel,
			       channel);
	a->channel = ch->id;
	a->ctx.root = c->root;
	a->ctx.global = c->global;
	a->ctx.channel = ch->cfg;
	a->ctx.channel_dir = ch->dir;
	a->ctx.stage = "upload";
	a->ctx.provider = config_provider(ch, "upload");
	a->ctx.http = (struct http_env){
		.root = c->root, .global = c->global, .provider = a->ctx.provider, .stage = "auth"
	};
	if (strcmp(json_str(a->ctx.provider, "name", ""), "youtube"))
		return err_set("channel %s does not publish with the youtube provider (providers.upload.name)",
			       channel);
	return oauth_load(&a->o, &a->ctx, ch->id);
}

/* The channel's uploads held for re-authorisation go on, now. */
static int auth_released(struct config *c, const char *channel)
{
	const char *user = getenv("USER");
	sqlite3 *db = db_open(c->root, 0);
	int rc;
	sqlite3_stmt *st;
	if (!db) return -1;
	st = db_prep(db, "SELECT 1 FROM channels WHERE slug = ?", "s", channel);
	rc = st && sqlite3_step(st) == SQLITE_ROW; /* a channel the daemon never saw holds nothing */
	sqlite3_finalize(st);
	if (rc) rc = state_release_channel(db, c, channel, "upload", "auth", user && *user ? user : "cli");
	sqlite3_close(db);
	if (rc < 0) return -1;
	printf("uploads of channel %s held for authorisation resume now\n", channel);
	daemon_wake(c->root);
	return 0;
}

int cmd_auth(struct cli *cl)
{
	const char *service = cli_arg(cl, 0), *channel = cli_arg(cl, 1), *port = cli_opt(cl, CLI_PORT);
	struct config c;
	struct auth a;
	int rc;
	memset(&a, 0, sizeof a);
	if (!service || strcmp(service, "youtube") || !channel || cli_arg(cl, 2)) {
		fprintf(stderr, "usage: acog-batch auth youtube CHANNEL [--device] [--port N]\n");
		return EXIT_USAGE;
	}
	if (config_load(&c, cl->root) < 0) {
		fprintf(stderr, "acog-batch auth: %s\n", err_msg());
		return EXIT_CONFIG;
	}
	rc = auth_setup(&a, &c, channel);
	if (rc == 0) rc = cli_has(cl, CLI_DEVICE) ? device_flow(&a) : loopback_flow(&a, port ? atoi(port) : 0);
	if (rc == 0) rc = auth_released(&c, a.channel);
	if (rc < 0) fprintf(stderr, "acog-batch auth: %s\n", err_msg());
	oauth_free(&a.o);
	cJSON_Delete((cJSON *)a.ctx.provider);
	config_free(&c);
	return rc < 0 ? EXIT_SOFTWARE : EXIT_OK;
}
