"""The ONNX front end: the importer, what each ONNX node maps to (``registry``),
constant folding while importing, the converters by operator family
(``converters/``), and the conformance runner over the onnx package's node tests.
"""
