#!/bin/sh
# mkcert.sh DIR — make a throw-away test CA and a server certificate for
# 127.0.0.1 / ::1 / localhost, for the fake HTTPS servers.
#
# Writes into DIR (created if missing):
#   ca.pem      the CA certificate (give it to clients: curl --cacert,
#               CURLOPT_CAINFO, ssl.create_default_context(cafile=...))
#   ca.key      the CA private key (0600)
#   server.pem  the server certificate, signed by the CA
#   server.key  the server private key (0600)
#   chain.pem   server.pem followed by ca.pem
# Every openssl call is a plain argument vector; nothing is eval'd.
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR" >&2
    exit 64
fi
dir=$1
days=${MKCERT_DAYS:-30}
mkdir -p -- "$dir"
umask 077

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key"
openssl req -x509 -new -sha256 -key "$dir/ca.key" -out "$dir/ca.pem" \
    -days "$days" -subj "/CN=acog-batch test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"

openssl ecparam -name prime256v1 -genkey -noout -out "$dir/server.key"
openssl req -new -sha256 -key "$dir/server.key" -out "$dir/server.csr" \
    -subj "/CN=localhost"

ext=$dir/server.ext
{
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth"
    echo "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
} > "$ext"

openssl x509 -req -sha256 -in "$dir/server.csr" -CA "$dir/ca.pem" \
    -CAkey "$dir/ca.key" -CAcreateserial -CAserial "$dir/ca.srl" \
    -out "$dir/server.pem" -days "$days" -extfile "$ext" 2>/dev/null

cat -- "$dir/server.pem" "$dir/ca.pem" > "$dir/chain.pem"
rm -f -- "$dir/server.csr" "$ext"
chmod 600 -- "$dir/ca.key" "$dir/server.key"
chmod 644 -- "$dir/ca.pem" "$dir/server.pem" "$dir/chain.pem"
