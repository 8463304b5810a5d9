"""The demo table read honestly: every row against the student, paired over the same seeds.

A seed fixes the initialisation and the data order of a run, so the student and a method trained with the same seed
form a pair; the per-seed differences ``d_i = acc_method(seed i) - acc_student(seed i)`` remove the part of the
seed-to-seed spread the two runs share. A difference is called *beyond noise* when the two-sided paired t-test
(``t = mean(d) / (sd(d) / sqrt(n))``, ``n - 1`` degrees of freedom) gives ``p < ALPHA``; the table also gives the
95 % confidence interval of the mean difference, ``mean(d) ± t_{0.975, n-1} sd(d) / sqrt(n)`` (beyond noise exactly
when it excludes 0). With the demo's 5 seeds that needs ``|mean(d)| > 2.78 sd(d) / sqrt(5)``: only consistent
differences pass; "no" means "not shown with 5 seeds", not "no effect". The same seed reproduces a run exactly on
one machine, not across machines (CPU kernels differ), so the absolute numbers vary by machine; the paired verdicts
are what should carry over.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

ALPHA = 0.05


@dataclass
class PairedComparison:
    """A row against the student over their common seeds.

    Attributes:
        seeds: the seeds both ran.
        mean_diff: mean of the per-seed differences (percentage points).
        sd_diff: their sample standard deviation (n - 1).
        t: paired t statistic.
        p: two-sided p-value (``nan`` with one seed).
        above: how many seeds the row beat the student on.
    """
    seeds: List[int]
    mean_diff: float
    sd_diff: float
    t: float
    p: float
    above: int

    @property
    def beyond_noise(self) -> bool:
        return not math.isnan(self.p) and self.p < ALPHA

    @property
    def interval(self) -> Tuple[float, float]:
        """The ``1 - ALPHA`` (95 %) confidence interval of the mean paired difference (``nan`` with one seed)."""
        n = len(self.seeds)
        if n < 2:
            return float('nan'), float('nan')
        from scipy.stats import t as student_t
        half = float(student_t.ppf(1.0 - ALPHA / 2.0, n - 1)) * self.sd_diff / math.sqrt(n)
        return self.mean_diff - half, self.mean_diff + half


def paired_t_pvalue(t: float, dof: int) -> float:
    """Two-sided p-value of a t statistic with ``dof`` degrees of freedom (Student's t distribution)."""
    from scipy.stats import t as student_t
    return float(2.0 * student_t.sf(abs(t), dof))


def paired_comparison(row: Dict[int, float], student: Dict[int, float]) -> Optional[PairedComparison]:
    """Paired t-test of ``row`` against ``student`` (both ``{seed: top-1 %}``).

    Returns:
        None when the two did not run the same seeds (no pairing possible).
    """
    if sorted(row) != sorted(student):
        return None
    seeds = sorted(row)
    diffs = [row[s] - student[s] for s in seeds]
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return PairedComparison(seeds, mean, float('nan'), float('nan'), float('nan'), int(mean > 0))
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    if sd == 0.0:  # identical differences on every seed: t is infinite unless they are all zero
        t, p = (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / (sd / math.sqrt(n))
        p = paired_t_pvalue(t, n - 1)
    return PairedComparison(seeds, mean, sd, t, p, sum(d > 0 for d in diffs))


def verdict(cmp: Optional[PairedComparison]) -> str:
    """Table text of a comparison: ``'yes, above (p=0.012)'``, ``'no (p=0.31)'`` or why there is none."""
    if cmp is None:
        return 'not paired (other seeds)'
    if math.isnan(cmp.p):
        return 'one seed: no test'
    if cmp.beyond_noise:
        return f"yes, {'above' if cmp.mean_diff > 0 else 'below'} (p={cmp.p:.3f})"
    return f'no (p={cmp.p:.2f})'


BUDGET_COLUMNS = (('steps', 'optimizer steps per seed'), ('views', 'training views per image'),
                  ('teacher', 'teacher forwards per image'), ('chosen_on', 'chosen on (never val)'))


def _delta(row, student) -> Tuple[str, str, str]:
    """The difference, verdict and seeds-above cells of ``row`` against ``student``."""
    if row is student:
        return '(reference)', '', ''
    cmp = paired_comparison(row.by_seed, student.by_seed)
    if cmp is None:
        return f'{row.mean - student.mean:+.2f} (unpaired)', verdict(cmp), ''
    low, high = cmp.interval
    delta = f'{cmp.mean_diff:+.2f}' + ('' if math.isnan(low) else f' [{low:+.2f}, {high:+.2f}]')
    return delta, verdict(cmp), f'{cmp.above}/{len(cmp.seeds)}'


def _budget_cells(row) -> List[str]:
    """The budget cells of ``row`` (its plan: :meth:`mmkd_ext.demo_runner.RowPlan.budget`), empty without one."""
    budget = getattr(row, 'budget', None) or {}
    steps = str(budget.get('steps', ''))
    if budget.get('images') not in (None, 300):
        steps += f" ({budget['images']} images)"
    if budget.get('extra_steps'):
        steps += f" + {budget['extra_steps']}"
    return [steps] + [str(budget.get(key, '')) for key, _ in BUDGET_COLUMNS[1:]]


def format_table(rows: Sequence, student) -> str:
    """Markdown table: mean ± std over seeds, the paired difference to ``student`` with its 95 % interval and verdict,
    and each row's budget (steps, views, teacher forwards, what it selects on).

    Args:
        rows: ``DemoRow``s (``name``, ``accuracies``, ``seeds``, ``mean``, ``std``, ``wall_s``, ``note``, ``budget``).
        student: the student's ``DemoRow``.

    Returns:
        The table text.
    """
    budget = ' | '.join(title for _, title in BUDGET_COLUMNS)
    lines = [f'| method | top-1 % (mean ± std over seeds) | Δ vs student, paired: mean [95 % CI] | beyond noise? '
             f'(paired t-test, p<{ALPHA}) | seeds above student | seeds | {budget} | wall time (CPU) | note |',
             '|' + '---|' * (8 + len(BUDGET_COLUMNS))]
    for row in rows:
        spread = f' ± {row.std:.2f}' if len(row.accuracies) > 1 else ''
        seeds = ','.join(str(s) for s in row.seeds)
        delta, judged, above = _delta(row, student)
        cpu = '' if row.cpu_s is None else f' ({row.cpu_s:.0f} s CPU)'
        cells = [row.name, f'{row.mean:.2f}{spread}', delta, judged, above, seeds] + _budget_cells(row)
        lines.append('| ' + ' | '.join(cells + [f'{row.wall_s:.0f} s{cpu}', row.note]) + ' |')
    return '\n'.join(lines)


def _colour(cmp: Optional[PairedComparison]) -> str:
    if cmp is None or not cmp.beyond_noise:
        return 'tab:gray'
    return 'tab:green' if cmp.mean_diff > 0 else 'tab:red'


def plot_table(rows: Sequence, student, teacher, path: str, title: str = '') -> str:
    """``demo_table.png``: every seed (dots) and mean ± std (bar) per method, the student's mean ± std (band) and
    the teacher (dotted line); green / red: above / below the student beyond noise (paired t-test), grey: not.

    Args:
        rows: the method rows (neither student nor teacher).
        student: the student's row.
        teacher: the teacher's row (drawn as a line), or None.
        path: output PNG.
        title: figure title.

    Returns:
        ``path``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 0.55 * len(rows) + 2.6))
    ax.axvspan(student.mean - student.std, student.mean + student.std, color='tab:blue', alpha=0.12)
    ax.axvline(student.mean, color='tab:blue', ls='--', label=f'student {student.mean:.2f} ± {student.std:.2f}')
    if teacher is not None:
        ax.axvline(teacher.mean, color='black', ls=':', label=f'teacher {teacher.mean:.2f}')
    for y, row in enumerate(reversed(list(rows))):
        cmp = paired_comparison(row.by_seed, student.by_seed)
        colour = _colour(cmp)
        ax.errorbar(row.mean, y, xerr=row.std if len(row.accuracies) > 1 else None, fmt='o', color=colour,
                    capsize=4, ms=7)
        ax.scatter(row.accuracies, [y] * len(row.accuracies), color=colour, s=14, alpha=0.6, zorder=3)
        mark = '' if cmp is None or math.isnan(cmp.p) else (f'  Δ {cmp.mean_diff:+.2f}, p={cmp.p:.3f}'
                                                            + (' *' if cmp.beyond_noise else ''))
        right = max(max(row.accuracies), row.mean + (row.std if len(row.accuracies) > 1 else 0.0))
        ax.annotate(mark, (right, y), xytext=(6, -3), textcoords='offset points', fontsize=8)
    ax.set_yticks(range(len(rows)), [r.name for r in reversed(list(rows))], fontsize=8)
    ax.set_xlabel('top-1 % on the validation digits (dots: seeds; bar: mean ± std)')
    ax.set_title('\n'.join(textwrap.fill(line, 110) for line in title.splitlines()), fontsize=9)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    ax.grid(axis='x', alpha=0.3)
    lo = min([student.mean - student.std] + [min(r.accuracies) for r in rows])
    hi = max([teacher.mean if teacher is not None else 0.0] + [max(r.accuracies) for r in rows])
    ax.set_xlim(lo - 1.0, hi + 0.25 * (hi - lo) + 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches='tight')  # long titles and row names stay inside the picture
    plt.close(fig)
    return path
