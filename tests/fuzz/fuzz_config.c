/*
 * fuzz_config.c - channels/<id>/channel.yaml through the loader the daemon
 * uses (config_load: src/yaml.c to JSON, then every check of src/config.c
 * and the provider options).  The input is the file of channel "c" in a
 * scratch root; a config that loads is also asked what the daemon asks.
 */
#include "fuzz.h"
#include <sys/stat.h>

static void ask(struct config *c)
{
	struct channel *ch = config_channel(c, "c");
	struct media_frame f;
	if (!ch) return;
	(void)!config_gate(ch, "publish");
	(void)!config_timeout(c, ch, "audio");
	(void)!config_max_retries(c, ch);
	cJSON_Delete(config_provider(ch, "scripting"));
	(void)!media_frame_get(ch->cfg, &f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char *root = xasprintf("%s/root", fuzz_dir());

	(void)!mkdir("root", 0700), (void)!mkdir("root/channels", 0700), (void)!mkdir("root/channels/c", 0700);
	fuzz_write("root/channels/c/channel.yaml", data, size);
	if (config_load(&c, root) == 0) {
		ask(&c);
		config_free(&c);
	}
	free(root);
	return 0;
}
