#include "CTIFF.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// A TIFF in memory, read through libtiff's client procedures.
struct memory_file {
    const uint8_t *data;
    uint64_t length;
    uint64_t offset;
    char *err;
    size_t err_length;
};

static tmsize_t mem_read(thandle_t h, void *buf, tmsize_t size) {
    struct memory_file *m = (struct memory_file *)h;
    if (size < 0 || m->offset >= m->length) return 0;
    uint64_t n = (uint64_t)size;
    if (n > m->length - m->offset) n = m->length - m->offset;
    memcpy(buf, m->data + m->offset, (size_t)n);
    m->offset += n;
    return (tmsize_t)n;
}

static tmsize_t mem_write(thandle_t h, void *buf, tmsize_t size) {
    (void)h; (void)buf; (void)size;
    return -1;
}

static toff_t mem_seek(thandle_t h, toff_t off, int whence) {
    struct memory_file *m = (struct memory_file *)h;
    uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->offset : m->length;
    if (off > UINT64_MAX - base) return (toff_t)-1;
    m->offset = base + off;
    return m->offset;
}

static int mem_close(thandle_t h) { (void)h; return 0; }
static toff_t mem_size(thandle_t h) { return ((struct memory_file *)h)->length; }
static int mem_map(thandle_t h, void **base, toff_t *size) { (void)h; (void)base; (void)size; return 0; }
static void mem_unmap(thandle_t h, void *base, toff_t size) { (void)h; (void)base; (void)size; }

/// The first error libtiff reports is kept (it names the cause; later ones follow from it).
static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif; (void)module;
    struct memory_file *m = (struct memory_file *)user;
    if (m && m->err && m->err_length > 0 && m->err[0] == '\0') vsnprintf(m->err, m->err_length, fmt, ap);
    return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) {
    (void)tif; (void)user; (void)module; (void)fmt; (void)ap;
    return 1; // unknown tags and the like: not the reader's concern
}

int candela_tiff_decode_rgb(const uint8_t *data, size_t length, size_t max_bytes,
                            int *width, int *height, int *pages, uint8_t **out,
                            char *err, size_t err_length) {
    *out = NULL;
    *width = *height = 0;
    *pages = 0;
    if (err_length > 0) err[0] = '\0';
    struct memory_file m = {data, length, 0, err, err_length};
    TIFFOpenOptions *options = TIFFOpenOptionsAlloc();
    if (!options) { snprintf(err, err_length, "out of memory"); return -1; }
    TIFFOpenOptionsSetErrorHandlerExtR(options, on_error, &m);
    TIFFOpenOptionsSetWarningHandlerExtR(options, on_warning, &m);
    // libtiff's own strip and tile buffers are bounded too (a tile's size is independent of the image's).
    TIFFOpenOptionsSetMaxSingleMemAlloc(options, (tmsize_t)(max_bytes > (size_t)INT64_MAX ? INT64_MAX : max_bytes));
    // "m": no memory mapping (the client has none to offer).
    TIFF *tif = TIFFClientOpenExt("memory", "rm", (thandle_t)&m, mem_read, mem_write, mem_seek, mem_close, mem_size,
                                  mem_map, mem_unmap, options);
    TIFFOpenOptionsFree(options);
    if (!tif) {
        if (err_length > 0 && err[0] == '\0') snprintf(err, err_length, "not a readable TIFF");
        return -1;
    }
    uint32_t w = 0, h = 0;
    TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
    *pages = (int)TIFFNumberOfDirectories(tif);
    if (w == 0 || h == 0 || w > INT32_MAX || h > INT32_MAX) {
        snprintf(err, err_length, "TIFF has unusable size %ux%u", w, h);
        TIFFClose(tif);
        return -1;
    }
    *width = (int)w;
    *height = (int)h;
    if ((uint64_t)w * (uint64_t)h > (uint64_t)max_bytes / 4) {
        TIFFClose(tif);
        return -2;
    }
    size_t n = (size_t)w * (size_t)h;
    uint32_t *raster = (uint32_t *)_TIFFmalloc((tmsize_t)(n * sizeof(uint32_t)));
    uint8_t *rgb = (uint8_t *)malloc(n * 3);
    if (!raster || !rgb) {
        if (raster) _TIFFfree(raster);
        free(rgb);
        TIFFClose(tif);
        snprintf(err, err_length, "out of memory for %ux%u pixels", w, h);
        return -1;
    }
    // stop_on_error = 1: a strip or tile that cannot be read fails the image (otherwise libtiff
    // passes a stale buffer on and reports success); an error reported on the way fails it too.
    if (!TIFFReadRGBAImageOriented(tif, w, h, raster, ORIENTATION_TOPLEFT, 1) || (err_length > 0 && err[0] != '\0')) {
        if (err_length > 0 && err[0] == '\0') snprintf(err, err_length, "cannot decode the image");
        _TIFFfree(raster);
        free(rgb);
        TIFFClose(tif);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t p = raster[i];
        unsigned a = TIFFGetA(p);
        // libtiff's RGBA is premultiplied (unassociated alpha is converted): over white, a
        // channel is c + (255 − a).
        unsigned r = TIFFGetR(p), g = TIFFGetG(p), b = TIFFGetB(p);
        if (a < 255) {
            r = r + (255 - a) > 255 ? 255 : r + (255 - a);
            g = g + (255 - a) > 255 ? 255 : g + (255 - a);
            b = b + (255 - a) > 255 ? 255 : b + (255 - a);
        }
        rgb[3 * i] = (uint8_t)r;
        rgb[3 * i + 1] = (uint8_t)g;
        rgb[3 * i + 2] = (uint8_t)b;
    }
    _TIFFfree(raster);
    TIFFClose(tif);
    *out = rgb;
    return 0;
}

void candela_tiff_free(void *p) { free(p); }
