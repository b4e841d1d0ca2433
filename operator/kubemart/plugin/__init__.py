"""`kubectl market`: browse the catalog and manage AppInstalls from the command line.

The plugin acts for a person: it reads MarketApps and creates, patches and deletes AppInstalls
(group kubemart.io) with that person's kubeconfig. It never talks to helm; the operator does.
"""
