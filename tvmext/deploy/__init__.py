"""A compiled model as a standalone inference application: a folder that runs on a
machine without Python.

:meth:`tvmext.Module.export_app` (``tvmext compile ... --emit-app DIR``) writes::

    DIR/run          the runner (runner/run.cc), a native program built with the
                     system's C++ compiler against the tvm-ffi headers of the wheel
    DIR/model.so     the artifact, with the RPATH $ORIGIN/lib
    DIR/lib/         the libraries run and model.so load, copied: libtvm_runtime.so,
                     libtvm_ffi.so, and libdnnl.so or native ops' shared libraries
                     when the model uses them
    DIR/src/         run.cc, npy.h, the tvm-ffi headers and a Makefile that rebuilds
                     run against DIR/lib
    DIR/README.md    how to run it, and the glibc it needs

:mod:`tvmext.deploy.app` writes the folder; :mod:`tvmext.deploy.libraries` finds the
libraries to copy and the glibc version to state.
"""
