"""The Celery deployment on one machine: redis (broker), a Postgres cluster (the Dagster instance) and
Celery workers per GPU group; ``resources/celery.sh`` and the tests drive this module.

    python -m tiktok_assets.executors.celery_services start [--no-servers] [WORKER ...]
    python -m tiktok_assets.executors.celery_services stop | status

A WORKER is ``GROUP[,GROUP...][:CONCURRENCY][@GPU]``: the groups' queues (at most four), the number of
steps it runs at once (default: the sum of the groups' limits from ``gpu_groups.yaml``) and the
``CUDA_VISIBLE_DEVICES`` it gets. Without WORKERs, one worker per group. Redis and Postgres are started
only where the settings' URLs point at this machine (loopback), on the URLs' ports, with their files
under ``$TIKTOK_ASSETS_HOME/services`` (Postgres: an ``initdb`` cluster owned by the ``postgres`` user
when this runs as root, trust authentication on 127.0.0.1 only); ``--no-servers`` starts only workers
(a further machine pointing at another machine's broker and database). Every call is idempotent:
what runs already is left running and said so. Logs: ``$TIKTOK_ASSETS_HOME/services/logs``.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..config import Settings, load_settings
from ..gpu_groups import GpuGroups
from ..run_guard import process_alive
from .celery import MAX_QUEUES_PER_WORKER, worker_app

LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}
APP = "tiktok_assets.executors.celery_app"
PROGRAMS = {"redis-server": "redis-server", "initdb": "postgresql"}  # program -> Debian package


class ServiceError(RuntimeError):
    """A service could not be started, reached or stopped (one sentence)."""


def say(message: str) -> None:
    print(f"[celery] {message}", flush=True)


# --- programs ---------------------------------------------------------------------------------------
def postgres_bin(program: str) -> str | None:
    """A Postgres server program: on PATH or in Debian's ``/usr/lib/postgresql/<version>/bin``."""
    found = shutil.which(program)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


def missing_packages() -> list[str]:
    """Debian packages of the servers that are not installed."""
    missing = []
    if not shutil.which("redis-server"):
        missing.append(PROGRAMS["redis-server"])
    if not postgres_bin("initdb"):
        missing.append(PROGRAMS["initdb"])
    return missing


