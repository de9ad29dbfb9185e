"""The scorecard artefact: exact JSON round trip and validation that names what is wrong."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huinong.credit.scorecards.model import (
    FORMAT,
    Bin,
    Feature,
    Scaling,
    ScorecardInvalid,
    ScorecardModel,
    TrainingMetadata,
    load_model,
    validate_model,
)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
names = st.text(min_size=1, max_size=12)


@st.composite
def bins(draw: st.DrawFn, categories: tuple[str, ...] = ()) -> Bin:
    count = draw(st.integers(0, 10_000))
    bad_count = draw(st.integers(0, count))
    return Bin(
        count=count,
        bad_count=bad_count,
        event_rate=bad_count / count if count else 0.0,
        woe=draw(finite),
        points=draw(st.integers(-500, 500)),
        categories=categories,
    )


@st.composite
def features(draw: st.DrawFn, name: str) -> Feature:
    if draw(st.booleans()):
        edges = tuple(sorted(draw(st.sets(finite, min_size=0, max_size=6))))
        return Feature(
            name=name,
            kind="numeric",
            coefficient=draw(finite),
            iv=draw(finite),
            bins=tuple(draw(bins()) for _ in range(len(edges) + 2)),
            edges=edges,
        )
    categories = sorted(draw(st.sets(names, min_size=1, max_size=8)))
    groups = draw(st.integers(1, len(categories)))
    grouped = [tuple(categories[i::groups]) for i in range(groups)]
    regular = tuple(draw(bins(group)) for group in grouped)
    return Feature(
        name=name,
        kind="categorical",
        coefficient=draw(finite),
        iv=draw(finite),
        bins=(*regular, draw(bins())),
        unseen_bin=draw(st.integers(0, len(regular))),
    )


@st.composite
def models(draw: st.DrawFn) -> ScorecardModel:
    feature_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    edges = tuple(sorted(draw(st.sets(st.integers(-2000, 2000), max_size=9))))
    return ScorecardModel(
        name=draw(names),
        target=draw(names),
        scaling=Scaling(
            base_score=draw(finite),
            base_odds=draw(st.floats(0.01, 1e6)),
            pdo=draw(st.floats(1, 100)),
        ),
        intercept=draw(finite),
        base_points=draw(st.integers(-10_000, 10_000)),
        features=tuple(draw(features(name)) for name in feature_names),
        training=TrainingMetadata(
            rows=draw(st.integers(0, 10**9)),
            bad_rows=draw(st.integers(0, 10**9)),
            trained_at=draw(st.text(max_size=30)),
            seed=draw(st.integers(0, 2**32)),
            library_versions=tuple(
                sorted(draw(st.dictionaries(names, st.text(max_size=10), max_size=4)).items())
            ),
            score_edges=edges,
            score_counts=tuple(draw(st.integers(0, 10**6)) for _ in range(len(edges) + 1)),
        ),
    )


@settings(max_examples=200, deadline=None)
@given(models())
def test_json_round_trip_is_exact_for_any_model(model: ScorecardModel) -> None:
    text = model.to_json()
    again = ScorecardModel.from_json(text)
    assert again == model
    assert again.to_json() == text
    assert validate_model(model) == []


def hand_made() -> ScorecardModel:
    return ScorecardModel(
        name="demo",
        target="bad",
        scaling=Scaling(),
        intercept=-1.25,
        base_points=540,
        features=(
            Feature(
                name="land_mu",
                kind="numeric",
                coefficient=0.8,
                iv=0.3,
                edges=(5.0, 10.5),
                bins=(
                    Bin(100, 30, 0.3, 0.5, -8),
                    Bin(200, 20, 0.1, -0.2, 3),
                    Bin(100, 5, 0.05, -0.9, 14),
                    Bin(0, 0, 0.0, 0.0, 0),
                ),
            ),
            Feature(
                name="crop",
                kind="categorical",
                coefficient=0.6,
                iv=0.1,
                bins=(
                    Bin(50, 10, 0.2, 0.1, -1, ("tea",)),
                    Bin(10, 1, 0.1, -0.3, 4, ("grain", "rice")),
                    Bin(0, 0, 0.0, 0.0, 0),
                ),
                unseen_bin=1,
            ),
        ),
        training=TrainingMetadata(
            rows=400, bad_rows=55, trained_at="2025-05-05T00:00:00+00:00", seed=7
        ),
    )


def test_document_is_sorted_indented_and_readable() -> None:
    text = hand_made().to_json()
    document = json.loads(text)
    assert document["format"] == FORMAT
    assert text.startswith('{\n  "base_points": 540,\n')
    land, crop = document["features"]
    assert (land["name"], crop["name"]) == ("land_mu", "crop")  # model order; keys sorted
    assert land["edges"] == [5.0, 10.5]
    assert [b["label"] for b in land["bins"]] == [
        "[-inf, 5)",
        "[5, 10.5)",
        "[10.5, +inf)",
        "missing",
    ]
    assert [b["points"] for b in land["bins"]] == [-8, 3, 14, 0]
    assert crop["unseen_bin"] == 1
    assert crop["bins"][1]["categories"] == ["grain", "rice"]
    assert "categories" not in crop["bins"][2]
    assert document["training"]["seed"] == 7


def test_validation_names_every_problem() -> None:
    model = hand_made()
    land, crop = model.features
    broken = replace(
        model,
        base_points=1.5,
        features=(
            replace(
                land,
                edges=(10.5, 5.0),
                bins=(*land.bins[:2], replace(land.bins[2], points=2.5), land.bins[3]),
            ),
            replace(
                crop,
                unseen_bin=9,
                bins=(
                    crop.bins[0],
                    replace(crop.bins[1], categories=("tea",)),
                    replace(crop.bins[2], categories=("rice",)),
                ),
            ),
        ),
    )
    problems = validate_model(broken)
    assert "base_points: must be an integer" in problems
    assert "features.land_mu.edges: must be strictly increasing" in problems
    assert "features.land_mu.bins[2].points: must be an integer" in problems
    assert "features.crop.unseen_bin: must name one of the feature's bins" in problems
    assert "features.crop.bins[1]: category 'tea' is repeated" in problems
    assert "features.crop.bins[-1]: the missing bin holds no categories" in problems
    assert len(problems) == 6


def test_validation_requires_a_missing_bin_per_numeric_feature() -> None:
    model = hand_made()
    land = model.features[0]
    without_missing = replace(
        model, features=(replace(land, bins=land.bins[:-1]), model.features[1])
    )
    assert validate_model(without_missing) == [
        "features.land_mu.bins: needs len(edges) + 1 regular bins and a missing bin"
    ]


def test_validation_checks_event_rate_against_counts() -> None:
    model = hand_made()
    land = model.features[0]
    wrong = replace(land, bins=(replace(land.bins[0], event_rate=0.5), *land.bins[1:]))
    assert validate_model(replace(model, features=(wrong, model.features[1]))) == [
        "features.land_mu.bins[0].event_rate: is not bad_count / count"
    ]


def test_load_model_raises_with_code_and_problems() -> None:
    document = json.loads(hand_made().to_json())
    document["features"][0]["edges"] = [10.5, 5.0]
    with pytest.raises(ScorecardInvalid) as raised:
        load_model(json.dumps(document))
    assert raised.value.code == "credit.scorecard.invalid"
    assert raised.value.problems == ["features.land_mu.edges: must be strictly increasing"]


def test_structurally_broken_document_is_invalid_input() -> None:
    document = json.loads(hand_made().to_json())
    del document["scaling"]
    with pytest.raises(ScorecardInvalid) as raised:
        ScorecardModel.from_json(json.dumps(document))
    assert raised.value.status == 422
    assert "scaling" in raised.value.problems[0]
