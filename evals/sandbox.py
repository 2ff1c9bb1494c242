"""Run generated Elixir on the real `elixir`, contained.

Each run gets a fresh temp directory (its HOME and working directory), a wall-clock timeout and resource
limits (CPU seconds, data memory, file size, processes), and where the machine allows it its own network,
mount and PID namespaces: no network but a loopback that is down, the users' home directories hidden
under empty tmpfs mounts, and every process it forks killed with it. As root the code also runs as an
unprivileged user of its own (one per parallel slot), so the process limit counts only its processes.
Where namespaces are not available the run still has its limits, and `Isolation.warning` says what is
missing.

Outcomes follow MultiPL-E's categories (`MULTIPL_E_STATUS`): pass, assertion failure, compile or syntax
error, runtime error, timeout. The harness (`harness.exs`) writes one line per event to a result file,
so classification never parses ExUnit's human output.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from evals.errors import SandboxError

HARNESS = Path(__file__).with_name("harness.exs")
OUTCOMES = ("pass", "assertion_failure", "compile_error", "runtime_error", "timeout")
MULTIPL_E_STATUS = {
    "pass": "OK",
    "assertion_failure": "AssertionError",
    "compile_error": "SyntaxError",
    "runtime_error": "Exception",
    "timeout": "Timeout",
}
_FIRST_UID = 61000  # unprivileged uids for the parallel slots when running as root
_OUTPUT_LIMIT = 64 * 1024  # characters of stdout/stderr kept per run
_MIN_FILE_MB = 16  # the JIT maps its code through a 16 MiB memory file, which the file-size limit covers


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 20.0
    cpu_s: int = 30
    memory_mb: int = 1024  # RLIMIT_DATA: the BEAM reserves far more address space than it uses
    file_mb: int = 16  # at least _MIN_FILE_MB
    processes: int = 128  # threads count: an idle BEAM runs about 25

    def __post_init__(self) -> None:
        if self.file_mb < _MIN_FILE_MB:
            raise ValueError(f"file_mb must be at least {_MIN_FILE_MB}, not {self.file_mb}")


@dataclass(frozen=True)
class Isolation:
    """What containment this machine allows, probed once."""

    namespaces: bool  # own network, mount and PID namespaces
    user_namespace: bool  # namespaces through an unprivileged user namespace (not root)
    drop_privileges: bool  # root: run as a per-slot unprivileged uid
    warning: str | None = None


@dataclass
class Outcome:
    """How one program did: `status` is one of OUTCOMES; `detail` a one-line reason."""

    status: str
    seconds: float
    detail: str = ""
    tests: int = 0
    passed: int = 0
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def multipl_e_status(self) -> str:
        return MULTIPL_E_STATUS[self.status]


@dataclass
class _Parsed:
    load: str = ""  # "loaded" | "compile_error" | "runtime_error" | "" (never reported)
    load_detail: str = ""
    tests: list[tuple[str, str]] = field(default_factory=list)  # (passed|assertion|runtime|timeout, msg)


def _run_probe(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@functools.cache
def isolation() -> Isolation:
    """Probe namespaces once: as root directly, otherwise through a user namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return Isolation(
            False, False, False, "no `unshare` (util-linux): generated code runs with the network"
        )
    base = [unshare, "--net", "--mount", "--pid", "--fork", "--kill-child"]
    if os.geteuid() == 0:
        if _run_probe([*base, "--", "true"]):
            has_setpriv = shutil.which("setpriv") is not None
            warning = None if has_setpriv else "no `setpriv`: generated code runs as root (in namespaces)"
            return Isolation(True, False, has_setpriv, warning)
    elif _run_probe([unshare, "--user", "--map-root-user", *base[1:], "--", "true"]):
        return Isolation(True, True, False)
    return Isolation(
        False,
        False,
        False,
        "network namespaces are not available here: generated code can reach the network and read $HOME",
    )


def _hidden_homes(keep: Path) -> list[str]:
    """Home directories to cover with an empty tmpfs (never one holding the sandbox's own directory)."""
    homes = {"/root", "/home", os.path.expanduser("~")}
    return sorted(h for h in homes if os.path.isdir(h) and not str(keep).startswith(h.rstrip("/") + "/"))


def _user_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(entry / "task"))
            except OSError:
                continue
    return count


def _limiter(limits: Limits, *, privileged: bool) -> Callable[[], None]:
    # Without a uid of its own, RLIMIT_NPROC counts every process of the user: leave room for those.
    nproc = limits.processes if privileged else _user_process_count() + limits.processes

    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        data = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (data, data))
        size = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # A write past the file-size limit then fails with EFBIG ("file too large") in the program that
        # made it, instead of SIGXFSZ killing the VM and the rest of its batch.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return apply


