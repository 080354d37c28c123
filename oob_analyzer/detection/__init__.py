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
from oob_analyzer.detection.policy import DetectionPolicy, PolicyError, load_policy, parse_policy
from oob_analyzer.detection.request_point import RequestPoint

__all__ = [
    "AttackHit",
    "DetectionEngine",
    "DetectionPolicy",
    "Detector",
    "Finding",
    "Log4ShellDetector",
    "PolicyError",
    "ProtocolAnomalyDetector",
    "RequestPoint",
    "SignatureDetector",
    "SqlInjectionDetector",
    "XssDetector",
    "decoded_variants",
    "default_detectors",
    "extract_points",
    "load_policy",
    "parse_policy",
    "percent_decode",
]
