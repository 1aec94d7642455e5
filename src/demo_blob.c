/*
 * demo_blob.c - the demo channel's channel.yaml and sample idea, compiled in
 * from channels/demo/ so `init --demo` writes exactly what the checkout has.
 */
__asm__(".section .rodata\n"
	".global demo_channel_yaml\n"
	"demo_channel_yaml:\n"
	".incbin \"channels/demo/channel.yaml\"\n"
	".byte 0\n"
	".global demo_idea_json\n"
	"demo_idea_json:\n"
	".incbin \"channels/demo/sample-idea.json\"\n"
	".byte 0\n"
	".previous\n");
