"""Declaring operators: ``@tvmext.op`` (TE compute), ``tvmext.native_op`` (C++/CUDA),
their attributes, weight conversions, and their registration as Relax ops in TVM.

Nothing here compiles a model: lowering, eager calls and the ONNX importer sit above
this package and read the ops it registers.
"""
