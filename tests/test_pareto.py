"""Pareto logic on hand-made point sets (ties, duplicates, a maximized objective) and hypervolume."""

from __future__ import annotations

import itertools
import random

import pytest

from lts_cli.pareto import dominates, hypervolume, non_dominated_sort, pareto_front, to_minimization


def test_dominance() -> None:
    assert dominates((1, 1), (2, 2))
    assert dominates((1, 2), (1, 3))  # tie in one, better in the other
    assert not dominates((1, 2), (1, 2))  # equal points do not dominate each other
    assert not dominates((1, 3), (2, 2))  # a trade-off


def test_three_points_with_a_known_front() -> None:
    points = [(1.0, 5.0), (2.0, 2.0), (3.0, 3.0)]  # (3,3) is dominated by (2,2)
    assert pareto_front(points) == [0, 1]


def test_ties_and_duplicates() -> None:
    points = [(1, 4), (1, 4), (2, 2), (1, 5), (3, 2), (4, 1)]
    # Both copies of (1,4) stay; (1,5) loses to (1,4) on a tie; (3,2) loses to (2,2) on a tie.
    assert pareto_front(points) == [0, 1, 2, 5]
    assert non_dominated_sort(points) == [[0, 1, 2, 5], [3, 4]]


def test_non_dominated_sort_layers() -> None:
    points = [(1, 1), (2, 2), (3, 3), (1, 3), (3, 1), (2, 4)]
    assert non_dominated_sort(points) == [[0], [1, 3, 4], [2, 5]]


def test_maximized_objective_by_sign() -> None:
    # (params to maximize, latency to minimize): more params at equal latency wins.
    raw = [(10.0, 1.0), (20.0, 1.0), (30.0, 2.0), (5.0, 3.0)]
    points = [to_minimization(p, (True, False)) for p in raw]
    assert points[1] == (-20.0, 1.0)
    assert pareto_front(points) == [1, 2]


def test_hypervolume_2d_by_hand() -> None:
    # Staircase of (1,3), (2,2), (3,1) under reference (4,4):
    # x in [1,2): height 4-3=1; [2,3): 4-2=2; [3,4): 4-1=3 -> 1 + 2 + 3 = 6.
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(6.0)
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3), (2, 2)], (4, 4)) == pytest.approx(6.0)  # dominated, dup
    assert hypervolume([(5, 1)], (4, 4)) == 0.0  # outside the box
    assert hypervolume([], (4, 4)) == 0.0


def test_hypervolume_3d_by_hand() -> None:
    # One point: a box. (0,0,0) under (1,2,3) -> 6.
    assert hypervolume([(0, 0, 0)], (1, 2, 3)) == pytest.approx(6.0)
    # Two points in the unit cube: (0.5,0,0) dominates 0.5*1*1; (0,0.5,0.5) dominates 1*0.5*0.5;
    # their intersection [0.5,1]x[0.5,1]x[0.5,1] = 0.125 -> 0.5 + 0.25 - 0.125 = 0.625.
    assert hypervolume([(0.5, 0, 0), (0, 0.5, 0.5)], (1, 1, 1)) == pytest.approx(0.625)
    # Three points: inclusion-exclusion by hand.
    pts = [(0.2, 0.6, 0.4), (0.6, 0.2, 0.6), (0.4, 0.4, 0.2)]
    singles = 0.8 * 0.4 * 0.6 + 0.4 * 0.8 * 0.4 + 0.6 * 0.6 * 0.8  # 0.192 + 0.128 + 0.288
    # Pairwise and triple intersections are boxes from the component-wise max corner:
    # ab (0.6,0.6,0.6) -> 0.064, ac (0.4,0.6,0.4) -> 0.144, bc (0.6,0.4,0.6) -> 0.096, abc (0.6,0.6,0.6) -> 0.064.
    pairs = 0.4 * 0.4 * 0.4 + 0.6 * 0.4 * 0.6 + 0.4 * 0.6 * 0.4
    triple = 0.4 * 0.4 * 0.4
    assert hypervolume(pts, (1, 1, 1)) == pytest.approx(singles - pairs + triple) == pytest.approx(0.368)


def test_hypervolume_matches_monte_carlo_free_grid_count() -> None:
    # Integer points: count unit cells of the 5x5x5 grid dominated by any point (independent method).
    rng = random.Random(3)
    pts = [tuple(rng.randint(0, 4) for _ in range(3)) for _ in range(8)]
    cells = sum(
        1 for cell in itertools.product(range(5), repeat=3) if any(all(p[k] <= cell[k] for k in range(3)) for p in pts)
    )
    assert hypervolume(pts, (5, 5, 5)) == pytest.approx(cells)
