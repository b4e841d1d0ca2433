"""The API of kubemart.io/v1alpha1 as pydantic models: the single source of the CRD schemas."""

from kubemart.models.appinstall import AppInstall
from kubemart.models.marketapp import MarketApp
from kubemart.models.marketsource import MarketSource
from kubemart.models.notificationsink import NotificationSink
from kubemart.models.payment import Payment
from kubemart.models.resource import GROUP, VERSION, Resource

RESOURCES: tuple[type[Resource], ...] = (MarketSource, MarketApp, AppInstall, Payment, NotificationSink)

__all__ = [
    "GROUP",
    "RESOURCES",
    "VERSION",
    "AppInstall",
    "MarketApp",
    "MarketSource",
    "NotificationSink",
    "Payment",
    "Resource",
]
