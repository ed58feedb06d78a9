// Traps libjpeg's longjmp-based error reporting so that Swift sees an error code.
#include "CJPEG.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

struct trap_error_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf escape;
    char message[JMSG_LENGTH_MAX];
};

static void trap_error_exit(j_common_ptr cinfo) {
    struct trap_error_mgr *mgr = (struct trap_error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, mgr->message);
    longjmp(mgr->escape, 1);
}

// Warnings (e.g. "premature end of data segment") are promoted to errors: a truncated scan
// would otherwise decode as grey padding and look like a valid image.
static void trap_emit_message(j_common_ptr cinfo, int msg_level) {
    if (msg_level < 0) {
        trap_error_exit(cinfo);
    }
}

static void copy_message(char *err, size_t err_length, const char *message) {
    if (err && err_length > 0) {
        strncpy(err, message, err_length - 1);
        err[err_length - 1] = '\0';
    }
}

int candela_jpeg_decode_rgb(const uint8_t *data, size_t length, size_t max_bytes,
                            int *width, int *height, uint8_t **out,
                            char *err, size_t err_length) {
    struct jpeg_decompress_struct cinfo;
    struct trap_error_mgr jerr;
    uint8_t *volatile pixels = NULL;
    *out = NULL;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = trap_error_exit;
    jerr.pub.emit_message = trap_emit_message;
    jerr.message[0] = '\0';
    if (setjmp(jerr.escape)) {
        copy_message(err, err_length, jerr.message);
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)length);
    jpeg_read_header(&cinfo, TRUE);
    /* The header's size is checked before anything is allocated or decoded: a small file can
       declare 65535 x 65535 pixels (12.9 GB). */
    if ((size_t)cinfo.image_width * cinfo.image_height > max_bytes / 3) {
        snprintf(jerr.message, sizeof jerr.message,
                 "JPEG of %u x %u pixels (%.2f GiB decoded) is over the limit of %.2f GiB for one decoded image (docs/limits.md)",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height,
                 3.0 * cinfo.image_width * cinfo.image_height / (1 << 30), (double)max_bytes / (1 << 30));
        copy_message(err, err_length, jerr.message);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * 3;
    pixels = malloc(stride * cinfo.output_height);
    if (!pixels) {
        copy_message(err, err_length, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    *out = pixels;
    return 0;
}

int candela_jpeg_encode_rgb(const uint8_t *rgb, int width, int height, int quality,
                            int progressive, uint8_t **out, size_t *out_length,
                            char *err, size_t err_length) {
    struct jpeg_compress_struct cinfo;
    struct trap_error_mgr jerr;
    unsigned char *volatile buffer = NULL;
    unsigned long size = 0;
    *out = NULL;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = trap_error_exit;
    jerr.message[0] = '\0';
    if (setjmp(jerr.escape)) {
        copy_message(err, err_length, jerr.message);
        jpeg_destroy_compress(&cinfo);
        free(buffer);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    unsigned char *buf = NULL;
    jpeg_mem_dest(&cinfo, &buf, &size);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (progressive) {
        jpeg_simple_progression(&cinfo);
    }
    jpeg_start_compress(&cinfo, TRUE);
    size_t stride = (size_t)width * 3;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + stride * cinfo.next_scanline);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    buffer = buf;
    jpeg_destroy_compress(&cinfo);
    *out = buffer;
    *out_length = (size_t)size;
    return 0;
}

void candela_jpeg_free(void *p) { free(p); }
