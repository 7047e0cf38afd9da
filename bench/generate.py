"""Synthetic alerts on the command line: write them to files, or print their sizes or
how fast they are made.

    python bench/generate.py --survey ztf --n 10000 --out DIR    # DIR/ztf_0000000.avro ...
    python bench/generate.py --survey lsst --n 2000 --rate       # messages/s, median of 3 runs
    python bench/generate.py --survey ztf --n 1000               # message sizes

ZTF files are the Kafka messages themselves (an Avro container each); LSST files are
Avro containers too (schema embedded), while ``--rate`` and the sizes measure what
goes on Kafka (the Confluent wire format). Rates are CPU time of this process on one
core, compared with fastavro alone encoding one fixed alert of the same survey over
and over (the least a producer of real alerts pays per message).
"""

from __future__ import annotations

import argparse
import io
import statistics
import struct
import sys
import time
from pathlib import Path

import fastavro

from alertlab.ingest.synthetic import LsstGenerator, ZtfGenerator, lsst_schema, lsst_schema_id, ztf_schema


def generator(args):
    if args.survey == "ztf":
        return ZtfGenerator(seed=args.seed, n_objects=args.objects, cutouts=not args.no_cutouts)
    return LsstGenerator(seed=args.seed, schema_version=args.schema, n_objects=args.objects,
                         cutouts=not args.no_cutouts)


def write_files(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = generator(args)
    stream = gen.messages(args.n) if args.survey == "ztf" else gen.files(args.n)
    total = 0
    for i, data in enumerate(stream):
        (out / f"{args.survey}_{i:07d}.avro").write_bytes(data)
        total += len(data)
    print(f"wrote {args.n} {args.survey} alerts to {out} ({total / 1e6:.1f} MB)")


def print_sizes(args) -> None:
    sizes = sorted(len(m) for m in generator(args).messages(args.n))
    q = statistics.quantiles(sizes, n=20)
    print(f"{args.survey} message sizes over {len(sizes)}: min {sizes[0]:,}  p5 {q[0]:,.0f}  "
          f"median {statistics.median(sizes):,.0f}  p95 {q[-1]:,.0f}  max {sizes[-1]:,} bytes")


def bare_encoding_rate(args, alert: dict, n: int) -> float:
    """Messages/s of fastavro encoding the same alert again and again, the survey's way."""
    if args.survey == "ztf":
        schema = ztf_schema()

        def encode():
            buf = io.BytesIO()
            fastavro.writer(buf, schema, [alert])
            return buf.getvalue()
    else:
        schema, prefix = lsst_schema(args.schema), b"\x00" + struct.pack(">I", lsst_schema_id(args.schema))

        def encode():
            buf = io.BytesIO()
            buf.write(prefix)
            fastavro.schemaless_writer(buf, schema, alert)
            return buf.getvalue()
    start = time.process_time()
    for _ in range(n):
        encode()
    return n / (time.process_time() - start)


def print_rate(args) -> None:
    gen = generator(args)
    fixed = next(gen.alerts(1))
    list(gen.messages(200))   # warm up: cutout pool, encoders
    runs = []
    for _ in range(3):
        start = time.process_time()
        for _ in gen.messages(args.n):
            pass
        runs.append(args.n / (time.process_time() - start))
    rate = statistics.median(runs)
    bare = statistics.median(bare_encoding_rate(args, fixed, max(200, args.n // 10)) for _ in range(3))
    print(f"{args.survey}: {rate:,.0f} messages/s (median of 3 runs of {args.n:,}; CPU time, one core)")
    print(f"fastavro encoding one fixed alert: {bare:,.0f} messages/s; ratio generator/bare {rate / bare:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survey", choices=["ztf", "lsst"], default="ztf")
    parser.add_argument("--n", type=int, default=1000, help="number of alerts (per run with --rate)")
    parser.add_argument("--out", help="write the alerts as files into this directory")
    parser.add_argument("--rate", action="store_true", help="print messages/s instead of writing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--objects", type=int, default=None, help="object slots (default 1000)")
    parser.add_argument("--schema", default="11.0", help="LSST schema version (9.0, 10.0, 11.0)")
    parser.add_argument("--no-cutouts", action="store_true")
    args = parser.parse_args(argv)
    if args.rate:
        print_rate(args)
    elif args.out:
        write_files(args)
    else:
        print_sizes(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
