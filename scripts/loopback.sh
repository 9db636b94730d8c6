# shellcheck shell=bash
# What the scripts that run real programs beside metricsd on 127.0.0.1
# share (scripts/agents/lib.sh, scripts/cluster/lib.sh source it): messages,
# one deadline for every wait, Debian installs and free ports. The sourcing
# script sets WHO (the prefix of its messages) and DEADLINE_SECONDS (the
# time its waits have in all, default 60) first.

say() { echo "$WHO: $*" >&2; }
fail() {
  echo "$WHO: FAIL: $*" >&2
  exit 1
}

# start_deadline: the waits' time starts now (call it again after installs,
# which are not bounded by it).
start_deadline() { DEADLINE=$((SECONDS + ${DEADLINE_SECONDS:-60})); }
start_deadline

# wait_until DESCRIPTION COMMAND...: polls COMMAND every 0.1 s until it
# succeeds, failing with DESCRIPTION once the deadline has passed.
wait_until() {
  local what=$1
  shift
  until "$@"; do
    ((SECONDS < DEADLINE)) || fail "timed out waiting for $what"
    sleep 0.1
  done
}

# timed DESCRIPTION COMMAND...: runs COMMAND, saying how long it took;
# fails with DESCRIPTION if it fails.
timed() {
  local what=$1 start=$SECONDS
  shift
  "$@" || fail "$what failed"
  say "$what: $((SECONDS - start)) s"
}

# apt_get_install PACKAGE: Debian's PACKAGE, quietly.
apt_get_install() {
  apt-get update -q >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -yq --no-install-recommends "$1" >/dev/null
}
# install_deb PACKAGE: installs Debian's PACKAGE, saying how long it took.
install_deb() { timed "install $1 (apt-get)" apt_get_install "$1"; }
# need_deb PACKAGE COMMAND: installs Debian's PACKAGE unless COMMAND exists.
need_deb() { command -v "$2" >/dev/null || install_deb "$1"; }

# free_port: a port free on 127.0.0.1 now.
free_port() { "${PY:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
