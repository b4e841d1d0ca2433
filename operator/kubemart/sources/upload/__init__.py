"""The upload source: charts people stored with `kubectl market upload`, one Secret per version."""

from kubemart.sources.upload.source import UploadSource

__all__ = ["UploadSource"]
