/*
 * prov_elevenlabs.c - audio stage through ElevenLabs text-to-speech with
 * timestamps: POST {base_url}/v1/text-to-speech/{voice_id}/with-timestamps.
 *
 * The narration of script.md is cut into sentences (script_sentences), the
 * sentences are packed into requests of at most max_chars characters
 * (previous_text / next_text carry the neighbours for a smooth read), and
 * each answer's audio is decoded by ffmpeg to 16-bit mono PCM and laid end
 * to end.  Each sentence becomes one subtitle cue, from the start time of
 * its first character to the end time of its last one in the answer's
 * alignment, plus the start of its request's audio in the whole.
 *
 * Invariants:
 *  - audio.wav, subtitles.srt, words.json and timeline.json have exactly
 *    the shape tts_offline.c writes, written atomically, timeline.json last;
 *    a word is timed from its first character's start to its last one's end;
 *  - a request's offset is the number of samples decoded before it, so
 *    cues never drift however many requests there are;
 *  - every 2xx answer is one cost row ("elevenlabs", "tts", the
 *    character-cost header or the characters sent, "characters");
 *  - a good answer is kept as .tts-<sha256 of the request>.json until the
 *    stage succeeds, so a run retried after a failure in a later request
 *    does not pay again for the earlier ones (and records no cost for them);
 *  - recover: history (the default): before a request, a mark (recover.c)
 *    tts-<sha256 of the request> = {since, voice, model, text_sha256} is in
 *    the provider state; the answer's history-item-id is added to it.  An
 *    attempt that finds a mark but no kept answer fetches the audio of that
 *    history item, or looks the request up in GET /v1/history (same text,
 *    voice and model, date_unix at or after since) and fetches its audio
 *    (GET /v1/history/{id}/audio, not billed), and sends again only when
 *    the history has no such item.  A recovered item has no alignment: its
 *    subtitle and word times are estimated.  Its cost row is recorded then,
 *    from the item's character counts (the process that paid died before
 *    it could record it); an item already noted by id records none;
 *  - scratch files are .tts-NNN.<pid>.tmp.* and are removed whatever the outcome.
 */
#define _GNU_SOURCE
#include "provider.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Options (checked when a channel loads); rps, concurrency and the key
 * options come from the shared sets.  Always paid. */
/* clang-format off: a table keeps one row per line */
const struct provider_opt elevenlabs_opts[] = {
	{ "base_url", OPT_URL, "https://api.elevenlabs.io", 0, 0, NULL, "the API root" },
	{ "voice_id", OPT_STRING, NULL, 0, 128, NULL, "ElevenLabs voice id (default: voice_profile.voice_id)" },
	{ "model_id", OPT_STRING, "eleven_multilingual_v2", 0, 100, NULL, "speech model" },
	{ "output_format", OPT_STRING, "mp3_44100_128", 0, 40, NULL,
	  "codec_rate[_bitrate], e.g. mp3_44100_128, pcm_24000" },
	{ "max_chars", OPT_INTEGER, NULL, 100, 1000000, NULL, "characters per request (default: the model's limit)" },
	{ "timeout", OPT_NUMBER, "300", 1, 3600, NULL, "seconds one request may take" },
	{ "language_code", OPT_STRING, NULL, 0, 16, NULL, "ISO 639-1 language, e.g. en" },
	{ "apply_text_normalization", OPT_ENUM, NULL, 0, 0, "auto|on|off", "spell out numbers and the like" },
	{ "seed", OPT_INTEGER, NULL, 0, 4294967295.0, NULL, "sampling seed, for repeatable speech" },
	{ "recover", OPT_ENUM, "history", 0, 0, "history|none",
	  "after a crash, find a request's speech in the history before paying again" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};
/* clang-format on */

#define CONTEXT_CHARS 1000 /* previous_text / next_text */
#define TAIL_MS 300        /* silence after the last sentence, as espeak */
#define ANSWER_MAX ((size_t)256 << 20)
#define PCM_MAX ((size_t)2 << 30)
#define PRICE_PER_1K_DEFAULT 0.30
#define HISTORY_PAGES 10 /* of 100 items: how far back a look-up goes */

struct el_opts {
	char *url, *key_hdr, *base;
	const char *model, *format, *voice;
	int max_chars, timeout, recover;
	unsigned rate;
};
struct said {              /* one request's answer */
	cJSON *json;       /* the with-timestamps answer; NULL: audio from the history (no alignment) */
	struct sbuf audio; /* its audio bytes */
	int probe;         /* 1: a file ffmpeg recognises, whatever output_format says */
};
struct unit {
	size_t seg;
	char *text;
	size_t off, len;
}; /* off/len: code points in its chunk */
struct chunk {
	size_t first, n;
	char *text;
};
struct tts {
	struct el_opts o;
	struct unit *u;
	size_t nu;
	struct chunk *ch;
	size_t nch;
	struct media_pcm pcm;
	struct media_cue *cue; /* one per unit */
	struct media_words words;
	double chars, usd;
};

/* ---- small helpers ----------------------------------------------------------- */

static size_t cp_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++) n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Byte offset of code point i (or the end). */
static size_t cp_byte(const char *s, size_t i)
{
	size_t b = 0;

	for (; s[b] && i; i--)
		for (b++; ((unsigned char)s[b] & 0xc0) == 0x80; b++)
			;
	return b;
}

