/* fuzz_script.c - script.md (src/script.c: markers, segments, sentences) and
 * the text helpers the subtitles and title cards go through (src/media.c). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_str(data, size), **sent, *w, *e;
	struct script sc;
	size_t n;

	if (script_parse(text, &sc) == 0) {
		for (size_t i = 0; i < sc.n; i++) {
			n = script_sentences(sc.seg[i].text, &sent);
			for (size_t k = 0; k < n; k++) free(sent[k]);
			free(sent);
		}
		script_free(&sc);
	}
	w = media_wrap(text, 1 + (int)(size % 60), 1 + (int)(size % 4));
	e = media_filter_escape(w);
	free(w), free(e), free(text);
	return 0;
}
