/*
 * cmd_keygen.c - `acog-batch keygen [--out DIR]`: an Ed25519 key pair for
 * signing bundles.  The private key (acog-signing.key, 0600) stays on the
 * air-gapped machine and is named by the directory publisher's
 * signing_key_file; the public key (acog-signing.pub, 0644) goes to the
 * connected machine's acog.yaml trusted_keys.  DIR defaults to ROOT/keys.
 */
#include "daemon.h"
#include <stdio.h>
#include <stdlib.h>

int cmd_keygen(struct cli *a)
{
	char *dir = cli_opt(a, CLI_OUT) ? xstrdup(cli_opt(a, CLI_OUT)) : xasprintf("%s/keys", a->root);
	char *priv = NULL, *pub = NULL;
	int rc = ed25519_keygen(dir, &priv, &pub);

	if (rc < 0)
		fprintf(stderr, "acog-batch keygen: %s\n", err_msg());
	else
		printf("private key %s (0600): set providers.upload.signing_key_file to it on this machine\n"
		       "public key  %s (0644): add it to trusted_keys in acog.yaml on the machine that uploads\n",
		       priv, pub);
	free(priv);
	free(pub);
	free(dir);
	return rc < 0 ? EXIT_CANTCREAT : EXIT_OK;
}
