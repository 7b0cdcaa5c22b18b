#!/bin/bash
# A real two-level PKI made with the openssl CLI, as an outside user's CA would issue it:
# root CA → intermediate CA (pathlen 0) → device certificate (CN, clientAuth).
#
#   intermediate-pki.sh OUTDIR CN [ROOT_CERT ROOT_KEY]
#
# Writes OUTDIR/root.pem root.key (unless a root is given), inter.pem inter.key,
# leaf.pem leaf.key (the device key, PKCS#8) and chain.pem (leaf then intermediate: what a
# device's cert.pem holds).
set -euo pipefail
out=$1 cn=$2
mkdir -p "$out"
if [ $# -ge 4 ]; then
    cp "$3" "$out/root.pem"
    cp "$4" "$out/root.key"
fi
cd "$out"
if [ $# -lt 4 ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root.key 2>/dev/null
    openssl req -x509 -new -key root.key -subj "/O=Outside Tests/CN=Outside Root CA" -days 800 -out root.pem \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
fi
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out inter.key 2>/dev/null
openssl req -new -key inter.key -subj "/O=Outside Tests/CN=Outside Intermediate CA" -out inter.csr
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > inter.ext
openssl x509 -req -in inter.csr -CA root.pem -CAkey root.key -CAcreateserial -days 400 -extfile inter.ext -out inter.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key 2>/dev/null
chmod 600 leaf.key
openssl req -new -key leaf.key -subj "/CN=$cn" -out leaf.csr
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 200 -extfile leaf.ext -out leaf.pem 2>/dev/null
cat leaf.pem inter.pem > chain.pem
rm -f inter.csr leaf.csr inter.ext leaf.ext
