"""Targets (package ``tvmext.target``): parsing target strings (``spec``), the interface
of external (BYOC) targets and their registry (``external``), pattern-table targets
(``pattern``), the partition report (``report``), and one subpackage per shipped
hardware library (``dnnl/``: its patterns, codegen, C++ runtime and graph passes),
found, as a vendor's would be, through its ``tvmext.targets`` entry point."""
