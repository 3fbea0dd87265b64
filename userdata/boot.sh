#!/bin/bash
# gunicorn-alb boot script (static: every per-stack value comes from the env file it is given).
#
# Runs once at first boot on Amazon Linux 2023, from the user data the
# ApplicationLoadBalancedGunicornService construct writes:
#   1. derives Gunicorn's keep-alive and the other coupled timeouts from the ALB idle timeout
#      (the same rules as gunicorn_alb/timeouts.py; tests hold the two to the same results),
#   2. installs a Python >= 3.11 and the pinned Gunicorn into a virtualenv, from the wheelhouse
#      built at synth (an S3 asset): pip never contacts PyPI,
#   3. installs the app from its S3 asset, as root-owned files the app user can only read,
#   4. reads the app's secrets (SSM, Secrets Manager) into a root-only environment file and runs
#      the app's release step (pre_start_command), if any,
#   5. starts Gunicorn under systemd as an unprivileged user,
#   6. waits until the health path answers locally, then signals CloudFormation (cfn-signal).
# Gunicorn's logs and this script's output go to CloudWatch Logs through the CloudWatch agent.
# Any failure signals failure, so a broken boot rolls the deployment back. Every network step
# (dnf, pip, aws s3 cp, the secret reads, cfn-signal) retries with a bounded exponential backoff,
# within deadlines (the boot budget in boot.env) that leave time to signal before CloudFormation
# stops waiting.
#
# Usage: gunicorn-alb-boot /etc/gunicorn-alb/boot.env
# Sourcing the file only defines the functions (the tests use that).
set -euo pipefail

readonly GUNICORN_ALB_ETC=/etc/gunicorn-alb
readonly VENV=/opt/gunicorn-alb/venv
readonly WHEELHOUSE=/opt/gunicorn-alb/wheelhouse
readonly APP_DIR=/srv/gunicorn-app
readonly APP_USER=gunicorn-app
readonly UNIT=gunicorn-app.service
readonly COUPLING_TIMER=gunicorn-alb-coupling.timer
readonly DRAIN_TIMER=gunicorn-alb-drain.timer
readonly AGENT_CONFIG=$GUNICORN_ALB_ETC/cloudwatch-agent.json
STARTED=0
INSTALL_DEADLINE=
BOOT_DEADLINE=
PIP_SOURCES=(--no-index --find-links "$WHEELHOUSE")

