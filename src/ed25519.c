/*
 * ed25519.c - Ed25519 keys and signatures for bundles, through libcrypto.
 * `acog-batch keygen` writes a private key (PKCS#8 PEM, mode 0600) and its
 * public key (SubjectPublicKeyInfo PEM, 0644) with the durable commit; the
 * directory publisher signs manifest.json with the private key; `upload`
 * verifies with trusted public keys.  Signatures travel base64-encoded on
 * one line (manifest.sig).
 */
#define _GNU_SOURCE
#include "base.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* PEM text of a key (private when priv), malloc'd. */
static char *key_pem(EVP_PKEY *k, int priv)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;
	int ok = priv ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(b, k);

	if (ok && (n = BIO_get_mem_data(b, &data)) > 0) {
		out = xmalloc((size_t)n + 1);
		memcpy(out, data, (size_t)n);
		out[n] = 0;
	}
	BIO_free(b);
	return out;
}

/* Durably write text to path with mode (through fsio_tmp_open/fsio_commit). */
static int write_key_file(const char *path, const char *text, mode_t mode)
{
	char *tmp = NULL;
	int fd = fsio_tmp_open(path, &tmp);

	if (fd < 0) return -1;
	if (fchmod(fd, mode) < 0 || fsio_write_all(fd, text, strlen(text)) < 0) {
		err_set_errno("cannot write %s", tmp);
		close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	fd = fsio_commit(fd, tmp, path, FSIO_NOREPLACE);
	free(tmp);
	return fd;
}

int ed25519_keygen(const char *dir, char **priv_path, char **pub_path)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	char *priv = k ? key_pem(k, 1) : NULL, *pub = k ? key_pem(k, 0) : NULL;
	int rc = -1;

	*priv_path = xasprintf("%s/acog-signing.key", dir);
	*pub_path = xasprintf("%s/acog-signing.pub", dir);
	if (!priv || !pub)
		err_set("libcrypto could not make an Ed25519 key");
	else if (fsio_exists(*priv_path) || fsio_exists(*pub_path))
		err_set("%s or %s already exists; keygen never overwrites a key: move them away or use --out DIR",
			*priv_path, *pub_path);
	else if (fsio_mkdirs(dir) == 0 && write_key_file(*priv_path, priv, 0600) == 0)
		rc = write_key_file(*pub_path, pub, 0644);
	if (priv) OPENSSL_cleanse(priv, strlen(priv));
	free(priv);
	free(pub);
	EVP_PKEY_free(k);
	return rc;
}

/* The private key file must be ours alone: regular, no symlink, 0600/0400. */
static EVP_PKEY *load_private(const char *path)
{
	struct stat st;
	EVP_PKEY *k = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	FILE *f;

	if (fd < 0) {
		err_set_errno("cannot open the signing key %s", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		err_set("signing key %s must be a regular file with mode 0600: chmod 600 %s", path, path);
		close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		err_set_errno("cannot read %s", path);
		return NULL;
	}
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		err_set("%s is not an Ed25519 private key in PEM (make one with `acog-batch keygen`)", path);
		return NULL;
	}
	return k;
}

char *ed25519_sign(const char *key_file, const void *data, size_t len)
{
	EVP_PKEY *k = load_private(key_file);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[64], b64[128];
	size_t siglen = sizeof sig;
	char *out = NULL;

	if (k && EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1 && EVP_DigestSign(md, sig, &siglen, data, len) == 1) {
		EVP_EncodeBlock(b64, sig, (int)siglen);
		out = xstrdup((const char *)b64);
	} else if (k) {
		err_set("signing with %s failed", key_file);
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return out;
}

/* 1 = good signature by the public key in pub_file, 0 = not, -1 = error. */
int ed25519_verify(const char *pub_file, const void *data, size_t len, const char *sig_b64)
{
	FILE *f = fopen(pub_file, "re");
	EVP_PKEY *k = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[96];
	size_t n = strcspn(sig_b64, "\r\n");
	int rc = -1, got;

	if (f) fclose(f);
	if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519)
		err_set("%s is not an Ed25519 public key in PEM (the .pub file from `acog-batch keygen`)", pub_file);
	else if (n != 88 || (got = EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, (int)n)) != 66)
		rc = 0; /* 64 bytes base64-encode to 88 characters, decode to 66 with padding */
	else
		rc = EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
			EVP_DigestVerify(md, sig, 64, data, len) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return rc;
}
