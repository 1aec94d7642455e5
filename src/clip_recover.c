/*
 * clip_recover.c - never pay twice for an asynchronous clip job (HeyGen
 * avatar video) whose id was lost: the stage child killed, alone or with
 * the daemon, after the job-creating request went out and before the id it
 * answered was stored.  clip_jobs.c calls it; the provider brings the
 * look-up (clip_jobs_prov.find: HeyGen's GET /v1/video.list).
 *
 * Before the request a mark (recover.c) is stored under
 * episode:seg-NN_mark = {"since", "tag", "fp", "id"}: the tag is unique to
 * this submission (acog-<episode>-<NN>-<ms>) and is sent with it where the
 * provider keeps it (HeyGen: the title); fp is the segment's fingerprint.
 * Once the job's id is stored the mark gets it too.  A later attempt of a
 * segment without a live id that finds a mark with the same fp adopts the
 * mark's id, or looks the tag up and adopts what it finds; found nothing
 * while the request could still be running at the provider, it looks
 * again later (STAGE_PENDING); found nothing after that, it submits again.
 * A look-up that cannot tell fails the stage for a person, as before.
 *
 * The key is STATE_KEY_EPISODE-prefixed, so a person's `acog-batch retry`
 * (a new job, whose other provider state is cleared) still finds the marks:
 * the retry adopts a job submitted by the failed one instead of paying for
 * it again.  A mark whose job failed at the provider (or was given up after
 * max_wait_seconds) is cleared, so a retry submits that segment anew; one
 * whose status request failed (a bad key, say) is kept.
 */
#include "provider.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *mark_key(int seg)
{
	return xasprintf(STATE_KEY_EPISODE "seg-%02d_mark", seg);
}

const char *clip_recover_tag(const struct clip_jobs *r)
{
	return r->mark ? json_str(r->mark, "tag", NULL) : NULL;
}

void clip_recover_begin(struct clip_jobs *r, int seg, const char *fp)
{
	char *tag;

	clip_recover_end(r);
	if (!r->recover) return;
	r->mark = recover_mark_new();
	tag = xasprintf("acog-%s-%02d-%llx", r->ctx->episode_id, seg, (unsigned long long)llround(time_now() * 1000));
	cJSON_AddStringToObject(r->mark, "tag", tag);
	cJSON_AddStringToObject(r->mark, "fp", fp);
	free(tag);
}

void clip_recover_end(struct clip_jobs *r)
{
	cJSON_Delete(r->mark);
	r->mark = NULL;
}

int clip_recover_store(struct clip_jobs *r, int seg)
{
	char *key;
	int rc;

	if (!r->mark) return 0;
	key = mark_key(seg);
	rc = recover_mark_set(r->ctx, key, r->mark);
	free(key);
	return rc;
}

void clip_recover_done(struct clip_jobs *r, int seg, const char *id)
{
	char *key = mark_key(seg);
	cJSON *mark = r->recover ? recover_mark(r->ctx, key) : NULL;

	recover_mark_done(r->ctx, key, mark, id);
	cJSON_Delete(mark);
	free(key);
}

void clip_recover_clear(struct clip_jobs *r, int seg)
{
	char *key = mark_key(seg);

	if (r->recover) recover_mark_clear(r->ctx, key);
	free(key);
}

/* The provider's look-up of the mark's tag; found: noted on the mark. */
static enum stage_rc look_up(struct clip_jobs *r, int seg, const char *key, cJSON *mark, char **id)
{
	char *what = xasprintf("the %s of segment %d (%s)", r->p->clip, seg, json_str(mark, "tag", ""));
	enum stage_rc rc = r->p->find(r, mark, id);

	if (rc == STAGE_OK && *id) {
		stage_log(r->ctx, "info", "%s: %s, submitted by an earlier attempt, found as %s: not paid again",
			  r->p->name, what, *id);
		recover_mark_done(r->ctx, key, mark, *id);
	} else if (rc == STAGE_OK && (rc = recover_wait(r->ctx, mark, r->timeout_s, what)) == STAGE_OK) {
		stage_log(r->ctx, "info", "%s: %s, sent by an earlier attempt, is not there; submitting it again",
			  r->p->name, what);
		recover_mark_clear(r->ctx, key);
		if (clip_jobs_get(r, seg, "sent") && clip_jobs_set(r, seg, "sent", "") < 0)
			rc = stage_fail(r->ctx, STAGE_RETRY, "%s: %s", r->p->name, err_msg());
	}
	free(what);
	return rc;
}

enum stage_rc clip_recover_find(struct clip_jobs *r, int seg, const char *fp, char **id, double *since)
{
	char *key = mark_key(seg);
	cJSON *mark = r->recover ? recover_mark(r->ctx, key) : NULL;
	const char *known = json_str(mark, "id", NULL);
	enum stage_rc rc = STAGE_OK;

	*id = NULL;
	*since = json_num(mark, "since", 0);
	if (!mark || strcmp(json_str(mark, "fp", ""), fp) != 0) {
		/* none, or one of another script or settings: nothing of this clip is in doubt */
	} else if (known && clip_jobs_id_ok(known)) {
		*id = xstrdup(known);
		stage_log(r->ctx, "info", "%s: segment %d was submitted as %s by an earlier job: not paid again",
			  r->p->name, seg, known);
	} else {
		rc = look_up(r, seg, key, mark, id);
	}
	cJSON_Delete(mark);
	free(key);
	return rc;
}
