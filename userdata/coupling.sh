#!/bin/bash
# gunicorn-alb coupling agent (static: every per-stack value comes from the env file it is given).
#
# Run by gunicorn-alb-coupling.timer (every 20-26 s) on every instance the
# ApplicationLoadBalancedGunicornService construct starts. It keeps Gunicorn's keep-alive above the
# live idle timeout of every load balancer in front of this instance's target group after boot:
# when a deploy raises the idle timeout while instances are still being replaced, or someone
# changes it by hand.
#   1. reads the live idle timeouts (read-only AWS calls: the boot script's live_idle_timeout);
#   2. target = max(the idle timeout this instance was configured with, the live ones);
#   3. above the coupled idle timeout: re-couple at once. Below it: re-couple only once the lower
#      value has held for the coupled idle timeout, so every connection the load balancer opened
#      under the old value has expired on its side first (a decrease may lag; it is never unsafe);
#   4. re-coupling rewrites /etc/gunicorn-alb/coupling.env atomically (keep-alive = target +
#      margin, the boot script's derive_timeouts) and reloads gunicorn-app.service (HUP): Gunicorn
#      reads the file again, new workers run the new keep-alive, old ones finish their requests.
# Each re-coupling is logged with the old and new values. An AWS error keeps the current values
# and is logged. The agent never stops or restarts the app. Gunicorn's graceful timeout follows
# the keep-alive (rule graceful-outlasts-idle: a stopping worker keeps its idle connections until
# the load balancer closes them); systemd's stop timeout stays as booted (at an instance stop the
# load balancer has drained the target, so no connection is left to wait for).
#
# Usage: gunicorn-alb-coupling /etc/gunicorn-alb/boot.env
# Sourcing the file only defines the functions (the tests use that).
set -euo pipefail

# shellcheck source=boot.sh
source "${GUNICORN_ALB_BOOT:-/usr/local/sbin/gunicorn-alb-boot}"

COUPLING_FILE=${GUNICORN_ALB_COUPLING_FILE:-/etc/gunicorn-alb/coupling.env}
# systemd sets STATE_DIRECTORY from the unit's StateDirectory=.
AGENT_STATE=${STATE_DIRECTORY:-/var/lib/gunicorn-alb-coupling}

log() { printf 'gunicorn-alb-coupling: %s\n' "$*" >&2; }

