"""The ``shopify`` connector (Shopify Admin API: REST 2024-07 reads, GraphQL inventory writes).

For now this package only holds ``emulator``, a local fake of the Admin API used by the tests and benchmarks;
the connector itself comes later.
"""
