"""Credit (授信): features, scorecards, decision rules, village credit campaigns, peer review.

Banks that "dared not and knew not how to lend" to farmers (不敢贷、不会贷) lacked data; this
package turns household archives, ledger flows, peer reviews and outside files into features,
scores them with scorecards the bank trains itself, and decides grade, limit and rate with rule
sets the bank's staff write as data. A village credit campaign (整村授信) runs all of it for
every household of a village at once.

Pure modules (no SQLAlchemy, no web framework) hold the rules and the numerics and are
unit-tested without a database; ``service`` modules own the tables.
"""
