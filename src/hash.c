/*
 * hash.c - the one content hash: SHA-256 from OpenSSL's libcrypto (EVP), as
 * lowercase hex, for idea hashes, stage input keys, cached outputs, clip
 * stamps and outbox manifests.  hash_file streams, so a video is never read
 * into memory.  A libcrypto failure here (no memory, no SHA-256 in the
 * library) is a broken invariant, not a user error: abort, like xmalloc.
 */
#include "base.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void crypto_broken(const char *what)
{
	fprintf(stderr, "acog-batch: libcrypto %s failed\n", what);
	abort();
}

/* SHA-256 looked up once: EVP_sha256() makes every EVP_DigestInit_ex fetch
 * the algorithm from OpenSSL 3's providers again (~170,000 instructions, a
 * few per idea and stage transition).  Kept for the process's life. */
void hash_init(struct hash *h)
{
	static EVP_MD *sha256;
	if (!sha256 && !(sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) crypto_broken("EVP_MD_fetch(SHA256)");
	if (!(h->ctx = EVP_MD_CTX_new())) crypto_broken("EVP_MD_CTX_new");
	if (EVP_DigestInit_ex(h->ctx, sha256, NULL) != 1) crypto_broken("EVP_DigestInit_ex(SHA-256)");
}

void hash_update(struct hash *h, const void *data, size_t n)
{
	if (EVP_DigestUpdate(h->ctx, data, n) != 1) crypto_broken("EVP_DigestUpdate");
}

/* Writes the digest as 64 hex digits and a NUL, and frees the context. */
void hash_final_hex(struct hash *h, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1 || n != 32) crypto_broken("EVP_DigestFinal_ex");
	for (unsigned int i = 0; i < n; i++) { /* not snprintf: 32 calls of it cost ~20,000 instructions */
		out[2 * i] = "0123456789abcdef"[md[i] >> 4];
		out[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
	}
	out[2 * n] = 0;
	hash_free(h);
}

/* For a hash abandoned on an error path; safe after hash_final_hex. */
void hash_free(struct hash *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

void hash_hex(const void *data, size_t len, char out[65])
{
	struct hash h;
	hash_init(&h);
	hash_update(&h, data, len);
	hash_final_hex(&h, out);
}

/* Feeds a file's bytes to h, 64 KiB at a time. */
int hash_file_update(struct hash *h, const char *path)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return err_set_errno("cannot read %s", path);
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) {
			err_set_errno("cannot read %s", path);
			close(fd);
			return -1;
		}
		hash_update(h, buf, (size_t)n);
	}
	close(fd);
	return 0;
}

int hash_file(const char *path, char out[65])
{
	struct hash h;
	hash_init(&h);
	if (hash_file_update(&h, path) < 0) {
		hash_free(&h);
		return -1;
	}
	hash_final_hex(&h, out);
	return 0;
}
