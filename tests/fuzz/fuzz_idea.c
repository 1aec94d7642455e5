/* fuzz_idea.c - idea files (src/idea.c): idea_parse takes the raw bytes. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct idea idea;
	if (idea_parse((const char *)data, size, &idea) == 0) cJSON_Delete(idea.json);
	return 0;
}
