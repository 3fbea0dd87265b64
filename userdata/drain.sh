#!/bin/bash
# gunicorn-alb termination drain (static: every per-stack value comes from the env file it is given).
#
# Run by gunicorn-alb-drain.timer (every 5 s) on every instance of an
# ApplicationLoadBalancedGunicornService with termination_hook_timeout. The Auto Scaling group's
# termination hook holds a terminating instance (Terminating:Wait) after the load balancer has
# deregistered it; this watcher ends that wait as soon as the instance is drained:
#   1. reads the instance's target lifecycle state from the instance metadata (IMDSv2,
#      autoscaling/target-lifecycle-state: "Terminated" once the group is terminating it);
#   2. on Terminated, once: stops Gunicorn gracefully (systemctl stop gunicorn-app.service: its
#      graceful shutdown, bounded by the unit's TimeoutStopSec), then runs the app's
#      termination_command through gunicorn-app-termination.service (the app user, the app's
#      environment, bounded by its TimeoutStartSec), if there is one;
#   3. completes the lifecycle action with CONTINUE for this instance (aws autoscaling
#      complete-lifecycle-action: the hook's name from boot.env, the group's name from the
#      instance's aws:autoscaling:groupName tag in the metadata), retried within
#      TERMINATION_COMPLETION_SECONDS.
# A failed stop or clean-up is logged and the action is still completed with CONTINUE: the instance
# terminates either way, and waiting for the heartbeat timeout would only delay it (ABANDON would
# also skip any other termination hook). A failed completion is logged and tried again by the next
# run; stop and clean-up are not repeated (markers in the state directory). Every step is logged to
# the journal at notice level, failures at error (the unit logs nothing below notice, so the 5 s
# timer runs stay out of the journal). A metadata read that fails for another reason than 404 (no
# target lifecycle state: the instance is not in a group's life yet) is logged; the next run reads
# again.
#
# Usage: gunicorn-alb-drain /etc/gunicorn-alb/boot.env
# Sourcing the file only defines the functions (the tests use that).
set -euo pipefail

# shellcheck source=boot.sh
source "${GUNICORN_ALB_BOOT:-/usr/local/sbin/gunicorn-alb-boot}"

# The instance metadata service; the tests point it at a stand-in.
IMDS=${GUNICORN_ALB_IMDS:-http://169.254.169.254}
# systemd sets STATE_DIRECTORY from the unit's StateDirectory=.
STATE=${STATE_DIRECTORY:-/var/lib/gunicorn-alb-drain}
TOKEN=

# log MESSAGE: to the journal at notice (<5>); error MESSAGE at error (<3>).
log() { printf '<5>gunicorn-alb-drain: %s\n' "$*" >&2; }
error() { printf '<3>gunicorn-alb-drain: %s\n' "$*" >&2; }
die() { error "$*"; exit 1; }

# imds PATH: the metadata item latest/meta-data/PATH (IMDSv2: a session token first); fails
# unless the service answers 200 (curl exit 22: 404, no such item).
imds() {
  [[ -n $TOKEN ]] || TOKEN=$(curl -sf --max-time 2 -X PUT "$IMDS/latest/api/token" \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300') || return
  curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/latest/meta-data/$1"
}

# drain: Gunicorn's graceful stop, then the app's clean-up; a failure is logged, the drain goes on.
drain() {
  log "Terminated: stopping ${UNIT} (graceful, within its TimeoutStopSec)"
  systemctl stop "$UNIT" || error "stopping ${UNIT} failed (exit $?)"
  [[ -n ${TERMINATION_CLEANUP_UNIT:-} ]] || return 0
  log "running termination_command (${TERMINATION_CLEANUP_UNIT})"
  systemctl start "$TERMINATION_CLEANUP_UNIT" ||
    error "termination_command failed (exit $?); completing with CONTINUE anyway"
}

# complete: CompleteLifecycleAction with CONTINUE for this instance, within the budget.
complete() {
  local deadline=$((SECONDS + TERMINATION_COMPLETION_SECONDS)) id group
  if ! id=$(imds instance-id) || ! group=$(imds tags/instance/aws:autoscaling:groupName); then
    error "cannot read instance-id and tag aws:autoscaling:groupName"
    return 1
  fi
  log "completing ${TERMINATION_HOOK_NAME} of ${group} for ${id} with CONTINUE"
  retry "$deadline" aws autoscaling complete-lifecycle-action --region "$AWS_REGION" \
    --lifecycle-hook-name "$TERMINATION_HOOK_NAME" --auto-scaling-group-name "$group" \
    --lifecycle-action-result CONTINUE --instance-id "$id" \
    --cli-connect-timeout 5 --cli-read-timeout 10 ||
    { error "could not complete; the next run tries again"; return 1; }
  log "completed: the group terminates ${id}"
}

# drain_once: one pass (what each timer run does): nothing until the target lifecycle state is
# Terminated; then drain (once) and complete (until it succeeds).
drain_once() {
  local state rc=0
  [[ ! -f $STATE/completed ]] || return 0
  state=$(imds autoscaling/target-lifecycle-state) || rc=$?
  ((rc == 0 || rc == 22)) || error "cannot read the target lifecycle state (curl exit ${rc})"
  [[ $rc == 0 && $state == Terminated ]] || return 0
  install -d "$STATE"
  [[ -f $STATE/drained ]] || { drain; : >"$STATE/drained"; }
  complete
  : >"$STATE/completed"
}

main() {
  # shellcheck source=/dev/null # boot.env is written by the user data at boot.
  source "${1:?usage: gunicorn-alb-drain /etc/gunicorn-alb/boot.env}"
  [[ -n ${TERMINATION_HOOK_NAME:-} && -n ${AWS_REGION:-} ]] ||
    die "$1 lacks TERMINATION_HOOK_NAME or AWS_REGION"
  require_int TERMINATION_COMPLETION_SECONDS 1
  drain_once
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
