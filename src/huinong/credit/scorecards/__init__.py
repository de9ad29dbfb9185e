"""Scorecards: training, the JSON artefact, vectorized scoring, reports and PSI monitoring.

``model`` is the artefact (frozen dataclasses that are also reviewable JSON), ``training``
turns a labelled table into one (optbinning + scikit-learn, imported only there), ``scoring``
scores from the artefact alone with numpy table lookups, ``report`` measures a model on data
and ``monitoring`` compares today's population with the training one (PSI). Importing this
package imports none of them, so scoring never pays for optbinning's import.
"""
