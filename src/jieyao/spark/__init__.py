"""Scale-out on Apache Spark (extra `jieyao[spark]`): the same engines, rule packs, lexicons and verdict JSON
as the CLI, over storage listings and listing tables.

    from jieyao.spark import ModerationJob, ScanJob, moderate_dataframe, scan_dataframe, scan_paths, ship

Importing this package does not import pyspark; the functions do, when called."""

from __future__ import annotations

from jieyao.spark.moderation import MODERATION_COLUMNS, ModerationJob, moderate_dataframe
from jieyao.spark.scanning import SCAN_COLUMNS, ScanJob, scan_binary_files, scan_dataframe, scan_paths
from jieyao.spark.shipping import Shipment, ShippedFile, ShippingError, ship

__all__ = [
    "MODERATION_COLUMNS", "SCAN_COLUMNS", "ModerationJob", "ScanJob", "Shipment", "ShippedFile", "ShippingError",
    "moderate_dataframe", "scan_binary_files", "scan_dataframe", "scan_paths", "ship",
]