# read_coupling: COUPLED_IDLE, COUPLED_KEEPALIVE and COUPLED_GRACEFUL from the coupling file; the
# values derived from the configured idle timeout when the file lacks one.
read_coupling() {
  local key value
  COUPLED_IDLE="" COUPLED_KEEPALIVE="" COUPLED_GRACEFUL=""
  if [[ -r $COUPLING_FILE ]]; then
    while IFS='=' read -r key value; do
      [[ $value =~ ^[0-9]+$ ]] || continue
      case $key in
        GUNICORN_ALB_IDLE_TIMEOUT) COUPLED_IDLE=$((10#$value)) ;;
        GUNICORN_ALB_KEEPALIVE) COUPLED_KEEPALIVE=$((10#$value)) ;;
        GUNICORN_ALB_GRACEFUL_TIMEOUT) COUPLED_GRACEFUL=$((10#$value)) ;;
      esac
    done <"$COUPLING_FILE"
  fi
  if [[ -z $COUPLED_IDLE || -z $COUPLED_KEEPALIVE || -z $COUPLED_GRACEFUL ]]; then
    log "${COUPLING_FILE} is missing or incomplete; taking the configured idle timeout as coupled"
    derive_timeouts
    COUPLED_IDLE=$IDLE_TIMEOUT_SECONDS COUPLED_KEEPALIVE=$KEEPALIVE
    COUPLED_GRACEFUL=$GRACEFUL_TIMEOUT
  fi
}

# decrease_is_due TARGET: whether a lower idle timeout TARGET has been live for the coupled idle
# timeout (the first sighting is remembered in the agent's state directory).
decrease_is_due() {
  local target=$1 mark=$AGENT_STATE/decrease since
  if [[ -f $mark && $(<"$mark") == "$target" ]]; then
    since=$(stat -c %Y "$mark")
    if (($(date +%s) - since >= COUPLED_IDLE)); then
      rm -f "$mark"
      return 0
    fi
    return 1
  fi
  install -d -m 0755 "$AGENT_STATE"
  printf '%s\n' "$target" >"$mark"
  log "the live idle timeout fell to ${target} s (coupled: ${COUPLED_IDLE} s); keep-alive" \
    "follows once it has held for ${COUPLED_IDLE} s"
  return 1
}

# write_coupling_file: the coupling file with IDLE_TIMEOUT_SECONDS, KEEPALIVE and
# GRACEFUL_TIMEOUT; written next to it and renamed, so Gunicorn never reads half a file.
write_coupling_file() {
  local next
  next=$(mktemp "${COUPLING_FILE}.XXXXXX")
  cat >"$next" <<EOF
# Derived by gunicorn-alb-boot, re-coupled by gunicorn-alb-coupling to the live idle timeout
# ($(date -u +%Y-%m-%dT%H:%M:%SZ)); read by gunicorn.conf.py at every (re)load.
GUNICORN_ALB_IDLE_TIMEOUT=${IDLE_TIMEOUT_SECONDS}
GUNICORN_ALB_KEEPALIVE=${KEEPALIVE}
GUNICORN_ALB_GRACEFUL_TIMEOUT=${GRACEFUL_TIMEOUT}
EOF
  chmod 0644 "$next"
  mv -f "$next" "$COUPLING_FILE"
}

# recouple TARGET: couple to idle timeout TARGET and reload Gunicorn gracefully.
recouple() {
  IDLE_TIMEOUT_SECONDS=$1
  if [[ -n ${GRACEFUL_TIMEOUT_SECONDS:-} ]] && ((GRACEFUL_TIMEOUT_SECONDS <= $1)); then
    log "graceful timeout ${GRACEFUL_TIMEOUT_SECONDS} s does not outlast idle timeout $1 s" \
      "(rule graceful-outlasts-idle): using the keep-alive instead"
    GRACEFUL_TIMEOUT_SECONDS="" STOP_TIMEOUT_SECONDS=""
  fi
  # stop-after-graceful: a stop timeout the new graceful timeout would reach is dropped too.
  if [[ -n ${STOP_TIMEOUT_SECONDS:-} ]] &&
    ((STOP_TIMEOUT_SECONDS <= ${GRACEFUL_TIMEOUT_SECONDS:-$(($1 + KEEPALIVE_MARGIN_SECONDS))})); then
    STOP_TIMEOUT_SECONDS=""
  fi
  derive_timeouts
  write_coupling_file
  log "re-coupled: idle timeout ${COUPLED_IDLE} s -> ${IDLE_TIMEOUT_SECONDS} s, keep-alive" \
    "${COUPLED_KEEPALIVE} s -> ${KEEPALIVE} s"
  if systemctl is-active --quiet "$UNIT"; then
    systemctl reload "$UNIT"
    log "reloaded ${UNIT}: new workers run keep-alive ${KEEPALIVE} s"
  else
    log "${UNIT} is not running; it reads keep-alive ${KEEPALIVE} s when it starts"
  fi
}

# couple_once: one pass (what each timer run does).
couple_once() {
  local configured=$IDLE_TIMEOUT_SECONDS live target
  read_coupling
  if ! live=$(live_idle_timeout); then
    log "could not read the live idle timeout; keeping idle timeout ${COUPLED_IDLE} s," \
      "keep-alive ${COUPLED_KEEPALIVE} s"
    return 0
  fi
  target=$configured
  if [[ -n $live ]] && ((live > target)); then target=$live; fi
  if ((target > COUPLED_IDLE)); then
    rm -f "$AGENT_STATE/decrease"
    recouple "$target"
  elif ((target < COUPLED_IDLE)); then
    if decrease_is_due "$target"; then recouple "$target"; fi
  else
    rm -f "$AGENT_STATE/decrease"
  fi
}

main() {
  local env_file=${1:?usage: gunicorn-alb-coupling /etc/gunicorn-alb/boot.env}
  # shellcheck source=/dev/null # boot.env is written by the user data at boot.
  source "$env_file"
  require_int IDLE_TIMEOUT_SECONDS 1 4000
  couple_once
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
