"""The counter screen: shelf-to-table and walk-up intake, expo and handover (`kds counter`)."""
