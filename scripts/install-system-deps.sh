#!/usr/bin/env bash
# Installs the Debian packages that the test suite drives for real (Chromium, DICOM validators
# and readers (dicom3tools, dcmtk, plastimatch), the Orthanc PACS,
# PostgreSQL, the Pango libraries WeasyPrint renders PDFs with, and nginx with openssl for
# the TLS reverse-proxy test). Idempotent: does nothing
# when every package is already there, so repeated `make test` runs stay fast.
set -euo pipefail
packages=(chromium dicom3tools dcmtk plastimatch orthanc postgresql libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core nginx openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]} (run as root, or install them yourself)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
