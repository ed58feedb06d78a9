// OpenSlide 3.4 (Debian libopenslide-dev): whole-slide images (Aperio, Hamamatsu, Leica,
// MIRAX, Philips, Sakura, Ventana, generic tiled TIFF). Only Sources/Slides/Slide.swift calls it.
#include <openslide/openslide.h>
