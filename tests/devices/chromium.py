"""A tiny Chrome DevTools Protocol client over --remote-debugging-pipe, for rendering tests.

Debian's headless ``chromium`` is started with a fresh profile and no network features;
commands go in on fd 3 and replies come out on fd 4, NUL-separated JSON. The page's
console errors, uncaught exceptions and failed loads are collected from the protocol's
events (Runtime.consoleAPICalled, Runtime.exceptionThrown, Log.entryAdded), which is
more robust than grepping the browser's log.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


def find() -> str | None:
    """The chromium binary, or None (make system-deps installs Debian's)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if p := shutil.which(name):
            return p
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class Browser:
    def __init__(
        self, binary: str, profile_dir: Path, timeout: float = 60.0, stderr=subprocess.DEVNULL
    ) -> None:
        self.timeout = timeout
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()

        def fds() -> None:  # runs in the child before exec: the browser reads fd 3, writes fd 4
            r, w = os.dup(cmd_r), os.dup(res_w)  # above 4, so neither dup2 overwrites the other
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank"],
            preexec_fn=fds,  # noqa: PLW1509 - single-threaded test helper
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._res_r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._res_r, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe (exit code {self.proc.poll()})")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + self.timeout
        for i, m in enumerate(self.events):
            if m.get("method") == method and m.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            m = self._read_message(deadline)
            self.events.append(m)
            if m.get("method") == method and m.get("sessionId") == session:
                return m

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._res_r)


def render(
    browser: Browser, url: str, width: int, height: int, script: str
) -> tuple[bytes, object, list[str]]:
    """Open ``url`` at ``width`` x ``height`` CSS px; return (PNG of the viewport, script's value, errors)."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.events.clear()
    for domain in ("Page", "Runtime", "Log"):
        browser.send(f"{domain}.enable", session=s)
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        session=s,
    )
    browser.send("Page.navigate", {"url": url}, session=s)
    browser.wait_event("Page.loadEventFired", s)
    value = browser.send(
        "Runtime.evaluate", {"expression": script, "returnByValue": True}, session=s
    )["result"].get("value")
    png = base64.b64decode(
        browser.send("Page.captureScreenshot", {"format": "png"}, session=s)["data"]
    )
    errors = []
    for m in browser.events:
        if m.get("sessionId") != s:
            continue
        p = m.get("params", {})
        if m.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(
                "console."
                + p["type"]
                + ": "
                + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
            )
        elif m.get("method") == "Runtime.exceptionThrown":
            errors.append("exception: " + str(p.get("exceptionDetails", {}).get("text")))
        elif m.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            errors.append(
                "log: " + str(p["entry"].get("text")) + " " + str(p["entry"].get("url", ""))
            )
    browser.send("Target.closeTarget", {"targetId": target})
    return png, value, errors
