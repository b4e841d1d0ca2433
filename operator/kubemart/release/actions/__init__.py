"""One module per action of the release engine: each calls one adapter and returns an Outcome."""
