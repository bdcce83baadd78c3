"""What one reader's page view costs the server: real Chromium loads / and scrolls through every figure.

Starts `python -m app` on loopback, then opens the article `--views` times,
each in a fresh browser context (an empty cache, as a new reader has), scrolls
every figure into view, and waits until every figure has drawn and the network
is idle. Prints, per view, the server's CPU time (its whole process tree), the
requests made and the bytes transferred (headers and encoded bodies, as they
crossed the wire), against the targets: CPU per view <= 0.05 s, first load <=
500 KB. Exits 1 when a target is missed. One view before the measured ones
warms the server (models, first requests), as on a server that has been up.

    python bench/page_view.py                       # the bundled checkpoints
    python bench/page_view.py --root /tmp/old-tree  # another tree's app/ and static/, for a before/after

Needs Debian's chromium (`make browser`). The browser shares the machine with
the server; the CPU figure is the server's alone.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_checkpoints import choose_checkpoints
from server_process import ROOT, cpu_seconds, start_on_free_port, stop_server, wait_until_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CPU_TARGET_S = 0.05
FIRST_LOAD_TARGET_BYTES = 500_000
VIEW_TIMEOUT_MS = 180_000
# After the last figure draws, requests still in flight (the walkthrough notes) finish within this.
SETTLE_S = 0.25


def view(browser, base_url: str) -> tuple[int, int]:
    """One page view in a fresh context: (requests, bytes transferred)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(VIEW_TIMEOUT_MS)
    responses = []
    page.on("requestfinished", lambda request: responses.append(request))
    page.goto(base_url + "/", wait_until="load")
    for figure in page.locator("[data-figure]").all():
        figure.scroll_into_view_if_needed()
        page.wait_for_timeout(50)
    page.wait_for_function("() => [...document.querySelectorAll('[data-figure]')].every((figure) => figure.dataset.rendered === 'true')")
    page.wait_for_load_state("networkidle")
    time.sleep(SETTLE_S)
    transferred = 0
    for request in responses:
        sizes = request.sizes()
        transferred += sizes["responseHeadersSize"] + sizes["responseBodySize"] + sizes["requestHeadersSize"] + sizes["requestBodySize"]
    count = len(responses)
    context.close()
    return count, transferred


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoints", type=Path, help="checkpoint folder (default: the bundled ones, else random ones of that size)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the project tree whose server is measured (default: this one)")
    parser.add_argument("--views", type=int, default=5, help="measured page views (default 5)")
    parser.add_argument("--processes", type=int, help="RNN_PROCESSES for the server (default: its own default)")
    args = parser.parse_args()
    if not Path(CHROMIUM).is_file():
        print(f"exit 1: {CHROMIUM} does not exist; this bench drives Debian's chromium (`make browser` installs it)", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="page-view-") as scratch:
        checkpoints = choose_checkpoints(args.checkpoints, Path(scratch))
        server, base_url, log = start_on_free_port(checkpoints, Path(scratch), args.processes, root=args.root)
        try:
            wait_until_healthy(server, base_url, log)
            print(f"server of {args.root} on {checkpoints} at {base_url} (pid {server.pid})")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                warm_requests, warm_bytes = view(browser, base_url)
                print(f"warm-up view: {warm_requests} requests, {warm_bytes / 1000:.0f} KB")
                results = []
                for index in range(args.views):
                    before = cpu_seconds(server.pid)
                    requests, transferred = view(browser, base_url)
                    results.append((cpu_seconds(server.pid) - before, requests, transferred))
                    print(f"view {index + 1}: server CPU {results[-1][0]:.3f} s, {requests} requests, {transferred / 1000:.0f} KB")
                browser.close()
        finally:
            stop_server(server)

    per_view = [cpu for cpu, _, _ in results]
    first_load = results[0][2]
    print(f"\nserver CPU per page view: mean {statistics.mean(per_view):.3f} s, min {min(per_view):.3f} s, max {max(per_view):.3f} s over {len(per_view)} views")
    print(f"first load: {first_load / 1000:.0f} KB transferred in {results[0][1]} requests")
    targets = [
        (f"server CPU per view <= {CPU_TARGET_S} s: {statistics.mean(per_view):.3f} s", statistics.mean(per_view) <= CPU_TARGET_S),
        (f"first load <= {FIRST_LOAD_TARGET_BYTES / 1000:.0f} KB: {first_load / 1000:.0f} KB", first_load <= FIRST_LOAD_TARGET_BYTES),
    ]
    print("\ntargets:")
    for description, met in targets:
        print(f"  [{'met' if met else 'MISSED'}] {description}")
    if all(met for _, met in targets):
        return 0
    print("exit 1: a target was missed (marked MISSED above)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
