"""Listing images: the text and QR codes sellers hide in pictures, read offline (rapidocr's bundled PP-OCR
models, OpenCV's QR decoder; extra `ocr`) and moderated with the listing's text.

    from jieyao.images import moderate_images
    moderate_images(["cover.jpg"], text="全新 教程").decision
"""

from __future__ import annotations

from jieyao.images.decode import DecodedImage, ImageError, ImageLimits, decode_image
from jieyao.images.moderation import (
    ImageInput,
    default_reader,
    moderate_images,
    moderate_with_images,
    read_image_file,
)
from jieyao.images.ocr import OcrEngine, OcrUnavailable
from jieyao.images.qr import QrDecoder
from jieyao.images.reader import ImageReader, ImageText, TextLine, fold_ocr_text

__all__ = [
    "DecodedImage", "ImageError", "ImageInput", "ImageLimits", "ImageReader", "ImageText", "OcrEngine",
    "OcrUnavailable", "QrDecoder", "TextLine", "decode_image", "default_reader", "fold_ocr_text",
    "moderate_images", "moderate_with_images", "read_image_file",
]
