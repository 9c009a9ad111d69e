"""Child process: serve one GGUF with llama.cpp (xllamacpp) on a loopback port until stdin closes.

It runs apart from the trainer so that llama.cpp's threads never live inside a process that
DistDGL forks, and so that it cannot outlive its parent: the parent holds our stdin, and
end-of-file (a clean close or the parent's death) shuts the server down. Standard library
and xllamacpp only, so it runs by path without the package on sys.path.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

EXIT_GRACE_S = 10.0


def set_priority(pid: int, nice: int) -> bool:
    """Every thread of ``pid`` at ``nice`` (Linux nice is per thread), and its session's autogroup too.

    False where a thread's priority is refused (raising one needs root or CAP_SYS_NICE) or ``pid`` is gone.
    """
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
    except (OSError, ValueError):
        return False
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:  # no autogroup here: the threads' nice is all there is
        pass
    return True


def lower_priority(nice: int) -> None:
    """Nice ``nice``, and the same for our session's autogroup, so training really comes first.

    The launcher starts every trainer in a session of its own; where the kernel groups the CPU by
    session (autogroup), a nice value only orders threads inside one group, and the groups share the
    CPU equally. The parent starts us in a new session; its autogroup gets the nice too.
    """
    if nice > 0:  # else not lowered: we share the parent's session, whose autogroup is not ours to set
        set_priority(os.getpid(), nice)


def main() -> None:
    """Start the server, print its address as one JSON line, serve until stdin reaches EOF."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--ctx", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--nice", type=int, default=0, help="lower CPU priority (0-19): training comes first")
    parser.add_argument("--parallel", type=int, default=1, help="slots (concurrent clients), each with --ctx tokens")
    parser.add_argument("--cache-reuse", type=int, default=0,
                        help="reuse cached chunks of at least this many tokens after the common prefix "
                             "(0: the prefix only)")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    lower_priority(args.nice)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.n_ctx = args.ctx * args.parallel  # llama.cpp splits n_ctx across the slots
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    # No busy-wait polling: beside training, spinning threads starve the trainers and themselves.
    params.cpuparams.poll = 0
    params.cpuparams_batch.poll = 0
    params.n_cache_reuse = args.cache_reuse
    params.sampling.temp = 0.0
    params.sampling.seed = args.seed
    params.hostnames = [args.host]
    params.port = 0
    params.verbosity = -1
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as err:
        print(f"llama.cpp could not load {args.model}: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(json.dumps({"address": server.listening_address, "pid": os.getpid()}), flush=True)

    sys.stdin.buffer.read()
    watchdog = threading.Timer(EXIT_GRACE_S, os._exit, (3,))
    watchdog.daemon = True
    watchdog.start()
    del server  # the destructor stops the HTTP and inference threads
    os._exit(0)  # skip interpreter finalization, where llama.cpp's teardown can hang


if __name__ == "__main__":
    main()
