"""Command line: ``python -m cs_kpis.simulator --size demo --seed 42``."""

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from . import EVENT_RETENTION_DAYS, SIZES, NotOurFolder, generate
from .writer import HelperStillRunning


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cs_kpis.simulator", description=__doc__)
    p.add_argument("--size", choices=sorted(SIZES), default="demo")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--landing", type=Path, default=None, help="landing folder (default: CS_KPIS_LANDING_DIR or data/landing)")
    p.add_argument("--ground-truth", type=Path, default=None, help="ground-truth folder (default: data/ground_truth)")
    p.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="snapshot day (default: the size's last day minus increments)")
    p.add_argument("--increments", type=int, default=0, help="daily increments written after the snapshot day")
    p.add_argument("--bad-input", action="store_true", help="inject malformed rows (off by default)")
    p.add_argument("--event-retention-days", type=int, default=None,
                   help="days of Stripe events kept before the snapshot day, as a real account keeps ~30 "
                        f"(0 = the whole history; default: {EVENT_RETENTION_DAYS})")
    p.add_argument("--workers", type=int, choices=(1, 2), default=None,
                   help="2 runs the simulation in one process and the writing in two more (the version "
                        "store and landing parts, the product events) that share the other core (same output "
                        "bytes); default 2 when the machine has 2 or more cores, else 1")
    args = p.parse_args(argv)
    workers = args.workers or (2 if (os.cpu_count() or 1) >= 2 else 1)
    from cs_kpis import config, settings

    if args.landing is None and config.config_path() is not None:
        # a company profile's landing folder is the company's: the simulator never generates into it
        print(f"error: {config.ENV_CONFIG} is set ({config.config_path()}): its landing folder holds your company's "
              "exports, so the simulator does not write there; pass --landing to generate somewhere else",
              file=sys.stderr)
        return 2
    landing = args.landing or settings.landing_dir()
    truth = args.ground_truth or settings.ground_truth_dir()
    try:
        m = generate(landing, truth, size=args.size, seed=args.seed, as_of=args.as_of, increments=args.increments,
                     bad_input=args.bad_input, event_retention_days=args.event_retention_days,
                     workers=workers)
    except (NotOurFolder, HelperStillRunning) as exc:  # a user's folder, or an earlier run's: nothing was written
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.size} company (seed {args.seed}) to {landing} in {m['seconds']} s (--workers {workers}); ground truth in {truth}")
    print("  seconds: " + ", ".join(f"{k.removesuffix('_s')} {v}" for k, v in m["phases"].items()))
    for entity, n in m["counts"].items():
        print(f"  {entity:32s} {n:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
