// libtiff 4 (Debian libtiff-dev): writes tiled pyramidal TIFFs (synthetic slides for the demo
// and the tests). Only Sources/Slides/PyramidWriter.swift calls it.
#include <tiffio.h>
