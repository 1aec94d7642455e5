/*
 * schema_blob.c - compiles ../schema.sql into the binary as schema_sql[],
 * NUL-terminated, so `init` needs no file beside the program.
 */
__asm__(".section .rodata\n"
	".global schema_sql\n"
	".type schema_sql, @object\n"
	"schema_sql:\n"
	".incbin \"schema.sql\"\n"
	".byte 0\n"
	".size schema_sql, . - schema_sql\n"
	".previous\n");