class Sandbox:
    """Runs programs one per fresh directory, `jobs` at a time."""

    def __init__(self, limits: Limits | None = None, *, jobs: int | None = None, contained: bool = True):
        self.limits = limits or Limits()
        self.jobs = max(1, jobs or len(os.sched_getaffinity(0)))
        self.isolation = isolation() if contained else Isolation(False, False, False, "containment off")
        self.elixir = shutil.which("elixir")
        if self.elixir is None:
            raise SandboxError("`elixir` is not on PATH", hint="install Elixir (apt-get install elixir)")
        self._slots: list[int] = list(range(self.jobs))
        self._slot_lock = threading.Lock()

    @property
    def warning(self) -> str | None:
        return self.isolation.warning

    def _command(self, workdir: Path, slot: int, argv: list[str]) -> list[str]:
        iso = self.isolation
        if not iso.namespaces:
            return argv
        mounts = "".join(
            f"mount -t tmpfs -o size=64k,mode=0755 tmpfs '{h}' && " for h in _hidden_homes(workdir)
        )
        run = " ".join(f"'{a}'" for a in argv)
        if iso.drop_privileges:
            uid = _FIRST_UID + slot
            run = f"setpriv --reuid={uid} --regid={uid} --clear-groups -- {run}"
        # Bring nothing up in the new network namespace: not even loopback. The shell stays PID 1 instead
        # of exec-ing the VM: the kernel drops a signal like SIGXCPU sent to a namespace's PID 1 that has
        # no handler, so an exec-ed VM would run on to the hard CPU limit's SIGKILL, which unshare 2.38
        # reports as plain exit 1. The shell reports a signal as exit 128+N (see `_signal_exit`).
        script = f"{mounts}{run}; exit $?"
        prefix = ["unshare", "--user", "--map-root-user"] if iso.user_namespace else ["unshare"]
        return [*prefix, "--net", "--mount", "--pid", "--fork", "--kill-child", "--", "/bin/sh", "-c", script]

    def _env(self, workdir: Path) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            "ERL_CRASH_DUMP_SECONDS": "0",  # a crashed VM writes no dump into the sample's directory
        }

    def _acquire(self) -> int:
        with self._slot_lock:
            return self._slots.pop() if self._slots else 0

    def _release(self, slot: int) -> None:
        with self._slot_lock:
            self._slots.append(slot)

    def run_programs(self, programs: Sequence[str], *, contained: bool = True) -> list[Outcome]:
        """Run `programs` in ONE VM (one directory): faster, for trusted code such as reference solutions.
        A program that halts the VM takes the rest of the batch with it."""
        slot = self._acquire()
        try:
            return self._run(programs, slot, contained=contained)
        finally:
            self._release(slot)

    def run(self, program: str) -> Outcome:
        return self.run_programs([program])[0]

    def run_many(
        self, programs: Sequence[str], *, on_done: Callable[[int, Outcome], None] | None = None
    ) -> list[Outcome]:
        """Each program alone in its own sandbox, `jobs` in parallel; results in input order."""
        results: list[Outcome | None] = [None] * len(programs)
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(self.run, p): i for i, p in enumerate(programs)}
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                if on_done is not None:
                    on_done(i, results[i])
        return [r for r in results if r is not None]

    def run_script(self, script: Path, files: Sequence[str], *, timeout_s: float) -> Invocation:
        """Run an Elixir `script` on `files` (texts, written as file_0.ex ...) in one sandbox; the script
        gets the result file then the file names as arguments."""
        slot = self._acquire()
        try:
            return self._invoke(script, files, slot, contained=True, timeout_s=timeout_s, suffix=".ex")
        finally:
            self._release(slot)

    def _run(self, programs: Sequence[str], slot: int, *, contained: bool) -> list[Outcome]:
        timeout = self.limits.timeout_s * max(1, len(programs))
        inv = self._invoke(HARNESS, programs, slot, contained=contained, timeout_s=timeout, suffix=".exs")
        parsed, done = _parse(inv.lines, len(programs))
        outcomes = []
        for p in parsed:
            status, detail = _classify(
                p, done=done, timed_out=inv.timed_out, code=inv.code, stderr=inv.stderr
            )
            passed = sum(1 for s, _ in p.tests if s == "passed")
            share = inv.seconds / len(programs)
            outcomes.append(
                Outcome(status, share, detail, len(p.tests), passed, inv.code, inv.stdout, inv.stderr)
            )
        return outcomes

    def _invoke(
        self, script: Path, files: Sequence[str], slot: int, *, contained: bool, timeout_s: float, suffix: str
    ) -> Invocation:
        root = Path(tempfile.mkdtemp(prefix="potion-eval-"))
        try:
            names = []
            for i, text in enumerate(files):
                name = f"file_{i}{suffix}"
                (root / name).write_text(text, encoding="utf-8")
                names.append(name)
            local = root / script.name
            shutil.copyfile(script, local)
            result = root / f"result-{uuid.uuid4().hex}.tsv"
            argv = [self.elixir, str(local), str(result), *names]
            privileged = self.isolation.drop_privileges and contained
            if privileged:
                uid = _FIRST_UID + slot
                for path in [root, *root.iterdir()]:
                    os.chown(path, uid, uid)
            os.chmod(root, 0o700)
            cmd = self._command(root, slot, argv) if contained else argv
            own_uid = privileged or os.geteuid() != 0
            through_shell = contained and self.isolation.namespaces
            return self._execute(
                cmd, root, result, timeout_s, privileged=own_uid, through_shell=through_shell
            )
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _execute(
        self,
        cmd: list[str],
        root: Path,
        result: Path,
        timeout_s: float,
        *,
        privileged: bool,
        through_shell: bool,
    ) -> Invocation:
        started = time.perf_counter()
        timed_out = False
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=root,
                env=self._env(root),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                preexec_fn=_limiter(self.limits, privileged=privileged),
            )
        except OSError as exc:
            raise SandboxError(f"cannot start elixir: {exc}", hint="check that `elixir` runs") from exc
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, err = proc.communicate()
        try:
            lines = result.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        return Invocation(
            lines=lines,
            code=_signal_exit(proc.returncode) if through_shell else proc.returncode,
            seconds=time.perf_counter() - started,
            timed_out=timed_out,
            stdout=out.decode("utf-8", "replace")[-_OUTPUT_LIMIT:],
            stderr=err.decode("utf-8", "replace")[-_OUTPUT_LIMIT:],
        )


