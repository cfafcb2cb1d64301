#!/bin/sh
# Writes a self-signed TLS certificate and its key as one PEM (the form HAProxy's `crt` takes).
#   usage: gen-selfsigned-cert OUT.pem
#   env:   CERT_CN (default localhost), CERT_SANS (default DNS:<CN>,IP:127.0.0.1),
#          CERT_DAYS (default 825), CERT_OWNER (uid:gid to chown the file to, e.g. 99:99 for
#          the haproxy image's user; needs root)
# A certificate still valid for more than a day is kept, so restarts do not rotate it.
set -eu
umask 077
out=${1:?usage: gen-selfsigned-cert OUT.pem}
cn=${CERT_CN:-localhost}
sans=${CERT_SANS:-DNS:$cn,IP:127.0.0.1}
days=${CERT_DAYS:-825}
owner=${CERT_OWNER:-}

if [ -s "$out" ] && openssl x509 -in "$out" -noout -checkend 86400 >/dev/null 2>&1; then
  echo "gen-selfsigned-cert: keeping $out (valid for more than a day)"
  exit 0
fi
dir=$(dirname "$out")
(umask 022 && mkdir -p "$dir")
tmp=$(mktemp "$dir/.selfsigned.XXXXXX")
trap 'rm -f "$tmp" "$tmp.key" "$tmp.crt"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -subj "/CN=$cn" -addext "subjectAltName=$sans" \
  -keyout "$tmp.key" -out "$tmp.crt" 2>"$tmp.err" || {
  cat "$tmp.err" >&2
  rm -f "$tmp.err"
  exit 1
}
rm -f "$tmp.err"
cat "$tmp.crt" "$tmp.key" >"$tmp"
chmod 0640 "$tmp"
[ -z "$owner" ] || chown "$owner" "$tmp"
mv "$tmp" "$out"
echo "gen-selfsigned-cert: wrote $out (CN=$cn, $sans, $days days)"
