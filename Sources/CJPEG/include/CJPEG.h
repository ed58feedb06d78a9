#ifndef CANDELA_CJPEG_H
#define CANDELA_CJPEG_H
#include <stddef.h>
#include <stdint.h>

/// Decodes a JPEG (baseline, progressive, grayscale or colour) to 8-bit RGB, interleaved.
///
/// libjpeg reports fatal errors by calling error_exit, which by default prints and calls exit().
/// This shim installs an error manager that longjmps back here, so a corrupt or truncated file
/// becomes a return value instead of a process exit. Never longjmps across Swift frames.
///
/// Returns 0 on success; *out is malloc'ed (free with candela_jpeg_free) and holds
/// (*height) * (*width) * 3 bytes. On failure returns -1 and writes a message into err; a header
/// declaring more than `max_bytes` of decoded RGB fails before anything is allocated.
int candela_jpeg_decode_rgb(const uint8_t *data, size_t length, size_t max_bytes,
                            int *width, int *height, uint8_t **out,
                            char *err, size_t err_length);

/// Encodes 8-bit interleaved RGB as a baseline JPEG with the given quality (1...100).
/// Returns 0 on success with *out malloc'ed (free with candela_jpeg_free), -1 on failure.
int candela_jpeg_encode_rgb(const uint8_t *rgb, int width, int height, int quality,
                            int progressive, uint8_t **out, size_t *out_length,
                            char *err, size_t err_length);

void candela_jpeg_free(void *p);
#endif
