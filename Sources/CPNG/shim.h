// libpng's simplified API (png_image_*): handles 8/16-bit, gray, RGB(A) and palette files
// and reports errors through png_image.message instead of longjmp-ing through Swift.
#include <png.h>
