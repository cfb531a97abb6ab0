#!/usr/bin/env bash
# The media end-to-end tests (tests/e2e/test_media.py) against parleyd with `--media s3://...`:
# starts s3rver on loopback (scripts/s3rver.sh), creates a bucket, runs every test of the file
# (what they look up in the store, they list from the bucket), and stops the server.
#   scripts/e2e-media-s3.sh PARLEYD [pytest args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
parleyd="${1:?usage: e2e-media-s3.sh PARLEYD [pytest args]}"
shift
state="$(mktemp -d "${TMPDIR:-/tmp}/parley-e2e-s3.XXXXXX")"
cleanup() { bash "$root/scripts/s3rver.sh" stop "$state" >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT

endpoint="$(bash "$root/scripts/s3rver.sh" start "$state" $$)"
bucket="parley-e2e-$(date +%s)"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
# s3rver checks the access key id, not the signature; curl signs anyway.
curl -fsS -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$endpoint/$bucket" >/dev/null
echo "e2e-media-s3: s3rver at $endpoint, bucket $bucket"
PARLEYD="$parleyd" PARLEY_E2E_S3_BUCKET_URL="$endpoint/$bucket" PARLEYD_EXTRA_ARGS="--media s3://$bucket?endpoint=$endpoint&region=us-east-1" \
  /usr/bin/python3 -m pytest "$root/tests/e2e/test_media.py" -q -p no:cacheprovider "$@"
