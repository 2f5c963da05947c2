#!/usr/bin/python3
# WANT_JSON
"""posnet_lock: one apply at a time on a store host (the lock lives on the host).

`posnet apply` locks its build tree, but two controllers, two clones, an operator's
`ansible-playbook site.yml` and an edge's own ansible-pull each have their own tree: only
the host sees them all. Two overlapping runs would share the firewall's rollback snapshot
(/var/lib/posnet/fw-previous) and could roll back to each other's ruleset.

The lock is a lease: ``/var/lib/posnet/apply.lock`` holds the run's token, who runs it
(user@controller, pid), since when and until when (the host's clock). site.yml takes it
in its first play (lock.yml), every play that writes renews it (a lease extended by
``seconds`` from now), the last play (unlock.yml) releases it, and `posnet apply`
releases it again after a failed or interrupted run (a host that failed mid-run leaves
the later plays). A run that dies (controller crash, kill -9, lost network) cannot
release it: its lease ends ``seconds`` after its last renewal and the next run takes it
over then, with a warning naming the dead run. Nothing on the host can tell a dead
controller from a slow one, so the deadline is the rule; the default lease (900 s) is
longer than any one play, and a run whose lease another run took over fails at its
next renewal instead of writing on.

A firewall watchdog armed by the holder may still roll back after its run died: release
keeps the lock until the newest armed watchdog's deadline (``watchdog_seconds`` after
its watch file was armed), so no next run snapshots or activates under it. Such a lock is
marked ``finished``: a second run meanwhile is told the holder finished and why it still
waits, and the next run after it takes it without the "dead run" warning.

A renewal that finds no lock at all fails like one that finds another run's: the lock
was taken over and released since, and the other run may have written. A lease that ends
further ahead than it was granted was written before the host's clock went back: it
counts again from now (written back), instead of holding the store for years.

Every read-decide-write happens under an flock on the state folder, so of two runs that
ask at the same instant exactly one gets the lock. A state folder another user owns or
may write to, and a lock path that is a symbolic link, FIFO or folder, are refused with
an error naming them (never followed, never waited on). Stdlib only (it runs on the host).

Arguments (JSON): ``action`` (acquire, renew, release), ``token``, ``owner``,
``seconds`` (the lease), ``wait`` (acquire: seconds to wait for a holder, default 0),
``watchdog_seconds`` (release), ``path`` (default /var/lib/posnet/apply.lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import math
import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PATH = "/var/lib/posnet/apply.lock"
SLACK = 15  # seconds past a watchdog's deadline: its rollback has finished by then
LATEST = 253402300799.0  # 9999-12-31: a later time is no time posnet wrote


class Refused(Exception):
    """A state folder or lock file posnet must not trust (planted, shared, not a file)."""


def stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def parse(raw: bytes | None, mtime: float, seconds: float) -> dict[str, Any] | None:
    """The holder a lock file names; a file that is not posnet's JSON is a holder
    nobody can name, held ``seconds`` from its last change (never ignored outright)."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
        holder = {
            "token": str(doc["token"]),
            "owner": str(doc["owner"]),
            "since": float(doc["since"]),
            "deadline": float(doc["deadline"]),
        }
        holder["finished"] = doc.get("finished") is True  # released, kept for a watchdog
        # A lock written without its lease length: at least what it was granted.
        holder["seconds"] = float(
            doc.get("seconds", max(seconds, holder["deadline"] - holder["since"]))
        )
        # NaN, infinity or a year past 9999 would hold the lock forever (or break the
        # message that names it): not a time posnet wrote.
        if not all(0 <= holder[k] <= LATEST for k in ("since", "deadline", "seconds")):
            raise ValueError("not a time")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return {"token": "", "owner": "unknown (unreadable lock file)", "since": mtime,
                "deadline": mtime + seconds, "seconds": seconds, "finished": False}  # fmt: skip
    return holder


