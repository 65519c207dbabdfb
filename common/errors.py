"""The toolkit's exception types, raised anywhere in the library and reported by `cli.run`.

- `UsageError`: bad input from the user: one line on stderr, exit code 2, no traceback.
- `BadValue`: a value the library cannot use, said without naming where it came from; a script
  wraps the call in `cli.naming(flag)` to add the command-line option. Reported like a UsageError
  when it reaches `cli.run` unnamed.
- `RunFailed`: a run that cannot go on (its loss became NaN, a worker was lost): one line, exit 1.
"""


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2, no traceback."""


class BadValue(ValueError):
    """A value the library cannot use, said without naming where it came from."""


class RunFailed(Exception):
    """A run that cannot go on: one line on stderr, exit code 1."""
