#!/bin/sh
# Run one step of deploy/Dockerfile's build with the build's secrets, if it was given any.
#
#   /run/secrets/ca_cert   extra CA certificates (PEM), for a build behind a TLS-intercepting
#                          proxy: appended to the image's own bundle in a temporary file that
#                          pip (and whatever it runs) trusts for this step only.
#   /run/secrets/pip_conf  a pip.conf (index URL, credentials): pip reads it for this step only.
#
# Secrets are mounted while the step runs and are never part of a layer; the temporary
# bundle is removed before the step ends, so it is not either.
set -eu

if [ -s /run/secrets/ca_cert ]; then
    bundle=$(mktemp)
    trap 'rm -f "$bundle"' EXIT
    { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; cat /run/secrets/ca_cert; } > "$bundle"
    export PIP_CERT="$bundle" SSL_CERT_FILE="$bundle" REQUESTS_CA_BUNDLE="$bundle"
fi
if [ -s /run/secrets/pip_conf ]; then
    export PIP_CONFIG_FILE=/run/secrets/pip_conf
fi

"$@"