def ensure_programs() -> None:
    """Install redis-server and postgresql with apt-get when missing (as root, or with sudo)."""
    missing = missing_packages()
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None or not shutil.which("apt-get"):
        raise ServiceError(f"{' and '.join(missing)} missing and cannot be installed here (needs apt-get as root); "
                           "install them or point the settings at existing servers")
    say(f"installing {' '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        done = subprocess.run([*sudo, *command], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise ServiceError(f"apt-get could not install {' '.join(missing)}: {done.stderr.strip()[-300:]}")
    if missing_packages():
        raise ServiceError(f"{' and '.join(missing_packages())} still missing after apt-get")


# --- workers ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerSpec:
    groups: tuple[str, ...]
    concurrency: int
    gpu: str | None = None

    @property
    def name(self) -> str:
        return "+".join(self.groups)


def parse_workers(items: Sequence[str], groups: GpuGroups) -> list[WorkerSpec]:
    """``GROUP[,GROUP...][:CONCURRENCY][@GPU]`` items -> worker specs (default: one per group)."""
    if not items:
        items = list(groups.groups)
    specs: list[WorkerSpec] = []
    seen: set[str] = set()
    for item in items:
        text, _, gpu = item.partition("@")
        names_text, _, concurrency_text = text.partition(":")
        names = tuple(n.strip() for n in names_text.split(",") if n.strip())
        unknown = [n for n in names if n not in groups.groups]
        if not names or unknown:
            raise ServiceError(f"worker {item!r}: {', '.join(unknown) or 'no group'} is not a group of gpu_groups.yaml "
                               f"({', '.join(groups.groups)})")
        if len(names) > MAX_QUEUES_PER_WORKER:
            raise ServiceError(f"worker {item!r} listens on {len(names)} queues; a worker takes at most "
                               f"{MAX_QUEUES_PER_WORKER}, start several")
        if seen & set(names):
            raise ServiceError(f"worker {item!r}: group {', '.join(sorted(seen & set(names)))} has a worker already")
        seen |= set(names)
        if concurrency_text and not (concurrency_text.isdigit() and int(concurrency_text) >= 1):
            raise ServiceError(f"worker {item!r}: the concurrency after ':' must be a whole number >= 1")
        limit = sum(groups.groups[n].limit(groups.cuda) for n in names)
        if gpu and not all(part.isdigit() for part in gpu.split(",")):
            raise ServiceError(f"worker {item!r}: the GPU after '@' must be an index such as 0 (or 0,1)")
        specs.append(WorkerSpec(names, int(concurrency_text) if concurrency_text else limit, gpu or None))
    return specs


def _read_pid(path: Path, program: str) -> int | None:
    """The pid in ``path`` if that process runs and is ``program`` (a stale file's pid may be reused)."""
    try:
        pid = int(path.read_text().split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError, IndexError):
        return None
    return pid if process_alive(pid) and program in command else None


class Services:
    """The services of the deployment under ``settings.home / "services"``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.home / "services"
        self.logs = self.root / "logs"
        self.pg_dir = self.root / "postgres"
        self.pg_data = self.pg_dir / "data"

    # --- redis ----------------------------------------------------------------------------------
    def redis_ports(self) -> list[int]:
        """The loopback redis ports among the broker and the result backend."""
        ports = []
        for url in (self.settings.celery_broker, self.settings.celery_backend):
            parts = urlsplit(url)
            if parts.scheme in ("redis", "rediss") and (parts.hostname or "") in LOOPBACK:
                ports.append(parts.port or 6379)
        return sorted(set(ports))

    def _redis_pidfile(self, port: int) -> Path:
        return self.root / "redis" / f"redis-{port}.pid"

    def redis_up(self, port: int) -> bool:
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def start_redis(self) -> None:
        for port in self.redis_ports():
            pid = _read_pid(self._redis_pidfile(port), "redis-server")
            if self.redis_up(port):
                say(f"redis on 127.0.0.1:{port} is running already" + (f" (pid {pid})" if pid else " (not started here)"))
                continue
            folder = self.root / "redis"
            folder.mkdir(parents=True, exist_ok=True)
            self.logs.mkdir(parents=True, exist_ok=True)
            log = self.logs / f"redis-{port}.log"
            done = subprocess.run(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "yes",
                 "--pidfile", str(self._redis_pidfile(port)), "--logfile", str(log), "--dir", str(folder),
                 "--appendonly", "yes", "--save", ""], capture_output=True, text=True,
            )
            if done.returncode != 0:
                raise ServiceError(f"redis-server did not start on 127.0.0.1:{port}: "
                                   f"{(done.stderr or done.stdout).strip()[-200:]} {_tail(log)}")
            if not _wait(lambda p=port: self.redis_up(p), 15):
                raise ServiceError(f"redis did not answer on 127.0.0.1:{port} within 15 s; see {log}: {_tail(log)}")
            say(f"redis started on 127.0.0.1:{port} (log {log})")

    def stop_redis(self) -> None:
        for port in self.redis_ports():
            path = self._redis_pidfile(port)
            pid = _read_pid(path, "redis-server")
            if pid is None:
                say(f"redis on port {port}: not started here")
                continue
            os.kill(pid, signal.SIGTERM)
            if not _wait(lambda p=pid: not process_alive(p), 20):
                raise ServiceError(f"redis (pid {pid}) did not stop within 20 s")
            path.unlink(missing_ok=True)
            say(f"redis on port {port} stopped")

    # --- postgres -------------------------------------------------------------------------------
    def pg_target(self) -> tuple[int, str, str] | None:
        """(port, user, database) of a loopback ``TIKTOK_ASSETS_POSTGRES_URL``; None when it is elsewhere."""
        if not self.settings.postgres_url:
            raise ServiceError("TIKTOK_ASSETS_POSTGRES_URL is not set; the Celery deployment keeps Dagster's runs "
                               "and events in Postgres (e.g. postgresql://postgres@127.0.0.1:5432/tiktok_assets)")
        parts = urlsplit(self.settings.postgres_url)
        if (parts.hostname or "") not in LOOPBACK:
            return None
        database = parts.path.lstrip("/") or "tiktok_assets"
        return parts.port or 5432, parts.username or "postgres", database

    def _as_owner(self, command: list[str]) -> list[str]:
        """``command`` as the cluster's owner: the ``postgres`` user when running as root."""
        if os.geteuid() != 0:
            return command
        return ["runuser", "-u", "postgres", "--", *command]

    def _pg_ctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        pg_ctl = postgres_bin("pg_ctl")
        if pg_ctl is None:
            raise ServiceError("pg_ctl not found; install the Debian package postgresql")
        return subprocess.run(self._as_owner([pg_ctl, "-D", str(self.pg_data), *args]), capture_output=True,
                              text=True, check=check)

    def postgres_running(self) -> bool:
        return (self.pg_data / "PG_VERSION").is_file() and self._pg_ctl("status").returncode == 0

    def start_postgres(self) -> None:
        target = self.pg_target()
        if target is None:
            say("the Postgres URL is not on this machine: not starting Postgres")
            return
        port, user, database = target
        if not (self.pg_data / "PG_VERSION").is_file():
            self._initdb(user)
        log = self.pg_dir / "postgres.log"
        if self.postgres_running():
            say(f"postgres on 127.0.0.1:{port} is running already (data {self.pg_data})")
        else:
            options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={self.pg_dir}"
            started = self._pg_ctl("-l", str(log), "-o", options, "-w", "-t", "60", "start")
            if started.returncode != 0:
                raise ServiceError(f"postgres did not start on 127.0.0.1:{port}: "
                                   f"{(started.stderr or started.stdout).strip()[-200:]} {_tail(log)}")
            say(f"postgres started on 127.0.0.1:{port} (data {self.pg_data}, log {log})")
        self._create_database(port, user, database)

    def _initdb(self, user: str) -> None:
        initdb = postgres_bin("initdb")
        if initdb is None:
            raise ServiceError("initdb not found; install the Debian package postgresql")
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.pg_dir, owner.pw_uid, owner.pw_gid)
            check = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.pg_dir)])
            if check.returncode != 0:
                raise ServiceError(f"the postgres user cannot write {self.pg_dir}; make its parent folders "
                                   "traversable (chmod o+x) or move TIKTOK_ASSETS_HOME")
        os.chmod(self.pg_dir, 0o700)
        done = subprocess.run(
            self._as_owner([initdb, "-D", str(self.pg_data), "-U", user, "--auth=trust", "-E", "UTF8",
                            "--locale=C.UTF-8"]), capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed in {self.pg_data}: {done.stderr.strip()[-300:]}")
        say(f"postgres cluster created in {self.pg_data} (trust authentication on 127.0.0.1)")

    def _create_database(self, port: int, user: str, database: str) -> None:
        import psycopg2

        try:
            con = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres", connect_timeout=10)
        except psycopg2.Error as exc:
            raise ServiceError(f"cannot connect to postgres on 127.0.0.1:{port} as {user}: {str(exc).strip()}") from exc
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{database}"')
                    say(f"database {database} created")
        finally:
            con.close()

    def stop_postgres(self) -> None:
        if self.pg_target() is None or not self.postgres_running():
            say("postgres: not running here")
            return
        done = self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop")
        if done.returncode != 0:
            raise ServiceError(f"postgres did not stop: {done.stderr.strip()[-200:]}")
        say("postgres stopped")

    # --- the Dagster instance -------------------------------------------------------------------
    def prepare_instance(self) -> dict[str, int]:
        """Create the instance's tables (once, before the workers race for it) and set the pool limits."""
        from ..instance import data_root_instance, deployment_instance
        from ..pool_limits import apply_pool_limits, load_gpu_groups

        instance = deployment_instance(self.settings) or data_root_instance(self.settings)
        with instance:
            limits = apply_pool_limits(instance, load_gpu_groups())
        say("pool limits: " + ", ".join(f"{pool}={n}" for pool, n in limits.items()))
        return limits

    # --- workers --------------------------------------------------------------------------------
    def _worker_pidfile(self, name: str) -> Path:
        return self.root / "workers" / f"{name}.pid"

    def worker_pids(self) -> dict[str, int]:
        """Running workers started here: name -> pid."""
        found = {}
        for path in sorted((self.root / "workers").glob("*.pid")):
            pid = _read_pid(path, APP)
            if pid is not None:
                found[path.stem] = pid
        return found

    def start_workers(self, specs: Sequence[WorkerSpec], wait_s: float = 120.0) -> dict[str, int]:
        """Start the workers not running yet; wait until each answers a ping; name -> pid."""
        (self.root / "workers").mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        running = self.worker_pids()
        started: dict[str, int] = {}
        for spec in specs:
            if spec.name in running:
                say(f"worker {spec.name} is running already (pid {running[spec.name]})")
                continue
            env = {**os.environ, "TIKTOK_ASSETS_EXECUTOR": "celery"}
            if spec.gpu is not None:
                env["CUDA_VISIBLE_DEVICES"] = spec.gpu
            log = self.logs / f"worker-{spec.name}.log"
            command = [sys.executable, "-m", "celery", "-A", APP, "worker", "-Q", ",".join(spec.groups),
                       "-c", str(spec.concurrency), "-n", f"{spec.name}@%h", "--prefetch-multiplier=1",
                       "-l", "INFO", "--without-gossip", "--without-mingle"]
            with open(log, "ab") as out:
                process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
            self._worker_pidfile(spec.name).write_text(f"{process.pid}\n")
            started[spec.name] = process.pid
            gpu = f", CUDA_VISIBLE_DEVICES={spec.gpu}" if spec.gpu is not None else ""
            say(f"worker {spec.name} started (pid {process.pid}, queues {','.join(spec.groups)}, "
                f"concurrency {spec.concurrency}{gpu}, log {log})")
        if started:
            self._wait_for_workers(list(started), wait_s)
        return {**{n: p for n, p in running.items()}, **started}

    def _wait_for_workers(self, names: list[str], wait_s: float) -> None:
        app = worker_app(self.settings)
        nodes = {f"{name}@{socket.gethostname()}" for name in names}
        deadline = time.monotonic() + wait_s
        answered: set[str] = set()
        while time.monotonic() < deadline:
            for name in names:
                pid = _read_pid(self._worker_pidfile(name), APP)
                if pid is None:
                    log = self.logs / f"worker-{name}.log"
                    raise ServiceError(f"worker {name} exited at start; see {log}: {_tail(log)}")
            for reply in app.control.ping(destination=sorted(nodes - answered), timeout=1.0) or []:
                answered |= set(reply)
            if answered >= nodes:
                say(f"workers ready: {', '.join(sorted(answered))}")
                return
        raise ServiceError(f"workers {', '.join(sorted(nodes - answered))} did not answer within {wait_s:.0f} s; "
                           f"see {self.logs}")

    def stop_workers(self, wait_s: float = 60.0) -> None:
        """Warm shutdown (running steps finish) for ``wait_s``, then the worker's process group is killed."""
        for name, pid in self.worker_pids().items():
            os.kill(pid, signal.SIGTERM)
            if not _wait(lambda p=pid: not process_alive(p), wait_s):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                say(f"worker {name} (pid {pid}) killed after {wait_s:.0f} s")
            else:
                say(f"worker {name} stopped")
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            self._worker_pidfile(name).unlink(missing_ok=True)

    # --- all ------------------------------------------------------------------------------------
    def start(self, specs: Sequence[WorkerSpec], servers: bool = True, wait_s: float = 120.0) -> dict[str, int]:
        if servers:
            ensure_programs()
            self.start_redis()
            self.start_postgres()
        self.prepare_instance()
        return self.start_workers(specs, wait_s)

    def stop(self) -> None:
        self.stop_workers()
        self.stop_redis()
        if self.settings.postgres_url:
            self.stop_postgres()

    def status(self) -> list[str]:
        lines = []
        for port in self.redis_ports():
            lines.append(f"redis 127.0.0.1:{port}: {'up' if self.redis_up(port) else 'down'}")
        if self.settings.postgres_url:
            target = self.pg_target()
            where = "elsewhere" if target is None else ("up" if self.postgres_running() else "down")
            lines.append(f"postgres {urlsplit(self.settings.postgres_url).netloc}: {where}")
        pids = self.worker_pids()
        answering: set[str] = set()
        if pids and any(self.redis_up(p) for p in self.redis_ports()):
            for reply in worker_app(self.settings).control.ping(timeout=1.0) or []:
                answering |= {node.split("@")[0] for node in reply}
        for name, pid in pids.items():
            lines.append(f"worker {name}: pid {pid}, {'answering' if name in answering else 'not answering'}")
        if not pids:
            lines.append("workers: none started here")
        return lines


def _wait(condition, seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return bool(condition())


def _tail(path: Path, chars: int = 400) -> str:
    try:
        return path.read_text(errors="replace")[-chars:].strip()
    except OSError:
        return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="celery.sh", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start redis, Postgres and the workers (what is not running yet)")
    start.add_argument("workers", nargs="*", help="GROUP[,GROUP...][:CONCURRENCY][@GPU] (default: one per group)")
    start.add_argument("--no-servers", action="store_true", help="start only the workers")
    start.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the workers to answer")
    sub.add_parser("stop", help="stop the workers, redis and Postgres started here")
    sub.add_parser("status", help="what runs")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        services = Services(settings)
        if args.command == "start":
            from ..analyzers import all_specs
            from ..gpu_groups import load_groups

            # not through the code location: loading it sets the pools, before Postgres runs
            groups = load_groups(settings.gpu_groups_file, tuple(sorted(all_specs())), settings.device_override)
            specs = parse_workers(args.workers, groups)
            services.start(specs, servers=not args.no_servers, wait_s=args.wait)
            say(f"UI, daemon and CLI need the same settings: TIKTOK_ASSETS_EXECUTOR=celery "
                f"TIKTOK_ASSETS_HOME={settings.home} TIKTOK_ASSETS_POSTGRES_URL={settings.postgres_url or ''} "
                f"TIKTOK_ASSETS_CELERY_BROKER={settings.celery_broker}")
        elif args.command == "stop":
            services.stop()
        else:
            for line in services.status():
                print(line)
    except (ServiceError, ValueError, OSError) as exc:
        say(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
