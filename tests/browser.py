"""Headless Chromium driven over the DevTools protocol, for the report tests.

Only file:// pages are opened; the browser runs with networking features off and a
throw-away profile, and is stopped (its process group killed) when the block ends.
Console messages, uncaught exceptions and CSP/log errors are collected per page.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
    "--window-size=1280,1000",
]


class Page:
    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.problems: list[str] = []
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _event(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.problems.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            self.problems.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            self.problems.append(f"log: {params['entry']['text']}")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            self._event(msg)

    def wait_for(self, event: str) -> None:
        while True:
            msg = json.loads(self.ws.recv())
            self._event(msg)
            if msg.get("method") == event:
                return

    def open(self, url: str) -> None:
        assert url.startswith("file://"), url
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.eval("0")  # let deferred scripts and their events settle

    def eval(self, expr: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expr}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))


@contextmanager
def chromium(exe: str, profile: Path) -> Iterator[Page]:
    proc = subprocess.Popen(
        [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stderr is not None
        browser_url = ""
        for line in proc.stderr:
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                browser_url = m.group(1)
                break
        assert browser_url, "chromium did not start its DevTools endpoint"
        port = browser_url.split(":")[2].split("/")[0]
        browser = websocket.create_connection(browser_url, timeout=60, suppress_origin=True)
        browser.send(json.dumps({"id": 1, "method": "Target.getTargets"}))
        targets = json.loads(browser.recv())["result"]["targetInfos"]
        page_id = next(t["targetId"] for t in targets if t["type"] == "page")
        browser.close()
        page = Page(f"ws://127.0.0.1:{port}/devtools/page/{page_id}")
        try:
            yield page
        finally:
            page.ws.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
