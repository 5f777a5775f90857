#!/usr/bin/env python3
"""Rates stopwatch maps with the reference openskill package (PlackettLuce, its defaults).

stdin, one game a line: OUTCOME TAB FIRST TAB SECOND, where OUTCOME is 1 (first team won),
2 (second won) or 0 (draw) and a team is comma-separated player ids. Players start at the
model's default rating and carry their rating from game to game, in line order.
stdout: per game "game N P" with P the first team's predicted win probability before the game,
then per player "player ID MU SIGMA", floats in repr (round-trip) form.
Used by extension/engine/tests/openskill_reference.rs and tests/tests/et_ratings.rs.
"""
import sys

from openskill.models import PlackettLuce

model = PlackettLuce()
ratings = {}
for number, line in enumerate(sys.stdin, 1):
    outcome, first, second = line.rstrip("\n").split("\t")
    teams = [[p for p in first.split(",")], [p for p in second.split(",")]]
    for team in teams:
        for p in team:
            ratings.setdefault(p, model.rating(name=p))
    rated = [[ratings[p] for p in team] for team in teams]
    print("game", number, repr(model.predict_win(rated)[0]))
    ranks = {"1": [1, 2], "2": [2, 1], "0": [1, 1]}[outcome]
    new = model.rate(rated, ranks=ranks)
    for team, new_team in zip(teams, new):
        for p, r in zip(team, new_team):
            ratings[p] = r
for p in sorted(ratings):
    print("player", p, repr(ratings[p].mu), repr(ratings[p].sigma))