def reanchor(holder: dict[str, Any] | None, now: float) -> bool:
    """A lease that ends further ahead than it was ever granted: the host's clock went
    back since it was written (an edge without a battery-backed clock set right by NTP
    after a run). Its end, read on today's clock, could be years away: the lease counts
    again from now instead. True when the holder changed (to be written back)."""
    if holder is None or holder["deadline"] - now <= holder["seconds"] + SLACK:
        return False
    holder["deadline"] = now + holder["seconds"]
    holder["since"] = min(holder["since"], now)
    return True


def describe(holder: dict[str, Any]) -> str:
    if holder.get("finished"):
        return (
            f"{holder['owner']} (run {holder['token'] or '?'}) finished; its firewall "
            f"watchdog may still roll back, so the lock stays until {stamp(holder['deadline'])}"
        )
    return (
        f"{holder['owner']} (run {holder['token'] or '?'}) since {stamp(holder['since'])}, "
        f"lease until {stamp(holder['deadline'])}"
    )


def decide(action: str, holder: dict[str, Any] | None, token: str, now: float) -> tuple[str, str]:
    """What to do with the lock: (verdict, why).

    Verdicts: ``take`` (write a lease for this run, keeping ``since`` when it is ours),
    ``takeover`` (acquire: take it from a run whose lease ended), ``busy`` (another run's
    lease holds), ``lost`` (renew: another run took it over), ``remove`` (release ours),
    ``none`` (release: nothing of ours to remove)."""
    ours = holder is not None and holder["token"] == token
    expired = holder is not None and holder["deadline"] <= now
    if action == "release":
        return ("remove", "") if ours else ("none", "not held by this run")
    if action == "renew" and holder is None:  # taken over and released since: not ours
        return "lost", "the lock this run took is gone from the host"
    if holder is None or ours:
        return "take", ""
    if action == "renew":  # another run took it over (maybe since gone): it may have written
        return "lost", describe(holder)
    if expired:
        return "takeover", describe(holder)
    return "busy", describe(holder)


def armed_until(state_dir: str, watchdog_seconds: float, now: float) -> float:
    """When the newest watchdog still armed in state_dir has done its work (0: none)."""
    last = 0.0
    for path in glob.glob(os.path.join(state_dir, "watch-*.armed")):
        try:
            last = max(last, os.stat(path).st_mtime + watchdog_seconds + SLACK)
        except OSError:
            continue  # disarmed or fired meanwhile
    return last if last > now else 0.0


@contextmanager
def guarded(state_dir: str) -> Iterator[None]:
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # A folder another user owns or may write to lets that user plant, swap or hold
        # the lock (and the firewall's rollback snapshot beside it): refused, not used.
        st = os.fstat(fd)
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise Refused(
                f"{state_dir} is owned by uid {st.st_uid} with mode "
                f"{stat.S_IMODE(st.st_mode):04o}: another user could plant or hold the apply "
                f"lock; make it root's, mode 0700 (chown root:root, chmod 700)"
            )
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read(path: str) -> tuple[bytes | None, float]:
    try:
        # O_NONBLOCK: a FIFO planted at the path must not hang the run (no writer).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, 0.0
    except OSError as exc:  # a symbolic link (ELOOP), or no permission
        raise Refused(f"{path} is not a lock file posnet can read ({exc.strerror})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{path} is not a regular file; remove it")
        return os.read(fd, 65536), st.st_mtime
    finally:
        os.close(fd)


