"""Demo source database: a marketplace seller SaaS schema with synthetic data.

The demo schema imitates what a seller back office for Russian marketplaces
(Wildberries, Ozon, Yandex Market) keeps per seller account ("cabinet"):
products with long descriptions, customer reviews with seller answers,
customer questions and daily sales.  It exists so that newcomers and tests
have a realistic, mostly Russian-language source to index without access to
production data.

Tables (all in the current ``search_path``, normally ``public``):

* ``cabinets(id, name, marketplace, is_active, updated_at)``
* ``products(id, cabinet_id, title, brand, category, description, price,
  stock, rating, updated_at)``
* ``reviews(id, cabinet_id, product_id, rating, text, answer, created_at,
  updated_at)``
* ``questions(id, cabinet_id, product_id, text, answer, created_at,
  updated_at)``
* ``sales_daily(cabinet_id, product_id, day, orders, revenue, updated_at)``
* ``sales_monthly(cabinet_id, product_id, month, orders, revenue,
  days_with_orders, updated_at)``: ``sales_daily`` summed per product and
  calendar month, kept current by statement-level triggers on ``sales_daily``
  (whoever writes it); its ``updated_at`` moves whenever a summary's values do

All generated data is deterministic for a given seed: only
``random.Random`` instances derived from the seed are used and all
timestamps are computed from the fixed base date :data:`BASE_TIME`
(2026-01-01 UTC), never from the wall clock.  Product, review and question
ids come from one shared counter, so an id is unique across the three
tables.  :func:`seed` replaces any existing demo data, bulk-loading with
``COPY`` (binary via ``copy_records_to_table``; text for the large
``sales_daily`` table); :func:`mutate` changes, adds and deletes a share of
the rows so that incremental re-indexing can be exercised.  Besides the
``cabinet_id`` indexes, ``reviews`` and ``questions`` are indexed on
``product_id`` so that deleting products (``ON DELETE CASCADE``) stays cheap.

Modules: ``catalogue`` loads the text pools from ``data/*.toml``; ``generate``
builds rows from a seeded RNG; ``schema`` owns the demo DDL; ``seeding`` and
``mutation`` write to the demo tables (nothing else here touches them).  This
package imports only the standard library and asyncpg.  The companion file
``rag_indexer_service/demo_sources.toml`` describes how to read indexable
documents from this schema.
"""

from rag_indexer_service.demo.catalogue import Catalogue, load_catalogue
from rag_indexer_service.demo.generate import BASE_TIME
from rag_indexer_service.demo.mutation import MutateReport, mutate
from rag_indexer_service.demo.schema import DEMO_TABLES, create_schema, is_seeded
from rag_indexer_service.demo.seeding import SeedReport, seed

__all__ = [
    "BASE_TIME",
    "DEMO_TABLES",
    "Catalogue",
    "MutateReport",
    "SeedReport",
    "create_schema",
    "is_seeded",
    "load_catalogue",
    "mutate",
    "seed",
]
