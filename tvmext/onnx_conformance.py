"""``python -m tvmext.onnx_conformance``: the ONNX node conformance runner
(:mod:`tvmext.onnx.conformance`), at the package's top level."""

import sys

from tvmext.onnx.conformance import main

if __name__ == "__main__":
    sys.exit(main())
