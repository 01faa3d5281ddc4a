"""The test suite (a package, so that pytest puts the project folder, not tests/, on sys.path: otherwise
tests/terminals and tests/printers would shadow the terminals and printers packages)."""
