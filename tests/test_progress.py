"""Progress bars: off means absent, so a forked worker that died holding tqdm's lock cannot stall the engine."""

import subprocess
import sys
import textwrap

from qcy_match.progress import bar

# A child forked after tqdm's lock exists takes it and is killed (as a crashed or SIGKILLed worker would be): the
# lock, a semaphore shared with the parent, stays taken. The parent then indexes and matches with progress off.
SCRIPT = textwrap.dedent("""
    import os, signal
    from tqdm import tqdm
    from qcy_match import EngineConfig, MatchEngine, load_records
    lock = tqdm.get_lock()
    pid = os.fork()
    if pid == 0:
        lock.acquire()
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    records, _ = load_records("corpora/achievements.jsonl")
    engine = MatchEngine(EngineConfig(encoder="lsa")).index(records)
    print(engine.match(["钛合金薄壁件铣削变形控制"], k=3).ids.shape)
""")


def test_a_worker_killed_holding_tqdms_lock_does_not_stall_indexing_or_matching():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(1, 3)"


def test_an_off_bar_iterates_counts_and_closes_like_a_bar():
    with bar([1, 2, 3], enabled=False, desc="x") as b:
        assert list(b) == [1, 2, 3]
        b.update(2)
    b.close()
    assert list(bar(enabled=False, total=5)) == []
