"""Load test of the web page's APIs: N concurrent users, each asking M questions, through
gradio_client's `/ask` and through plain JSON `POST /api/ask` (one after the other).

    python eval/load_test.py                      # starts app.py on a free loopback port, default index
    python eval/load_test.py --index DIR          # ... over another index
    python eval/load_test.py --url http://127.0.0.1:7860/   # an app that is already running (loopback only)
    python eval/load_test.py --endpoint api       # only POST /api/ask (or: gradio, both)

Prints p50/p95/max latency (client-side, per question, through the queue), throughput
(questions/s over the whole run) and the error count; exits 1 when any question failed.
A benchmark, not a test: figures depend on the machine. Targets on 2 cores: 0 errors, p95 <= 1 s.
Traffic goes to loopback only; every request has a timeout and the run is bounded by users x questions.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from eval.metrics import percentile

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "can JapanWork share my data with partners?",
    "which of these sites share my data with employers?",
    "does Gaijin Poole use cookies?",
    "how do I ask en Japan to delete my personal information?",
    "who can I contact about my data at JACCES?",
    "what personal information does JapanWork collect?",
    "can I turn off behavioural advertising on JapanWork?",
    "does Highly Skilled Japan give my information to third parties?",
    "how long does en Japan keep my video interview?",
    "is my data sent outside Japan?",
    "what is my data used for?",
    "can I see the data a site holds about me?",
    "does JACCES use Google Analytics?",
    "will they tell me if the privacy policy changes?",
    "what happens to my data if I delete my account?",
    "do they sell my data to crypto miners on mars?",
    "which sites use cookies for advertising?",
    "how does Gaijin Poole protect my personal information?",
    "who is responsible for personal information at en Japan?",
    "can my employer see my application history?",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen | None, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise SystemExit(f"the app exited with code {server.returncode} before it was up")
        try:
            with urllib.request.urlopen(url + "config", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the app at {url} did not come up within {timeout:.0f} s")


def start_app(index: str | None, log) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    if index:
        cmd += ["--index", index]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return server, f"http://127.0.0.1:{port}/"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), or None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class JsonClient:
    """A script's client of POST /api/ask: one kept-alive HTTP connection per user."""

    def __init__(self, url: str):
        import httpx

        self.url = url + "api/ask"
        self.http = httpx.Client(timeout=60.0, verify=False)

    def ask(self, question: str, timeout: float) -> dict:
        r = self.http.post(self.url, json={"question": question}, timeout=timeout)
        body = r.json()
        if r.status_code != 200 and "error" not in body:
            body = {"error": f"status {r.status_code}"}
        return body

    def close(self) -> None:
        self.http.close()


def run_load(url: str, users: int, per_user: int, timeout: float, endpoint: str = "gradio", distinct: bool = False) -> dict:
    from gradio_client import Client

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    clients: list = [None] * users

    # Plain http on loopback: no certificate to check. With checking on, httpx loads the CA bundle
    # for every request gradio_client makes, and that CPU (on the same 2 cores) would be billed
    # to the app's latency.
    plain = urlparse(url).scheme == "http"

    def connect(u: int) -> None:
        try:
            clients[u] = JsonClient(url) if endpoint == "api" else Client(url, verbose=False, ssl_verify=not plain)
        except Exception as e:  # counted, not raised: a user that cannot connect is an error per question
            with lock:
                errors.extend([f"connect: {type(e).__name__}: {e}"] * per_user)

    connectors = [threading.Thread(target=connect, args=(u,)) for u in range(users)]
    for t in connectors:
        t.start()
    for t in connectors:
        t.join()
    start = threading.Barrier(users + 1)

    def user(u: int) -> None:
        client = clients[u]
        start.wait()
        if client is None:
            return
        for i in range(per_user):
            question = QUESTIONS[(u * 7 + i) % len(QUESTIONS)]
            if distinct:  # no two questions alike: the app's answer cache never helps
                question = f"{question} ({endpoint} {u * per_user + i + 1})"
            t0 = time.perf_counter()
            try:
                if endpoint == "api":
                    result = client.ask(question, timeout)
                else:
                    result = client.submit(question, None, api_name="/ask").result(timeout=timeout)
                problem = None
                if not isinstance(result, dict):
                    problem = f"not a JSON object: {type(result).__name__}"
                elif "error" in result:
                    problem = f"error answer: {result['error']}"
                elif not isinstance(result.get("answer"), str) or "citations" not in result:
                    problem = "answer without the JSON contract's keys"
            except Exception as e:
                problem = f"{type(e).__name__}: {e}"
            elapsed = time.perf_counter() - t0
            with lock:
                if problem:
                    errors.append(problem)
                else:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for t in threads:
        t.start()
    start.wait()
    t_start, cpu_start = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    client_cpu = time.process_time() - cpu_start
    def close(c) -> None:
        try:
            c.close()  # waits about a second for its heartbeat thread: close them all at once
        except Exception:
            pass

    closers = [threading.Thread(target=close, args=(c,)) for c in clients if c is not None]
    for t in closers:
        t.start()
    for t in closers:
        t.join(timeout=30)
    return {
        "endpoint": ("POST /api/ask" if endpoint == "api" else "gradio_client /ask") + (", distinct questions" if distinct else ""),
        "client_cpu_ms_per_question": round(1000 * client_cpu / (users * per_user), 1),
        "users": users, "questions_per_user": per_user, "questions": users * per_user,
        "answered": len(latencies), "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
        "wall_s": round(wall, 3), "throughput_qps": round(len(latencies) / wall, 2) if wall else None,
        "latency_s": {
            "p50": round(percentile(latencies, 50), 3), "p95": round(percentile(latencies, 95), 3),
            "max": round(max(latencies), 3) if latencies else None,
            "mean": round(statistics.fmean(latencies), 3) if latencies else None,
        },
    }


