"""How fast the debbugs parsers are on the real samples.

    python tests/bench/bench_debbugs.py [ROUNDS]

Prints the median time per mail (mail.parse_mail, transcripts included) and
per SOAP answer (get_status decoding), read from the shared sample data
($DEBPULSE_FIXTURES or ../shared/fixtures).
"""

from __future__ import annotations

import sys
from pathlib import Path

from debpulse.adapters.debbugs import soap
from debpulse.adapters.debbugs.mail import parse_mail

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from testbus import fixtures_dir, median_time  # noqa: E402

FIXTURES = fixtures_dir()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    mails = [p.read_bytes() for p in sorted((FIXTURES / "debbugs" / "mails").glob("*.eml"))]
    answers = [p.read_bytes() for p in sorted((FIXTURES / "debbugs-soap").glob("*GetStatus*.response.xml"))]
    per_mail = median_time(lambda: [parse_mail(m) for m in mails], rounds) / len(mails)
    per_answer = median_time(lambda: [soap.statuses_of(soap.decode_response(a, "get_status")) for a in answers],
                       rounds) / len(answers)
    print(f"parse_mail: {per_mail * 1e3:.3f} ms per mail ({len(mails)} real mails, {rounds} rounds)")
    print(f"get_status decode: {per_answer * 1e3:.3f} ms per answer ({len(answers)} recorded answers)")


if __name__ == "__main__":
    main()