log() { printf 'gunicorn-alb-boot: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# require_int NAME LOW [HIGH]: the variable NAME holds a whole number within the bounds.
require_int() {
  local name=$1 low=$2 high=${3:-} value=${!1:-}
  [[ $value =~ ^[0-9]+$ ]] || die "$name must be a whole number of seconds, got '${value}'"
  value=$((10#$value))
  ((value >= low)) || die "$name must be at least $low, got $value"
  [[ -z $high ]] || ((value <= high)) || die "$name must be at most $high, got $value"
  printf -v "$name" '%d' "$value"
}

# check_boot_budget: the deadlines and retry settings from boot.env are whole numbers.
check_boot_budget() {
  require_int INSTALL_BUDGET_SECONDS 1
  require_int HEALTH_WAIT_SECONDS 1
  require_int SIGNAL_BUDGET_SECONDS 1
  require_int RETRY_ATTEMPTS 1
  require_int RETRY_DELAY_SECONDS 1
  require_int RETRY_MAX_DELAY_SECONDS 1
}

# retry DEADLINE COMMAND...: runs a network step until it succeeds, at most RETRY_ATTEMPTS times.
# After a failed attempt it waits RETRY_DELAY_SECONDS, doubling after each further failure up to
# RETRY_MAX_DELAY_SECONDS. No attempt and no wait runs past DEADLINE (a value of $SECONDS): the
# attempt is stopped (timeout) and the step fails, so the boot can still signal in time.
# Returns the last attempt's exit code (124 when the deadline stopped it); a command that cannot
# run at all (126, 127) is not retried.
retry() {
  local deadline=$1 attempt=1 delay=$RETRY_DELAY_SECONDS left rc
  shift
  while :; do
    left=$((deadline - SECONDS))
    if ((left <= 0)); then
      log "no time left for: $*"
      return 124
    fi
    rc=0
    timeout --kill-after=5 "$left" "$@" || rc=$?
    ((rc != 0)) || return 0
    if ((rc == 126 || rc == 127)); then
      log "cannot run (exit ${rc}): $*"
      return "$rc"
    fi
    if ((attempt >= RETRY_ATTEMPTS)); then
      log "failed ${attempt} times (exit ${rc}): $*"
      return "$rc"
    fi
    left=$((deadline - SECONDS))
    if ((delay >= left)); then
      log "failed (exit ${rc}), no time left to retry: $*"
      return "$rc"
    fi
    log "attempt ${attempt} of ${RETRY_ATTEMPTS} failed (exit ${rc}), retrying in ${delay} s: $*"
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2 < RETRY_MAX_DELAY_SECONDS ? delay * 2 : RETRY_MAX_DELAY_SECONDS))
  done
}

# install_step COMMAND...: a network step of the install, within the install budget.
install_step() {
  retry "$INSTALL_DEADLINE" "$@" || die "gave up (install budget ${INSTALL_BUDGET_SECONDS} s): $*"
}

# derive_timeouts: from IDLE_TIMEOUT_SECONDS, KEEPALIVE_MARGIN_SECONDS,
# DEREGISTRATION_DELAY_SECONDS and the optional GRACEFUL_TIMEOUT_SECONDS / STOP_TIMEOUT_SECONDS
# overrides, sets KEEPALIVE, GRACEFUL_TIMEOUT and STOP_TIMEOUT. Mirrors derive_timeouts() in
# gunicorn_alb/timeouts.py for the values that depend on the idle timeout.
derive_timeouts() {
  require_int IDLE_TIMEOUT_SECONDS 1 4000
  require_int KEEPALIVE_MARGIN_SECONDS 1
  require_int DEREGISTRATION_DELAY_SECONDS 1 3600
  # keepalive-exceeds-idle: strictly greater than the ALB idle timeout.
  KEEPALIVE=$((IDLE_TIMEOUT_SECONDS + KEEPALIVE_MARGIN_SECONDS))
  # graceful-outlasts-idle: the keep-alive unless overridden, and longer than the idle timeout
  # (a stopping worker keeps its idle connections until the ALB closes them).
  if [[ -n ${GRACEFUL_TIMEOUT_SECONDS:-} ]]; then
    require_int GRACEFUL_TIMEOUT_SECONDS 1
    GRACEFUL_TIMEOUT=$GRACEFUL_TIMEOUT_SECONDS
  else
    GRACEFUL_TIMEOUT=$KEEPALIVE
  fi
  ((GRACEFUL_TIMEOUT > IDLE_TIMEOUT_SECONDS)) ||
    die "graceful timeout ${GRACEFUL_TIMEOUT} s must exceed the idle timeout ${IDLE_TIMEOUT_SECONDS} s (rule graceful-outlasts-idle)"
  # stop-after-graceful: systemd must outwait Gunicorn's graceful shutdown.
  if [[ -n ${STOP_TIMEOUT_SECONDS:-} ]]; then
    require_int STOP_TIMEOUT_SECONDS 1
    STOP_TIMEOUT=$STOP_TIMEOUT_SECONDS
  else
    STOP_TIMEOUT=$((GRACEFUL_TIMEOUT + 10))
  fi
  ((STOP_TIMEOUT > GRACEFUL_TIMEOUT)) ||
    die "stop timeout ${STOP_TIMEOUT} s must exceed the graceful timeout ${GRACEFUL_TIMEOUT} s (rule stop-after-graceful)"
}

# check_synth_value NAME DERIVED EXPECTED: when the idle timeout was known at synth time, the
# construct wrote the values it derived; a mismatch means this script and the Python model
# disagree, so refuse to boot rather than run with either.
check_synth_value() {
  [[ -z $3 || $3 == "$2" ]] ||
    die "derived $1=$2 here, but the construct derived $1=$3 at synth time"
}

check_synth_values() {
  check_synth_value keepalive "$KEEPALIVE" "${SYNTH_KEEPALIVE_SECONDS:-}"
  check_synth_value graceful_timeout "$GRACEFUL_TIMEOUT" "${SYNTH_GRACEFUL_TIMEOUT_SECONDS:-}"
  check_synth_value stop_timeout "$STOP_TIMEOUT" "${SYNTH_STOP_TIMEOUT_SECONDS:-}"
}

# write_coupling_files DIR: the environment file Gunicorn's config reads and the systemd drop-in
# with the stop timeout, under DIR (normally /).
write_coupling_files() {
  local root=${1%/}
  install -d -m 0755 "$root$GUNICORN_ALB_ETC" "$root/etc/systemd/system/$UNIT.d"
  cat >"$root$GUNICORN_ALB_ETC/coupling.env" <<EOF
# Derived at boot by gunicorn-alb-boot from the ALB idle timeout; read by gunicorn.conf.py.
GUNICORN_ALB_IDLE_TIMEOUT=${IDLE_TIMEOUT_SECONDS}
GUNICORN_ALB_KEEPALIVE=${KEEPALIVE}
GUNICORN_ALB_GRACEFUL_TIMEOUT=${GRACEFUL_TIMEOUT}
EOF
  cat >"$root/etc/systemd/system/$UNIT.d/50-coupling.conf" <<EOF
# Derived at boot by gunicorn-alb-boot: longer than Gunicorn's graceful_timeout.
[Service]
TimeoutStopSec=${STOP_TIMEOUT}
EOF
}

# live_idle_timeout: prints the largest idle timeout (idle_timeout.timeout_seconds) of the load
# balancers in front of TARGET_GROUP_ARN, read-only through the AWS CLI, or nothing when no load
# balancer forwards to it yet (its listener is created after the instances). Fails, printing
# nothing, when AWS cannot be read or answers something that is not a whole number.
live_idle_timeout() {
  local region=() load_balancers arn value largest=""
  [[ -z ${AWS_REGION:-} ]] || region=(--region "$AWS_REGION")
  load_balancers=$(aws elbv2 describe-target-groups "${region[@]}" \
    --target-group-arns "$TARGET_GROUP_ARN" \
    --query 'TargetGroups[0].LoadBalancerArns' --output text \
    --cli-connect-timeout 5 --cli-read-timeout 10) || return 1
  for arn in $load_balancers; do
    [[ $arn == arn:* ]] || continue
    value=$(aws elbv2 describe-load-balancer-attributes "${region[@]}" --load-balancer-arn "$arn" \
      --query "Attributes[?Key=='idle_timeout.timeout_seconds'].Value | [0]" --output text \
      --cli-connect-timeout 5 --cli-read-timeout 10) || return 1
    [[ $value =~ ^[0-9]+$ ]] || { log "load balancer ${arn}: idle timeout '${value}'"; return 1; }
    value=$((10#$value))
    if [[ -z $largest ]] || ((value > largest)); then largest=$value; fi
  done
  printf '%s' "$largest"
}

# follow_live_idle_timeout: keep-alive = max(configured idle timeout, the live idle timeout of every
# load balancer in front of this instance's target group) + margin, so an instance booted while
# the idle timeout changes (by a deploy, or by hand) is safe in both directions. An AWS error keeps
# the configured value (the coupling agent reads again within its period).
follow_live_idle_timeout() {
  [[ -n ${TARGET_GROUP_ARN:-} ]] || return 0
  local live
  if ! live=$(live_idle_timeout); then
    log "could not read the live idle timeout; coupling to the configured ${IDLE_TIMEOUT_SECONDS} s"
    return 0
  fi
  if [[ -n $live ]] && ((live > IDLE_TIMEOUT_SECONDS)); then
    log "the live idle timeout ${live} s exceeds the configured ${IDLE_TIMEOUT_SECONDS} s: coupling to it"
    IDLE_TIMEOUT_SECONDS=$live
    derive_timeouts
  fi
}

# install_signal_tool: cfn-signal first, in a dnf transaction of its own, so that every later
# failure (a bad input, a package that does not install) can still be signalled.
install_signal_tool() {
  [[ -n ${CFN_STACK:-} ]] || return 0
  install_step dnf install -y aws-cfn-bootstrap
}

# start_log_agent: logrotate for Gunicorn's log files and, when the construct made a log group
# (CLOUDWATCH_LOG_GROUP), the CloudWatch agent shipping those files and this boot's output
# (cloud-init's /var/log/cloud-init-output.log) to it, one stream per instance. Its configuration
# comes with the user data, the group's name left as @LOG_GROUP@. Started before anything else
# can fail, so a failed boot's log reaches CloudWatch too.
start_log_agent() {
  local packages=(logrotate) group=${CLOUDWATCH_LOG_GROUP:-}
  [[ -z $group ]] || packages+=(amazon-cloudwatch-agent)
  install_step dnf install -y "${packages[@]}"
  [[ -n $group ]] || return 0
  [[ $group =~ ^[A-Za-z0-9._/#-]{1,512}$ ]] || die "CLOUDWATCH_LOG_GROUP is not a log group name: '${group}'"
  sed -i "s|@LOG_GROUP@|${group}|g" "$AGENT_CONFIG"
  log "shipping logs to CloudWatch Logs group ${group}"
  "${CLOUDWATCH_AGENT_CTL:-/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl}" \
    -a fetch-config -m ec2 -s -c "file:${AGENT_CONFIG}"
}

install_python_and_gunicorn() {
  log "installing ${PYTHON} and gunicorn==${GUNICORN_VERSION}"
  install_step dnf install -y "${PYTHON}" "${PYTHON}-pip"
  install -d -m 0755 "$(dirname "$VENV")"
  "${PYTHON}" -m venv "$VENV"
  fetch_wheelhouse
  # shellcheck disable=SC2086 # EXTRA_PIP_PACKAGES is a space-separated list of requirements.
  install_step "$VENV/bin/pip" install --no-cache-dir --disable-pip-version-check \
    "${PIP_SOURCES[@]}" \
    "gunicorn==${GUNICORN_VERSION}" ${EXTRA_PIP_PACKAGES:-}
}

# fetch_asset NAME URL DIR: the zipped S3 asset at URL (retried, within the install budget),
# unpacked into a fresh root-owned DIR.
fetch_asset() {
  local archive
  archive=$(mktemp --suffix=.zip)
  log "fetching the $1 from $2"
  install_step aws s3 cp --only-show-errors "$2" "$archive"
  rm -rf "$3"
  install -d -m 0755 "$3"
  "$VENV/bin/python" -m zipfile -e "$archive" "$3"
  rm -f "$archive"
}

# fetch_wheelhouse: the synth-time wheels (S3 asset) into WHEELHOUSE, for pip --no-index;
# BUILD_FROM_SOURCE packages are built from PyPI (gcc, headers from dnf).
fetch_wheelhouse() {
  [[ -n ${WHEELHOUSE_URL:-} ]] || die "boot.env has no WHEELHOUSE_URL"
  fetch_asset wheelhouse "$WHEELHOUSE_URL" "$WHEELHOUSE"
  if [[ -n ${BUILD_FROM_SOURCE:-} ]]; then
    log "building from source, with PyPI: ${BUILD_FROM_SOURCE}"
    install_step dnf install -y gcc "${PYTHON}-devel"
    PIP_SOURCES=(--find-links "$WHEELHOUSE")
  fi
}

create_app_user() {
  if ! id -u "$APP_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /sbin/nologin "$APP_USER"
  fi
}

install_app() {
  fetch_asset app "$APP_ASSET_URL" "$APP_DIR"
  chmod -R u=rwX,go=rX "$APP_DIR"
  local module_path=${WSGI_APP%%:*}
  module_path=${module_path//.//}
  [[ -f "$APP_DIR/$module_path.py" || -f "$APP_DIR/$module_path/__init__.py" ]] ||
    die "the app has no module for WSGI_APP=${WSGI_APP} under ${APP_DIR}"
  if [[ -n ${APP_REQUIREMENTS:-} ]]; then
    [[ -f "$APP_DIR/$APP_REQUIREMENTS" ]] || die "the app has no ${APP_REQUIREMENTS}"
    install_step "$VENV/bin/pip" install --no-cache-dir --disable-pip-version-check \
      "${PIP_SOURCES[@]}" \
      -r "$APP_DIR/$APP_REQUIREMENTS"
  fi
}

# secret_reader: the Python that reads one parameter or secret with the AWS CLI and prints one
# systemd EnvironmentFile line, quoted as gunicorn_alb.app_config.env_assignment quotes it.
# Arguments: NAME SOURCE ARN [FIELD]. Errors name the variable and the kind of failure, never the
# value; the CLI's own errors (which name the ARN) pass through to the boot log.
secret_reader() {
  cat <<'PY'
import json, re, subprocess, sys
name, source, arn, field = (sys.argv[1:] + [""])[:4]
region = arn.split(":")[3]
if source == "ssm":
    command = ["ssm", "get-parameter", "--region", region, "--with-decryption", "--name", arn]
else:
    command = ["secretsmanager", "get-secret-value", "--region", region, "--secret-id", arn]
answer = subprocess.run(["aws", *command, "--output", "json"], stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE, check=False)
if answer.returncode:
    sys.exit(f"gunicorn-alb-boot: {name}: the AWS CLI failed (exit {answer.returncode})")
try:
    answer = json.loads(answer.stdout)
    value = answer["Parameter"]["Value"] if source == "ssm" else answer["SecretString"]
    if field:
        value = json.loads(value)[field]
        value = value if isinstance(value, str) else json.dumps(value)
    assert isinstance(value, str) and "\0" not in value
except Exception as error:
    sys.exit(f"gunicorn-alb-boot: {name}: no usable value ({type(error).__name__})")
if "'" in value:
    print(name + '="' + re.sub(r'([\\"$`])', r"\\\1", value) + '"')
else:
    print(name + "='" + value + "'")
PY
}

# write_app_environment: app.env (from the user data) root-only; each secret of secrets.list
# ("NAME SOURCE ARN [FIELD]": names and ARNs only) read into secrets.env (root, 0600), which the
# units load. A value goes from the AWS CLI's stdout into Python and from there into the file:
# never onto a command line, into a variable or into this script's output. A network step:
# retried like the others, within the install budget.
write_app_environment() {
  local out=$GUNICORN_ALB_ETC/secrets.env list=$GUNICORN_ALB_ETC/secrets.list
  local tmp name source arn field reader
  chmod 0600 "$GUNICORN_ALB_ETC/app.env"
  tmp=$(mktemp "$out.XXXXXX") # 0600
  reader=$(mktemp --suffix=-secret-reader.py)
  secret_reader >"$reader"
  if [[ -f $list ]]; then
    while read -r -u 3 name source arn field; do
      [[ -n $name && $name != \#* ]] || continue
      log "reading secret ${name} from ${arn}"
      retry "$INSTALL_DEADLINE" "$VENV/bin/python" -I "$reader" \
        "$name" "$source" "$arn" "${field:-}" >>"$tmp" ||
        { rm -f "$tmp" "$reader" && die "cannot read secret ${name} from ${arn}"; }
    done 3<"$list"
  fi
  rm -f "$reader"
  mv -f "$tmp" "$out"
}

# run_pre_start: the release step (pre_start_command) through its oneshot unit, once, before
# Gunicorn starts; systemctl waits for it and fails when it fails.
run_pre_start() {
  [[ -f /etc/systemd/system/gunicorn-app-prestart.service ]] || return 0
  log "running the release step (gunicorn-app-prestart.service)"
  systemctl daemon-reload
  systemctl start gunicorn-app-prestart.service ||
    die "the release step failed; see journalctl -u gunicorn-app-prestart.service"
}

start_gunicorn() {
  STARTED=1
  systemctl daemon-reload
  systemctl enable "$UNIT"
  systemctl start "$UNIT"
}

# start_coupling_agent: the timer that keeps keep-alive above the live idle timeout from now on
# (gunicorn-alb-coupling; absent when the user data does not install it).
start_coupling_agent() {
  [[ -f /etc/systemd/system/$COUPLING_TIMER ]] || return 0
  systemctl enable "$COUPLING_TIMER"
  systemctl start "$COUPLING_TIMER"
}

# start_drain_watcher: with a termination hook (TERMINATION_HOOK_NAME), the timer of the drain
# watcher (gunicorn-alb-drain), which completes the hook's lifecycle action once the instance is
# drained. Started early in the boot, so an instance terminated while it boots (a failed boot
# rolled back, a scale-in) is not held for the whole heartbeat timeout either.
start_drain_watcher() {
  [[ -n ${TERMINATION_HOOK_NAME:-} ]] || return 0
  systemctl daemon-reload
  systemctl enable --now "$DRAIN_TIMER"
}

# wait_healthy: the health path answers 2xx on the app port within HEALTH_WAIT_SECONDS, and
# before the boot's deadline (install budget + health wait from the start).
wait_healthy() {
  local deadline=$((SECONDS + HEALTH_WAIT_SECONDS))
  ((deadline <= BOOT_DEADLINE)) || deadline=$BOOT_DEADLINE
  local url="http://127.0.0.1:${APP_PORT}${HEALTH_CHECK_PATH}"
  until curl --silent --fail --max-time 2 --output /dev/null "$url"; do
    ((SECONDS < deadline)) || die "${url} did not answer within ${HEALTH_WAIT_SECONDS} s"
    sleep 1
  done
  log "${url} answered"
}

# signal_cloudformation EXIT_CODE: tell CloudFormation how the boot went (no-op without a stack),
# retrying within SIGNAL_BUDGET_SECONDS.
signal_cloudformation() {
  [[ -n ${CFN_STACK:-} ]] || return 0
  retry $((SECONDS + ${SIGNAL_BUDGET_SECONDS:-60})) "${CFN_SIGNAL:-/opt/aws/bin/cfn-signal}" \
    --exit-code "$1" --stack "$CFN_STACK" --resource "$CFN_RESOURCE" --region "$CFN_REGION" ||
    log "cfn-signal failed"
}

on_exit() {
  local rc=$?
  if ((rc != 0)); then
    log "boot failed (exit ${rc}); signalling failure"
    if ((STARTED)); then systemctl stop "$UNIT" || true; fi
    signal_cloudformation "$rc"
  fi
}

main() {
  local env_file=${1:?usage: gunicorn-alb-boot /etc/gunicorn-alb/boot.env}
  # shellcheck source=/dev/null # boot.env is written by the user data at boot.
  source "$env_file"
  trap on_exit EXIT
  check_boot_budget
  INSTALL_DEADLINE=$((SECONDS + INSTALL_BUDGET_SECONDS))
  BOOT_DEADLINE=$((INSTALL_DEADLINE + HEALTH_WAIT_SECONDS))
  install_signal_tool
  start_log_agent
  start_drain_watcher
  derive_timeouts
  check_synth_values
  follow_live_idle_timeout
  log "ALB idle timeout ${IDLE_TIMEOUT_SECONDS} s -> Gunicorn keep-alive ${KEEPALIVE} s," \
    "graceful timeout ${GRACEFUL_TIMEOUT} s, systemd stop timeout ${STOP_TIMEOUT} s"
  install_python_and_gunicorn
  create_app_user
  install_app
  write_coupling_files /
  write_app_environment
  run_pre_start
  start_gunicorn
  wait_healthy
  start_coupling_agent
  signal_cloudformation 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