def _print(report: dict, url: str) -> None:
    lat = report["latency_s"]
    print(f"PolicyQA load test: {report['users']} users x {report['questions_per_user']} questions "
          f"= {report['questions']} via {report['endpoint']} at {url}")
    print(f"  latency   p50 {lat['p50'] * 1000:.0f} ms   p95 {lat['p95'] * 1000:.0f} ms   "
          f"max {lat['max'] * 1000 if lat['max'] is not None else float('nan'):.0f} ms")
    print(f"  throughput {report['throughput_qps']} questions/s over {report['wall_s']} s")
    print(f"  errors    {report['errors']}" + (f"  ({'; '.join(report['error_kinds'])})" if report["errors"] else ""))
    if "server_cpu_ms_per_question" in report:
        print(f"  app CPU   {report['server_cpu_ms_per_question']} ms a question (queue + engine); "
              f"load-test clients {report['client_cpu_ms_per_question']} ms (same cores)")
    if "load_average_1m" in report:
        print(f"  machine load average {report['load_average_1m']} before the run (other work on the same cores inflates latency)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", help="a running app (loopback only); default: start app.py on a free loopback port")
    p.add_argument("--index", help="index directory for the app this starts (default: the built-in corpus' index)")
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--questions", type=int, default=10, help="questions per user")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before one question counts as failed")
    p.add_argument("--endpoint", choices=["gradio", "api", "both"], default="both",
                   help="gradio_client /ask, POST /api/ask, or both one after the other (default)")
    p.add_argument("--distinct", action="store_true",
                   help="make every question distinct (the app's answer cache never hits): the engine's full cost each time")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object per endpoint")
    args = p.parse_args(argv)
    if not (1 <= args.users <= 200 and 1 <= args.questions <= 1000):
        p.error("--users must be 1..200 and --questions 1..1000")

    server, reports = None, []
    log = tempfile.TemporaryFile(mode="w+")
    if args.url:
        url = args.url if args.url.endswith("/") else args.url + "/"
        if urlparse(url).hostname not in LOOPBACK:
            p.error("--url must be a loopback address (127.0.0.1, localhost or ::1)")
    else:
        server, url = start_app(args.index, log)
    try:
        t0 = time.perf_counter()
        try:
            wait_until_up(url, server)
        except SystemExit:
            log.seek(0)
            print(log.read()[-3000:], file=sys.stderr)
            raise
        startup = time.perf_counter() - t0
        # One warm-up question (not counted), as a visitor after start-up would not be the first either.
        from gradio_client import Client

        warm = Client(url, verbose=False, ssl_verify=urlparse(url).scheme != "http")
        warm.predict("can I delete my data?", api_name="/ask")
        warm.close()
        if server is not None:
            print(f"app start-up {startup:.2f} s (not counted)", file=sys.stderr)
        for endpoint in (["gradio", "api"] if args.endpoint == "both" else [args.endpoint]):
            try:
                load = round(os.getloadavg()[0], 2)
            except OSError:
                load = None
            cpu0 = cpu_seconds(server.pid) if server is not None else None
            report = run_load(url, args.users, args.questions, args.timeout, endpoint, args.distinct)
            if server is not None:
                cpu1 = cpu_seconds(server.pid)
                if cpu0 is not None and cpu1 is not None and report["answered"]:
                    report["server_cpu_ms_per_question"] = round(1000 * (cpu1 - cpu0) / report["questions"], 1)
            if load is not None:
                report["load_average_1m"] = load
            reports.append(report)
            print(json.dumps(report)) if args.json else _print(report, url)
    finally:
        if server is not None:
            if any(r["errors"] for r in reports):  # the app's own account of what failed
                log.seek(0)
                lines = [line for line in log.read().splitlines() if "failed" in line]
                print("\n".join(lines[-10:]), file=sys.stderr)
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return 1 if any(r["errors"] for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
