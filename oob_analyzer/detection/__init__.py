"""Detection: split a request into its points, decode them, and recognise attacks."""

from oob_analyzer.detection.decoders import decoded_variants, percent_decode
from oob_analyzer.detection.detectors import (
    Detector,
    Log4ShellDetector,
    ProtocolAnomalyDetector,
    SignatureDetector,
    SqlInjectionDetector,
    XssDetector,
    default_detectors,
)
from oob_analyzer.detection.engine import DetectionEngine
from oob_analyzer.detection.events import AttackHit, Finding
from oob_analyzer.detection.points import extract_points
from oob_analyzer.detection.policy import AllowRule, DetectionPolicy, PolicyScope, ScopedPolicy
from oob_analyzer.detection.request_point import RequestPoint

__all__ = [
    "AllowRule",
    "AttackHit",
    "DetectionEngine",
    "DetectionPolicy",
    "Detector",
    "Finding",
    "Log4ShellDetector",
    "PolicyScope",
    "ProtocolAnomalyDetector",
    "RequestPoint",
    "ScopedPolicy",
    "SignatureDetector",
    "SqlInjectionDetector",
    "XssDetector",
    "decoded_variants",
    "default_detectors",
    "extract_points",
    "percent_decode",
]
