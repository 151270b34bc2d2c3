"""The SMTP benchmark still runs: hub and aiosmtpd once each, quick size, nothing lost."""

from benchmarks.harness import smoke


def test_the_smtp_benchmarks_complete_without_losing_messages() -> None:
    results = smoke(["smtp-deliver-2k"])
    assert {r.implementation for r in results} == {"hub", "aiosmtpd"}
    assert [r.error for r in results if r.error] == []