@dataclass
class Invocation:
    """One run of a script in the sandbox: its result lines and how the process ended."""

    lines: list[str]
    code: int | None
    seconds: float
    timed_out: bool
    stdout: str
    stderr: str


def _signal_exit(code: int | None) -> int | None:
    """Read the namespace shell's exit 128+N (the program was killed by signal N) as Popen's -N, so a code
    means the same with and without namespaces. A program that exits with 129..192 itself reads the same."""
    if code is not None and 128 < code < 128 + signal.NSIG:
        return 128 - code
    return code


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # unshare and, through its PID namespace, all it started
    except ProcessLookupError:
        pass


def _parse(lines: list[str], n: int) -> tuple[list[_Parsed], bool]:
    parsed = [_Parsed() for _ in range(n)]
    done = False
    for line in lines:
        fields = line.split("\t")
        kind = fields[0]
        if kind == "done":
            done = True
            continue
        if len(fields) < 2 or not fields[1].lstrip("-").isdigit():
            continue
        index = int(fields[1])
        if not 0 <= index < n:
            continue
        if kind in ("loaded", "compile_error", "runtime_error"):
            parsed[index].load = kind
            parsed[index].load_detail = fields[2] if len(fields) > 2 else ""
        elif kind == "test" and len(fields) >= 3:
            parsed[index].tests.append((fields[2], fields[3] if len(fields) > 3 else ""))
    return parsed, done


_LIMIT_SIGNS = (
    ("Cannot allocate", "memory limit"),
    ("eheap_alloc", "memory limit"),
    ("File too large", "file size limit"),
    ("efbig", "file size limit"),
    ("Resource temporarily unavailable", "process limit"),
    ("eagain", "process limit"),
)


def _classify(p: _Parsed, *, done: bool, timed_out: bool, code: int | None, stderr: str) -> tuple[str, str]:
    if p.load == "compile_error":
        return "compile_error", p.load_detail
    if p.load == "runtime_error":
        return "runtime_error", p.load_detail
    # Like MultiPL-E: any failed assertion makes it an assertion failure, then exceptions, then timeouts.
    for kind, status in (
        ("assertion", "assertion_failure"),
        ("runtime", "runtime_error"),
        ("timeout", "timeout"),
    ):
        messages = [m for s, m in p.tests if s == kind]
        if messages:
            return status, messages[0]
    if p.load == "loaded" and done and p.tests:
        return "pass", ""
    if p.load == "loaded" and done:
        return "runtime_error", "no tests ran"
    if timed_out:
        return "timeout", "wall-clock timeout"
    if code == -signal.SIGXCPU:
        return "timeout", "CPU time limit"
    if code == -signal.SIGXFSZ:
        return "runtime_error", "file size limit"
    for sign, reason in _LIMIT_SIGNS:
        if sign in stderr:
            return "runtime_error", reason
    if p.load == "":
        first = next((line for line in stderr.splitlines() if line.strip()), "")
        why = " (System.halt?)" if code == 0 else f": {first}"
        return "runtime_error", f"the VM exited (code {code}) while loading the program{why}"[:300]
    return "runtime_error", f"the VM exited (code {code}) before the tests finished (System.halt?)"