static void scratch_clean(void)
{
	DIR *d = opendir(".");
	struct dirent *e;

	if (!d) return;
	while ((e = readdir(d)) != NULL)
		if (!strncmp(e->d_name, ".tts-", 5) && strstr(e->d_name, ".tmp.")) unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

static void cache_clean(void)
{
	DIR *d = opendir(".");
	struct dirent *e;
	size_t n;

	if (!d) return;
	while ((e = readdir(d)) != NULL)
		if (!strncmp(e->d_name, ".tts-", 5) && (n = strlen(e->d_name)) > 5 + 5 &&
		    !strcmp(e->d_name + n - 5, ".json") && !strstr(e->d_name, ".tmp."))
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

/* ---- options ------------------------------------------------------------------- */

static int default_chars(const char *model)
{
	if (!strcmp(model, "eleven_v3")) return 5000;
	if (strstr(model, "_v2_5")) return 40000;
	if (!strcmp(model, "eleven_flash_v2") || !strcmp(model, "eleven_turbo_v2")) return 30000;
	return 10000;
}

static const char *voice_id(const struct stage_ctx *ctx)
{
	const char *v = json_str(ctx->provider, "voice_id", json_str(ctx->channel, "voice_profile.voice_id", NULL));

	if (!v || !*v || strlen(v) > 128 ||
	    strspn(v,
		   "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(v)) {
		err_set("providers.audio.voice_id or voice_profile.voice_id in channel.yaml: "
			"set the ElevenLabs voice id (letters, digits, '_' and '-'), not \"%s\"",
			v ? v : "");
		return NULL;
	}
	return v;
}

/* output_format codec_rate[_bitrate]; the rate is what we decode to. */
static int format_rate(const char *f, unsigned *rate)
{
	const char *u = strchr(f, '_');
	long r = u ? strtol(u + 1, NULL, 10) : 0;

	if (strlen(f) > 40 || strspn(f, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(f) || r < 8000 || r > 192000)
		return err_set("providers.audio.output_format \"%s\": use e.g. mp3_44100_128, "
			       "pcm_24000 or wav_44100",
			       f);
	*rate = (unsigned)r;
	return 0;
}

static int opts_load(struct stage_ctx *ctx, struct el_opts *o)
{
	const char *base = json_str(ctx->provider, "base_url", "https://api.elevenlabs.io");
	const char *voice = voice_id(ctx);
	size_t n = strlen(base);
	double mc, t = json_num(ctx->provider, "timeout", 300);
	char *key;

	o->model = json_str(ctx->provider, "model_id", "eleven_multilingual_v2");
	o->format = json_str(ctx->provider, "output_format", "mp3_44100_128");
	mc = json_num(ctx->provider, "max_chars", default_chars(o->model));
	if (!voice || format_rate(o->format, &o->rate) < 0) return -1;
	if (mc < 100 || mc > 1000000 || t < 1 || t > 3600)
		return err_set("providers.audio: max_chars %g (use 100 or more) or timeout %g "
			       "(1 to 3600 s) is out of range",
			       mc, t);
	if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8))
		return err_set("providers.audio.base_url \"%s\": use an http:// or https:// URL", base);
	while (n && base[n - 1] == '/') n--;
	o->max_chars = (int)mc;
	o->timeout = (int)t;
	o->voice = voice;
	o->recover = strcmp(json_str(ctx->provider, "recover", "history"), "none") != 0;
	o->base = xasprintf("%.*s", (int)n, base);
	o->url = xasprintf("%.*s/v1/text-to-speech/%s/with-timestamps?output_format=%s", (int)n, base, voice,
			   o->format);
	if (!(key = credential_get(ctx, NULL))) return -1;
	o->key_hdr = xasprintf("xi-api-key: %s", key);
	free(key);
	return 0;
}

/* ---- sentences and requests ---------------------------------------------------- */

static void unit_add(struct tts *t, size_t seg, const char *s, size_t bytes)
{
	t->u = xrealloc(t->u, (t->nu + 1) * sizeof *t->u);
	t->u[t->nu++] = (struct unit){ .seg = seg, .text = xasprintf("%.*s", (int)bytes, s) };
}

/* A sentence longer than a request is cut at spaces (hard, if it has none). */
static void units_from_sentence(struct tts *t, size_t seg, const char *s, size_t max)
{
	while (cp_len(s) > max) {
		size_t cut = cp_byte(s, max), b = cut;
		while (b > 0 && s[b] != ' ') b--;
		if (b == 0) b = cut;
		unit_add(t, seg, s, b);
		s += b + (s[b] == ' ');
	}
	if (*s) unit_add(t, seg, s, strlen(s));
}

static void units_build(struct tts *t, const struct script *sc)
{
	for (size_t i = 0; i < sc->n; i++) {
		char **sent = NULL;
		size_t ns = script_sentences(sc->seg[i].text, &sent);
		for (size_t k = 0; k < ns; k++) {
			units_from_sentence(t, i, sent[k], (size_t)t->o.max_chars);
			free(sent[k]);
		}
		free(sent);
	}
}

/* Greedy packing: sentences joined by one space, at most max_chars each. */
static void chunks_build(struct tts *t)
{
	size_t len = 0;
	struct sbuf b = { 0 };

	for (size_t i = 0; i < t->nu; i++) {
		size_t n = cp_len(t->u[i].text);
		if (b.len && len + 1 + n > (size_t)t->o.max_chars) {
			t->ch[t->nch - 1].text = b.s;
			b = (struct sbuf){ 0 };
			len = 0;
		}
		if (!b.len) {
			t->ch = xrealloc(t->ch, (t->nch + 1) * sizeof *t->ch);
			t->ch[t->nch++] = (struct chunk){ .first = i };
		} else {
			sb_add(&b, " ", 1), len++;
		}
		t->u[i].off = len, t->u[i].len = n;
		sb_puts(&b, t->u[i].text);
		len += n;
		t->ch[t->nch - 1].n++;
	}
	if (t->nch) t->ch[t->nch - 1].text = b.s;
}

static void voice_settings(const struct stage_ctx *ctx, cJSON *body)
{
	static const char *const nums[] = { "stability", "similarity_boost", "style", "speed", NULL };
	const cJSON *vp = json_get(ctx->channel, "voice_profile");
	cJSON *vs = cJSON_CreateObject();

	for (const char *const *k = nums; *k; k++)
		if (cJSON_IsNumber(json_get(vp, *k))) cJSON_AddNumberToObject(vs, *k, json_num(vp, *k, 0));
	if (cJSON_IsBool(json_get(vp, "use_speaker_boost")))
		cJSON_AddBoolToObject(vs, "use_speaker_boost", json_bool(vp, "use_speaker_boost", 1));
	if (vs->child)
		cJSON_AddItemToObject(body, "voice_settings", vs);
	else
		cJSON_Delete(vs); /* none: the voice's own settings */
}

static char *body_build(const struct stage_ctx *ctx, const struct tts *t, size_t k)
{
	cJSON *b = cJSON_CreateObject();
	const char *opt[] = { "language_code", "apply_text_normalization", NULL };
	char *s;

	cJSON_AddStringToObject(b, "text", t->ch[k].text);
	cJSON_AddStringToObject(b, "model_id", t->o.model);
	voice_settings(ctx, b);
	for (const char **o = opt; *o; o++)
		if (json_str(ctx->provider, *o, NULL)) cJSON_AddStringToObject(b, *o, json_str(ctx->provider, *o, ""));
	if (cJSON_IsNumber(json_get(ctx->provider, "seed")))
		cJSON_AddNumberToObject(b, "seed", floor(json_num(ctx->provider, "seed", 0)));
	if (k > 0) {
		const char *p = t->ch[k - 1].text;
		size_t n = cp_len(p);
		cJSON_AddStringToObject(b, "previous_text", p + cp_byte(p, n > CONTEXT_CHARS ? n - CONTEXT_CHARS : 0));
	}
	if (k + 1 < t->nch) {
		const char *n = t->ch[k + 1].text;
		char *next = xasprintf("%.*s", (int)cp_byte(n, CONTEXT_CHARS), n);
		cJSON_AddStringToObject(b, "next_text", next);
		free(next);
	}
	s = json_print(b);
	cJSON_Delete(b);
	return s;
}

/* ---- one request ------------------------------------------------------------------ */

static void cost_add(struct stage_ctx *ctx, struct tts *t, double units)
{
	double per_1k = json_num(ctx->global, "prices.elevenlabs.per_1k_chars", PRICE_PER_1K_DEFAULT);

	stage_cost(ctx, "elevenlabs", "tts", units, "characters", units / 1000 * per_1k);
	t->chars += units;
	t->usd += units / 1000 * per_1k;
}

/* The cost row of a paid answer: its character-cost header, else the characters sent. */
static void cost_record(struct stage_ctx *ctx, struct tts *t, const struct http_resp *r, const char *text)
{
	char v[64];
	double units = http_header(r, "character-cost", v, sizeof v) ? strtod(v, NULL) : -1;

	cost_add(ctx, t, units >= 0 ? units : (double)cp_len(text));
}

/* The audio of a with-timestamps answer (a->json). */
static enum stage_rc said_from_json(struct stage_ctx *ctx, const struct tts *t, size_t k, struct said *a)
{
	if (!cJSON_IsString(json_get(a->json, "audio_base64")))
		return stage_fail(ctx, STAGE_RETRY,
				  "elevenlabs: the answer to request %zu/%zu has no audio_base64 (invalid JSON?)",
				  k + 1, t->nch);
	if (base64_decode(json_str(a->json, "audio_base64", ""), &a->audio) < 0 || !a->audio.len)
		return stage_fail(ctx, STAGE_RETRY, "elevenlabs: request %zu/%zu: audio_base64 is empty or not base64",
				  k + 1, t->nch);
	return STAGE_OK;
}

/* ---- recovery: the history of generations ------------------------------------------- */

static enum stage_rc lookup_failed(struct stage_ctx *ctx, const struct tts *t, size_t k, struct http_resp *r)
{
	char *what = xasprintf("audio request %zu/%zu in the history", k + 1, t->nch);
	enum stage_rc rc = recover_lookup_failed(ctx, r, what);

	free(what);
	return rc;
}

/* The generation of chunk k in one page of history items, newest first: the
 * last match is the first one paid.  Same text, voice and model, made at or
 * after the mark. */
static void history_match(const struct tts *t, size_t k, double since, const cJSON *items, char **id, double *units)
{
	const cJSON *it;

	cJSON_ArrayForEach (it, items) {
		const char *hid = json_str(it, "history_item_id", ""), *model = json_str(it, "model_id", NULL);
		double from = json_num(it, "character_count_change_from", 0);
		double to = json_num(it, "character_count_change_to", 0);
		if (strcmp(json_str(it, "text", ""), t->ch[k].text) ||
		    strcmp(json_str(it, "voice_id", ""), t->o.voice) || (model && strcmp(model, t->o.model)) ||
		    json_num(it, "date_unix", 0) < since - RECOVER_CLOCK_SLACK_S || !recover_id_ok(hid))
			continue;
		free(*id);
		*id = xstrdup(hid);
		*units = to > from ? to - from : (double)cp_len(t->ch[k].text);
	}
}

/* GET /v1/history for this voice since the mark, page by page: *id
 * (malloc'd) and the characters billed, or *id NULL when there is none. */
static enum stage_rc history_find(struct stage_ctx *ctx, struct tts *t, size_t k, double since, char **id,
				  double *units)
{
	const char *hdrs[] = { "Accept: application/json", t->o.key_hdr, NULL };
	char *after = NULL;
	enum stage_rc rc = STAGE_OK;

	for (int page = 0; page < HISTORY_PAGES; page++) {
		char *url = xasprintf("%s/v1/history?voice_id=%s&date_after_unix=%.0f&page_size=100%s%s", t->o.base,
				      t->o.voice, since - RECOVER_CLOCK_SLACK_S,
				      after ? "&start_after_history_item_id=" : "", after ? after : "");
		struct http_resp r;
		cJSON *j = NULL;
		int ok = recover_get(ctx, "elevenlabs", url, hdrs, t->o.timeout, &r) == 0;
		free(url), free(after), after = NULL;
		if (!ok) {
			rc = lookup_failed(ctx, t, k, &r);
			break;
		}
		j = cJSON_ParseWithLength(r.body.s ? r.body.s : "", r.body.len);
		http_resp_free(&r);
		history_match(t, k, since, json_get(j, "history"), id, units);
		if (json_bool(j, "has_more", 0) && recover_id_ok(json_str(j, "last_history_item_id", "")))
			after = xstrdup(json_str(j, "last_history_item_id", ""));
		cJSON_Delete(j);
		if (!after) break;
	}
	free(after);
	return rc;
}

/* Raw samples (pcm, u-law, a-law) are decoded as output_format says. */
static int is_raw(const char *ctype)
{
	return strcasestr(ctype, "pcm") || strcasestr(ctype, "basic") || strcasestr(ctype, "law") ||
		strcasestr(ctype, "l16");
}

/* GET /v1/history/{id}/audio: the generation again, not billed. */
static enum stage_rc history_audio(struct stage_ctx *ctx, struct tts *t, size_t k, const char *id, struct said *a)
{
	const char *hdrs[] = { "Accept: */*", t->o.key_hdr, NULL };
	char *url = xasprintf("%s/v1/history/%s/audio", t->o.base, id), ct[80];
	struct http_resp r;
	enum stage_rc rc = STAGE_OK;

	if (recover_get(ctx, "elevenlabs", url, hdrs, t->o.timeout, &r) < 0) {
		rc = lookup_failed(ctx, t, k, &r);
	} else {
		sb_add(&a->audio, r.body.s ? r.body.s : "", r.body.len);
		a->probe = !http_header(&r, "content-type", ct, sizeof ct) || !is_raw(ct);
		http_resp_free(&r);
	}
	free(url);
	return rc;
}

/* An earlier attempt's speech for chunk k (a->audio set), or none (a->audio
 * empty: send the request); STAGE_RETRY when the look-up may pass later. */
static enum stage_rc recover(struct stage_ctx *ctx, struct tts *t, size_t k, const char *mkey, cJSON *mark,
			     struct said *a)
{
	const char *known = json_str(mark, "id", NULL);
	char *found = NULL;
	double units = 0;
	enum stage_rc rc = STAGE_OK;
	const char *hid;

	if (!known) rc = history_find(ctx, t, k, json_num(mark, "since", 0), &found, &units);
	hid = known ? known : found;
	if (rc == STAGE_OK && hid) rc = history_audio(ctx, t, k, hid, a);
	if (rc == STAGE_OK && hid && a->audio.len) {
		stage_log(ctx, "info",
			  "audio: request %zu/%zu was paid for by an earlier attempt; its speech is history item %s, "
			  "fetched again (not billed; subtitle and word times estimated)",
			  k + 1, t->nch, hid);
		if (found) cost_add(ctx, t, units); /* the attempt that paid died before recording it */
		if (found) recover_mark_done(ctx, mkey, mark, found);
	} else if (rc == STAGE_OK && !known) {
		char *what = xasprintf("audio request %zu/%zu", k + 1, t->nch);
		if ((rc = recover_wait(ctx, mark, t->o.timeout, what)) == STAGE_OK)
			stage_log(ctx, "info",
				  "audio: %s, sent by an earlier attempt, is not in the history; sending it again",
				  what);
		free(what);
	}
	a->audio.len = rc == STAGE_OK ? a->audio.len : 0;
	free(found);
	return rc;
}

/* ---- paying for a request ---------------------------------------------------------- */

static cJSON *mark_new(const struct tts *t, size_t k)
{
	cJSON *m = recover_mark_new();
	char sha[65];

	hash_hex(t->ch[k].text, strlen(t->ch[k].text), sha);
	cJSON_AddStringToObject(m, "voice", t->o.voice);
	cJSON_AddStringToObject(m, "model", t->o.model);
	cJSON_AddStringToObject(m, "text_sha256", sha);
	return m;
}

/* Chunk k paid for now: marked in flight first (recover: history), kept
 * as the cache file once answered, and the mark given its history item. */
static enum stage_rc send(struct stage_ctx *ctx, struct tts *t, size_t k, const char *body, const char *cache,
			  const char *mkey, struct said *a)
{
	const char *hdrs[] = { "Content-Type: application/json", "Accept: application/json", t->o.key_hdr, NULL };
	struct http_req q = { .provider = "elevenlabs",
			      .method = "POST",
			      .url = t->o.url,
			      .headers = hdrs,
			      .body = body,
			      .body_len = strlen(body),
			      .max_response = ANSWER_MAX,
			      .timeout_s = t->o.timeout,
			      .not_idempotent = t->o.recover };
	cJSON *mark = t->o.recover ? mark_new(t, k) : NULL;
	struct http_resp r;
	enum stage_rc rc;
	char v[80];

	if (mark && recover_mark_set(ctx, mkey, mark) < 0) {
		cJSON_Delete(mark);
		return stage_fail(ctx, STAGE_RETRY, "audio: cannot note request %zu/%zu before paying for it: %s",
				  k + 1, t->nch, err_msg());
	}
	if (http_request(&ctx->http, &q, &r) == 0) {
		cost_record(ctx, t, &r, t->ch[k].text);
		a->json = cJSON_ParseWithLength(r.body.s ? r.body.s : "", r.body.len);
		if ((rc = said_from_json(ctx, t, k, a)) == STAGE_OK &&
		    fsio_write_atomic(cache, r.body.s, r.body.len) < 0)
			stage_log(ctx, "warn", "audio: cannot keep the answer: %s", err_msg());
		recover_mark_done(ctx, mkey, mark, http_header(&r, "history-item-id", v, sizeof v));
		stage_log(ctx, "info", "audio: request %zu/%zu, %zu characters (request-id %s)", k + 1, t->nch,
			  cp_len(t->ch[k].text), http_header(&r, "request-id", v, sizeof v) ? v : "-");
	} else {
		if (mark && r.status >= 400 && r.status < 500) recover_mark_clear(ctx, mkey); /* nothing was made */
		if (r.retriable) ctx->retry_after = r.retry_after;
		/* lost on the way back (timeout, 5xx): the next attempt looks in the history first */
		rc = stage_fail(ctx, r.retriable || (mark && r.maybe_ran) ? STAGE_RETRY : STAGE_FAIL,
				"%s (request %zu/%zu)%s", r.error, k + 1, t->nch,
				mark && r.maybe_ran ? RECOVER_NEXT_TIME : "");
	}
	http_resp_free(&r);
	cJSON_Delete(mark);
	return rc;
}

/* The answer for chunk k: kept from an earlier run, recovered from the
 * history, or paid for now. */
static enum stage_rc fetch(struct stage_ctx *ctx, struct tts *t, size_t k, struct said *a)
{
	char *body = body_build(ctx, t, k), *key = xasprintf("%s\n%s", t->o.url, body), sha[65];
	char *cache, *mkey;
	cJSON *mark;
	enum stage_rc rc;

	hash_hex(key, strlen(key), sha);
	cache = xasprintf(".tts-%.32s.json", sha);
	mkey = xasprintf("tts-%.32s", sha);
	mark = t->o.recover ? recover_mark(ctx, mkey) : NULL;
	if (fsio_exists(cache) && (a->json = json_load_file(cache, ANSWER_MAX))) {
		stage_log(ctx, "info", "audio: request %zu/%zu answered earlier; reused, not paid again", k + 1,
			  t->nch);
		rc = said_from_json(ctx, t, k, a);
	} else if (!mark || ((rc = recover(ctx, t, k, mkey, mark, a)) == STAGE_OK && !a->audio.len)) {
		rc = send(ctx, t, k, body, cache, mkey, a);
	}
	cJSON_Delete(mark);
	free(body), free(key), free(cache), free(mkey);
	return rc;
}

/* ---- audio ---------------------------------------------------------------------------- */

static void pcm_add(struct media_pcm *p, const int16_t *s, size_t n)
{
	if (p->n + n > p->cap) {
		while (p->n + n > p->cap) p->cap = p->cap ? p->cap * 2 : (size_t)1 << 20;
		p->s = xrealloc(p->s, p->cap * sizeof *p->s);
	}
	if (s)
		memcpy(p->s + p->n, s, n * sizeof *s);
	else
		memset(p->s + p->n, 0, n * sizeof *p->s);
	p->n += n;
}

/* Decodes the answer's audio with ffmpeg and appends it to the narration. */
static enum stage_rc decode(struct stage_ctx *ctx, struct tts *t, size_t k, const struct said *ans)
{
	char name[40], *in, *out;
	struct media_argv a = { 0 };
	enum stage_rc rc = STAGE_OK;
	const char *f = t->o.format;
	char *pcm = NULL;
	size_t len = 0;

	snprintf(name, sizeof name, "tts-%03zu", k + 1);
	in = fsio_tmp_name_ext(name, "audio");
	out = fsio_tmp_name_ext(name, "pcm");
	if (fsio_write_atomic(in, ans->audio.s, ans->audio.len) < 0) {
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
		goto out;
	}
	media_argv_words(&a, "ffmpeg -nostdin -hide_banner -loglevel error -y");
	if (!ans->probe && (!strncmp(f, "pcm_", 4) || !strncmp(f, "ulaw_", 5) || !strncmp(f, "alaw_", 5))) {
		/* raw samples: say what they are */
		media_argv_opt(&a, "-f", "%s", *f == 'p' ? "s16le" : *f == 'u' ? "mulaw" : "alaw");
		media_argv_opt(&a, "-ar", "%u", t->o.rate);
		media_argv_words(&a, "-ac 1");
	}
	media_argv_opt(&a, "-i", "%s", in);
	media_argv_opt(&a, "-ar", "%u", t->o.rate);
	media_argv_words(&a, "-ac 1 -f s16le -c:a pcm_s16le");
	media_argv_add(&a, "%s", out);
	rc = media_run(ctx, &a, "the ElevenLabs audio (check providers.audio.output_format)");
	if (rc != STAGE_OK) goto out;
	if (!(pcm = fsio_read(out, PCM_MAX, &len))) {
		rc = stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
		goto out;
	}
	pcm_add(&t->pcm, (const int16_t *)(void *)pcm, len / 2);
out:
	unlink(in), unlink(out);
	free(in), free(out);
	media_argv_free(&a);
	free(pcm);
	return rc;
}

/* ---- cues from the alignment ------------------------------------------------------- */

/* The alignment whose characters match the text sent, else the one there is. */
static const cJSON *alignment(const cJSON *ans, size_t nchars, int *exact)
{
	const cJSON *a = json_get(ans, "alignment"), *n = json_get(ans, "normalized_alignment");
	const cJSON *pick = NULL;

	*exact = 1;
	if ((size_t)cJSON_GetArraySize(json_get(a, "character_start_times_seconds")) == nchars)
		pick = a;
	else if ((size_t)cJSON_GetArraySize(json_get(n, "character_start_times_seconds")) == nchars)
		pick = n;
	if (!pick) {
		*exact = 0;
		pick = cJSON_GetArraySize(json_get(a, "character_start_times_seconds"))    ? a
			: cJSON_GetArraySize(json_get(n, "character_start_times_seconds")) ? n
											   : NULL;
	}
	return pick;
}

/* When character i (of nchars) starts or ends, by the alignment (scaled
 * when its length differs), else spread evenly over the audio.  A request
 * text of no code point at all (stray UTF-8 continuation bytes in an edited
 * script) spans the whole audio. */
static double char_time(const cJSON *al, int end, size_t i, size_t nchars, double dur)
{
	const cJSON *arr = json_get(al, end ? "character_end_times_seconds" : "character_start_times_seconds"), *v;
	size_t na = (size_t)cJSON_GetArraySize(arr);

	if (!nchars) return end ? dur : 0;
	v = na ? cJSON_GetArrayItem(arr, (int)(na == nchars ? i : i * na / nchars)) : NULL;
	return cJSON_IsNumber(v) ? v->valuedouble : dur * (double)(i + (size_t)end) / (double)nchars;
}

/* The words of unit u timed by the alignment: a word from the start of its
 * first character to the end of its last one. */
static void words_for_unit(struct tts *t, const struct unit *u, const cJSON *al, size_t nchars, double offset,
			   double dur)
{
	double *t0 = NULL, *t1 = NULL;
	size_t n = 0, cp = 0;

	if (!al) { /* no alignment (audio from the history): by syllables within the cue */
		words_estimate(&t->words, u->text, (int)u->seg, t->cue[u - t->u].start, t->cue[u - t->u].end);
		return;
	}
	for (const char *p = u->text; *p;) {
		size_t first, len = 0;
		for (; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++) cp++;
		if (!*p) break;
		for (first = cp; *p && !strchr(" \t\n\r", *p); p++) {
			cp += ((unsigned char)*p & 0xc0) != 0x80;
			len += ((unsigned char)*p & 0xc0) != 0x80;
		}
		t0 = xrealloc(t0, (n + 1) * sizeof *t0);
		t1 = xrealloc(t1, (n + 1) * sizeof *t1);
		t0[n] = offset + fmin(fmax(char_time(al, 0, u->off + first, nchars, dur), 0), dur);
		t1[n++] = offset + fmin(fmax(char_time(al, 1, u->off + first + len - 1, nchars, dur), 0), dur);
	}
	(void)words_place(&t->words, u->text, (int)u->seg, t0, t1, n, t->cue[u - t->u].start, t->cue[u - t->u].end);
	free(t0);
	free(t1);
}

static void cues_for_chunk(struct stage_ctx *ctx, struct tts *t, size_t k, const cJSON *ans, double offset, double dur)
{
	size_t nchars = cp_len(t->ch[k].text);
	int exact;
	const cJSON *al = alignment(ans, nchars, &exact);

	if (!exact)
		stage_log(ctx, "warn", "audio: request %zu/%zu: %s; subtitle times are estimated", k + 1, t->nch,
			  al ? "the alignment does not match the text sent" : "no alignment");
	for (size_t i = t->ch[k].first; i < t->ch[k].first + t->ch[k].n; i++) {
		const struct unit *u = &t->u[i];
		double s = char_time(al, 0, u->off, nchars, dur);
		double e = char_time(al, 1, u->off + u->len - 1, nchars, dur);
		s = fmin(fmax(s, 0), dur);
		e = fmin(fmax(e, s + 0.04), dur);
		t->cue[i] = (struct media_cue){ offset + s, offset + e, u->text };
		words_for_unit(t, u, al, nchars, offset, dur);
	}
}

/* ---- outputs (the shapes of prov_espeak.c) --------------------------------------------- */

static enum stage_rc write_outputs(struct stage_ctx *ctx, const struct script *sc, struct tts *t)
{
	struct media_frame f;
	double total, *start;
	int rc;

	if (media_frame_get(ctx->channel, &f) < 0) return stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
	pcm_add(&t->pcm, NULL, (size_t)TAIL_MS * t->pcm.rate / 1000);
	total = (double)t->pcm.n / t->pcm.rate;
	start = xcalloc(sc->n + 1, sizeof *start);
	for (size_t i = t->nu; i-- > 0;) start[t->u[i].seg] = t->cue[i].start;
	rc = words_write(&t->words, "words.json");
	if (rc == 0) rc = narration_write(sc, &t->pcm, t->cue, t->nu, start, &f);
	free(start);
	if (rc < 0) return stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	stage_log(ctx, "info",
		  "audio.wav: %.2f s, %zu segments, %zu subtitles, %zu request%s, "
		  "%.0f characters billed, %.4f USD",
		  total, sc->n, t->nu, t->nch, t->nch == 1 ? "" : "s", t->chars, t->usd);
	stage_output(ctx, "audio", "audio.wav", "audio/wav", lround(total * 1000));
	return STAGE_OK;
}

/* ---- the stage ------------------------------------------------------------------------- */

static enum stage_rc narrate(struct stage_ctx *ctx, struct tts *t, const struct script *sc)
{
	enum stage_rc rc = STAGE_OK;

	units_build(t, sc);
	chunks_build(t);
	if (!t->nu)
		return stage_fail(ctx, STAGE_FAIL,
				  "script.md has no narration to speak; add text "
				  "under the [AVATAR]/[VOICEOVER]/[BROLL] markers");
	t->cue = xcalloc(t->nu, sizeof *t->cue);
	t->pcm.rate = t->o.rate;
	for (size_t k = 0; k < t->nch && rc == STAGE_OK; k++) {
		struct said a = { 0 };
		double offset = (double)t->pcm.n / t->pcm.rate;
		if ((rc = fetch(ctx, t, k, &a)) == STAGE_OK && (rc = decode(ctx, t, k, &a)) == STAGE_OK)
			cues_for_chunk(ctx, t, k, a.json, offset, (double)t->pcm.n / t->pcm.rate - offset);
		cJSON_Delete(a.json);
		sb_free(&a.audio);
	}
	if (rc == STAGE_OK) rc = write_outputs(ctx, sc, t);
	return rc;
}

static void tts_free(struct tts *t)
{
	for (size_t i = 0; i < t->nu; i++) free(t->u[i].text);
	for (size_t i = 0; i < t->nch; i++) free(t->ch[i].text);
	free(t->u), free(t->ch), free(t->cue), free(t->pcm.s);
	words_clear(&t->words);
	free(t->o.url), free(t->o.key_hdr), free(t->o.base);
}

enum stage_rc prov_audio_elevenlabs(struct stage_ctx *ctx)
{
	struct tts t = { 0 };
	struct script sc = { 0 };
	char *text = NULL;
	enum stage_rc rc;

	if (opts_load(ctx, &t.o) < 0) {
		rc = stage_fail(ctx, STAGE_FAIL, "%s", err_msg());
		goto out;
	}
	if (!(text = fsio_read("script.md", IDEA_MAX_BYTES * 4, NULL))) {
		rc = stage_fail(ctx, STAGE_FAIL, "%s; run the scripting stage first", err_msg());
		goto out;
	}
	script_parse(text, &sc);
	scratch_clean();
	rc = narrate(ctx, &t, &sc);
	scratch_clean();
	if (rc == STAGE_OK) cache_clean();
out:
	script_free(&sc);
	free(text);
	tts_free(&t);
	return rc;
}
