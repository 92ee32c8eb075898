"""A real one-node Slurm cluster for tests: munge, slurmctld and slurmd started as root, with a
`cpu` and a `gpu` partition and two STAND-IN GPUs (GRES backed by /dev/tty0-1: Slurm schedules
and sets CUDA_VISIBLE_DEVICES; nothing computes on them). One place for every test that needs it."""
import os
import socket
import subprocess
import time

CONF = '''ClusterName=kit
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
StateSaveLocation={work}/state
SlurmdSpoolDir={work}/spool
SlurmctldPidFile={work}/slurmctld.pid
SlurmdPidFile={work}/slurmd.pid
SlurmctldLogFile={work}/slurmctld.log
SlurmdLogFile={work}/slurmd.log
SlurmUser=root
MpiDefault=none
SchedulerParameters=sched_interval=1
JobCompType=jobcomp/none
NodeName={host} CPUs={cpus} RealMemory=4000 Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
PartitionName=gpu Nodes={host} MaxTime=INFINITE State=UP OverSubscribe=YES
PartitionName=short Nodes={host} MaxTime=10 State=UP OverSubscribe=YES
'''


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class SlurmCluster(object):
    def __init__(self, work):
        self.work = str(work)
        for d in ('state', 'spool', 'munge'):
            os.makedirs(os.path.join(self.work, d), exist_ok=True)
        key = os.path.join(self.work, 'munge', 'munge.key')
        with open(key, 'wb') as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = os.path.join(self.work, 'munge', 'munge.socket')
        self.procs = [subprocess.Popen(['munged', '--force', '--foreground', '--key-file', key,
                                        '--socket', self.munge_socket, '--pid-file', key + '.pid',
                                        '--log-file', os.path.join(self.work, 'munged.log'),
                                        '--seed-file', os.path.join(self.work, 'munge', 'seed')],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        self._wait(lambda: os.path.exists(self.munge_socket), 'munged')
        self.conf = os.path.join(self.work, 'slurm.conf')
        host = socket.gethostname().split('.')[0]
        with open(self.conf, 'w') as f:
            f.write(CONF.format(host=host, work=self.work, munge_socket=self.munge_socket, cpus=os.cpu_count(),
                                ctld_port=_free_port(), d_port=_free_port()))
        with open(os.path.join(self.work, 'gres.conf'), 'w') as f:
            f.write('AutoDetect=off\nNodeName=%s Name=gpu File=/dev/tty[0-1]\n' % host)
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        for daemon in ('slurmctld', 'slurmd'):
            self.procs.append(subprocess.Popen([daemon, '-D', '-f', self.conf], env=self.env,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self._wait(lambda: 'idle' in self.run('sinfo', '-h', '-o', '%T').stdout, 'slurm node to be idle', 60)

    def run(self, *cmd, **kw):
        return subprocess.run(list(cmd), env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, **kw)

    def sbatch(self, *args):
        res = self.run('sbatch', '--parsable', *args)
        assert res.returncode == 0, res.stdout
        return res.stdout.strip().split(';')[0]

    def wait(self, job_ids, timeout=900):
        """Wait until the jobs have left the queue; returns {job id: final state}."""
        self._wait(lambda: not self.run('squeue', '-h', '-j', ','.join(job_ids)).stdout.strip(), 'jobs', timeout)
        return {job: self.field(job, 'JobState') for job in job_ids}

    def field(self, job, name):
        """One field of `scontrol show job` (finished jobs stay there for MinJobAge, 300 s)."""
        out = self.run('scontrol', '-o', 'show', 'job', job).stdout
        return next(t.split('=', 1)[1] for t in out.split() if t.startswith(name + '='))

    def _wait(self, ready, what, timeout=30):
        deadline = time.time() + timeout
        while not ready():
            if time.time() > deadline:
                raise RuntimeError('timed out waiting for %s (logs in %s)' % (what, self.work))
            time.sleep(0.3)

    def stop(self):
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait(timeout=30)
