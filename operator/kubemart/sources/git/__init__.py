"""The git source type: chart directories and app definitions (tomo format) in a git repository."""

from kubemart.sources.git.source import GitLimits, GitSource, GitSpec

__all__ = ["GitLimits", "GitSource", "GitSpec"]
