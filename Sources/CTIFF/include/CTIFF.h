#ifndef CANDELA_CTIFF_H
#define CANDELA_CTIFF_H
// libtiff 4 (Debian libtiff-dev): writes tiled pyramidal TIFFs (synthetic slides, for the demo
// and the tests; Sources/Slides/PyramidWriter.swift) and decodes TIFF image tiles
// (Sources/Imaging/Codecs.swift, through candela_tiff_decode_rgb below).
#include <stddef.h>
#include <stdint.h>
#include <tiffio.h>

/// Decodes the first image (directory) of a TIFF or BigTIFF held in memory to 8-bit RGB,
/// interleaved, through libtiff's RGBA interface (any photometric interpretation, bit depth,
/// compression, strips or tiles; alpha composited onto white).
///
/// libtiff's errors and warnings go to per-file handlers (TIFFOpenOptions), never to stderr, so
/// several threads can decode at once. Returns 0 on success with *out malloc'ed (free with
/// candela_tiff_free) holding (*height) * (*width) * 3 bytes; -1 on failure with a message in
/// err. A header declaring more than `max_bytes` of decoded RGBA fails before anything is
/// allocated; -2 then, with *width and *height set.
int candela_tiff_decode_rgb(const uint8_t *data, size_t length, size_t max_bytes,
                            int *width, int *height, int *pages, uint8_t **out,
                            char *err, size_t err_length);

void candela_tiff_free(void *p);
#endif
