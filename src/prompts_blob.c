/*
 * prompts_blob.c - compiles the built-in prompt templates prompts/<stage>.txt
 * into the binary as NUL-terminated strings, so the openai provider needs no
 * file beside the program.  A channel overrides one with
 * channels/<id>/prompts/<stage>.txt (see prompts/README.md).
 */
__asm__(".section .rodata\n"
	".global prompt_planning_txt\n"
	".type prompt_planning_txt, @object\n"
	"prompt_planning_txt:\n"
	".incbin \"prompts/planning.txt\"\n"
	".byte 0\n"
	".size prompt_planning_txt, . - prompt_planning_txt\n"
	".global prompt_scripting_txt\n"
	".type prompt_scripting_txt, @object\n"
	"prompt_scripting_txt:\n"
	".incbin \"prompts/scripting.txt\"\n"
	".byte 0\n"
	".size prompt_scripting_txt, . - prompt_scripting_txt\n"
	".global prompt_metadata_txt\n"
	".type prompt_metadata_txt, @object\n"
	"prompt_metadata_txt:\n"
	".incbin \"prompts/metadata.txt\"\n"
	".byte 0\n"
	".size prompt_metadata_txt, . - prompt_metadata_txt\n"
	".previous\n");
