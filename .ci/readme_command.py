"""Print the shell command of a README's fenced ``bash`` block that follows a marker comment.

``python3 .ci/readme_command.py README.md "ci: test command"`` prints the block after the
line ``<!-- ci: test command -->``, its lines joined with `` && `` (comments dropped), so
that CI runs what the README tells a newcomer to run, word for word. Standard library only:
it runs before anything is installed.
"""

import re
import sys
from pathlib import Path


def readme_command(text: str, marker: str) -> str:
    """The command of the first ```bash block after ``<!-- marker -->`` in ``text``."""
    match = re.search(rf"<!--\s*{re.escape(marker)}\s*-->\s*```bash\n(.*?)```", text, re.S)
    if match is None:
        raise SystemExit(f"no ```bash block after '<!-- {marker} -->' in the README")
    lines = [line.strip() for line in match.group(1).splitlines()]
    return " && ".join(line for line in lines if line and not line.startswith("#"))


if __name__ == "__main__":
    path, marker = sys.argv[1:]
    print(readme_command(Path(path).read_text(encoding="utf-8"), marker))
