"""The test suite, in tiers that mirror the package: core/, engine/, actions/, adapters/, web/,
commands/, deploy/ and e2e/ (real outside processes); shared fakes and helpers in support/."""
