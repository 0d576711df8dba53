"""virsh's table layout (tools/vsh-table.c): header, dash rule, rows; exact spacing so outputs diff clean."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Table:
    """Rows of cells printed the way vshTablePrint does.

    Each cell is preceded by one space; every column but the last is padded to its widest cell plus two
    spaces; the rule has `sum(width + 3)` dashes. With `header=False` (virsh -q) the header and rule are
    dropped and widths ignore the header text.
    """

    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"row has {len(cells)} cells, table has {len(self.columns)} columns")
        self.rows.append(cells)

    def render(self, header: bool = True) -> str:
        lines = [*([self.columns] if header else []), *self.rows]
        widths = [max((len(row[i]) for row in lines), default=0) for i in range(len(self.columns))]
        out: list[str] = []
        for n, row in enumerate(lines):
            out.append(self._line(row, widths))
            if header and n == 0:
                out.append("-" * sum(w + 3 for w in widths))
        return "".join(line + "\n" for line in out)

    @staticmethod
    def _line(row: Sequence[str], widths: Sequence[int]) -> str:
        parts: list[str] = []
        last = len(row) - 1
        for i, cell in enumerate(row):
            parts.append(" " + cell)
            if i != last:
                parts.append(" " * (widths[i] - len(cell) + 2))
        return "".join(parts)