def write(path: str, doc: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # a leftover of a run that died with this pid (never followed)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        os.write(fd, (json.dumps(doc, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def step(args: dict[str, Any], now: float) -> dict[str, Any]:
    """One decision under the state folder's flock; the module's result."""
    path = str(args.get("path") or PATH)
    action = str(args["action"])
    token = str(args.get("token") or "")
    seconds = float(args.get("seconds") or 900)
    with guarded(os.path.dirname(path)):
        raw, mtime = read(path)
        holder = parse(raw, mtime, seconds)
        if reanchor(holder, now) and holder is not None:
            write(path, holder)  # every later run reads the same lease end
        verdict, why = decide(action, holder, token, now)
        result: dict[str, Any] = {"changed": False, "verdict": verdict}
        result["finished"] = holder is not None and holder["finished"]
        if verdict in ("take", "takeover"):
            since = holder["since"] if holder is not None and verdict == "take" else now
            doc = {"token": token, "owner": str(args.get("owner") or "unknown"),
                   "since": since, "deadline": now + seconds, "seconds": seconds}  # fmt: skip
            write(path, doc)
            result["holder"] = describe(doc)
            finished = holder is not None and holder["finished"]
            if verdict == "takeover" and action == "acquire" and not finished:
                result["warnings"] = [
                    f"posnet: took over the lock of a run whose lease ended: {why}"
                ]
        elif verdict == "remove":
            until = armed_until(
                os.path.dirname(path), float(args.get("watchdog_seconds") or 45), now
            )
            if until and holder is not None:
                doc = {**holder, "deadline": min(holder["deadline"], until), "finished": True}
                write(path, doc)
                result["verdict"] = "kept"
                result["warnings"] = [
                    f"posnet: a firewall watchdog is still armed; the lock stays until "
                    f"{stamp(doc['deadline'])} so that no other run starts under its rollback"
                ]
            else:
                os.unlink(path)
        result["why"] = why
        return result


def busy_message(host: str, why: str, wait: float, finished: bool = False) -> str:
    how = (
        f"still held after waiting {wait:g} s"
        if wait
        else "wait for it to finish (posnet apply --wait SECONDS, or -e posnet_lock_wait=SECONDS)"
    )
    if finished:
        return f"posnet: {host} is not free yet: {why}; {how}."
    return (
        f"posnet: {host} is being applied by another run: {why}; {how}. A run that died "
        "keeps the lock until its lease ends, then the next apply takes it over."
    )


def run(args: dict[str, Any], clock: Any = time.time, sleep: Any = time.sleep) -> dict[str, Any]:
    action = str(args.get("action") or "")
    if action not in ("acquire", "renew", "release"):
        return {"failed": True, "msg": f"posnet_lock: unknown action {action!r}"}
    if not args.get("token"):
        if action == "release":
            return {"changed": False, "verdict": "none", "msg": "no lock taken by this run"}
        return {
            "failed": True,
            "msg": "posnet: this play writes to the store, which only site.yml's lock may "
            "allow: run playbooks/site.yml (or `posnet apply`), with --tags for one component",
        }
    host = str(args.get("host") or "this host")
    try:
        seconds = float(args.get("seconds") or 900)
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0 < seconds <= 10 * 365 * 86400:
        return {"failed": True, "msg": f"posnet_lock: seconds {args.get('seconds')!r} is not "
                "a lease length (a number of seconds, more than 0)"}  # fmt: skip
    wait = float(args.get("wait") or 0) if action == "acquire" else 0.0
    deadline = clock() + wait
    while True:
        try:
            result = step(args, clock())
        except Refused as exc:
            return {"failed": True, "msg": f"posnet: the apply lock on {host}: {exc}"}
        if result["verdict"] == "busy" and clock() < deadline:
            sleep(min(2.0, max(0.1, deadline - clock())))
            continue
        break
    if result["verdict"] == "busy":
        msg = busy_message(host, result["why"], wait, result["finished"])
        return {"failed": True, "msg": msg, **result}
    if result["verdict"] == "lost":
        return {
            "failed": True,
            "msg": f"posnet: this run's lease on {host} ended and another run took the lock "
            f"over ({result['why']}); stopped before writing. Raise posnet_lock_seconds if "
            "a roll-out leaves a store longer than that between its plays.",
            **result,
        }
    return {**result, "msg": result.get("holder") or result["why"] or result["verdict"]}


def main() -> None:
    with open(sys.argv[1]) as fh:
        args = json.load(fh)
    try:
        result = run(args)
    except (OSError, ValueError, ArithmeticError) as exc:
        result = {"failed": True, "msg": f"posnet_lock: {exc}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
