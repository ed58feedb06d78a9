#!/usr/bin/env bash
# A throwaway single-node Slurm cluster in one folder, started by hand (no systemd), for
# Tests/slurm/run.sh and for trying tools/slurm/candela-array.sbatch on one machine.
#
#   Tests/slurm/cluster.sh start DIR   # install the packages when missing, start munged,
#                                      # slurmctld and slurmd, wait until the node is idle
#   export SLURM_CONF=DIR/slurm.conf   # then sinfo, sbatch, scontrol talk to this cluster
#   Tests/slurm/cluster.sh stop DIR    # cancel its jobs, stop the three daemons it started
#
# Everything lives in DIR: the munge key, socket, pid and log files, slurm.conf, the controller's
# state and slurmd's spool. Nothing is written to /etc or /var (the packages' own install
# scripts aside). The cluster listens on two free TCP ports chosen at start (not Slurm's default
# 6817/6818), so it does not meet a real Slurm on the same host, nor another test's cluster.
# Daemons run as the calling user (root in CI; SlurmUser is the caller).
#
# Exit codes: 0 done; 1 the cluster did not come up (the daemons' logs are printed);
# 77 the Slurm packages are missing and could not be installed (one line says why).
# Environment: SLURM_START_TIMEOUT seconds to wait for the node to be idle (default 30).
set -u

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2" || exit 1
DIR=$(cd "$2" && pwd)
CONF=$DIR/slurm.conf
HOST=$(hostname -s)
export SLURM_CONF=$CONF

# True while process $1 runs (a zombie waiting to be reaped counts as ended).
alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ]
}

# The pid in DIR/$1.pid, if that process is alive and is the daemon started for DIR
# (its command line names DIR: guards against a reused pid).
daemon_pid() {
  local pid
  pid=$(cat "$DIR/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/" || return 1
  echo "$pid"
}

stop() {
  # Cancel this cluster's jobs first: slurmstepd and the job's processes outlive slurmd.
  if daemon_pid slurmctld >/dev/null; then
    scancel --quiet --user="$(id -un)" 2>/dev/null
    for _ in $(seq 50); do
      [ -z "$(squeue -h -t RUNNING,COMPLETING,PENDING -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  local name pid pids=()
  for name in slurmd slurmctld munged; do
    pid=$(daemon_pid $name) && { kill "$pid" 2>/dev/null; pids+=("$pid"); }
  done
  for _ in $(seq 100); do
    local left=0
    for pid in "${pids[@]}"; do alive "$pid" && left=1; done
    [ $left -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do alive "$pid" && kill -9 "$pid" 2>/dev/null; done
  rm -f "$DIR"/slurmd.pid "$DIR"/slurmctld.pid "$DIR"/munged.pid
  return 0
}

show_logs() {
  local f
  for f in munged.log slurmctld.log slurmd.log; do
    echo "---- $DIR/$f (last 25 lines)" >&2
    tail -n 25 "$DIR/$f" >&2 2>/dev/null || echo "(none)" >&2
  done
}

fail() { echo "cluster.sh: $*" >&2; show_logs; stop; exit 1; }

install_packages() {
  local tool missing=0
  for tool in slurmctld slurmd sinfo sbatch scontrol squeue scancel munged munge; do
    command -v $tool >/dev/null 2>&1 || missing=1
  done
  [ $missing -eq 0 ] && return 0
  echo "cluster.sh: installing slurmctld slurmd slurm-client munge" >&2
  local SUDO log
  SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
  log=$(mktemp)
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends slurmctld slurmd slurm-client munge; } >"$log" 2>&1; then
    echo "apt-get install slurmctld slurmd slurm-client munge failed: $(grep -v '^\s*$' "$log" | tail -n 1)"
    rm -f "$log"; exit 77
  fi
  rm -f "$log"
}

# Two TCP ports free right now on this host (slurmctld's and slurmd's).
free_ports() {
  python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks: s.close()
PY
}

start() {
  local t0=$SECONDS begin
  begin=$(date +%s%N)
  install_packages
  for name in munged slurmctld slurmd; do
    daemon_pid $name >/dev/null && { echo "cluster.sh: $name already runs for $DIR (stop it first)" >&2; exit 1; }
  done
  # munged refuses a socket below a folder that not everyone may enter (execute bit for all,
  # checked on every folder up to /): open DIR, and name the first closed folder above it.
  chmod 755 "$DIR"
  local up=$DIR
  while up=$(dirname "$up"); [ "$up" != / ]; do
    [ "$(( 0$(stat -c %a "$up") & 1 ))" -eq 1 ] || {
      echo "cluster.sh: munged needs every folder above $DIR/munge.socket enterable by all; $up is not (chmod a+x $up, or choose another DIR)" >&2
      exit 1; }
  done
  mkdir -p "$DIR/state" "$DIR/spool"
  rm -f "$DIR/munged.log" "$DIR/slurmctld.log" "$DIR/slurmd.log"

  [ -s "$DIR/munge.key" ] || mungekey --create --keyfile="$DIR/munge.key" 2>/dev/null \
    || { dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none && chmod 600 "$DIR/munge.key"; } \
    || fail "cannot write $DIR/munge.key"
  munged --socket="$DIR/munge.socket" --key-file="$DIR/munge.key" --pid-file="$DIR/munged.pid" \
    --log-file="$DIR/munged.log" --seed-file="$DIR/munged.seed" 2>>"$DIR/munged.log" \
    || fail "munged did not start"
  munge -n --socket="$DIR/munge.socket" | unmunge --socket="$DIR/munge.socket" >/dev/null 2>&1 \
    || fail "munged does not answer on $DIR/munge.socket"

  local ports node
  read -r -a ports < <(free_ports)
  [ "${#ports[@]}" -eq 2 ] || fail "could not find two free TCP ports"
  # This machine's CPUs, sockets, cores, threads and memory as slurmd itself sees them: a node
  # configured with more than it has would be drained (invalid).
  node=$(slurmd -C 2>/dev/null | head -n 1 | sed "s/^NodeName=[^ ]*/NodeName=$HOST NodeAddr=127.0.0.1/")
  [[ $node == NodeName=* ]] || fail "slurmd -C did not describe this node"
  cat > "$CONF" <<EOF
# Single-node test cluster written by Tests/slurm/cluster.sh; everything lives in $DIR.
ClusterName=candela-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=${ports[0]}
SlurmdPort=${ports[1]}
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
# No cgroups, no accounting daemon, no MPI: plain processes on one node.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
# One CPU is the unit: two array tasks of --cpus-per-task=1 run side by side on two cores.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MailProg=/bin/true
$node State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

  # -c: a fresh controller, no jobs recovered from an earlier start in the same DIR.
  slurmctld -c -f "$CONF" >>"$DIR/slurmctld.log" 2>&1 || fail "slurmctld did not start"
  slurmd -f "$CONF" >>"$DIR/slurmd.log" 2>&1 || fail "slurmd did not start"

  local timeout=${SLURM_START_TIMEOUT:-30} state=""
  while :; do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null)
    [ "$state" = idle ] && break
    [ $((SECONDS - t0)) -ge "$timeout" ] && fail "node $HOST not idle after ${timeout}s (sinfo says '${state:-nothing}')"
    sleep 0.1
  done
  local ms=$(( ($(date +%s%N) - begin) / 1000000 ))
  echo "cluster.sh: node $HOST idle after $((ms / 1000)).$(printf %03d $((ms % 1000))) s; export SLURM_CONF=$CONF"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
