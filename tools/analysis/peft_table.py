"""Measure which peft tuners pass the method contract on which profiles (``docs/peft.md``).

Every tuner of ``tests/test_peft_bridge.py``'s ``TUNERS`` runs every clause of
``tests/petl_contract.py``'s ``PETLContractTester`` on every tiny host of
``tests/tiny_backbones.py``'s ``CONTRACT_HOSTS``, with ``targets`` the sites among ``qkv``,
``proj``, ``fc1``, ``fc2`` that the host's profile defines (the bridge checks targets against
the profile). A cell is ``pass`` (every clause), ``refused`` (the bridge refuses the tuner on
that host at build time, in one line: on stderr) or ``FAIL: <clauses>`` (details on stderr).
The Markdown table (a row per host, a column per tuner) goes to stdout. A one-off
measurement (about 2 s a cell on one CPU core, 16 hosts x 13 tuners), not a test.

Examples:
    $ python tools/analysis/peft_table.py > table.md               # every tuner, every host
    $ python tools/analysis/peft_table.py --tuners BOFT IA3 --hosts mmseg.VisionTransformer
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Tuple

REPO = osp.abspath(osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))
sys.path[:0] = [REPO, osp.join(REPO, 'tests')]  # the tiny hosts and the contract live there

from petl_contract import PETLContractTester  # noqa: E402
from test_peft_bridge import TUNERS  # noqa: E402
from tiny_backbones import CONTRACT_HOSTS, TinyBackbone  # noqa: E402

from vpetl_mm.models.profiles import PROFILES  # noqa: E402

SITES = ('qkv', 'proj', 'fc1', 'fc2')


def host_targets(tiny: TinyBackbone) -> List[str]:
    """The sites among :data:`SITES` that the host's profile defines."""
    return [s for s in SITES if s in PROFILES[tiny.profile].sites]


def measure_cell(tuner: str, tiny: TinyBackbone) -> Tuple[str, List[str]]:
    """``(cell, details)``: every contract clause of ``tuner`` on ``tiny``."""
    cfg = dict(type='Peft', targets=host_targets(tiny), **TUNERS[tuner])
    tester, failed, details = PETLContractTester(cfg, tiny), [], []
    try:  # a build-time refusal is one ValueError line, by design
        tester.build()
    except ValueError as err:
        return 'refused', [str(err)]
    for check in tester.checks():
        try:
            getattr(tester, check)()
        except Exception as err:  # noqa: BLE001 (the table records any failure)
            failed.append(check.replace('check_', ''))
            details.append(f'{check}: {type(err).__name__}: {err}'.splitlines()[0])
    return ('pass' if not failed else 'FAIL: ' + ', '.join(failed)), details


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--tuners', nargs='*', default=list(TUNERS), choices=list(TUNERS))
    parser.add_argument('--hosts', nargs='*', default=None,
                        help='host ids (profile or profile:variant); default: all')
    args = parser.parse_args()
    hosts = [t for t in CONTRACT_HOSTS if not args.hosts or t.id in args.hosts]
    cells: Dict[Tuple[str, str], str] = {}
    start, table_fd = time.time(), os.dup(1)
    sys.stdout.flush()
    os.dup2(2, 1)  # the hosts' init logs go to stdout: send them to stderr with the details
    for tiny in hosts:
        for tuner in args.tuners:
            tic = time.time()
            cells[tuner, tiny.id], details = measure_cell(tuner, tiny)
            print(f'{tiny.id} {tuner}: {cells[tuner, tiny.id]} ({time.time() - tic:.1f} s)',
                  *details, sep='\n    ', file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.dup2(table_fd, 1)
    print('| host | targets | ' + ' | '.join(args.tuners) + ' |')
    print('|---|---|' + '---|' * len(args.tuners))
    for tiny in hosts:
        print(f'| {tiny.id} | {" ".join(host_targets(tiny))} | '
              + ' | '.join(cells[tuner, tiny.id] for tuner in args.tuners) + ' |')
    print(f'measured in {time.time() - start:.0f} s', file=sys.stderr)


if __name__ == '__main__':
    main()
