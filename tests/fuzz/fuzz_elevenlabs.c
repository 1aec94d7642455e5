/*
 * fuzz_elevenlabs.c - answers of ElevenLabs' with-timestamps endpoint: the
 * audio_base64 field and the character alignment the subtitle cues are
 * timed from (src/prov_elevenlabs.c, included: its parsers are static).
 * The input is "SCRIPT\0ANSWER": the script is cut into sentences, units
 * and requests as the stage does, and every request gets the answer.
 */
#include "../../src/prov_elevenlabs.c"
#include "fuzz.h"

static void answer(struct stage_ctx *ctx, struct tts *t, const cJSON *ans)
{
	struct sbuf audio = { 0 };
	struct http_resp r = { .status = 200 };
	double offset = 0;

	(void)!base64_decode(json_str(ans, "audio_base64", ""), &audio);
	for (size_t k = 0; k < t->nch; k++) {
		double dur = 0.5 + (double)(audio.len % 7);
		free(body_build(ctx, t, k));
		cost_record(ctx, t, &r, t->ch[k].text);
		cues_for_chunk(ctx, t, k, ans, offset, dur);
		offset += dur;
	}
	sb_free(&audio);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stage_ctx ctx = { .stage = "audio", .episode_id = "fuzz" };
	struct tts t = { .o.max_chars = 100 };
	struct script sc;
	char *text, *body;
	cJSON *ans;

	fuzz_split(data, size, &text, &body);
	ctx.episode_dir = fuzz_dir();
	(void)script_parse(text, &sc);
	units_build(&t, &sc);
	chunks_build(&t);
	t.cue = xcalloc(t.nu + 1, sizeof *t.cue);
	if ((ans = cJSON_Parse(body))) answer(&ctx, &t, ans);
	cJSON_Delete(ans), cJSON_Delete(ctx.costs);
	script_free(&sc);
	tts_free(&t);
	free(text), free(body);
	return 0;
}
