/*
 * fuzz_clips.c - answers of the paid clip services: HeyGen (upload, generate,
 * video_status.get and video.list: src/prov_heygen.c) and Runway (task create and
 * GET /v1/tasks: src/prov_runway.c), through the same calls the clip-job
 * loop makes (src/clip_jobs.c).  Both providers are included: their
 * parsers are static.  The first byte picks the provider.
 */
#include "../../src/prov_heygen.c"
#include "../../src/prov_runway.c"
#include "fuzz.h"

static void heygen_answer(struct clip_jobs *r, const struct media_seg *s, const cJSON *j)
{
	char *id = NULL, *url = NULL;
	double units = 0, usd = 0;
	int back = 0;
	(void)hg_check(r, j, "generate");
	hg_list_page(json_get(j, "data.videos"), "acog-fuzz-01-1", 1e9, &id, &back);
	free(id);
	id = NULL;
	(void)!clip_jobs_answer_id(r, STAGE_OK, j, "data.video_id", "generate", &id);
	free(id);
	(void)!clip_jobs_answer_id(r, STAGE_OK, j, "data.id", "upload", &id);
	free(id);
	(void)hg_status(r, s, "v1", j, &url, &units, &usd);
	free(url);
}

static void runway_answer(struct clip_jobs *r, const struct media_seg *s, const cJSON *j)
{
	char *id = NULL, *url = NULL;
	double units = 0, usd = 0;
	(void)!clip_jobs_answer_id(r, STAGE_OK, j, "id", "create", &id);
	free(id);
	(void)rw_status(r, s, "t1", j, &url, &units, &usd);
	free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stage_ctx ctx = { .stage = "avatar", .episode_id = "fuzz" };
	/* seg-01_retried set: a BAD_OUTPUT answer is judged without writing the store */
	struct clip_jobs r = { .ctx = &ctx, .poll_s = 10 };
	struct media_seg s = { .index = 1, .start = 0, .end = 4 };
	char *body;
	cJSON *j;

	if (size < 1) return 0;
	r.jobs = cJSON_Parse("{\"seg-01_retried\":\"x\"}");
	ctx.episode_dir = fuzz_dir();
	body = fuzz_str(data + 1, size - 1);
	if ((j = cJSON_Parse(body))) {
		r.p = data[0] & 1 ? &runway : &heygen;
		if (data[0] & 1)
			runway_answer(&r, &s, j);
		else
			heygen_answer(&r, &s, j);
	}
	cJSON_Delete(j), cJSON_Delete(r.jobs);
	free(body);
	return 0;
}
