#!/bin/bash
# The end of the user data: the construct writes boot.env and the app's files (the deploy-time
# values) above this, then this fetches the instance files (the InstanceFiles asset: the boot
# script, the units, gunicorn.conf.py, the coupling agent, logrotate's and the CloudWatch
# agent's files), unpacks them over /, and runs the boot script. The boot script's retry does not
# exist yet, so the download retries here: 5 attempts, 2, 4, 8 and 16 s apart. The asset's S3
# URL (its key is its content hash) is boot.env's INSTANCE_FILES_URL: a changed file changes the
# user data, and the rolling update replaces the instances. GUNICORN_ALB_ROOT (tests only) puts
# the whole layout under another directory.
set -euo pipefail
root=${GUNICORN_ALB_ROOT:-}
boot_env="$root/etc/gunicorn-alb/boot.env"
url=$(sed -n 's/^INSTANCE_FILES_URL=//p' "$boot_env")
archive=$(mktemp)
for attempt in 1 2 3 4 5; do
  if aws s3 cp --only-show-errors "$url" "$archive"; then
    break
  elif ((attempt == 5)); then
    echo "gunicorn-alb: cannot fetch the instance files from ${url}" >&2
    exit 1
  fi
  sleep $((2 ** attempt))
done
tar -xzf "$archive" -C "${root:-/}"
rm -f "$archive"
exec "$root/usr/local/sbin/gunicorn-alb-boot" "$boot_env"
