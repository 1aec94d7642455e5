/* placeholder */
#include "provider.h"
const struct provider_opt festival_opts[] = { { NULL, 0, NULL, 0, 0, NULL, NULL } };
enum stage_rc prov_audio_festival(struct stage_ctx *ctx) { return stage_fail(ctx, STAGE_FAIL, "todo"); }
