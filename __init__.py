"""storesync: keeps an omnichannel retailer's systems in agreement.

The public API for plugin authors: the hook marker, the connector base classes, the canonical models and
the errors. Everything else lives in ``storesync.core`` and may change between releases.
"""

from importlib.metadata import PackageNotFoundError, version

from .core.connector import (
    Checkpoint,
    Connector,
    ConnectorContext,
    EmptySettings,
    Invalid,
    RawPage,
    Stream,
    Tombstone,
)
from .core.errors import (
    ConfigError,
    FatalSyncError,
    LockedError,
    MappingError,
    PluginError,
    RecordMappingError,
    RetriableSyncError,
    SkippableRecordError,
    StoreError,
    StoresyncError,
    SyncError,
)
from .core.hookspecs import hookimpl
from .core.models import (
    Customer,
    Event,
    InventoryLevel,
    Location,
    Message,
    Order,
    OrderLine,
    Person,
    Product,
    Variant,
)

try:
    __version__ = version("storesync")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Checkpoint",
    "ConfigError",
    "Connector",
    "ConnectorContext",
    "Customer",
    "EmptySettings",
    "Event",
    "FatalSyncError",
    "Invalid",
    "InventoryLevel",
    "Location",
    "LockedError",
    "MappingError",
    "Message",
    "Order",
    "OrderLine",
    "Person",
    "PluginError",
    "Product",
    "RawPage",
    "RecordMappingError",
    "RetriableSyncError",
    "SkippableRecordError",
    "StoreError",
    "StoresyncError",
    "Stream",
    "SyncError",
    "Tombstone",
    "Variant",
    "__version__",
    "hookimpl",
]
