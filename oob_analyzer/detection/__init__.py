"""Detection: split a request into its points, decode them, and recognise attacks."""

from oob_analyzer.detection.detectors import Detector, SqlInjectionDetector, XssDetector, default_detectors
from oob_analyzer.detection.engine import DetectionEngine
from oob_analyzer.detection.events import AttackHit, Finding
from oob_analyzer.detection.points import RequestPoint, extract_points, percent_decode

__all__ = [
    "AttackHit",
    "DetectionEngine",
    "Detector",
    "Finding",
    "RequestPoint",
    "SqlInjectionDetector",
    "XssDetector",
    "default_detectors",
    "extract_points",
    "percent_decode",
]
