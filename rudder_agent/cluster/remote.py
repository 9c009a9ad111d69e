"""Runs one role (server or trainer) on a host reached over ssh, and ends it when the launcher goes away.

ssh without a terminal does not signal the remote command when the connection drops, so the launcher keeps
each ssh's stdin open and this wrapper watches it: end of input (the launcher closed it, was stopped, or
died, or the connection broke) stops the role's whole process group, SIGTERM then SIGKILL. A server's
wrapper also removes the run's shared-memory segments on its host once the server has exited: nothing is
left in ``/dev/shm`` on any host, however the run ended.

    python -m rudder_agent.cluster.remote [--clean-shm PREFIX] -- python -m rudder_agent.cluster.server
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

from rudder_agent.cluster.isolation import remove_segments

GRACE_S = 5.0


def stop(child: subprocess.Popen) -> None:
    """SIGTERM the child's process group, SIGKILL what is left after the grace time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + GRACE_S
        while child.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        if child.poll() is not None:
            return


def watch_input(child: subprocess.Popen) -> None:
    """Block until stdin ends, then stop the child."""
    while sys.stdin.buffer.read1(1 << 16):
        pass
    stop(child)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one DistDGL role for a launcher over ssh (started by "
                                                 "`rudder train --hosts`); stops it when stdin ends.")
    parser.add_argument("--clean-shm", metavar="PREFIX", help="remove /dev/shm/PREFIX* once the role exits")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the role's command line")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run: give it after --")
    child = subprocess.Popen(command, start_new_session=True)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: stop(child))
    threading.Thread(target=watch_input, args=(child,), daemon=True).start()
    while (rc := child.poll()) is None:
        time.sleep(0.1)  # wait() would not let the signal handlers run promptly
    if args.clean_shm:
        remove_segments(args.clean_shm)
    return rc if rc >= 0 else 128 - rc


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # the input watcher may still be blocked in a read: a normal exit would wait on it and abort
