"""A real single-node SLURM cluster on localhost for tests: munged, slurmctld and slurmd in the foreground, as
children of the test, all state in one temporary folder; stopped by PID. Needs root (slurmd starts jobs as the
submitting user) and Debian's slurm-wlm and munge, which `make system-packages` installs."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PARTITION = "debug"
# The node advertises more than this machine has (slurmd trusts the config: SlurmdParameters=config_overrides), so
# that jobs asking for a real cluster's CPUs, memory and a GPU are scheduled here. `File=/dev/null` is the fake GPU.
NODE_CPUS = 32
NODE_MEMORY_MB = 512_000
DAEMONS = ("munged", "slurmctld", "slurmd")


class ClusterError(RuntimeError):
    """The cluster did not come up; the message holds the daemons' logs."""


@dataclass
class SlurmCluster:
    base: Path
    processes: dict[str, subprocess.Popen]

    @property
    def conf(self) -> Path:
        return self.base / "slurm.conf"

    def env(self) -> dict[str, str]:
        """The environment of commands that talk to this cluster (sbatch, squeue, and Snakemake that calls them).
        The plugin's job step drops every SLURM_* variable before it calls srun, so srun would look for the config
        in /etc/slurm; a wrapper first on PATH gives it this cluster's instead, leaving the machine's untouched."""
        path = os.pathsep.join([str(self.base / "bin"), os.environ.get("PATH", "")])
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def command(self, *args: str, timeout: float = 30) -> str:
        run = subprocess.run(args, env=self.env(), capture_output=True, text=True, timeout=timeout)
        if run.returncode != 0:
            raise ClusterError(f"{' '.join(args)} failed: {run.stderr.strip()}")
        return run.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller remembers (finished ones stay MinJobAge seconds), with what it asked for."""
        columns = {
            "id": "jobid", "name": "name", "comment": "comment", "state": "state", "partition": "partition",
            "cpus": "mincpus", "memory": "minmemory", "gres": "tres-per-job", "time_limit": "timelimit",
        }
        out = self.command(
            "squeue", "--noheader", "--states=all", "--Format=" + ",".join(f"{field}:|" for field in columns.values())
        )
        return [dict(zip(columns, map(str.strip, line.split("|")))) for line in out.splitlines() if line.strip()]

    def logs(self) -> str:
        parts = []
        for name in DAEMONS:
            log = self.base / f"{name}.log"
            if log.exists():
                parts.append(f"--- {name}.log\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _check_daemons() -> None:
    missing = [name for name in DAEMONS if not (shutil.which(name) or Path("/usr/sbin", name).exists())]
    if missing:
        raise ClusterError(f"{', '.join(missing)} not found: `make system-packages` installs slurm-wlm and munge")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _write_config(base: Path, munge_socket: Path) -> None:
    state, spool = base / "state", base / "spool"
    state.mkdir()
    spool.mkdir()
    (base / "slurm.conf").write_text(
        f"""ClusterName=chemlmtest
SlurmctldHost=localhost
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
    )
    (base / "gres.conf").write_text("NodeName=localhost Name=gpu File=/dev/null\n")
    wrapper = base / "bin" / "srun"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={base}/slurm.conf exec {shutil.which("srun")} "$@"\n')
    wrapper.chmod(0o755)


def _start_munged(base: Path) -> tuple[subprocess.Popen, Path]:
    """munged as user munge with its own key and socket, in a folder only munge may write (munged checks)."""
    munge = pwd.getpwnam("munge")
    folder = base / "munge"
    folder.mkdir(mode=0o700)
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    for path in (folder, key):
        os.chown(path, munge.pw_uid, munge.pw_gid)
    munge_socket = folder / "munge.socket"
    process = subprocess.Popen(
        [
            shutil.which("munged") or "/usr/sbin/munged", "--foreground", "--force",
            f"--socket={munge_socket}", f"--key-file={key}", f"--pid-file={folder}/munged.pid",
            f"--seed-file={folder}/munged.seed", f"--log-file={base}/munged.log",
        ],
        user=munge.pw_uid, group=munge.pw_gid, extra_groups=[], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    return process, munge_socket


def _wait_for(condition, what: str, cluster: SlurmCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise ClusterError(f"{name} exited with {process.returncode} while waiting for {what}\n{cluster.logs()}")
        with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
            if condition():
                return
        time.sleep(0.5)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}\n{cluster.logs()}")


def _stop(cluster: SlurmCluster) -> None:
    """Cancel leftover jobs, then stop the daemons in reverse start order, each by its PID."""
    if "slurmctld" in cluster.processes and cluster.processes["slurmctld"].poll() is None:
        with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
            cluster.command("scancel", "--user", pwd.getpwuid(os.getuid()).pw_name, timeout=10)
    for name in reversed(list(cluster.processes)):
        process = cluster.processes[name]
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


@contextlib.contextmanager
def local_slurm(start_timeout: float = 60) -> Iterator[SlurmCluster]:
    """A running cluster with partition PARTITION and one idle node `localhost` with one (fake) GPU."""
    if os.geteuid() != 0:
        raise ClusterError("a local SLURM cluster needs root: slurmd runs jobs as their submitting user")
    _check_daemons()
    # Not under pytest's tmp_path: its parents are private to root, and munged (user munge) must reach its folder.
    base = Path(tempfile.mkdtemp(prefix="chemlm-slurm-"))
    base.chmod(0o755)
    cluster = SlurmCluster(base, {})
    try:
        cluster.processes["munged"], munge_socket = _start_munged(base)
        _wait_for(munge_socket.exists, "munged's socket", cluster, start_timeout)
        _write_config(base, munge_socket)
        env = cluster.env()
        quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
        cluster.processes["slurmctld"] = subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(cluster.conf)], **quiet)
        _wait_for(lambda: bool(cluster.command("sinfo", "--noheader", timeout=5)), "slurmctld", cluster, start_timeout)
        cluster.processes["slurmd"] = subprocess.Popen(["slurmd", "-D", "-N", "localhost", "-f", str(cluster.conf)], **quiet)
        node_state = ("sinfo", "--noheader", "--nodes=localhost", "--format=%t")
        _wait_for(lambda: cluster.command(*node_state, timeout=5).strip() == "idle", "node localhost idle", cluster, start_timeout)
        yield cluster
    finally:
        _stop(cluster)
        shutil.rmtree(base, ignore_errors=True)
