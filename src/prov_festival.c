/*
 * prov_festival.c - audio stage, offline: narration with festival (laid out
 * by tts_offline.c), each sentence's words timed by festival itself.
 *
 * festival starts slowly (most of a second, loading a voice), so all the
 * sentences are spoken in one run of a Scheme script passed as a file
 * (festival -b FILE; no shell, the sentences are Scheme string literals):
 * for each one it saves the sentence's audio as a scratch WAV and prints
 * "S n", then one line per word, "W _k start end": the word's token k (a
 * whitespace-separated piece of the sentence; "25" is the two words of
 * token 2 in "it's 25") and when its first segment starts and its last one
 * ends.  Word i of the sentence takes the times of token i+1's words.
 *
 * The voice: providers.audio.voice, else the best one installed (the HTS
 * voices of festvox-us-slt-hts and the like first, then the diphone ones).
 */
#define _GNU_SOURCE
#include "provider.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* clang-format off: a table keeps one row per line */
const struct provider_opt festival_opts[] = {
	{ "voice", OPT_STRING, NULL, 0, 64, NULL,
	  "festival voice, e.g. cmu_us_slt_arctic_hts (default: the best installed)" },
	{ "gap_ms", OPT_INTEGER, "250", 0, 10000, NULL, "silence between sentences, in milliseconds" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* Best first: folder under /usr/share/festival/voices, then name. */
static const char *const voices[][2] = {
	{ "us", "cmu_us_slt_arctic_hts" }, { "us", "cmu_us_bdl_arctic_hts" }, { "us", "cmu_us_jmk_arctic_hts" },
	{ "us", "cmu_us_awb_arctic_hts" }, { "english", "kal_diphone" },      { "english", "ked_diphone" },
	{ "english", "rab_diphone" },      { "english", "don_diphone" },
};
/* clang-format on */

#define VOICE_DIR "/usr/share/festival/voices"

struct token {
	int sent, k; /* sentence number, token (1-based) */
	double start, end;
};
struct festival {
	const char *voice;
	struct token *tok;
	size_t ntok;
};

const char *festival_best_voice(void)
{
	struct stat st;

	for (size_t i = 0; i < sizeof voices / sizeof *voices; i++) {
		char *d = xasprintf(VOICE_DIR "/%s/%s", voices[i][0], voices[i][1]);
		int ok = stat(d, &st) == 0 && S_ISDIR(st.st_mode);
		free(d);
		if (ok) return voices[i][1];
	}
	return NULL;
}

/* A Scheme string literal of text. */
static void scheme_string(struct sbuf *b, const char *text)
{
	sb_puts(b, "\"");
	for (; *text; text++) {
		if (*text == '"' || *text == '\\') sb_puts(b, "\\");
		sb_printf(b, "%c", (unsigned char)*text < 0x20 ? ' ' : *text);
	}
	sb_puts(b, "\"");
}

static char *script(const struct festival *f, char *const *text, size_t n)
{
	struct sbuf b = { 0 };

	sb_printf(&b, "(voice_%s)\n", f->voice);
	sb_puts(&b,
		"(define (acog_word w) (format t \"W %s %s %s\\n\" (item.feat w \"R:Token.parent.id\") "
		"(item.feat w \"R:SylStructure.daughter1.daughter1.segment_start\") "
		"(item.feat w \"R:SylStructure.daughtern.daughtern.end\")))\n"
		"(define (acog_said n utt wav) (utt.save.wave utt wav 'riff) (format t \"S %d\\n\" n) "
		"(mapcar acog_word (utt.relation.items utt 'Word)))\n");
	for (size_t i = 0; i < n; i++) {
		char *wav = tts_scratch((int)i + 1, "wav");
		sb_printf(&b, "(acog_said %zu (utt.synth (Utterance Text ", i + 1);
		scheme_string(&b, text[i]);
		sb_printf(&b, ")) \"%s\")\n", wav);
		free(wav);
	}
	return b.s;
}

/* "S n" and "W _k start end" lines into f->tok. */
static void tokens_parse(struct festival *f, const char *out)
{
	int sent = 0, k;
	double s, e;

	for (const char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (sscanf(l, "S %d", &k) == 1) sent = k;
		if (sscanf(l, "W _%d %lf %lf", &k, &s, &e) != 3 || !sent) continue;
		f->tok = xrealloc(f->tok, (f->ntok + 1) * sizeof *f->tok);
		f->tok[f->ntok++] = (struct token){ sent, k, s, e };
	}
}

static enum stage_rc batch(struct stage_ctx *ctx, void *opts, char *const *text, size_t n)
{
	struct festival *f = opts;
	char *scm = tts_scratch(0, "scm"), *body = script(f, text, n);
	const char *argv[] = { "festival", "-b", scm, NULL };
	struct sbuf out = { 0 };
	enum stage_rc rc;

	if (media_write_scratch(scm, body) < 0)
		rc = stage_fail(ctx, STAGE_RETRY, "%s", err_msg());
	else if ((rc = tts_run(ctx, argv, "festival", &out)) == STAGE_OK)
		tokens_parse(f, out.s);
	unlink(scm), free(scm), free(body);
	sb_free(&out);
	return rc;
}

/* Word i of text takes the times of token i+1's words; one without words
 * (a dash) is a moment long, where the one before it ended. */
static void words_of(const struct festival *f, int num, const char *text, struct tts_words *tw)
{
	char **w;
	size_t n = words_split(text, &w);
	double at = 0;

	for (size_t i = 0; i < n; i++) {
		double s = -1, e = -1;
		for (size_t t = 0; t < f->ntok; t++) {
			const struct token *k = &f->tok[t];
			if (k->sent != num || k->k != (int)i + 1) continue;
			if (s < 0) s = k->start;
			e = k->end;
		}
		if (s < 0) s = e = at;
		tts_words_add(tw, s, e);
		at = e;
	}
	for (size_t t = 0; t < f->ntok; t++)
		if (f->tok[t].sent == num && f->tok[t].k > (int)n) tts_words_free(tw); /* tokens are not words */
	for (size_t i = 0; i < n; i++) free(w[i]);
	free(w);
}

static enum stage_rc synth(struct stage_ctx *ctx, void *opts, int num, const char *text, struct media_pcm *w,
			   struct tts_words *tw)
{
	char *wav = tts_scratch(num, "wav");
	enum stage_rc rc = STAGE_OK;

	if (tts_wav_read(wav, w) < 0)
		rc = stage_fail(ctx, STAGE_FAIL, "festival made no audio for sentence %d (voice %s): %s", num,
				((struct festival *)opts)->voice, err_msg());
	else
		words_of(opts, num, text, tw);
	unlink(wav);
	free(wav);
	return rc;
}

static const struct tts_engine festival = { "festival", synth, batch };

enum stage_rc prov_audio_festival(struct stage_ctx *ctx)
{
	struct festival f = { stage_opt_str(ctx, "voice"), NULL, 0 };
	enum stage_rc rc;

	if (!f.voice && !(f.voice = festival_best_voice()))
		return stage_fail(
			ctx, STAGE_FAIL,
			"no festival voice is installed in " VOICE_DIR
			": install one (Debian: apt-get install festvox-us-slt-hts) or set providers.audio.voice");
	if (!*f.voice || strspn(f.voice, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(f.voice))
		return stage_fail(ctx, STAGE_FAIL,
				  "providers.audio.voice \"%s\" is not a festival voice name "
				  "(lower-case letters, digits, '_'; e.g. cmu_us_slt_arctic_hts)",
				  f.voice);
	rc = tts_offline(ctx, &festival, &f, (int)stage_opt_num(ctx, "gap_ms"));
	free(f.tok);
	return rc;
}
