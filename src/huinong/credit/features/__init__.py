"""Credit features (授信特征): a documented catalogue, facts as of a date, vectorized features.

Three steps, each with one job:

1. **Extract facts** (per household, pure, as of a date): the lead's service fetches the data
   and each source's extractor keeps only what is dated on or before ``as_of`` —
   :func:`archive.archive_facts`, :func:`flows.flow_facts`, :func:`peer_review.peer_facts`,
   :func:`bureau.bureau_facts`, :func:`telematics.telematics_facts`, assembled by
   :func:`facts.household_facts`. No look-ahead is decided here and only here.
2. **Stack** the rows into a facts table (:func:`facts.facts_frame`): one row per household,
   the dtypes the catalogue declares.
3. **Compute** features (:func:`compute.compute`): every source's vectorized function over the
   whole table. One household is a one-row table; a million households take the same path.

The catalogue (:mod:`.catalogue`) documents every facts column and every feature — name,
meaning in English and Chinese, source, unit, dtype and when it is missing — and checks at run
time that the computed table is exactly what it documents.

Why facts and features are separate: extraction is per household and deals with dates, lists
and missing sections; computation is column arithmetic that numpy does for a million rows in a
fraction of a second, and that the batch (Spark) path can run unchanged on partitions.

How a new source joins — produce sales settled at POS (农产品收购), for example: a module
``huinong/credit/features/produce_sales.py`` declares its facts columns (say
``produce_sales_12m_fen``, ``produce_buyers_12m``, ``produce_months_with_sales_12m``), an
extractor from the purchase settlements the service fetches from ``huinong.agri`` (dated,
so it filters on ``as_of`` like the ledger does), its features with a vectorized ``compute``,
and ``SOURCE = Source("produce_sales", FACTS, FEATURES, _compute)``; then
``CATALOGUE.register(produce_sales.SOURCE)`` and the callers add ``"produce_sales"`` to the
sources they compute. Nothing in the catalogue, ``compute`` or the other sources changes, and
any object satisfying :class:`catalogue.FeatureSource` will do.
"""
