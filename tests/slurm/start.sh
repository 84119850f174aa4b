#!/usr/bin/env bash
# A one-node Slurm cluster for the sweep tests (kernel/tests/sweep.rs): Debian's slurm-wlm and
# munge, configured for this machine and started, as root. Idempotent: daemons already running
# are left alone. Prints why and exits 1 when it cannot (no root, no apt); the tests then say
# loudly that they skipped.
set -uo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "slurm: not root: the one-node cluster is not started" >&2
  exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if ! command -v apt-get >/dev/null; then
    echo "slurm: no apt-get to install slurm-wlm and munge" >&2
    exit 1
  fi
  echo "== apt-get install slurm-wlm munge (once)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null || exit 1
fi

# munge: a key (Debian's postinst makes one; a container may not have run it), then the daemon.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- /usr/sbin/munged || exit 1
fi

# slurm.conf for this host: the node line is what slurmd reads off the hardware.
host=$(hostname -s)
node=$(slurmd -C | head -1 | sed 's/ *UpTime=.*//')
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
# Written by sandwich's tests/slurm/start.sh: one node, no accounting, no cgroups.
ClusterName=sandwich
SlurmctldHost=${host}(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MaxArraySize=1001
${node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

if ! pgrep -x slurmctld >/dev/null; then
  slurmctld || exit 1
fi
if ! pgrep -x slurmd >/dev/null; then
  slurmd || exit 1
fi
# Ready when the node takes jobs (idle or mixed).
for _ in $(seq 1 60); do
  state=$(sinfo -h -o %T 2>/dev/null | head -1)
  case "$state" in
    idle*|mixed*|allocated*) echo "== slurm: node ${host} ${state}"; exit 0 ;;
  esac
  sleep 0.5
done
echo "slurm: the node did not come up (sinfo: '${state:-}'); see /var/log/slurm/" >&2
exit 1
