/*
 * base64.c - Base64 decoding (RFC 4648) with OpenSSL's libcrypto.  Providers
 * send the standard or the URL-safe alphabet, with or without padding, and
 * sometimes wrapped in lines; EVP_DecodeBlock wants the standard alphabet in
 * whole padded quartets, so the text is put in that form first.
 */
#include "base.h"
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Standard alphabet, whitespace dropped, padding stripped; -1 on a stray
 * character or on anything but padding and whitespace after the padding. */
static int normalise(const char *in, char *out, size_t *len)
{
	size_t n = 0;
	int padding = 0;
	for (; *in; in++) {
		char c = *in == '-' ? '+' : *in == '_' ? '/' : *in;
		if (strchr(" \t\r\n", c)) continue;
		if (c == '=')
			padding = 1;
		else if (padding)
			return -1;
		else
			out[n++] = c;
	}
	*len = n;
	return n % 4 == 1 ? -1 : 0; /* one character left over holds no whole byte */
}

int base64_decode(const char *in, struct sbuf *out)
{
	size_t len, pad;
	char *text = xmalloc(strlen(in) + 4);
	unsigned char *bytes;
	int n;

	if (normalise(in, text, &len) < 0) {
		free(text);
		return err_set("not Base64: a stray character or a truncated group");
	}
	for (pad = 0; len % 4; pad++) text[len++] = '=';
	bytes = xmalloc(len / 4 * 3 + 1);
	n = len > (size_t)1 << 30 ? -1 : EVP_DecodeBlock(bytes, (const unsigned char *)text, (int)len);
	if (n >= 0) sb_add(out, (const char *)bytes, (size_t)n - pad);
	free(bytes);
	free(text);
	return n < 0 ? err_set("not Base64: a character outside the alphabet") : 0;
}
