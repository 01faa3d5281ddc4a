"""ajv through Node: tests/js/validate.js and its pinned packages (package.json, package-lock.json)."""
