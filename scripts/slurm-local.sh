#!/usr/bin/env bash
# A single-node SLURM on this machine, for trying `cardio run --executor slurm` and for tests/cluster/test_slurm.py:
# munge and slurm-wlm from the system's packages, one partition (`local`) holding this machine's CPUs,
# slurmctld and slurmd on localhost. Run as root (or with sudo); run it again to restart the daemons.
# Stop: scripts/slurm-local.sh stop (slurmd, slurmctld, and munged when this script started it)
set -euo pipefail

conf_dir=/etc/slurm
state=/var/spool/slurmctld
spool=/var/spool/slurmd
logs=/var/log/slurm

started_munged=/run/cardio-slurm-local.munged  # written when this script started munged (not a system one)

stop_pidfile() {
    # one daemon by its pid file: TERM, then wait up to 10 s for it to exit
    local pidfile=$1 pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    echo "slurm-local.sh: process $pid ($pidfile) did not stop within 10 s" >&2
}

stop() {
    # the daemons this script started, by the pid files slurm.conf names, then munged if this script started it
    stop_pidfile /run/slurmd.pid
    stop_pidfile /run/slurmctld.pid
    if [[ ${1:-} == all && -e $started_munged ]]; then
        stop_pidfile /run/munge/munged.pid
        rm -f "$started_munged"
    fi
}

if [[ ${1:-} == stop ]]; then
    stop all
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "slurm-local.sh: run as root (it installs packages and starts daemons)" >&2
    exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# munge: a key once, then the daemon (it refuses root without --force; a container has no systemd)
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    touch "$started_munged"
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
mkdir -p "$conf_dir" "$state" "$spool" "$logs"
cat > "$conf_dir/slurm.conf" <<EOF
# written by cardio's scripts/slurm-local.sh: one node, one partition, no accounting, no cgroups
ClusterName=cardio-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job waits cred_expire seconds before it may start again (120 by default): 10 keeps the requeue test short
AuthInfo=cred_expire=10
StateSaveLocation=$state
SlurmdSpoolDir=$spool
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
# the main scheduling loop (60 s apart by default) is what starts a requeued job once its cred_expire has passed:
# every 2 s, a requeued job starts 11 s after its requeue instead of up to 70 s
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
: > "$conf_dir/cgroup.conf"

stop
sleep 1
slurmctld
slurmd
for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|alloc'; then
        sinfo
        exit 0
    fi
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 1
done
echo "slurm-local.sh: the node did not come up; see $logs/slurmctld.log and $logs/slurmd.log" >&2
exit 1
